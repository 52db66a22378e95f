// The part of the file a Live clip plays (markers, loop, warp markers) goes to the service as start=/end= in
// seconds of the file, and the results land beside the clip: Session slots below it, Arrangement after it.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { lastSent, requestId, start, options } = require("./helpers.js");

const TAKE = "/Users/me/Music/Recordings/Take 3.wav";  // a 3.1 s recording

// 120 BPM, so a beat is 0.5 s of song time; the warped clip's own warp markers map its beats to the file.
function set(clip, extra) {
  return Object.assign({
    version: [12, 1, 0],
    tempo: 120,
    tracks: [{ name: "Drums", slots: [clip || null, null, null], arrangement: [] }],
  }, extra);
}

function near(actual, expected, what) {
  assert.ok(Math.abs(Number(actual) - expected) < 1e-6, `${what}: ${actual}, expected ${expected}`);
}

test("a Session clip playing 1.0-1.2 s of a 3.1 s file asks for exactly that region, at selection and on Vary", () => {
  const probe = start(set({ file: TAKE, seconds: 3.1, start_marker: 1.0, end_marker: 1.2 }));
  probe.live.select(0, 0);
  const select = lastSent(probe, "/dd/select");
  assert.equal(select[2], TAKE);
  near(options(select).start, 1.0, "select start");
  near(options(select).end, 1.2, "select end");
  probe.message("vary", 1);
  const vary = lastSent(probe, "/dd/vary");
  assert.deepEqual(vary.slice(2, 5), [TAKE, 4, 0.5]);
  near(options(vary).start, 1.0, "vary start");
  near(options(vary).end, 1.2, "vary end");
});

test("a clip that plays its whole file sends no region (older services understand it)", () => {
  const probe = start(set({ file: TAKE, seconds: 3.1 }));
  probe.live.select(0, 0);
  assert.deepEqual(lastSent(probe, "/dd/select").slice(2), [TAKE]);
});

test("a warped clip's markers are beats, mapped to the file through its warp markers", () => {
  // Beats 0-4 cover 0-2 s of the file (0.5 s a beat), beats 4-8 cover 2-3 s (0.25 s a beat).
  const warp = [{ beat_time: 0, sample_time: 0 }, { beat_time: 4, sample_time: 2 }, { beat_time: 8, sample_time: 3 }];
  const probe = start(set({ file: TAKE, seconds: 3.1, warping: 1, warp_markers: warp, start_marker: 3, end_marker: 5 }));
  probe.live.select(0, 0);
  near(options(lastSent(probe, "/dd/select")).start, 1.5, "start (beat 3)");
  near(options(lastSent(probe, "/dd/select")).end, 2.25, "end (beat 5)");
});

test("a looping warped clip plays its loop: that is the region", () => {
  const warp = [{ beat_time: 0, sample_time: 0 }, { beat_time: 4, sample_time: 2 }];
  const probe = start(set({ file: TAKE, seconds: 3.1, warping: 1, warp_markers: warp, looping: 1,
    start_marker: 0, end_marker: 6, loop_start: 2, loop_end: 2.4 }));
  probe.live.select(0, 0);
  near(options(lastSent(probe, "/dd/select")).start, 1.0, "loop start");
  near(options(lastSent(probe, "/dd/select")).end, 1.2, "loop end");
});

test("selecting another region of the same clip selects again; the same region does not", () => {
  const probe = start(set({ file: TAKE, seconds: 3.1, start_marker: 1.0, end_marker: 1.2 }));
  probe.live.select(0, 0);
  probe.live.select(0, 0);
  assert.equal(probe.sent().filter((m) => m[0] === "/dd/select").length, 1);
  probe.live.tracks[0].slots[0].end_marker = 1.5;
  probe.live.select(0, 0);
  assert.equal(probe.sent().filter((m) => m[0] === "/dd/select").length, 2);
  near(options(lastSent(probe, "/dd/select")).end, 1.5, "new end");
});

test("interpolate carries both clips' regions: start=/end= for the first, b_start=/b_end= for the second", () => {
  const probe = start({ version: [12, 1, 0], tracks: [{ name: "Drums", slots: [
    { file: TAKE, seconds: 3.1, start_marker: 1.0, end_marker: 1.2 },
    { file: "/x/other.wav", seconds: 2, start_marker: 0.5, end_marker: 0.7 },
  ] }] });
  probe.live.select(0, 0);
  probe.live.select(0, 1);
  probe.message("interpolate", 1);
  const sent = options(lastSent(probe, "/dd/interpolate"));
  near(sent.start, 1.0, "a start");
  near(sent.end, 1.2, "a end");
  near(sent.b_start, 0.5, "b start");
  near(sent.b_end, 0.7, "b end");
});

test("an Arrangement clip's variations go into the Arrangement right after it, never over the producer's clips", () => {
  // The source plays 1.0-1.2 s (0.4 beats at 120 BPM) at beats 8-8.4; another clip follows at 8.4-8.6.
  const probe = start(set(null, { tracks: [{ name: "Drums", slots: [null], arrangement: [
    { file: TAKE, seconds: 3.1, start_marker: 1.0, end_marker: 1.2, start_time: 8, end_time: 8.4 },
    { file: "/x/next.wav", seconds: 0.1, start_time: 8.4, end_time: 8.6 },
  ] }] }));
  probe.live.selectArrangement(0, 0);
  near(options(lastSent(probe, "/dd/select")).start, 1.0, "region start");
  probe.message("vary", 1);
  const files = ["/s/Take 3/Take 3 1.000-1.200s var 001.wav", "/s/Take 3/Take 3 1.000-1.200s var 002.wav"];
  files.forEach((file) => probe.live.fileLengths.set(file, 0.2));
  probe.reply("/dd/done", requestId(probe, "/dd/vary"), "vary", ...files);
  probe.clock.runScheduled();
  const track = probe.live.tracks[0];
  assert.deepEqual(probe.live.overwritten, [], "no clip of the producer's was covered");
  const made = track.arrangement.filter((clip) => files.includes(clip.file)).sort((a, b) => a.start_time - b.start_time);
  assert.deepEqual(made.map((clip) => clip.file), files);
  near(made[0].start_time, 8.6, "first variation after the clip that follows the source");
  near(made[1].start_time, made[0].end_time, "second right after the first");
  assert.deepEqual(track.slots, [null], "nothing in the Session");
  assert.match(probe.files(), /2 new clips in the Arrangement on Drums/);
});

test("Arrangement with the DD Variations target: under the source, on that track", () => {
  const probe = start(set(null, { tracks: [{ name: "Drums", slots: [null], arrangement: [
    { file: TAKE, seconds: 3.1, start_time: 16, end_time: 22.2 },
  ] }] }));
  probe.message("target", 1);
  probe.live.selectArrangement(0, 0);
  probe.message("vary", 1);
  probe.reply("/dd/done", requestId(probe, "/dd/vary"), "vary", "/s/a.wav");
  probe.clock.runScheduled();
  const variations = probe.live.tracks[1];
  assert.equal(variations.name, "DD Variations");
  assert.equal(variations.arrangement.length, 1);
  near(variations.arrangement[0].start_time, 16, "aligned with the source");
});

test("results follow the source clip by id: a track inserted above it during the render changes nothing", () => {
  const probe = start({ version: [12, 1, 0], tracks: [
    { name: "Drums", slots: [{ file: TAKE, seconds: 3.1 }, null, null] },
  ] });
  probe.live.select(0, 0);
  probe.message("vary", 1);
  probe.live.insertTrack(0, { name: "New above" });
  probe.reply("/dd/done", requestId(probe, "/dd/vary"), "vary", "/s/a.wav", "/s/b.wav");
  probe.clock.runScheduled();
  assert.deepEqual(probe.live.tracks[0].slots.filter(Boolean), [], "nothing on the inserted track");
  assert.deepEqual(probe.live.tracks[1].slots.map((clip) => clip && clip.file), [TAKE, "/s/a.wav", "/s/b.wav"]);
  assert.match(probe.files(), /2 new clips on Drums/);
});

test("markers moved after selecting are read again on Vary and Interpolate", () => {
  const probe = start(set({ file: TAKE, seconds: 3.1, start_marker: 1.0, end_marker: 1.2 }));
  probe.live.select(0, 0);
  probe.live.tracks[0].slots[0].start_marker = 2.0;
  probe.live.tracks[0].slots[0].end_marker = 2.5;
  probe.message("vary", 1);
  near(options(lastSent(probe, "/dd/vary")).start, 2.0, "vary start");
  near(options(lastSent(probe, "/dd/vary")).end, 2.5, "vary end");
});

test("Generate from an Arrangement clip (length unknown until rendered) goes after the clips that follow it", () => {
  const probe = start(set(null, { tracks: [{ name: "Drums", slots: [null], arrangement: [
    { file: TAKE, seconds: 3.1, start_time: 8, end_time: 14.2 },
    { file: "/x/next.wav", seconds: 0.1, start_time: 14.2, end_time: 14.4 },
    { file: "/x/later.wav", seconds: 0.1, start_time: 20, end_time: 20.2 },
  ] }] }));
  probe.live.selectArrangement(0, 0);
  probe.message("generate", 1);
  probe.live.fileLengths.set("/s/generated/dd 001.wav", 4);  // 8 beats: longer than the gap after next.wav
  probe.reply("/dd/done", requestId(probe, "/dd/generate"), "generate", "/s/generated/dd 001.wav");
  probe.clock.runScheduled();
  assert.deepEqual(probe.live.overwritten, []);
  const made = probe.live.tracks[0].arrangement.find((clip) => clip.file === "/s/generated/dd 001.wav");
  near(made.start_time, 20.2, "after the last clip that follows the source");
});

test("a whole-file Arrangement clip's variations are as long as the file: they fit the first gap that long", () => {
  const probe = start(set(null, { tracks: [{ name: "Drums", slots: [null], arrangement: [
    { file: TAKE, seconds: 0.5, start_time: 8, end_time: 9 },
    { file: "/x/next.wav", seconds: 0.1, start_time: 9.5, end_time: 9.7 },
  ] }] }));
  probe.live.selectArrangement(0, 0);
  probe.message("vary", 1);
  probe.live.fileLengths.set("/s/v.wav", 0.5);  // 1 beat: does not fit the half-beat gap before next.wav
  probe.reply("/dd/done", requestId(probe, "/dd/vary"), "vary", "/s/v.wav");
  probe.clock.runScheduled();
  assert.deepEqual(probe.live.overwritten, []);
  near(probe.live.tracks[0].arrangement.find((clip) => clip.file === "/s/v.wav").start_time, 9.7, "after next.wav");
});
