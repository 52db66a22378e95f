// Issues 15 and 16 on the Live side: audition (the Audition toggle, /dd/ack vary heard, Keep), variations of a
// looping clip as loops at the set's tempo, placed looping, and Extend.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { loadDevice } = require("./fake_max.js");
const { lastSent, requestId, connect, start, options } = require("./helpers.js");

const KICK = "/Users/me/Music/Samples/Kick 01.wav";
const BEAT = "/Users/me/Music/Loops/Beat 120.wav";  // 4 s: two bars at 120 BPM, 0.5 s a beat

function near(actual, expected, what) {
  assert.ok(Math.abs(Number(actual) - expected) < 1e-6, `${what}: ${actual}, expected ${expected}`);
}

function session(clip, extra) {
  return Object.assign({ version: [12, 1, 0], tempo: 120, tracks: [
    { name: "Drums", slots: [clip || { file: KICK }, null, null] },
  ] }, extra);
}

// A warped clip of the beat: its warp markers put beat b at b / 2 s of the file (the file is at 120 BPM).
function beatClip(extra) {
  return Object.assign({ file: BEAT, seconds: 4, warping: 1, start_marker: 0, end_marker: 8, loop_start: 0,
    loop_end: 8, warp_markers: [{ beat_time: 0, sample_time: 0 }, { beat_time: 8, sample_time: 4 }] }, extra);
}

function settingsSent(probe, key) {
  return probe.sent().filter((m) => m[0] === "/dd/set" && m[2] === key).map((m) => m[3]);
}

test("the Audition toggle: recalled at load it sends nothing; on connecting and when switched it sets the service", () => {
  const probe = loadDevice(session());
  probe.message("audition", 1);  // the saved value, restored before the device is in the set
  probe.message("init");
  assert.deepEqual(settingsSent(probe, "audition"), [], "nothing before the service answers");
  connect(probe);
  assert.deepEqual(settingsSent(probe, "audition"), ["on"], "the toggle's state goes with the dials' at connection");
  probe.message("audition", 0);
  assert.deepEqual(settingsSent(probe, "audition"), ["on", "off"]);
  const id = lastSent(probe, "/dd/set")[1];
  probe.reply("/dd/ack", id, "set", "audition", "off");
  assert.doesNotMatch(probe.status(), /error/);
});

test("audition: /dd/ack vary heard answers the press (no render left pending); Keep places the kept file", () => {
  const probe = start(session());
  probe.message("audition", 1);
  probe.live.select(0, 0);
  probe.message("vary", 1);
  const press = requestId(probe, "/dd/vary");
  probe.reply("/dd/progress", press, 0.5);
  assert.match(probe.status(), /vary 50%/);
  probe.reply("/dd/ack", press, "vary", "heard", 4);
  assert.doesNotMatch(probe.status(), /vary \d+%/, "the press is answered");
  assert.match(probe.status(), /heard 4, Keep to add/);
  probe.clock.tick();
  probe.clock.tick();  // the service stops answering: nothing was pending, so nothing is reported lost
  assert.doesNotMatch(probe.status(), /stopped before answering/);
  connect(probe);
  probe.message("keep", 1);
  const keep = lastSent(probe, "/dd/keep");
  assert.deepEqual(keep.slice(2), [4], "keeps the last Count (4, a new set's) heard");
  assert.match(probe.status(), /keep 0%/);
  probe.reply("/dd/done", keep[1], "vary", "/s/Kick 01/Kick 01 var 001.wav");
  probe.clock.runScheduled();
  assert.deepEqual(probe.live.tracks[0].slots.map((clip) => clip && clip.file),
    [KICK, "/s/Kick 01/Kick 01 var 001.wav", null], "below the clip the heard press varied");
  assert.match(probe.files(), /1 new clip on Drums/);
  assert.doesNotMatch(probe.status(), /keep \d+%/);
});

test("Keep keeps the last Count heard (/dd/keep N) and places them all below the heard press's clip", () => {
  const probe = start({ version: [12, 1, 0], tempo: 120, tracks: [{ name: "Drums", slots: [{ file: KICK }, null, null, null] }] });
  probe.message("audition", 1);
  probe.message("count", 2);
  probe.live.select(0, 0);
  probe.message("vary", 1);
  probe.reply("/dd/ack", requestId(probe, "/dd/vary"), "vary", "heard", 2);
  probe.message("keep", 1);
  const keep = lastSent(probe, "/dd/keep");
  assert.deepEqual(keep.slice(2), [2]);
  probe.reply("/dd/done", keep[1], "vary", "/s/Kick 01/Kick 01 var 001.wav", "/s/Kick 01/Kick 01 var 002.wav");
  probe.clock.runScheduled();
  assert.deepEqual(probe.live.tracks[0].slots.map((clip) => clip && clip.file),
    [KICK, "/s/Kick 01/Kick 01 var 001.wav", "/s/Kick 01/Kick 01 var 002.wav", null]);
  probe.message("count", 16);
  probe.message("keep", 1);
  assert.deepEqual(lastSent(probe, "/dd/keep").slice(2), [16], "the service keeps what it holds, up to that");
});

test("Keep goes beside the clip of the heard press even after another clip is selected; its error is shown", () => {
  const probe = start({ version: [12, 1, 0], tempo: 120, tracks: [
    { name: "Drums", slots: [{ file: KICK }, null, null] },
    { name: "Perc", slots: [null, { file: "/x/shaker.wav" }, null] },
  ] });
  probe.message("keep", 1);
  probe.reply("/dd/error", requestId(probe, "/dd/keep"), "/dd/keep", "nothing heard to keep: /dd/set audition on, then vary");
  assert.match(probe.status(), /error: Keep: nothing heard to keep/);
  probe.live.select(0, 0);
  probe.message("vary", 1);
  probe.reply("/dd/ack", requestId(probe, "/dd/vary"), "vary", "heard", 1);
  probe.live.select(1, 1);
  probe.message("keep", 1);
  probe.reply("/dd/done", requestId(probe, "/dd/keep"), "vary", "/s/Kick 01/Kick 01 var 002.wav");
  probe.clock.runScheduled();
  assert.equal(probe.live.tracks[0].slots[1].file, "/s/Kick 01/Kick 01 var 002.wav");
  assert.deepEqual(probe.live.tracks[1].slots.filter(Boolean).map((clip) => clip.file), ["/x/shaker.wav"]);
});

test("a press held but not heard (no audio output) says why, and Keep still places it beside that press's clip", () => {
  const probe = start({ version: [12, 1, 0], tempo: 120, tracks: [
    { name: "Drums", slots: [{ file: KICK }, null, null] },
    { name: "Perc", slots: [{ file: "/x/shaker.wav" }, null, null] },
  ] });
  probe.message("audition", 1);
  probe.live.select(1, 0);
  probe.message("vary", 1);
  probe.reply("/dd/ack", requestId(probe, "/dd/vary"), "vary", "heard", 1);  // the shaker, heard
  probe.live.select(0, 0);
  probe.message("vary", 1);  // the kick: the output is gone by now
  probe.reply("/dd/error", requestId(probe, "/dd/vary"), "/dd/vary",
    "not heard: no audio output device (no server running); keep writes it all the same");
  assert.match(probe.status(), /error: Vary: not heard: no audio output device/);
  probe.message("keep", 1);
  probe.reply("/dd/done", requestId(probe, "/dd/keep"), "vary", "/s/Kick 01/Kick 01 var 001.wav");
  probe.clock.runScheduled();
  assert.equal(probe.live.tracks[0].slots[1] && probe.live.tracks[0].slots[1].file, "/s/Kick 01/Kick 01 var 001.wav",
    "below the kick, whose press the service held");
  assert.deepEqual(probe.live.tracks[1].slots.filter(Boolean).map((clip) => clip.file), ["/x/shaker.wav"]);
});

test("a press answered by /dd/done (audition off in the service) is placed as before; a stray heard is ignored", () => {
  const probe = start(session());
  probe.live.select(0, 0);
  probe.message("vary", 1);
  const press = requestId(probe, "/dd/vary");
  probe.reply("/dd/ack", "#someone.else.3", "vary", "heard", 1);
  assert.match(probe.status(), /vary 0%/);
  assert.doesNotMatch(probe.status(), /heard/);
  probe.reply("/dd/done", press, "vary", "/s/a.wav");
  probe.clock.runScheduled();
  assert.equal(probe.live.tracks[0].slots[1].file, "/s/a.wav");
});

test("a looping warped clip: its variations are loops of its beats at the set's tempo, placed looping", () => {
  const probe = start(session(beatClip({ looping: 1, loop_start: 4, loop_end: 8 })));  // the second bar
  probe.live.select(0, 0);
  probe.message("vary", 1);
  const vary = lastSent(probe, "/dd/vary");
  const sent = options(vary);
  assert.deepEqual([sent.loop, sent.bars, sent.bpm], ["on", "1", "120"]);
  near(sent.start, 2, "the loop's start in the file");
  near(sent.end, 4, "the loop's end in the file");
  const files = ["/s/Beat 120/Beat 120 2.000-4.000s var 001.wav", "/s/Beat 120/Beat 120 2.000-4.000s var 002.wav"];
  files.forEach((file) => probe.live.fileLengths.set(file, 2));
  probe.reply("/dd/done", vary[1], "vary", ...files);
  probe.clock.settle();
  for (const clip of probe.live.tracks[0].slots.slice(1)) {
    assert.ok(files.includes(clip.file));
    assert.deepEqual([clip.warping, clip.looping, clip.loop_start, clip.loop_end], [1, 1, 0, 4], clip.file);
  }
});

test("a looping warped clip is selected as the loop its presses make, so the service renders those ahead", () => {
  const probe = start(session(beatClip({ looping: 1, loop_start: 4, loop_end: 8 })));
  probe.live.select(0, 0);
  const sent = options(lastSent(probe, "/dd/select"));
  assert.deepEqual([sent.loop, sent.bars, sent.bpm], ["on", "1", "120"]);
  near(sent.start, 2, "the loop's start in the file");
  const plain = start(session(beatClip({ looping: 0 })));
  plain.live.select(0, 0);
  assert.equal(options(lastSent(plain, "/dd/select")).loop, undefined, "a clip that does not loop: no loop=");
});

test("a looping clip in the Arrangement: the loops follow it, each looping over its beats", () => {
  const probe = start(session(null, { tempo: 90, tracks: [{ name: "Drums", slots: [null], arrangement: [
    // 2 bars at 90 BPM are 5.333 s: the file's beats are 2/3 s each
    { file: BEAT, seconds: 8, warping: 1, looping: 1, loop_start: 0, loop_end: 8, start_time: 16, end_time: 24,
      warp_markers: [{ beat_time: 0, sample_time: 0 }, { beat_time: 12, sample_time: 8 }] },
  ] }] }));
  probe.live.selectArrangement(0, 0);
  probe.message("vary", 1);
  const vary = lastSent(probe, "/dd/vary");
  assert.deepEqual([options(vary).bars, options(vary).bpm], ["2", "90"]);
  probe.live.fileLengths.set("/s/loop.wav", 8 * 60 / 90);
  probe.reply("/dd/done", vary[1], "vary", "/s/loop.wav");
  probe.clock.settle();
  const made = probe.live.tracks[0].arrangement.find((clip) => clip.file === "/s/loop.wav");
  near(made.start_time, 24, "right after the source");
  near(made.end_time, 32, "8 beats long");
  assert.deepEqual([made.warping, made.looping, made.loop_end], [1, 1, 8]);
});

test("a loop whose file is at another tempo than the set's is refused in words, and nothing is sent", () => {
  // 4 beats over 2.5 s of the file: the file is at 96 BPM, the set at 120.
  const probe = start(session(beatClip({ looping: 1, loop_start: 0, loop_end: 4,
    warp_markers: [{ beat_time: 0, sample_time: 0 }, { beat_time: 8, sample_time: 5 }], seconds: 6 })));
  probe.live.select(0, 0);
  probe.message("vary", 1);
  assert.equal(lastSent(probe, "/dd/vary"), undefined);
  assert.match(probe.status(), /error: Vary: the loop is 2\.5 s of its file, but its 4 beats at the set's 120 BPM are 2 s/);
});

test("clips that do not loop (unwarped, or warped with Loop off) get plain variations, placed as they are", () => {
  const probe = start(session(beatClip({ end_marker: 4 })));
  probe.live.select(0, 0);
  probe.message("vary", 1);
  const vary = lastSent(probe, "/dd/vary");
  assert.equal(options(vary).loop, undefined);
  assert.equal(options(vary).bars, undefined);
  probe.reply("/dd/done", vary[1], "vary", "/s/v.wav");
  probe.clock.runScheduled();
  assert.equal(probe.live.calls.filter((call) => call.name.startsWith("set ")).length, 0, "the new clip is left as Live made it");
});

test("a looping clip's kept audition is placed looping too", () => {
  const probe = start(session(beatClip({ looping: 1, loop_start: 0, loop_end: 4 })));
  probe.message("audition", 1);
  probe.live.select(0, 0);
  probe.message("vary", 1);
  probe.reply("/dd/ack", requestId(probe, "/dd/vary"), "vary", "heard", 1);
  probe.message("keep", 1);
  probe.live.fileLengths.set("/s/kept.wav", 2);
  probe.reply("/dd/done", requestId(probe, "/dd/keep"), "vary", "/s/kept.wav");
  probe.clock.settle();
  const kept = probe.live.tracks[0].slots[1];
  assert.deepEqual([kept.file, kept.looping, kept.loop_end], ["/s/kept.wav", 1, 4]);
});

test("Extend: a warped clip is extended by its length in bars at the set's tempo, an unwarped one in seconds", () => {
  const probe = start({ version: [12, 1, 0], tempo: 120, tracks: [
    { name: "Drums", slots: [beatClip(), { file: KICK, seconds: 0.25 }, null, null] },
  ] });
  probe.message("extend", 1);
  assert.match(probe.status(), /Extend: select an audio clip first/);
  probe.live.select(0, 0);
  probe.message("extend", 1);
  assert.deepEqual(lastSent(probe, "/dd/extend").slice(2), [BEAT, 4, "bars=2", "bpm=120", "steps=25"]);
  probe.reply("/dd/done", requestId(probe, "/dd/extend"), "extend", "/s/Beat 120/Beat 120 ext 2 bars 120 bpm 001.wav");
  probe.clock.runScheduled();
  assert.equal(probe.live.tracks[0].slots[2].file, "/s/Beat 120/Beat 120 ext 2 bars 120 bpm 001.wav",
    "in the next free slot below the source");
  assert.match(probe.files(), /1 new clip on Drums/);
  probe.live.select(0, 1);
  probe.message("extend", 1);
  assert.deepEqual(lastSent(probe, "/dd/extend").slice(2), [KICK, 4, "0.25", "steps=25"]);
});

test("Extend of a warped clip shorter than a beat goes by seconds (the service's bars start at one beat)", () => {
  // Half a beat of a 120 BPM file: 0.25 s.
  const probe = start(session(beatClip({ end_marker: 0.5, seconds: 0.25,
    warp_markers: [{ beat_time: 0, sample_time: 0 }, { beat_time: 8, sample_time: 4 }] })));
  probe.live.select(0, 0);
  probe.message("extend", 1);
  assert.deepEqual(lastSent(probe, "/dd/extend").slice(2), [BEAT, 4, "0.25", "steps=25"]);
});

test("Extend of a clip that plays part of its file sends that region: the service continues it from its end", () => {
  // Intended change: this was refused while the service could only continue a file from the file's end.
  const probe = start(session(null, { tracks: [{ name: "Drums", slots: [null], arrangement: [
    { file: KICK, seconds: 1, start_marker: 0.25, end_marker: 0.5, start_time: 8, end_time: 8.5 },
    { file: "/x/next.wav", seconds: 0.5, start_time: 9.5, end_time: 10.5 },
  ] }] }));
  probe.live.selectArrangement(0, 0);
  probe.message("extend", 1);
  assert.deepEqual(lastSent(probe, "/dd/extend").slice(2), [KICK, 4, "0.25", "steps=25", "start=0.25", "end=0.5"]);
  assert.doesNotMatch(probe.status(), /error/);
  // The result is the region (0.25 s) and as much again: 0.5 s, 1 beat at 120 BPM, so it fits at 8.5-9.5 (the
  // whole file and more, 1.25 s, would not).
  probe.live.fileLengths.set("/s/Kick 01 0.250-0.500s ext 0.250s 001.wav", 0.5);
  probe.reply("/dd/done", requestId(probe, "/dd/extend"), "extend", "/s/Kick 01 0.250-0.500s ext 0.250s 001.wav");
  probe.clock.runScheduled();
  near(probe.live.tracks[0].arrangement.find((clip) => clip.file.includes(" ext ")).start_time, 8.5, "right after it");
});

test("Extend in the Arrangement: the longer result goes into the first gap long enough for it", () => {
  // The kick (1 s, 2 beats) at 8-10; a clip at 12-13: the 2 s extension (4 beats) does not fit before it.
  const probe = start(session(null, { tracks: [{ name: "Drums", slots: [null], arrangement: [
    { file: KICK, seconds: 1, start_time: 8, end_time: 10 },
    { file: "/x/next.wav", seconds: 0.5, start_time: 12, end_time: 13 },
  ] }] }));
  probe.live.selectArrangement(0, 0);
  probe.message("extend", 1);
  assert.deepEqual(lastSent(probe, "/dd/extend").slice(2, 5), [KICK, 4, "1"]);
  probe.live.fileLengths.set("/s/ext.wav", 2);
  probe.reply("/dd/done", requestId(probe, "/dd/extend"), "extend", "/s/ext.wav");
  probe.clock.runScheduled();
  assert.deepEqual(probe.live.overwritten, []);
  near(probe.live.tracks[0].arrangement.find((clip) => clip.file === "/s/ext.wav").start_time, 13, "after next.wav");
});

test("Extend, Repaint, Keep and Audition buttons recalled while the set loads start nothing", () => {
  const probe = loadDevice(session());
  probe.live.select(0, 0);
  for (const button of ["extend", "repaint", "keep"]) {
    probe.message(button, 1);
  }
  probe.message("init");
  connect(probe);
  for (const button of ["extend", "repaint", "keep"]) {
    probe.message(button, 0);
  }
  assert.equal(probe.sent().filter((m) => ["/dd/extend", "/dd/repaint", "/dd/keep"].includes(m[0])).length, 0);
});

// Live shows a device no loop brace on a clip with Loop off (LOM: loop_start/loop_end then read as its start/end), so
// Repaint takes the part from the Arrangement's loop brace over an Arrangement clip...
test("Repaint in the Arrangement: the set's loop brace over an unwarped clip is made new in the clip's region; each result plays what the source plays", () => {
  // The take plays 1.0-3.0 s of its file from beat 8 (2 s: 4 beats at 120 BPM); the set's brace over beats 9-10
  // marks 1.5-2.0 s. The service answers with the region alone (clip_start=/clip_end=), 2 s.
  const take = { file: "/x/take.wav", seconds: 3.1, start_marker: 1, end_marker: 3, start_time: 8, end_time: 12 };
  const probe = start(session(null, { loop: { start: 9, length: 1 },
    tracks: [{ name: "Drums", slots: [null], arrangement: [take] }] }));
  probe.message("noise", 0.8);
  probe.live.selectArrangement(0, 0);
  probe.message("repaint", 1);
  const sent = lastSent(probe, "/dd/repaint");
  assert.deepEqual(sent.slice(2), ["/x/take.wav", 4, "start=1.5", "end=2", "noise=0.8", "steps=25", "clip_start=1",
    "clip_end=3"]);
  const files = ["/s/take/take 1.000-3.000s repaint 1.500-2.000s 001.wav",
    "/s/take/take 1.000-3.000s repaint 1.500-2.000s 002.wav"];
  files.forEach((file) => probe.live.fileLengths.set(file, 2));
  probe.reply("/dd/done", sent[1], "repaint", ...files);
  probe.clock.settle();
  assert.deepEqual(probe.live.posted, [], "Live refused no marker");
  const made = files.map((file) => probe.live.tracks[0].arrangement.find((clip) => clip.file === file));
  assert.deepEqual(made.map((clip) => clip.start_time), [12, 16], "one after the other, after the source");
  for (const clip of made) {
    assert.deepEqual([clip.warping, clip.looping, clip.start_marker, clip.end_marker], [0, 0, 0, 2], clip.file);
  }
  assert.equal(probe.live.calls.filter((call) => /^set loop/.test(call.name)).length, 0, "nothing written to a brace");
  assert.match(probe.files(), /2 new clips in the Arrangement on Drums/);
});

// An unwarped clip transposed plays its file faster or slower (Live resamples it): at -12 semitones a beat of the
// timeline holds half the file's seconds it would at 0.
test("Repaint in the Arrangement maps the brace through a transposed unwarped clip's speed", () => {
  // At -12 st the take plays 1.0-2.0 s of its file over beats 8-12 (2 s of timeline at 120 BPM); the brace over
  // beats 10-12 is the second half: 1.5-2.0 s of the file.
  const take = { file: "/x/take.wav", seconds: 3.1, start_marker: 1, end_marker: 2, start_time: 8, end_time: 12,
    pitch_coarse: -12 };
  const probe = start(session(null, { loop: { start: 10, length: 2 },
    tracks: [{ name: "Drums", slots: [null], arrangement: [take] }] }));
  probe.live.selectArrangement(0, 0);
  probe.message("repaint", 1);
  const sent = lastSent(probe, "/dd/repaint");
  assert.ok(sent, probe.status());
  assert.deepEqual(sent.slice(4, 6), ["start=1.5", "end=2"]);
});

// ... and from a warped Session clip's own loop brace with Loop on (beats, mapped to the file by its warp markers).
test("Repaint in the Session: a warped clip's loop brace (Loop on) marks the part; the results are unwarped and play the clip's region", () => {
  // Beat b is b / 2 s of the file; the clip's markers at beats 2-6 play 1-3 s, its brace over beats 3-4 is 1.5-2 s.
  const probe = start(session(beatClip({ looping: 1, start_marker: 2, end_marker: 6, loop_start: 3, loop_end: 4 })));
  probe.live.select(0, 0);
  probe.message("repaint", 1);
  const sent = lastSent(probe, "/dd/repaint");
  assert.deepEqual(sent.slice(2), [BEAT, 4, "start=1.5", "end=2", "noise=0.5", "steps=25", "clip_start=1", "clip_end=3"]);
  probe.live.fileLengths.set("/s/r.wav", 2);
  probe.reply("/dd/done", sent[1], "repaint", "/s/r.wav");
  probe.clock.settle();
  const made = probe.live.tracks[0].slots[1];
  assert.deepEqual([made.file, made.warping, made.looping, made.start_marker, made.end_marker], ["/s/r.wav", 0, 0, 0, 2]);
  assert.deepEqual(probe.live.posted, []);
});

test("Repaint of a clip that plays its whole file sends no region and places the whole file", () => {
  const take = { file: "/x/take.wav", seconds: 3, start_time: 0, end_time: 6 };  // 3 s: 6 beats at 120 BPM
  const probe = start(session(null, { loop: { start: 2, length: 1 },
    tracks: [{ name: "Drums", slots: [null], arrangement: [take] }] }));
  probe.live.selectArrangement(0, 0);
  probe.message("repaint", 1);
  const sent = lastSent(probe, "/dd/repaint");
  assert.deepEqual(sent.slice(2), ["/x/take.wav", 4, "start=1", "end=1.5", "noise=0.5", "steps=25"]);
  probe.live.fileLengths.set("/s/take/take repaint 1.000-1.500s 001.wav", 3);
  probe.reply("/dd/done", sent[1], "repaint", "/s/take/take repaint 1.000-1.500s 001.wav");
  probe.clock.settle();
  const made = probe.live.tracks[0].arrangement[1];
  assert.deepEqual([made.warping, made.looping, made.start_marker, made.end_marker], [0, 0, 0, 3]);
});

test("Repaint is refused in one line when no part is marked or the whole clip is", () => {
  const arrangement = (clip, loop) => session(null, { loop, tracks: [{ name: "Drums", slots: [null], arrangement: [clip] }] });
  const take = { file: "/x/take.wav", seconds: 3.1, start_marker: 1, end_marker: 3, start_time: 8, end_time: 12 };
  const cases = [
    // The reviewer's case: an unwarped Session clip with Loop off has no brace Live shows a device.
    [session({ file: "/x/take.wav", seconds: 3.1, start_marker: 1, end_marker: 3, loop_start: 1.5, loop_end: 2 }),
      /Repaint: in the Session turn the clip's Warp and Loop on and set its loop brace over the part to make new/],
    [session(beatClip({ looping: 0 })), /Repaint: in the Session turn the clip's Warp and Loop on/],
    [session(beatClip({ looping: 1, start_marker: 2, end_marker: 6, loop_start: 2, loop_end: 6 })),
      /Repaint: the loop brace covers the whole clip \(Vary makes all of it new\)/],
    [arrangement(take, { start: 0, length: 16 }), /Repaint: the loop brace covers the whole clip/],
    [arrangement(take, { start: 12, length: 4 }),
      /Repaint: the loop brace is not over the clip: set the Arrangement's loop brace over the part of the clip/],
    [arrangement(Object.assign(beatClip(), { start_time: 0, end_time: 8 }), { start: 2, length: 1 }),
      /Repaint: in the Arrangement it works on unwarped clips/],
    // The brace is always somewhere (bars 1-5 in a new set): with the Loop switch off it marks nothing.
    [arrangement(take, { start: 9, length: 1, on: 0 }),
      /Repaint: turn the Arrangement's Loop switch on and set the Arrangement's loop brace over the part/],
  ];
  for (const [set, message] of cases) {
    const probe = start(set);
    probe.message("repaint", 1);
    assert.match(probe.status(), /Repaint: select an audio clip first/);
    if (set.tracks[0].arrangement) {
      probe.live.selectArrangement(0, 0);
    } else {
      probe.live.select(0, 0);
    }
    probe.message("repaint", 1);
    assert.equal(lastSent(probe, "/dd/repaint"), undefined, String(message));
    assert.match(probe.status(), message);
    assert.doesNotMatch(probe.status(), /\n/, "one line");
  }
});