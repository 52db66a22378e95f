// The device's JavaScript under Node, with a fake Live set: what it sends to the service and what it does to
// the set. Run with `node --test tests/daw/node/` (pytest runs it: tests/daw/test_node_suite.py).
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { loadDevice } = require("./fake_max.js");

const KICK = "/Users/me/Music/Samples/Kick 01 \"hard\".wav";
const SNARE = "/Users/me/Music/Samples/Snäre (tight).aif";

function session(version) {
  return {
    version,
    tracks: [
      { name: "Drums", slots: [null, { file: KICK }, { file: SNARE }, null, { file: "/x/taken.wav" }] },
      { name: "Keys", audio: false, slots: [{ midi: true }, null, null, null, null] },
    ],
  };
}

// The service answers the device's keep-alive (/dd/hello <its reply port>) with its version.
function connect(probe, version) {
  const hello = lastSent(probe, "/dd/hello");
  probe.reply("/dd/hello", hello[1], version || "0.1.0");
}

function started(version, set) {
  const probe = loadDevice(set || session(version || [12, 1, 0]));
  probe.message("init");
  connect(probe);
  return probe;
}

function lastSent(probe, address) {
  const matching = probe.sent().filter((message) => message[0] === address);
  return matching[matching.length - 1];
}

function requestId(probe, address) {
  return lastSent(probe, address)[1];
}

test("selecting an audio clip sends /dd/select with its file, once per clip", () => {
  const probe = started();
  probe.live.select(0, 2);
  assert.deepEqual(lastSent(probe, "/dd/select").slice(2), [SNARE]);
  const before = probe.sent().length;
  probe.live.select(1, 0);  // a MIDI clip: nothing to vary
  probe.live.select(0, 3);  // an empty slot
  assert.equal(probe.sent().filter((m) => m[0] === "/dd/select").length, 1);
  assert.equal(probe.sent().length, before);
});

test("a MIDI note and the Vary button ask for variations of the selected clip with the dials' values", () => {
  const probe = started();
  probe.message("noise", 0.3);
  probe.message("count", 3);
  probe.message("steps", 20);
  probe.clock.runScheduled();  // sent with the guides' wait, once
  assert.deepEqual(probe.sent().filter((m) => m[0] === "/dd/set").slice(-3).map((m) => m.slice(2)),
    [["noise", 0.3], ["count", 3], ["steps", 20]]);
  probe.message("note", 36, 0);  // note off
  assert.equal(lastSent(probe, "/dd/vary"), undefined);
  probe.message("vary", 1);
  assert.match(probe.status(), /select an audio clip/);
  assert.equal(lastSent(probe, "/dd/vary"), undefined);
  probe.live.select(0, 1);
  probe.message("trigger_low", 36);
  probe.message("trigger_high", 36);
  probe.message("note", 36, 100);
  assert.deepEqual(lastSent(probe, "/dd/vary").slice(2), [KICK, 3, 0.3, "steps=20"]);
  probe.message("vary");
  assert.equal(probe.sent().filter((m) => m[0] === "/dd/vary").length, 2);
  assert.match(lastSent(probe, "/dd/vary")[1], /^#m\d+\.[0-9a-z]+\.\d+$/);
});

test("/dd/done puts the files in the free clip slots below the source, outside the network callback", () => {
  const probe = started([12, 0, 5]);
  probe.live.select(0, 1);
  probe.message("vary");
  const id = requestId(probe, "/dd/vary");
  probe.reply("/dd/progress", id, 0.5);
  assert.match(probe.status(), /vary 50%/);
  const files = ["/s/Kick 01/Kick 01 var 001.wav", "/s/Kick 01/Kick 01 var 002.wav", "/s/Kick 01/Kick 01 var 003.wav"];
  probe.reply("/dd/done", id, "vary", ...files);
  assert.equal(probe.live.calls.length, 0, "the set changes only in a deferred task");
  probe.clock.runScheduled();
  const created = probe.live.calls.filter((call) => call.name === "create_audio_clip");
  // The kick is in scene 1; scene 0 above it is free but not below; scenes 2 and 4 hold clips: the new ones
  // go to 3 and to two new scenes at the end.
  assert.deepEqual(created.map((call) => [call.path, call.args[0]]), [
    ["live_set tracks 0 clip_slots 3", files[0]],
    ["live_set tracks 0 clip_slots 5", files[1]],
    ["live_set tracks 0 clip_slots 6", files[2]],
  ]);
  assert.equal(probe.live.calls.filter((call) => call.name === "create_scene").length, 2);
  assert.equal(probe.live.tracks[0].slots[2].file, SNARE, "nothing is overwritten");
  assert.doesNotMatch(probe.status(), /vary \d+%/);
  assert.match(probe.files(), /3 new clips on Drums/);
});

test("the DD Variations target makes that track once and fills it from the source's row", () => {
  const probe = started();
  probe.message("target", 1);
  probe.live.select(0, 2);
  probe.message("vary");
  probe.reply("/dd/done", requestId(probe, "/dd/vary"), "vary", "/s/a.wav", "/s/b.wav");
  probe.clock.runScheduled();
  probe.message("vary");
  probe.reply("/dd/done", requestId(probe, "/dd/vary"), "vary", "/s/c.wav");
  probe.clock.runScheduled();
  assert.equal(probe.live.calls.filter((call) => call.name === "create_audio_track").length, 1);
  const track = probe.live.tracks[2];
  assert.equal(track.name, "DD Variations");
  assert.deepEqual(track.slots.map((slot) => slot && slot.file), [null, null, "/s/a.wav", "/s/b.wav", "/s/c.wav"]);
});

test("results for a clip on a MIDI track go to the DD Variations track, never onto the MIDI track", () => {
  const probe = started();
  probe.live.selectedTrack = 1;
  probe.message("generate");
  assert.deepEqual(lastSent(probe, "/dd/generate").slice(2), [4, "steps=25"]);
  probe.reply("/dd/done", requestId(probe, "/dd/generate"), "generate", "/s/generated/dd 001.wav");
  probe.clock.runScheduled();
  assert.deepEqual(probe.live.tracks[1].slots.slice(1).filter(Boolean), []);
  assert.equal(probe.live.tracks[2].slots[0].file, "/s/generated/dd 001.wav");
});

test("before Live 12.0.5 the files are listed for drag and drop and the device says why", () => {
  const probe = started([12, 0, 4]);
  assert.match(probe.files(), /Live 12\.0\.4: new files are listed here to drag in/);
  probe.live.select(0, 1);
  probe.message("vary");
  probe.reply("/dd/done", requestId(probe, "/dd/vary"), "vary", "/s/Kick 01/Kick 01 var 001.wav");
  probe.clock.runScheduled();
  assert.equal(probe.live.calls.length, 0);
  assert.match(probe.files(), /cannot add clips from a device \(12\.0\.5\+ can\)/);
  assert.match(probe.files(), /Kick 01 var 001\.wav/);
  assert.match(probe.files(), /\(\/s\/Kick 01\)/);
});

test("interpolate takes the two clips selected last", () => {
  const probe = started();
  probe.live.select(0, 1);
  probe.message("interpolate");
  assert.match(probe.status(), /select two audio clips/);
  probe.live.select(0, 2);
  probe.message("interpolate");
  assert.deepEqual(lastSent(probe, "/dd/interpolate").slice(2), [KICK, SNARE, 4, "steps=25"]);
});

test("a dead service shows as not running, and pending work as lost", () => {
  const probe = loadDevice(session([12, 1, 0]));
  probe.message("init");
  assert.match(probe.status(), /connecting/);
  probe.live.select(0, 1);
  probe.message("vary");
  assert.match(probe.status(), /error: Vary: still connecting to dd-bridge: press again in a moment/, "at once");
  probe.clock.tick();
  probe.clock.tick();
  probe.message("vary");
  assert.match(probe.status(), /error: Vary: service not running: start it with 'dd-bridge serve'/, "no answer yet");
  assert.equal(lastSent(probe, "/dd/vary"), undefined, "nothing sent to no one");
  connect(probe);
  probe.message("vary");
  assert.ok(lastSent(probe, "/dd/vary"));
  probe.clock.tick();
  probe.clock.tick();
  probe.clock.tick();
  assert.match(probe.status(), /service not running: start it with 'dd-bridge serve'/);
  assert.match(probe.status(), /Vary: the service stopped before answering/);
  assert.equal(probe.sent().filter((m) => m[0] === "/dd/hello").length, 6, "it keeps asking");
  connect(probe);
  assert.match(probe.status(), /^connected to dd-bridge 0\.1\.0/);
  assert.deepEqual(probe.sent().slice(-4).map((m) => m[0] === "/dd/set" ? m[2] : m[0]),
    ["noise", "count", "steps", "/dd/recipes"], "its settings, then the recipes its menu lists");
});

test("errors show in words; replies to other clients are ignored", () => {
  const probe = started();
  probe.live.select(0, 1);
  probe.message("vary");
  probe.reply("/dd/done", "#r7", "vary", "/s/someone else.wav");
  probe.reply("/dd/error", "#r8", "/dd/vary", "not for us");
  probe.clock.runScheduled();
  assert.equal(probe.live.calls.length, 0);
  assert.doesNotMatch(probe.status(), /not for us/);
  probe.reply("/dd/error", requestId(probe, "/dd/vary"), "/dd/vary", "cannot read Kick.wav: not an audio file");
  assert.match(probe.status(), /error: Vary: cannot read Kick\.wav: not an audio file/);
});

test("a refused setting or selection is shown, its acknowledgement is not", () => {
  const probe = started();
  probe.message("steps", 5000);
  probe.clock.runScheduled();
  const id = lastSent(probe, "/dd/set")[1];
  probe.reply("/dd/error", id, "/dd/set", "steps must be from 1 to 1000, not 5000");
  assert.match(probe.status(), /error: Setting steps: steps must be from 1 to 1000, not 5000/);
  probe.live.select(0, 1);
  const select = lastSent(probe, "/dd/select")[1];
  probe.reply("/dd/ack", select, "select", KICK);
  probe.reply("/dd/error", select, "/dd/select", "late");
  assert.doesNotMatch(probe.status(), /late/);
});

test("only the device's own messages are answered", () => {
  const probe = started();
  probe.message("placeResults", {}, ["/etc/passwd"]);
  probe.clock.runScheduled();
  assert.equal(probe.live.calls.length, 0);
  assert.match(probe.status(), /unknown message 'placeResults'/);
});
