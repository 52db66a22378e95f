// The device's script against a real running service, over real UDP: what Max's udpsend/udpreceive do, done
// here with a minimal OSC encoder and decoder. Used by tests/daw/test_device_with_service.py:
//   node service_session.js <service port> <audio file> [<3.1 s recording>]
// Exits 0 when the device connected, selected the clip, got variations and put them into empty clip slots; with
// a recording, also when clips playing 1.0-1.2 s of it got variations of exactly that part, placed beside them,
// when a looping clip got loops of its beats at the set's tempo (placed looping), when Repaint's results of its loop
// brace (the clip's region alone) play what their source plays, when Extend placed the clip (and a clip's region) continued, and when an audition press was answered by ear and Keep placed the kept files, the last Count heard (issues 15, 16).
"use strict";

const dgram = require("node:dgram");
const fs = require("node:fs");
const path = require("node:path");
const assert = require("node:assert/strict");
const { loadDevice, wavSeconds } = require("./fake_max.js");

const [servicePort, audioFile, longFile] = process.argv.slice(2);

function pad(buffer) {
  return Buffer.concat([buffer, Buffer.alloc(4 - (buffer.length % 4))]);
}

// Max's udpsend: whole numbers go out as int32, others as float32, symbols as strings.
function encode(atoms) {
  const [address, ...args] = atoms;
  let tags = ",";
  const parts = [];
  for (const arg of args) {
    if (typeof arg === "number" && Number.isInteger(arg)) {
      tags += "i";
      const part = Buffer.alloc(4);
      part.writeInt32BE(arg);
      parts.push(part);
    } else if (typeof arg === "number") {
      tags += "f";
      const part = Buffer.alloc(4);
      part.writeFloatBE(arg);
      parts.push(part);
    } else {
      tags += "s";
      parts.push(pad(Buffer.from(String(arg), "utf8")));
    }
  }
  return Buffer.concat([pad(Buffer.from(address)), pad(Buffer.from(tags)), ...parts]);
}

function readString(buffer, offset) {
  const end = buffer.indexOf(0, offset);
  return [buffer.toString("utf8", offset, end), end + 4 - ((end - offset) % 4)];
}

// Messages out of a packet (a bundle's elements in order), each as [address, ...args].
function decode(buffer) {
  const [address, afterAddress] = readString(buffer, 0);
  if (address === "#bundle") {
    const messages = [];
    let offset = afterAddress + 8;
    while (offset < buffer.length) {
      const size = buffer.readInt32BE(offset);
      messages.push(...decode(buffer.subarray(offset + 4, offset + 4 + size)));
      offset += 4 + size;
    }
    return messages;
  }
  let [tags, offset] = readString(buffer, afterAddress);
  const args = [];
  for (const tag of tags.slice(1)) {
    if (tag === "i") {
      args.push(buffer.readInt32BE(offset));
      offset += 4;
    } else if (tag === "f") {
      args.push(buffer.readFloatBE(offset));
      offset += 4;
    } else if (tag === "d") {
      args.push(buffer.readDoubleBE(offset));
      offset += 8;
    } else if (tag === "s") {
      let text;
      [text, offset] = readString(buffer, offset);
      args.push(text);
    } else if (tag === "T" || tag === "F") {
      args.push(tag === "T" ? 1 : 0);
    } else {
      throw new Error(`unexpected OSC type ${tag} in ${address}`);
    }
  }
  return [[address, ...args]];
}

// The default press: the trigger note, then the results placed.
async function pressTrigger(probe, waitFor) {
  probe.message("note", 0, 100);  // a key press: the default trigger note
  await waitFor("the variations", () => probe.clock.scheduled.length > 0 || /error/.test(probe.status()), 300);
}

// One device in `set`, connected over real UDP to the service. Returns the probe, waitFor(what, condition,
// seconds) (which sends what the device has written meanwhile), the addresses received, the whole messages
// received, and close().
async function connectDevice(set) {
  const probe = loadDevice(set);
  // The device picks a reply port of its own at init (`port N` to its udpreceive) and registers it with
  // /dd/hello: listen there, as udpreceive would, and send from there too.
  probe.message("init");
  const socket = dgram.createSocket("udp4");
  await new Promise((resolve) => socket.bind(probe.replyPort(), "127.0.0.1", resolve));
  const received = [];
  const messages = [];
  socket.on("message", (packet) => {
    for (const [address, ...args] of decode(packet)) {
      received.push(address);
      messages.push([address, ...args]);
      probe.reply(address, ...args);  // udpreceive -> prepend osc -> js
    }
  });
  let sentCount = 0;
  const flush = () => {  // js outlet 0 -> udpsend
    for (const atoms of probe.sent().slice(sentCount)) {
      socket.send(encode(atoms), Number(servicePort), "127.0.0.1");
    }
    sentCount = probe.sent().length;
  };
  const waitFor = async (what, condition, seconds) => {
    const deadline = Date.now() + seconds * 1000;
    while (!condition()) {
      flush();
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; status: ${probe.status()}; received: ${received.join(" ")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  try {
    await waitFor("the service's answer to /dd/hello", () => /^connected to dd-bridge /.test(probe.status()), 30);
  } catch (error) {
    socket.close();
    throw error;
  }
  return { probe, waitFor, received, messages, close: () => socket.close() };
}

// One device in `set`, over real UDP to the service: connects, selects the clip at `select`, presses (the trigger,
// or `press(probe, waitFor, received)`) and places the results. Returns the probe.
async function pressOnce(set, select, press) {
  const { probe, waitFor, received, close } = await connectDevice(set);
  try {
    probe.message("count", 2);
    probe.message("steps", 2);
    probe.message("noise", 0.25);
    probe.clock.runScheduled();  // the dials go out after a wait: before the select, so its prefetch takes them
    select(probe.live);
    await waitFor("the select to be acknowledged", () => received.includes("/dd/ack") || /error/.test(probe.status()), 30);
    assert.doesNotMatch(probe.status(), /error/);
    await (press || pressTrigger)(probe, waitFor, received);
    assert.doesNotMatch(probe.status(), /error/);
    probe.clock.settle();  // placed, then shaped once Live has applied their warping
    assert.doesNotMatch(probe.status(), /error/);
    assert.ok(received.includes("/dd/progress") || received.includes("/dd/done"));
    return probe;
  } finally {
    close();
  }
}

function createdFiles(probe) {
  return probe.live.calls.filter((call) => call.name === "create_audio_clip");
}

// A clip that plays 1.0-1.2 s of the 3.1 s recording: unwarped (markers in seconds) or warped (markers in beats,
// mapped by its warp markers: 0.5 s a beat up to beat 2, then 0.25 s a beat).
function regionClip(file, warped, extra) {
  const clip = warped ? { file, warping: 1, start_marker: 2, end_marker: 2.8,
    warp_markers: [{ beat_time: 0, sample_time: 0 }, { beat_time: 2, sample_time: 1 }, { beat_time: 10, sample_time: 3 }] } :
    { file, start_marker: 1.0, end_marker: 1.2 };
  return Object.assign(clip, extra);
}

function checkRegionFiles(files, where) {
  assert.equal(files.length, 2, where);
  for (const file of files) {
    assert.match(path.basename(file), / 1\.000-1\.200s var \d+\.wav$/, where);
    const seconds = wavSeconds(file);
    assert.ok(Math.abs(seconds - 0.2) < 1e-3, `${where}: ${file} lasts ${seconds} s, not the 0.2 s the clip plays`);
  }
}

async function main() {
  const probe = await pressOnce({ version: [12, 1, 0], tracks: [{ name: "Drums", slots: [{ file: audioFile }, null, null] }] },
    (live) => live.select(0, 0));
  const created = createdFiles(probe);
  assert.deepEqual(created.map((call) => call.path), ["live_set tracks 0 clip_slots 1", "live_set tracks 0 clip_slots 2"]);
  for (const call of created) {
    assert.ok(fs.statSync(call.args[0]).size > 44, `${call.args[0]} is not a rendered file`);
  }
  const outcome = { files: created.map((call) => call.args[0]), status: probe.status(), regions: {} };
  if (longFile) {
    // Issue 12: a clip playing 1.0-1.2 s of a 3.1 s recording, in the Session and the Arrangement, unwarped and
    // warped, gets variations of exactly that 0.2 s, next to it.
    for (const warped of [false, true]) {
      const where = warped ? "session, warped" : "session";
      const session = await pressOnce({ version: [12, 1, 0], tracks: [{ name: "Drums",
        slots: [regionClip(longFile, warped), null, null] }] }, (live) => live.select(0, 0));
      const files = session.live.tracks[0].slots.slice(1).map((clip) => clip && clip.file);
      checkRegionFiles(files, where);
      outcome.regions[where] = files;
    }
    for (const warped of [false, true]) {
      const where = warped ? "arrangement, warped" : "arrangement";
      const arrangement = await pressOnce({ version: [12, 1, 0], tempo: 120, tracks: [{ name: "Drums", slots: [null],
        arrangement: [regionClip(longFile, warped, { start_time: 8, end_time: 8.4 })] }] },
      (live) => live.selectArrangement(0, 0));
      const track = arrangement.live.tracks[0];
      const made = track.arrangement.filter((clip) => clip.file !== longFile).sort((a, b) => a.start_time - b.start_time);
      checkRegionFiles(made.map((clip) => clip.file), where);
      assert.ok(Math.abs(made[0].start_time - 8.4) < 1e-6, `${where}: the first variation starts at ${made[0].start_time}`);
      assert.ok(Math.abs(made[1].start_time - made[0].end_time) < 1e-6, `${where}: the second follows the first`);
      assert.deepEqual(arrangement.live.overwritten, [], where);
      outcome.regions[where] = made.map((clip) => clip.file);
    }
  }
  if (longFile) {
    // A looping warped clip, beats 2-6 (1-3 s of the recording: 0.5 s a beat, the set at 120 BPM): loops of
    // exactly 1 bar at 120 BPM, placed looping over 4 beats.
    const loop = await pressOnce({ version: [12, 1, 0], tempo: 120, tracks: [{ name: "Drums", slots: [
      { file: longFile, warping: 1, looping: 1, loop_start: 2, loop_end: 6,
        warp_markers: [{ beat_time: 0, sample_time: 0 }, { beat_time: 6.2, sample_time: 3.1 }] }, null, null] }] },
    (live) => live.select(0, 0));
    const loops = loop.live.tracks[0].slots.slice(1);
    assert.equal(loops.length, 2);
    for (const clip of loops) {
      assert.match(path.basename(clip.file), / 1\.000-3\.000s loop 1 bar 120 bpm var \d+\.wav$/);
      assert.ok(Math.abs(wavSeconds(clip.file) - 2) < 1e-9, `${clip.file} lasts ${wavSeconds(clip.file)} s, not 1 bar at 120`);
      assert.deepEqual([clip.warping, clip.looping, clip.loop_end], [1, 1, 4], clip.file);
    }
    outcome.loops = loops.map((clip) => clip.file);
    // Repaint: an unwarped Arrangement clip playing 1.0-3.0 s of the recording from beat 8 (4 beats at 120 BPM),
    // the Arrangement's loop brace over beats 9-10: 1.5-2.0 s.
    const painted = await pressOnce({ version: [12, 1, 0], tempo: 120, loop: { start: 9, length: 1 }, tracks: [{
      name: "Drums", slots: [null], arrangement: [
        { file: longFile, start_marker: 1, end_marker: 3, start_time: 8, end_time: 12 }] }] },
    (live) => live.selectArrangement(0, 0), async (probe, waitFor) => {
      probe.message("repaint", 1);
      await waitFor("the repaint", () => probe.clock.scheduled.length > 0 || /error/.test(probe.status()), 300);
    });
    const repaints = painted.live.tracks[0].arrangement.filter((clip) => clip.file !== longFile);
    assert.equal(repaints.length, 2);
    // The device sends the clip's region (clip_start=1 clip_end=3): the service writes those 2 s alone, and each
    // result plays them, unwarped, Loop off.
    for (const clip of repaints) {
      assert.match(path.basename(clip.file), / 1\.000-3\.000s repaint 1\.500-2\.000s \d+\.wav$/);
      assert.ok(Math.abs(wavSeconds(clip.file) - 2) < 1e-9, `${clip.file}: the clip's region`);
      assert.deepEqual([clip.warping, clip.looping, clip.start_marker, clip.end_marker], [0, 0, 0, 2], clip.file);
    }
    outcome.repainted = repaints.map((clip) => clip.file);
    // Extend of the same clip (Loop off, no brace needed): the region, then as long again.
    const regionExtended = await pressOnce({ version: [12, 1, 0], tracks: [{ name: "Drums", slots: [
      { file: longFile, start_marker: 1, end_marker: 3 }, null, null] }] },
    (live) => live.select(0, 0), async (probe, waitFor) => {
      probe.message("extend", 1);
      await waitFor("the region's extension", () => probe.clock.scheduled.length > 0 || /error/.test(probe.status()), 300);
    });
    const regionExtensions = regionExtended.live.tracks[0].slots.slice(1).map((clip) => clip.file);
    assert.equal(regionExtensions.length, 2);
    for (const file of regionExtensions) {
      assert.match(path.basename(file), / 1\.000-3\.000s ext 2\.000s \d+\.wav$/);
      assert.ok(Math.abs(wavSeconds(file) - 4) < 1e-3, `${file} lasts ${wavSeconds(file)} s, not the 2 s region twice`);
    }
    outcome.regionExtended = regionExtensions;
  }
  // Extend: the kick, then as long again, in the next slot.
  const extended = await pressOnce({ version: [12, 1, 0], tracks: [{ name: "Drums", slots: [{ file: audioFile }, null, null] }] },
    (live) => live.select(0, 0), async (probe, waitFor) => {
      probe.message("extend", 1);
      await waitFor("the extension", () => probe.clock.scheduled.length > 0 || /error/.test(probe.status()), 300);
    });
  const extensions = extended.live.tracks[0].slots.slice(1).map((clip) => clip.file);
  const kick = wavSeconds(audioFile);
  for (const file of extensions) {
    assert.ok(Math.abs(wavSeconds(file) - 2 * kick) < 1e-3, `${file} lasts ${wavSeconds(file)} s, not twice ${kick} s`);
  }
  outcome.extended = extensions;
  // Audition: the press is answered by ear (/dd/ack vary heard), Keep writes the last heard and places it.
  const kept = await pressOnce({ version: [12, 1, 0], tracks: [{ name: "Drums", slots: [{ file: audioFile }, null, null] }] },
    (live) => live.select(0, 0), async (probe, waitFor, received) => {
      probe.message("audition", 1);  // sent before the press, from the same socket: the service has it first
      probe.message("vary", 1);
      await waitFor("the press heard", () => /heard 2, Keep to add/.test(probe.status()) || /error/.test(probe.status()), 300);
      assert.doesNotMatch(probe.status(), /vary \d+%/, "the press is answered");
      probe.message("keep", 1);
      await waitFor("the kept file", () => probe.clock.scheduled.length > 0 || /error/.test(probe.status()), 60);
      const acks = received.filter((address) => address === "/dd/ack").length;
      probe.message("audition", 0);  // the service is shared with the other suites
      await waitFor("audition off", () => received.filter((address) => address === "/dd/ack").length > acks, 10);
    });
  const keptClips = kept.live.tracks[0].slots.slice(1).filter(Boolean);
  assert.equal(keptClips.length, 2, "Keep keeps the last Count (2) heard");
  assert.ok(fs.statSync(keptClips[0].file).size > 44);
  outcome.kept = keptClips.map((clip) => clip.file);
  console.log(JSON.stringify(outcome));
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error.stack || String(error));
    process.exit(1);
  });
}

module.exports = { connectDevice };
