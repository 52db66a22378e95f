// The device's controls and its talk with the service: buttons that only fire when pressed, the MIDI trigger,
// Cancel, two devices in one set, clips Live refuses, and replies that are not what they should be.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { loadDevice, FakeLive } = require("./fake_max.js");
const { lastSent, requestId, connect, start } = require("./helpers.js");

const KICK = "/Users/me/Music/Samples/Kick 01.wav";

function session(extra) {
  return Object.assign({ version: [12, 1, 0], tracks: [
    { name: "Drums", slots: [{ file: KICK }, null, null] },
    { name: "Keys", audio: false, slots: [null, null, null] },
  ] }, extra);
}

function renders(probe) {
  return probe.sent().filter((m) => ["/dd/vary", "/dd/generate", "/dd/interpolate"].includes(m[0])).length;
}

test("a button value recalled while the set loads, or a release (0), starts nothing", () => {
  const probe = loadDevice(session());
  probe.live.select(0, 0);
  for (const button of ["vary", "generate", "interpolate", "cancel"]) {
    probe.message(button, 1);  // Live restores saved values before the device is in the set
  }
  probe.message("init");
  connect(probe);
  probe.live.select(0, 0);
  for (const button of ["vary", "generate", "interpolate"]) {
    probe.message(button, 0);
  }
  assert.equal(renders(probe), 0);
  assert.equal(probe.live.calls.length, 0, "no track was made");
  probe.message("vary", 1);
  assert.equal(renders(probe), 1, "a press after loading works");
});

test("the trigger: by default only C-2 fires, a chosen range fires once per chord, other notes pass through", () => {
  const probe = start(session());
  assert.deepEqual(probe.triggerNotes(), [0], "midiselect takes only C-2 out of the stream");
  probe.live.select(0, 0);
  for (const pitch of [36, 48, 60, 64, 67]) {
    probe.message("note", pitch, 100);  // ordinary playing
    probe.message("note", pitch, 0);
  }
  assert.equal(renders(probe), 0);
  probe.message("trigger_low", 38);
  probe.message("trigger_high", 36);  // either order
  assert.deepEqual(probe.triggerNotes(), [36, 37, 38]);
  for (const pitch of [36, 37, 38]) {
    probe.message("note", pitch, 100);  // a chord
  }
  assert.equal(renders(probe), 1, "a chord is one press");
  probe.message("note", 37, 0);
  probe.message("note", 37, 90);
  assert.equal(renders(probe), 1, "still held: no new press");
  for (const pitch of [36, 37, 38]) {
    probe.message("note", pitch, 0);
  }
  probe.message("note", 38, 100);
  assert.equal(renders(probe), 2, "released and pressed again");
});

test("two devices in one set: their own request ids and reply ports, and neither takes the other's results", () => {
  const live = new FakeLive(session());
  const first = loadDevice(null, { live });
  const second = loadDevice(null, { live });
  for (const probe of [first, second]) {
    probe.message("init");
    connect(probe);
  }
  assert.notEqual(first.replyPort(), second.replyPort());
  assert.deepEqual(lastSent(first, "/dd/hello").slice(2), [first.replyPort()], "the port is registered with /dd/hello");
  live.select(0, 0);
  first.message("vary", 1);
  second.message("vary", 1);
  const [a, b] = [requestId(first, "/dd/vary"), requestId(second, "/dd/vary")];
  assert.notEqual(a, b);
  // The service sends every reply to every registered port: each device sees both.
  for (const probe of [first, second]) {
    probe.reply("/dd/done", b, "vary", "/s/for the second.wav");
  }
  first.clock.runScheduled();
  second.clock.runScheduled();
  assert.match(first.status(), /vary 0%/, "the first still waits for its own");
  assert.match(second.files(), /1 new clip on Drums/);
  assert.deepEqual(live.tracks[0].slots.map((clip) => clip && clip.file), [KICK, "/s/for the second.wav", null]);
});

test("a frozen track: Live refuses the clips and the device says so, with the files to drag in", () => {
  const probe = start(session());
  probe.live.tracks[0].frozen = true;
  probe.live.select(0, 0);
  probe.message("vary", 1);
  probe.reply("/dd/done", requestId(probe, "/dd/vary"), "vary", "/s/a.wav", "/s/b.wav");
  probe.clock.runScheduled();
  assert.doesNotMatch(probe.files(), /new clips on Drums/);
  assert.match(probe.files(), /Live refused 2 of 2 clips on Drums/);
  assert.match(probe.files(), /a\.wav\nb\.wav/);
  assert.match(probe.status(), /error: Vary: Live refused 2 clips on Drums/);
});

test("a file gone before it was placed is counted as refused, the others are placed", () => {
  const probe = start(session());
  probe.live.select(0, 0);
  probe.message("vary", 1);
  probe.live.missing.add("/s/gone.wav");
  probe.reply("/dd/done", requestId(probe, "/dd/vary"), "vary", "/s/a.wav", "/s/gone.wav");
  probe.clock.runScheduled();
  assert.match(probe.files(), /Live refused 1 of 2 clips on Drums/);
  assert.equal(probe.live.tracks[0].slots[1].file, "/s/a.wav");
});

test("a MIDI track named DD Variations is not the variations track: an audio one is made", () => {
  const probe = start(session({ tracks: [
    { name: "Drums", slots: [{ file: KICK }, null] },
    { name: "DD Variations", audio: false, slots: [null, null] },
  ] }));
  probe.message("target", 1);
  probe.live.select(0, 0);
  probe.message("vary", 1);
  probe.reply("/dd/done", requestId(probe, "/dd/vary"), "vary", "/s/a.wav");
  probe.clock.runScheduled();
  assert.deepEqual(probe.live.tracks[1].slots.filter(Boolean), [], "nothing on the MIDI track");
  assert.equal(probe.live.tracks[2].name, "DD Variations");
  assert.equal(probe.live.tracks[2].audio, true);
  assert.equal(probe.live.tracks[2].slots[0].file, "/s/a.wav");
  assert.match(probe.files(), /1 new clip on DD Variations/);
});

test("Cancel sends /dd/cancel, drops this device's renders and ignores their late replies", () => {
  const probe = start(session());
  probe.live.select(0, 0);
  probe.message("vary", 1);
  const id = requestId(probe, "/dd/vary");
  probe.message("cancel", 1);
  assert.ok(lastSent(probe, "/dd/cancel"));
  assert.match(probe.status(), /cancelled 1 render/);
  assert.doesNotMatch(probe.status(), /vary \d+%/);
  probe.reply("/dd/error", id, "/dd/vary", "cancelled by /dd/cancel");
  probe.reply("/dd/done", id, "vary", "/s/late.wav");
  probe.clock.runScheduled();
  assert.doesNotMatch(probe.status(), /error/);
  assert.equal(probe.live.calls.length, 0);
});

test("stray replies: another /dd/pong or /dd/hello does not connect, a bad progress is not NaN%, an empty done waits on", () => {
  const probe = loadDevice(session());
  probe.message("init");
  probe.reply("/dd/pong", 7);
  probe.reply("/dd/pong", "#r3", "0.1.0");
  probe.reply("/dd/hello", "#someone.else.1", "0.1.0");
  assert.doesNotMatch(probe.status(), /connected to/);
  connect(probe, "0.2.0");
  assert.match(probe.status(), /^connected to dd-bridge 0\.2\.0/);
  probe.live.select(0, 0);
  probe.message("vary", 1);
  const id = requestId(probe, "/dd/vary");
  probe.reply("/dd/progress", id, "soon");
  assert.doesNotMatch(probe.status(), /NaN/);
  assert.match(probe.status(), /vary 0%/);
  probe.reply("/dd/done", id, "vary");
  probe.clock.runScheduled();
  assert.match(probe.status(), /vary 0%/, "still waiting");
  probe.reply("/dd/done", id, "vary", "/s/a.wav");
  probe.clock.runScheduled();
  assert.equal(probe.live.tracks[0].slots[1].file, "/s/a.wav");
});

test("a silent service moves the device to another reply port, and the keep-alive registers it", () => {
  const probe = loadDevice(session());
  probe.message("init");
  const first = probe.replyPort();
  probe.clock.tick();
  probe.clock.tick();
  assert.notEqual(probe.replyPort(), first);
  assert.deepEqual(lastSent(probe, "/dd/hello").slice(2), [probe.replyPort()]);
});
