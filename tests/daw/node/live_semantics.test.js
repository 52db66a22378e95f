// The device against the Live Object Model as documented where it is easy to get wrong (review s39): Live defers a
// warping write, unwarped audio cannot loop, results keep their source's Transpose, Detune and Gain; Noise, Count and
// Steps coalesced like the guides; a service restarted under a pending render; Arrangement placement (cost, clips Live makes longer than
// their gap, take lanes).
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { FakeLive } = require("./fake_max.js");
const { lastSent, requestId, start, options } = require("./helpers.js");

const KICK = "/Users/me/Music/Samples/Kick 01.wav";
const BEAT = "/Users/me/Music/Loops/Beat 120.wav";  // 4 s: two bars at 120 BPM

function session(clip, extra) {
  return Object.assign({ version: [12, 1, 0], tempo: 120, tracks: [
    { name: "Drums", slots: [clip || { file: KICK, seconds: 0.5 }, null, null] },
  ] }, extra);
}

function beatClip(extra) {
  return Object.assign({ file: BEAT, seconds: 4, warping: 1, start_marker: 0, end_marker: 8, loop_start: 0,
    loop_end: 8, warp_markers: [{ beat_time: 0, sample_time: 0 }, { beat_time: 8, sample_time: 4 }] }, extra);
}

function varyAndAnswer(probe, files, seconds) {
  probe.message("vary", 1);
  const vary = lastSent(probe, "/dd/vary");
  files.forEach((file) => probe.live.fileLengths.set(file, seconds));
  probe.reply("/dd/done", vary[1], "vary", ...files);
  return vary;
}

// ---- Finding 2: Live defers the warping write ----

test("a loop result: warping is written alone, the loop only once Live has applied it (deferred), and read back", () => {
  const probe = start(session(beatClip({ looping: 1, loop_start: 4, loop_end: 8 })));
  probe.live.select(0, 0);
  varyAndAnswer(probe, ["/s/loop 1.wav"], 2);
  probe.clock.runScheduled();  // the placing Task: the clip is made, Warp on asked for
  const clip = probe.live.tracks[0].slots[1];
  assert.equal(clip.warping, 0, "Live has not applied it yet");
  assert.deepEqual(probe.live.calls.filter((call) => call.name.startsWith("set ")).map((call) => call.name),
    ["set warping"], "nothing that depends on Warp is written in the same event");
  probe.clock.settle();
  assert.deepEqual([clip.warping, clip.looping, clip.loop_start, clip.loop_end], [1, 1, 0, 4]);
  assert.deepEqual(probe.live.posted, [], "no loop refused on unwarped audio");
  assert.doesNotMatch(probe.status(), /error/);
});

test("a result Live makes warped (Auto-Warp) gets a repaint's markers in seconds once it reads unwarped", () => {
  const probe = start(session(beatClip({ looping: 1, start_marker: 2, end_marker: 6, loop_start: 3, loop_end: 4 }),
    { newClipsWarped: true }));
  probe.live.select(0, 0);
  probe.message("repaint", 1);
  const sent = lastSent(probe, "/dd/repaint");
  probe.live.fileLengths.set("/s/r.wav", 2);
  probe.reply("/dd/done", sent[1], "repaint", "/s/r.wav");
  probe.clock.settle();
  const made = probe.live.tracks[0].slots[1];
  assert.deepEqual([made.warping, made.start_marker, made.end_marker], [0, 0, 2], "plays 0-2 s of its file");
  assert.deepEqual(probe.live.posted, []);
});

test("warping is written only when it differs; a clip already warped is looped in the same later Task", () => {
  const probe = start(session(beatClip({ looping: 1, loop_start: 4, loop_end: 8 }), { newClipsWarped: true }));
  probe.live.select(0, 0);
  varyAndAnswer(probe, ["/s/loop 1.wav"], 2);
  probe.clock.settle();
  assert.equal(probe.live.calls.filter((call) => call.name === "set warping").length, 0);
  const clip = probe.live.tracks[0].slots[1];
  assert.deepEqual([clip.warping, clip.looping, clip.loop_start, clip.loop_end], [1, 1, 0, 4]);
});

test("when Live never takes Warp, the loop is not forced on and the status line says so", () => {
  const probe = start(session(beatClip({ looping: 1, loop_start: 4, loop_end: 8 })));
  probe.live.applyDeferred = () => { probe.live.deferred = []; };  // Live drops the write
  probe.live.select(0, 0);
  varyAndAnswer(probe, ["/s/loop 1.wav", "/s/loop 2.wav"], 2);
  probe.clock.settle();
  const clip = probe.live.tracks[0].slots[1];
  assert.deepEqual([clip.warping, clip.looping, clip.start_marker, clip.end_marker], [0, 0, 0, 2], "left as made");
  assert.match(probe.status(),
    /error: Vary: placed, but Live did not take Warp on on 2 clips \(loop 1\.wav, loop 2\.wav\)/);
  assert.doesNotMatch(probe.status(), /\n/);
});

test("a value Live does not take is read back and named", () => {
  const probe = start(session(beatClip({ looping: 1, loop_start: 4, loop_end: 6 })));  // a 2-beat loop
  const set = FakeLive.prototype.set;
  probe.live.set = function (object, name, value, livePath) {
    return name === "loop_end" ? undefined : set.call(this, object, name, value, livePath);  // ignored
  };
  probe.live.select(0, 0);
  varyAndAnswer(probe, ["/s/loop 1.wav"], 2);
  probe.clock.settle();
  assert.match(probe.status(), /error: Vary: placed, but Live did not take the loop on 1 clip \(loop 1\.wav\)/);
});

// ---- Finding 3: Transpose, Detune, Gain, Warp Mode ----

test("results keep the source's Transpose, Detune and Gain, and a warped source's Warp Mode where they are warped", () => {
  const probe = start(session(beatClip({ looping: 1, loop_start: 4, loop_end: 8, pitch_coarse: -3, pitch_fine: 12,
    gain: 0.55, warp_mode: 4 })));
  probe.live.select(0, 0);
  varyAndAnswer(probe, ["/s/loop 1.wav", "/s/loop 2.wav"], 2);
  probe.clock.settle();
  for (const clip of probe.live.tracks[0].slots.slice(1)) {
    assert.deepEqual([clip.pitch_coarse, clip.pitch_fine, clip.gain, clip.warp_mode, clip.warping], [-3, 12, 0.55, 4, 1],
      clip.file);
  }
});

test("an unwarped source's results keep pitch and gain, and no Warp Mode is written", () => {
  const probe = start(session({ file: KICK, seconds: 0.5, pitch_coarse: 5, pitch_fine: -20, gain: 0.3 }));
  probe.live.select(0, 0);
  varyAndAnswer(probe, ["/s/k1.wav"], 0.5);
  probe.clock.settle();
  const clip = probe.live.tracks[0].slots[1];
  assert.deepEqual([clip.pitch_coarse, clip.pitch_fine, clip.gain, clip.warping], [5, -20, 0.3, 0]);
  assert.equal(probe.live.calls.filter((call) => call.name === "set warp_mode").length, 0);
});

test("with the Note (tuning) guide on, results keep their pitch (the render is tuned) but take the Gain", () => {
  const probe = start(session({ file: KICK, seconds: 0.5, pitch_coarse: -3, pitch_fine: 12, gain: 0.55 }));
  probe.message("note_menu", 10);
  probe.live.select(0, 0);
  varyAndAnswer(probe, ["/s/k1.wav"], 0.5);
  probe.clock.settle();
  const clip = probe.live.tracks[0].slots[1];
  assert.deepEqual([clip.pitch_coarse, clip.pitch_fine, clip.gain], [0, 0, 0.55]);
});

test("Extend and Keep results keep the source's pitch and gain too", () => {
  const probe = start(session({ file: KICK, seconds: 0.5, pitch_coarse: 7, gain: 0.2 }));
  probe.live.select(0, 0);
  probe.message("extend", 1);
  probe.reply("/dd/done", requestId(probe, "/dd/extend"), "extend", "/s/e.wav");
  probe.message("audition", 1);
  probe.message("vary", 1);
  probe.reply("/dd/ack", requestId(probe, "/dd/vary"), "vary", "heard", 1);
  probe.message("keep", 1);
  probe.reply("/dd/done", requestId(probe, "/dd/keep"), "vary", "/s/kept.wav");
  probe.clock.settle();
  const made = probe.live.tracks[0].slots.slice(1).filter(Boolean);
  assert.deepEqual(made.map((clip) => [clip.file, clip.pitch_coarse, clip.gain]),
    [["/s/e.wav", 7, 0.2], ["/s/kept.wav", 7, 0.2]]);
});

// ---- Finding 4: Noise, Steps and Count coalesced ----

test("a turn of Noise, Steps or Count sends the latest value once, and nothing when it did not change", () => {
  const probe = start(session());
  const sets = (key) => probe.sent().filter((m) => m[0] === "/dd/set" && m[2] === key).map((m) => m[3]);
  const before = { noise: sets("noise").length, steps: sets("steps").length, count: sets("count").length };
  for (let i = 0; i <= 30; i++) {
    probe.message("noise", (20 + i) / 50);
    probe.message("steps", 20 + i);
  }
  probe.message("count", 4);  // as it was
  assert.equal(sets("noise").length, before.noise, "nothing during the turn");
  probe.clock.runScheduled();
  assert.deepEqual(sets("noise").slice(before.noise), [1]);
  assert.deepEqual(sets("steps").slice(before.steps), [50]);
  assert.equal(sets("count").length, before.count, "Count did not change");
  probe.message("noise", 0.5);
  probe.message("noise", 1);
  probe.clock.runScheduled();
  assert.equal(sets("noise").length, before.noise + 1, "the same value again: nothing");
  probe.message("vary", 1);  // a press still carries the dials' values at once
  probe.live.select(0, 0);
  probe.message("noise", 0.9);
  probe.message("vary", 1);
  assert.deepEqual(lastSent(probe, "/dd/vary").slice(2, 6), [KICK, 4, 0.9, "steps=50"]);
});

test("a dial and a Character turn together: one wait, the guides then the dial", () => {
  const probe = start(session());
  const mark = probe.sent().length;
  probe.message("guide", "brightness", 0.5);
  probe.message("noise", 0.7);
  probe.clock.runScheduled();
  assert.deepEqual(probe.sent().slice(mark).map((m) => m.slice(2)), [["guide", "brightness=0.5"], ["noise", 0.7]]);
});

// ---- Finding 8: renders that never end, presses with no service ----

test("a render waits as long as the service runs: a long queue ahead of it is not a reason to drop it", () => {
  const probe = start(session());
  probe.live.select(0, 0);
  probe.message("vary", 1);
  const id = requestId(probe, "/dd/vary");
  for (let i = 0; i < 300; i++) {  // ten minutes of keep-alives, the same run answering, no progress for this one
    probe.clock.tick();
    probe.reply("/dd/hello", requestId(probe, "/dd/hello"), "0.1.0", "run-a");
  }
  assert.match(probe.status(), /vary 0%/);
  probe.live.fileLengths.set("/s/late.wav", 0.5);
  probe.reply("/dd/done", id, "vary", "/s/late.wav");
  probe.clock.settle();
  assert.notEqual(probe.live.tracks[0].slots[1], null, "placed when it comes");
});

test("a service restarted between two keep-alives: what was pending is failed in words, the settings sent again", () => {
  const probe = start(session());
  probe.clock.tick();
  probe.reply("/dd/hello", requestId(probe, "/dd/hello"), "0.1.0", "run-a");
  probe.live.select(0, 0);
  probe.message("vary", 1);
  const id = requestId(probe, "/dd/vary");
  probe.clock.tick();
  const before = probe.sent().length;
  probe.reply("/dd/hello", requestId(probe, "/dd/hello"), "0.1.0", "run-b");
  assert.doesNotMatch(probe.status(), /vary \d+%/);
  assert.match(probe.status(), /error: Vary: the service restarted before answering: press again/);
  const resent = probe.sent().slice(before).filter((m) => m[0] === "/dd/set").map((m) => m[2]);
  for (const key of ["audition", "noise", "count", "steps"]) {
    assert.ok(resent.includes(key), "the new run gets the device's " + key);
  }
  probe.reply("/dd/done", id, "vary", "/s/late.wav");
  probe.clock.settle();
  assert.equal(probe.live.tracks[0].slots[1], null, "a late answer is ignored");
});

// ---- Findings 5 and 6: Arrangement placement ----

test("placing in a busy Arrangement track reads each clip's span once, not per file and pass", () => {
  const clips = [];
  for (let i = 0; i < 300; i++) {
    clips.push({ file: `/x/hit ${i}.wav`, seconds: 0.5, start_time: i * 2, end_time: i * 2 + 1 });
  }
  const probe = start({ version: [12, 1, 0], tempo: 120, tracks: [{ name: "Drums", slots: [null], arrangement: clips }] });
  probe.live.selectArrangement(0, 0);
  probe.message("count", 16);
  probe.message("vary", 1);
  const vary = lastSent(probe, "/dd/vary");
  const files = [];
  for (let i = 0; i < 16; i++) {
    files.push(`/s/hit/var ${i}.wav`);
    probe.live.fileLengths.set(files[i], 0.5);
  }
  let reads = 0;
  const get = probe.live.get.bind(probe.live);
  probe.live.get = (...args) => { reads += 1; return get(...args); };
  probe.reply("/dd/done", vary[1], "vary", ...files);
  probe.clock.runScheduled();
  assert.ok(reads < 1000, `${reads} reads`);
  probe.clock.settle();
  assert.equal(probe.live.overwritten.length, 0, "no clip of the producer's covered");
  assert.match(probe.files(), /16 new clips in the Arrangement on Drums/);
});

// Vary of the first of `clips` on an Arrangement track (120 BPM), answered with `results` ({file: seconds} as Live
// makes them), placed.
function varyInArrangement(clips, results) {
  const probe = start({ version: [12, 1, 0], tempo: 120, tracks: [{ name: "Drums", slots: [null], arrangement: clips }] });
  probe.live.selectArrangement(0, 0);
  probe.message("count", Object.keys(results).length);
  probe.message("vary", 1);
  const vary = lastSent(probe, "/dd/vary");
  Object.keys(results).forEach((file) => probe.live.fileLengths.set(file, results[file]));
  probe.reply("/dd/done", vary[1], "vary", ...Object.keys(results));
  probe.clock.settle();
  return probe;
}

test("a new Arrangement clip Live makes longer than its gap is said, and the rest go after the track's last clip", () => {
  // Clips at beats 0-1, 2-3, 4-5; the source is the first. Results are estimated at 0.5 s (1 beat), but Live makes
  // the first 1 s (2 beats): it covers the clip at 2.
  const probe = varyInArrangement([
    { file: "/x/a.wav", seconds: 0.5, start_time: 0, end_time: 1 },
    { file: "/x/b.wav", seconds: 0.5, start_time: 2, end_time: 3 },
    { file: "/x/c.wav", seconds: 0.5, start_time: 4, end_time: 5 },
  ], { "/s/long.wav": 1, "/s/short.wav": 0.5 });
  assert.equal(probe.live.overwritten.length, 1, "the one Live covered, and no more");
  const short = probe.live.tracks[0].arrangement.find((clip) => clip.file === "/s/short.wav");
  assert.equal(short.start_time, 5, "after the track's last clip");
  assert.match(probe.status(), /1 new clip in the Arrangement on Drums came out longer than its gap and covers part of the next clip \(Undo, a step at a time, brings it back\)/);
});

test("when a long result cuts into the track's last clip, the rest go after what Live kept of it", () => {
  // review s39 (2): Live keeps the part of a clip that a new one does not cover; the next results must not land
  // on that part (each would cut it again) but after it.
  const probe = varyInArrangement([
    { file: "/x/a.wav", seconds: 0.5, start_time: 0, end_time: 1 },
    { file: "/x/b.wav", seconds: 4, start_time: 2, end_time: 10 },
  ], { "/s/long.wav": 1, "/s/v2.wav": 0.5, "/s/v3.wav": 0.5, "/s/v4.wav": 0.5 });
  const clips = probe.live.tracks[0].arrangement;
  const rest = clips.filter((clip) => clip.file === "/x/b.wav");
  assert.deepEqual(rest.map((clip) => [clip.start_time, clip.end_time]), [[3, 10]], "b keeps all but its first beat");
  for (const file of ["/s/v2.wav", "/s/v3.wav", "/s/v4.wav"]) {
    assert.ok(clips.find((clip) => clip.file === file).start_time >= 10, file + " goes after b");
  }
  assert.equal(probe.live.overwritten.length, 1, "b cut once");
});

// ---- Finding 7: take lanes ----

test("a clip in a take lane (Live 12.2) is an Arrangement clip: its results go after it in the Arrangement", () => {
  const probe = start({ version: [12, 2, 0], tempo: 120, tracks: [{ name: "Vox", slots: [null, null],
    take_lanes: [[{ file: "/x/take 1.wav", seconds: 1, start_time: 8, end_time: 10 }]] }] });
  probe.live.selectTake(0, 0, 0);
  varyAndAnswer(probe, ["/s/t1.wav"], 1);
  probe.clock.settle();
  assert.deepEqual(probe.live.tracks[0].slots, [null, null], "nothing in the Session slots");
  const made = probe.live.tracks[0].arrangement.find((clip) => clip.file === "/s/t1.wav");
  assert.equal(made.start_time, 10);
  assert.match(probe.files(), /1 new clip in the Arrangement on Vox/);
});

test("Repaint reads the Arrangement brace for a take-lane clip too", () => {
  const probe = start({ version: [12, 2, 0], tempo: 120, loop: { start: 9, length: 1 }, tracks: [{ name: "Vox",
    slots: [null], take_lanes: [[{ file: "/x/take 1.wav", seconds: 3, start_marker: 0, end_marker: 2,
      start_time: 8, end_time: 12 }]] }] });
  probe.live.selectTake(0, 0, 0);
  probe.message("repaint", 1);
  const sent = options(lastSent(probe, "/dd/repaint"));
  assert.deepEqual([sent.start, sent.end, sent.clip_start, sent.clip_end], ["0.5", "1", "0", "2"]);
});
