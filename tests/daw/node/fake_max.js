// A stand-in for what Max gives a `js` object inside Live: LiveAPI over a small Live set, Task, outlet, post.
// It follows the Live Object Model's paths, ids and return shapes (get returns an array; objects keep their id
// when tracks move; a call Live refuses posts an error to the Max window and changes nothing, it does not throw),
// so the device's script runs unchanged. Build one with loadDevice(set) and drive it like the patcher does.
// A property or function the LOM does not have throws: that is a bug in the device.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const DEVICE_SCRIPT = path.join(__dirname, "..", "..", "..", "max_patch", "dd_bridge.js");
const DEFAULT_FILE_SECONDS = 0.25;  // files the test names but never wrote (see FakeLive.fileSeconds)
const FILE_RATE = 44100;

// The length in seconds of a WAV file, from its header, or null.
function wavSeconds(file) {
  let data;
  try {
    data = fs.readFileSync(file);
  } catch (error) {
    return null;
  }
  if (data.toString("latin1", 0, 4) !== "RIFF" || data.toString("latin1", 8, 12) !== "WAVE") {
    return null;
  }
  let position = 12;
  let rate = null;
  let block = null;
  let frames = null;
  while (position + 8 <= data.length) {
    const id = data.toString("latin1", position, position + 4);
    const size = data.readUInt32LE(position + 4);
    if (id === "fmt ") {
      rate = data.readUInt32LE(position + 12);
      block = data.readUInt16LE(position + 20);
    } else if (id === "data") {
      frames = Math.floor(size / block);
    }
    position += 8 + size + (size % 2);
  }
  return rate && frames !== null ? frames / rate : null;
}

// set: {version: [12, 0, 5], tempo: 120, loop: {start, length, on} (the set's loop brace, beats, and its Loop switch; 0-16, on, when not given),
//       newClipsWarped: false (Live's Auto-Warp: clips it makes come in warped), tracks: [{name, audio: true, frozen: false,
//        slots: [null | {file, seconds, warping, looping, start_marker, end_marker, loop_start, loop_end,
//                        pitch_coarse, pitch_fine, gain, warp_mode,
//                        warp_markers: [{beat_time, sample_time}]} | {midi: true}],
//        arrangement: [{file, start_time, end_time, ...the clip fields above}],
//        take_lanes: [[{file, start_time, end_time, ...}]]}]}  (Live 12.2 take lanes: Arrangement clips too)
// Clip markers are seconds for unwarped clips and beats for warped ones, as in Live; unset ones cover the file.
// As the LOM documents (Clip): loop_start/loop_end read as the clip's start/end while looping is 0 (the brace the
// fake keeps is Live's hidden one, shown again when Loop goes on), and writing them then moves the clip's start/end;
// "unwarped audio cannot be looped" (refused, posted); and Live defers a warping write: it takes effect after the
// current event (here: before the next scheduled Task runs, see applyDeferred), so reading it back at once gives the
// old value.
class FakeLive {
  constructor(set) {
    this.version = set.version || [12, 1, 0];
    this.tempo = set.tempo || 120;
    this.loop = Object.assign({ start: 0, length: 16, on: 1 }, set.loop || {});
    this.newClipsWarped = !!set.newClipsWarped;
    this.deferred = [];        // warping writes Live has not applied yet
    this.objects = new Map();
    this.nextId = 1;
    this.missing = new Set();   // files Live cannot find (deleted after the render)
    this.fileLengths = new Map();
    this.device = this.register({ kind: "device" });
    this.tracks = set.tracks.map((track) => this.makeTrack(track));
    this.scenes = Math.max(...this.tracks.map((track) => track.slots.length));
    this.tracks.forEach((track) => this.fillSlots(track));
    this.detailClip = null;
    this.selectedTrack = 0;
    this.observers = [];
    this.calls = [];       // every call/set that changes the set: {path, name, args}
    this.posted = [];      // errors Live printed to the Max window
    this.overwritten = []; // Arrangement clips of the producer's that a new clip covered
  }

  register(object) {
    object.id = this.nextId++;
    this.objects.set(object.id, object);
    return object;
  }

  makeTrack(spec) {
    const track = this.register({ kind: "track", name: spec.name, audio: spec.audio !== false, frozen: !!spec.frozen,
      slots: [], slotObjects: [], arrangement: [], takeLanes: [] });
    (spec.slots || []).forEach((clip) => {
      track.slots.push(clip ? this.makeClip(clip, false) : null);
      track.slotObjects.push(this.register({ kind: "slot", track }));
    });
    track.arrangement = (spec.arrangement || []).map((clip) => this.makeClip(clip, true));
    track.takeLanes = (spec.take_lanes || []).map((lane) => lane.map((clip) => this.makeClip(clip, true)));
    return track;
  }

  makeClip(spec, arrangement) {
    const seconds = spec.file ? this.fileSeconds(spec.file, spec.seconds) : 1;
    return this.register(Object.assign({
      kind: "clip", midi: false, warping: 0, looping: 0, start_marker: 0, end_marker: seconds, loop_start: 0,
      loop_end: seconds, seconds, start_time: 0, end_time: seconds * this.tempo / 60, warp_markers: null,
      pitch_coarse: 0, pitch_fine: 0, gain: 0.4, warp_mode: 0,
    }, spec, { arrangement }));
  }

  // A clip Live makes from a file (create_audio_clip): unwarped, or warped by Auto-Warp at the set's tempo.
  makeNewClip(spec, arrangement) {
    const clip = this.makeClip(spec, arrangement);
    if (this.newClipsWarped) {
      clip.warping = 1;
      for (const key of ["start_marker", "end_marker", "loop_start", "loop_end"]) {
        clip[key] *= this.tempo / 60;
      }
    }
    return clip;
  }

  // Live applies the warping writes it deferred (the loadDevice clock calls this before each scheduled Task).
  applyDeferred() {
    this.deferred.splice(0).forEach((apply) => apply());
  }

  // Seconds of audio in a file: the test's figure, the file's own header when it is a WAV on disk, else a short
  // one-shot (the tests name files a service would have written). null when Live cannot find the file.
  fileSeconds(file, given) {
    if (this.missing.has(file)) {
      return null;
    }
    if (given !== undefined) {
      this.fileLengths.set(file, given);
    }
    return this.fileLengths.get(file) || wavSeconds(file) || DEFAULT_FILE_SECONDS;
  }

  fillSlots(track) {
    while (track.slots.length < this.scenes) {
      track.slots.push(null);
      track.slotObjects.push(this.register({ kind: "slot", track }));
    }
  }

  notify() {
    const value = this.detailClip ? ["id", this.detailClip.id] : ["id", 0];
    this.observers.forEach((observer) => observer(["detail_clip"].concat(value)));
  }

  // The producer clicks a Session clip (or an empty slot: the detail clip is then none).
  select(track, scene) {
    this.selectedTrack = track;
    this.detailClip = this.tracks[track].slots[scene] || null;
    this.notify();
  }

  // The producer clicks a clip in a take lane (Live 12.2).
  selectTake(track, lane, index) {
    this.selectedTrack = track;
    this.detailClip = this.tracks[track].takeLanes[lane][index];
    this.notify();
  }

  // The producer clicks an Arrangement clip.
  selectArrangement(track, index) {
    this.selectedTrack = track;
    this.detailClip = this.tracks[track].arrangement[index];
    this.notify();
  }

  // The producer inserts a track (Cmd-T) at `index`.
  insertTrack(index, spec) {
    const track = this.makeTrack(Object.assign({ slots: [] }, spec));
    this.fillSlots(track);
    this.tracks.splice(index, 0, track);
    return track;
  }

  sortedArrangement(track) {
    return track.arrangement.slice().sort((a, b) => a.start_time - b.start_time);
  }

  pathOf(object) {
    if (!object) {
      return null;
    }
    if (object.kind === "device") {
      return "this_device";
    }
    for (let t = 0; t < this.tracks.length; t++) {
      const track = this.tracks[t];
      if (object === track) {
        return `live_set tracks ${t}`;
      }
      const slot = track.slotObjects.indexOf(object);
      if (slot >= 0) {
        return `live_set tracks ${t} clip_slots ${slot}`;
      }
      const scene = track.slots.indexOf(object);
      if (scene >= 0) {
        return `live_set tracks ${t} clip_slots ${scene} clip`;
      }
      const index = this.sortedArrangement(track).indexOf(object);
      if (index >= 0) {
        return `live_set tracks ${t} arrangement_clips ${index}`;
      }
      for (let lane = 0; lane < track.takeLanes.length; lane++) {
        const take = track.takeLanes[lane].indexOf(object);
        if (take >= 0) {
          return `live_set tracks ${t} take_lanes ${lane} arrangement_clips ${take}`;
        }
      }
    }
    return null;
  }

  // The object at a path (or an id), or a named root; null when there is none.
  object(livePath) {
    let match;
    if ((match = /^id (\d+)$/.exec(livePath))) {
      const found = this.objects.get(Number(match[1]));
      return found && this.pathOf(found) ? found : null;
    }
    if (["live_app", "live_set", "live_set view"].includes(livePath)) {
      return { kind: livePath };
    }
    if (livePath === "this_device") {
      return this.device;
    }
    if (livePath === "live_set view selected_track") {
      return this.tracks[this.selectedTrack] || null;
    }
    if ((match = /^live_set tracks (\d+) take_lanes (\d+) arrangement_clips (\d+)$/.exec(livePath))) {
      const lanes = this.tracks[Number(match[1])] ? this.tracks[Number(match[1])].takeLanes : [];
      return (lanes[Number(match[2])] || [])[Number(match[3])] || null;
    }
    if (!(match = /^live_set tracks (\d+)(?: (clip_slots|arrangement_clips) (\d+)( clip)?)?$/.exec(livePath))) {
      return null;
    }
    const track = this.tracks[Number(match[1])];
    if (!track || !match[2]) {
      return track || null;
    }
    const index = Number(match[3]);
    if (match[2] === "arrangement_clips") {
      return match[4] ? null : this.sortedArrangement(track)[index] || null;
    }
    return match[4] ? track.slots[index] || null : track.slotObjects[index] || null;
  }

  get(object, name, livePath) {
    const values = {
      live_set: () => ({ tempo: this.tempo, loop: this.loop.on, loop_start: this.loop.start, loop_length: this.loop.length }),
      track: () => ({ name: object.name, has_audio_input: object.audio ? 1 : 0, has_midi_input: object.audio ? 0 : 1,
        is_foldable: 0, is_frozen: object.frozen ? 1 : 0,
        // A list property reads as its objects' ids: id 4 id 9 ...
        arrangement_clips: [].concat(...this.sortedArrangement(object).map((clip) => ["id", clip.id])) }),
      slot: () => ({ has_clip: object.track.slots[object.track.slotObjects.indexOf(object)] ? 1 : 0 }),
      clip: () => object.midi ? { is_audio_clip: 0, is_arrangement_clip: object.arrangement ? 1 : 0 } : {
        is_audio_clip: 1, is_arrangement_clip: object.arrangement ? 1 : 0, file_path: object.file,
        warping: object.warping, looping: object.looping, start_marker: object.start_marker,
        end_marker: object.end_marker, loop_start: object.looping ? object.loop_start : object.start_marker,
        loop_end: object.looping ? object.loop_end : object.end_marker, pitch_coarse: object.pitch_coarse,
        pitch_fine: object.pitch_fine, gain: object.gain, warp_mode: object.warp_mode,
        start_time: object.start_time, end_time: object.end_time, sample_rate: FILE_RATE,
        sample_length: Math.round(object.seconds * FILE_RATE),
        warp_markers: JSON.stringify({ warp_markers: object.warp_markers || [
          { beat_time: 0, sample_time: 0 }, { beat_time: object.seconds * this.tempo / 60, sample_time: object.seconds },
        ] }),
      },
    }[object.kind];
    if (!values || !(name in values())) {
      throw new Error(`no property ${name} on ${livePath}`);
    }
    return [].concat(values()[name]);
  }

  getcount(object, name, livePath) {
    if (object.kind === "live_set" && name === "tracks") {
      return this.tracks.length;
    }
    if (object.kind === "live_set" && name === "scenes") {
      return this.scenes;
    }
    if (object.kind === "track" && name === "arrangement_clips") {
      return object.arrangement.length;
    }
    if (object.kind === "track" && name === "clip_slots") {
      return object.slots.length;
    }
    throw new Error(`getcount ${name} on ${livePath}`);
  }

  // Live's answer to a call it refuses: an error in the Max window, nothing changed.
  refuse(livePath, name, why) {
    this.posted.push(`${livePath}: ${name}: ${why}`);
    return undefined;
  }

  call(object, name, args, livePath) {
    if (object.kind === "live_app") {
      const versions = { get_major_version: 0, get_minor_version: 1, get_bugfix_version: 2 };
      return this.version[versions[name]];
    }
    this.calls.push({ path: livePath, name, args });
    if (object.kind === "live_set" && name === "create_scene") {
      this.scenes += 1;
      this.tracks.forEach((track) => this.fillSlots(track));
      return undefined;
    }
    if (object.kind === "live_set" && name === "create_audio_track") {
      const index = args[0] === -1 || args[0] === undefined ? this.tracks.length : args[0];
      this.insertTrack(index, { name: `${this.tracks.length + 1}-Audio` });
      return undefined;
    }
    if (name === "create_audio_clip" && (object.kind === "slot" || object.kind === "track")) {
      if (!this.versionAtLeast([12, 0, 5])) {
        throw new Error("create_audio_clip does not exist before Live 12.0.5");
      }
      const track = object.kind === "slot" ? object.track : object;
      const seconds = this.fileSeconds(args[0]);
      if (!track.audio) {
        return this.refuse(livePath, name, "not an audio track");
      }
      if (track.frozen) {
        return this.refuse(livePath, name, "the track is frozen");
      }
      if (seconds === null) {
        return this.refuse(livePath, name, `cannot find ${args[0]}`);
      }
      if (object.kind === "slot") {
        const scene = track.slotObjects.indexOf(object);
        if (track.slots[scene]) {
          return this.refuse(livePath, name, "the slot holds a clip");
        }
        track.slots[scene] = this.makeNewClip({ file: args[0] }, false);
        return undefined;
      }
      // Arrangement: a clip of the file's length at the song's tempo. Clips on a lane never overlap: what it covers
      // is cut away, as Live does: a clip wholly under it goes, one it overlaps keeps the part outside it, one it
      // lies inside is split in two.
      const start = Number(args[1]);
      const clip = this.makeNewClip({ file: args[0], start_time: start, end_time: start + seconds * this.tempo / 60 }, true);
      const covered = track.arrangement.filter((other) => other.start_time < clip.end_time && other.end_time > start);
      this.overwritten.push(...covered);
      const kept = track.arrangement.filter((other) => !covered.includes(other));
      for (const other of covered) {
        if (other.start_time < start) {
          kept.push(Object.assign(this.makeClip({ file: other.file, seconds: other.seconds }, true),
            { start_time: other.start_time, end_time: start }));
        }
        if (other.end_time > clip.end_time) {
          kept.push(Object.assign(this.makeClip({ file: other.file, seconds: other.seconds }, true),
            { start_time: clip.end_time, end_time: other.end_time }));
        }
      }
      track.arrangement = kept.concat([clip]);
      return undefined;
    }
    throw new Error(`no function ${name} on ${livePath}`);
  }

  set(object, name, value, livePath) {
    this.calls.push({ path: livePath, name: `set ${name}`, args: [value] });
    if (object.kind === "track" && name === "name") {
      object.name = String(value);
      return;
    }
    if (object.kind === "clip" && !object.midi && name === "warping") {
      // Deferred by Live (LOM, Clip.warping): applied after this event.
      this.deferred.push(() => this.applyWarping(object, value));
      return;
    }
    if (object.kind === "clip" && !object.midi && name === "looping") {
      if (!object.warping) {  // LOM: "Unwarped audio cannot be looped."
        this.posted.push(`${livePath}: set looping: unwarped audio cannot be looped`);
        return;
      }
      object.looping = Number(value) ? 1 : 0;
      return;
    }
    if (object.kind === "clip" && !object.midi && ["pitch_coarse", "pitch_fine", "gain", "warp_mode"].includes(name)) {
      const limits = { pitch_coarse: [-48, 48], pitch_fine: [-50, 50], gain: [0, 1], warp_mode: [0, 6] }[name];
      const number = Number(value);
      if (!(number >= limits[0] && number <= limits[1])) {
        this.posted.push(`${livePath}: set ${name}: ${value} is out of range`);
        return;
      }
      object[name] = name === "pitch_coarse" || name === "warp_mode" ? Math.round(number) : number;
      return;
    }
    if (object.kind === "clip" && !object.midi && ["loop_start", "loop_end"].includes(name) && !object.looping) {
      // Unlooped: the brace Live reports is the clip's start/end, and writing it moves them.
      return this.set(object, name === "loop_start" ? "start_marker" : "end_marker", value, livePath);
    }
    if (object.kind === "clip" && !object.midi && ["start_marker", "end_marker", "loop_start", "loop_end"].includes(name)) {
      const [low, high] = name.endsWith("_start") || name === "start_marker" ?
        [Number(value), object[name === "start_marker" ? "end_marker" : "loop_end"]] :
        [object[name === "end_marker" ? "start_marker" : "loop_start"], Number(value)];
      if (!(low < high)) {  // Live refuses a start at or after its end
        this.posted.push(`${livePath}: set ${name}: ${low} is not before ${high}`);
        return;
      }
      object[name] = Number(value);
      return;
    }
    throw new Error(`cannot set ${name} on ${livePath}`);
  }

  applyWarping(object, value) {
    // Warp on keeps the clip playing as it did at the set's tempo: its markers turn from seconds into beats.
    const on = Number(value) ? 1 : 0;
    {
      if (on !== object.warping) {  // (off again: back to seconds at the set's tempo)
        const beats = on ? this.tempo / 60 : 60 / this.tempo;
        for (const key of ["start_marker", "end_marker", "loop_start", "loop_end"]) {
          object[key] *= beats;
        }
        object.warp_markers = [{ beat_time: 0, sample_time: 0 }, { beat_time: object.seconds * beats, sample_time: object.seconds }];
      }
      object.warping = on;
      if (!on) {
        object.looping = 0;  // unwarped audio cannot loop
      }
    }
  }

  versionAtLeast(minimum) {
    for (let i = 0; i < minimum.length; i++) {
      if (this.version[i] !== minimum[i]) {
        return this.version[i] > minimum[i];
      }
    }
    return true;
  }
}

function makeLiveAPI(live) {
  return function LiveAPI(first, second) {
    const callback = typeof first === "function" ? first : null;
    const requested = callback ? second : first;
    const object = live.object(requested);
    const resolved = object ? (["live_app", "live_set", "live_set view"].includes(object.kind) ? object.kind :
      live.pathOf(object)) : null;
    this.unquotedpath = resolved || "";
    this.path = resolved ? `"${resolved}"` : "";
    this.id = object && object.id ? object.id : 0;
    const must = () => {
      if (!object) {
        throw new Error(`no object at ${requested}`);
      }
      return object;
    };
    this.get = (name) => live.get(must(), name, requested);
    this.getcount = (name) => live.getcount(must(), name, requested);
    this.call = (name, ...args) => live.call(must(), name, args, resolved || requested);
    this.set = (name, value) => live.set(must(), name, value, resolved || requested);
    let observed = null;
    Object.defineProperty(this, "property", {
      get: () => observed,
      set: (name) => {
        observed = name;
        if (callback && requested === "live_set view" && name === "detail_clip") {
          live.observers.push(callback);
          callback(["detail_clip"].concat(live.detailClip ? ["id", live.detailClip.id] : ["id", 0]));
        }
      },
    });
  };
}

// Max's Task: repeating tasks run when the test calls clock.tick(), scheduled ones on clock.runScheduled() (Live
// applies the warping writes it deferred first: they happened after the event that made them). settle() runs
// scheduled Tasks, and the ones they schedule, until none is left.
class Clock {
  constructor(live) {
    this.live = live;
    this.repeating = [];
    this.scheduled = [];
  }

  Task() {
    const clock = this;
    return function Task(fn, owner) {
      this.interval = 0;
      this.repeat = () => clock.repeating.push(() => fn.call(owner)) && undefined;
      const run = () => fn.call(owner);
      this.schedule = () => clock.scheduled.push(run) && undefined;
      this.cancel = () => {  // a scheduled run that has not happened is dropped, as Max's Task.cancel does
        clock.scheduled = clock.scheduled.filter((due) => due !== run);
      };
    };
  }

  tick() {
    this.repeating.forEach((fn) => fn());
  }

  runScheduled() {
    if (this.live) {
      this.live.applyDeferred();
    }
    const due = this.scheduled;
    this.scheduled = [];
    due.forEach((fn) => fn());
  }

  settle() {
    for (let round = 0; round < 50 && (this.scheduled.length || (this.live && this.live.deferred.length)); round++) {
      this.runScheduled();
    }
  }
}

// Loads the real device script with the fake Max around it; returns the script's global object plus probes.
// options.live: put this device into an existing set (two devices in one set).
function loadDevice(set, options) {
  const live = options && options.live ? options.live : new FakeLive(set);
  const clock = new Clock(live);
  const outlets = { 0: [], 1: [], 2: [], 3: [], 4: [], 5: [], 6: [] };
  const menu = { items: [], selected: 0 };  // the Recipe umenu (outlet 5): clear, append <item>, set <index>
  const kept = { value: null };             // the pattr that keeps the Recipe (outlet 6); it passes values on
  const sandbox = {
    autowatch: 1,
    inlets: 1,
    outlets: 1,
    messagename: "",
    LiveAPI: makeLiveAPI(live),
    Task: clock.Task(),
    post: () => undefined,
    outlet: (index, ...args) => {
      if (!(index in outlets)) {
        throw new Error(`outlet ${index} does not exist`);
      }
      const message = [].concat(...args);
      outlets[index].push(message);
      if (index === 5) {
        if (message[0] === "clear") {
          menu.items = [];
          menu.selected = 0;
        } else if (message[0] === "append") {
          menu.items.push(message.slice(1).join(" "));
        } else if (message[0] === "set") {
          menu.selected = message[1];
        } else {
          throw new Error(`umenu does not take ${message[0]}`);
        }
      } else if (index === 6) {
        kept.value = message;
        sandbox.messagename = "recipe_kept";
        sandbox.recipe_kept(...message);  // pattr -> prepend recipe_kept -> js, at once
      }
    },
  };
  vm.createContext(sandbox);
  vm.runInContext(fs.readFileSync(DEVICE_SCRIPT, "utf8"), sandbox, { filename: DEVICE_SCRIPT });
  const last = (index) => outlets[index][outlets[index].length - 1];
  return {
    device: sandbox,
    live,
    clock,
    sent: () => outlets[0],
    status: () => (last(1) ? last(1).slice(1).join(" ") : ""),
    files: () => (last(2) ? last(2).slice(1).join(" ") : ""),
    replyPort: () => { const port = outlets[3].filter((m) => m[0] === "port").pop(); return port ? port[1] : null; },
    triggerNotes: () => (last(4) ? last(4).slice(1) : null),
    recipeMenu: () => ({ items: menu.items.slice(), shown: menu.items[menu.selected] }),
    recipeMenuMessages: () => outlets[5].length,  // every clear, append and set the menu was sent
    kept: () => kept.value,
    // udpreceive -> prepend osc -> js: the address and arguments as Max atoms.
    reply: (address, ...args) => sandbox.osc(address, ...args),
    message: (name, ...args) => {
      sandbox.messagename = name;
      const handler = sandbox[name];
      if (typeof handler === "function" && !handler.local) {
        return handler(...args);
      }
      return sandbox.anything(...args);
    },
  };
}

module.exports = { loadDevice, FakeLive, wavSeconds };
