// A stand-in for what Max gives a `js` object inside Live: LiveAPI over a small Live set, Task, outlet, post.
// It follows the Live Object Model's paths, ids and return shapes (get returns an array), so the device's
// script runs unchanged. Build one with loadDevice(set) and drive it like the patcher does.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const DEVICE_SCRIPT = path.join(__dirname, "..", "..", "..", "max_patch", "dd_bridge.js");

// set: {version: [12, 0, 5], tracks: [{name, audio: true, slots: [null | {file} | {midi: true}]}]}
class FakeLive {
  constructor(set) {
    this.version = set.version || [12, 1, 0];
    this.tracks = set.tracks.map((track) => ({
      name: track.name,
      audio: track.audio !== false,
      slots: track.slots.slice(),
    }));
    this.scenes = Math.max(...this.tracks.map((track) => track.slots.length));
    this.tracks.forEach((track) => this.fillSlots(track));
    this.detailClip = null;  // "live_set tracks N clip_slots M clip"
    this.selectedTrack = 0;
    this.observers = [];
    this.calls = [];  // every call/set that changes the set: {path, name, args}
    this.ids = new Map();
    this.nextId = 1;
  }

  fillSlots(track) {
    while (track.slots.length < this.scenes) {
      track.slots.push(null);
    }
  }

  idOf(livePath) {
    if (!this.ids.has(livePath)) {
      this.ids.set(livePath, this.nextId++);
    }
    return this.ids.get(livePath);
  }

  pathOfId(id) {
    for (const [livePath, known] of this.ids) {
      if (known === Number(id)) {
        return livePath;
      }
    }
    return null;
  }

  // The producer clicks a clip (or an empty slot: clip is then null).
  select(track, scene) {
    this.selectedTrack = track;
    const slot = this.tracks[track].slots[scene];
    this.detailClip = slot ? `live_set tracks ${track} clip_slots ${scene} clip` : null;
    const value = this.detailClip ? ["id", this.idOf(this.detailClip)] : ["id", 0];
    this.observers.forEach((observer) => observer(["detail_clip"].concat(value)));
  }

  resolve(livePath) {
    const byId = /^id (\d+)$/.exec(livePath);
    if (byId) {
      return Number(byId[1]) === 0 ? null : this.pathOfId(byId[1]);
    }
    if (livePath === "live_set view selected_track") {
      return `live_set tracks ${this.selectedTrack}`;
    }
    return livePath;
  }

  object(livePath) {
    let match;
    if (livePath === "live_app" || livePath === "live_set" || livePath === "live_set view") {
      return { kind: livePath };
    }
    if ((match = /^live_set tracks (\d+)$/.exec(livePath)) && this.tracks[match[1]]) {
      return { kind: "track", track: this.tracks[match[1]] };
    }
    if ((match = /^live_set tracks (\d+) clip_slots (\d+)$/.exec(livePath)) && this.tracks[match[1]]) {
      const track = this.tracks[match[1]];
      return Number(match[2]) < track.slots.length ? { kind: "slot", track, scene: Number(match[2]) } : null;
    }
    if ((match = /^live_set tracks (\d+) clip_slots (\d+) clip$/.exec(livePath)) && this.tracks[match[1]]) {
      const clip = this.tracks[match[1]].slots[match[2]];
      return clip ? { kind: "clip", clip } : null;
    }
    return null;
  }

  get(livePath, name) {
    const target = this.object(livePath);
    if (!target) {
      throw new Error(`get ${name} on a path that does not exist: ${livePath}`);
    }
    const value = {
      track: () => ({ name: target.track && target.track.name, has_audio_input: target.track && target.track.audio ? 1 : 0, is_foldable: 0 }),
      slot: () => ({ has_clip: target.track && target.track.slots[target.scene] ? 1 : 0 }),
      clip: () => ({ is_audio_clip: target.clip && target.clip.midi ? 0 : 1, file_path: target.clip && target.clip.file ? target.clip.file : "" }),
    }[target.kind];
    if (!value || !(name in value())) {
      throw new Error(`no property ${name} on ${livePath}`);
    }
    return [value()[name]];
  }

  getcount(livePath, name) {
    if (livePath === "live_set" && name === "tracks") {
      return this.tracks.length;
    }
    if (livePath === "live_set" && name === "scenes") {
      return this.scenes;
    }
    throw new Error(`getcount ${name} on ${livePath}`);
  }

  call(livePath, name, args) {
    const target = this.object(livePath);
    if (livePath === "live_app") {
      const versions = { get_major_version: 0, get_minor_version: 1, get_bugfix_version: 2 };
      return this.version[versions[name]];
    }
    this.calls.push({ path: livePath, name, args });
    if (livePath === "live_set" && name === "create_scene") {
      this.scenes += 1;
      this.tracks.forEach((track) => this.fillSlots(track));
      return undefined;
    }
    if (livePath === "live_set" && name === "create_audio_track") {
      const track = { name: `${this.tracks.length + 1}-Audio`, audio: true, slots: [] };
      this.fillSlots(track);
      this.tracks.push(track);
      return undefined;
    }
    if (target && target.kind === "slot" && name === "create_audio_clip") {
      if (!this.versionAtLeast([12, 0, 5])) {
        throw new Error("create_audio_clip does not exist before Live 12.0.5");
      }
      if (!target.track.audio || target.track.slots[target.scene]) {
        throw new Error(`create_audio_clip on ${livePath}: not an empty audio clip slot`);
      }
      target.track.slots[target.scene] = { file: args[0] };
      return undefined;
    }
    throw new Error(`no function ${name} on ${livePath}`);
  }

  set(livePath, name, value) {
    const target = this.object(livePath);
    this.calls.push({ path: livePath, name: `set ${name}`, args: [value] });
    if (target && target.kind === "track" && name === "name") {
      target.track.name = String(value);
      return;
    }
    throw new Error(`cannot set ${name} on ${livePath}`);
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
    const resolved = live.resolve(requested);
    const exists = resolved !== null && live.object(resolved) !== null;
    this.unquotedpath = exists ? resolved : "";
    this.path = exists ? `"${resolved}"` : "";
    this.id = exists ? live.idOf(resolved) : 0;
    this.get = (name) => live.get(resolved, name);
    this.getcount = (name) => live.getcount(resolved, name);
    this.call = (name, ...args) => live.call(resolved, name, args);
    this.set = (name, value) => live.set(resolved, name, value);
    let observed = null;
    Object.defineProperty(this, "property", {
      get: () => observed,
      set: (name) => {
        observed = name;
        if (callback && requested === "live_set view" && name === "detail_clip") {
          live.observers.push(callback);
          const current = live.detailClip ? ["id", live.idOf(live.detailClip)] : ["id", 0];
          callback(["detail_clip"].concat(current));
        }
      },
    });
  };
}

// Max's Task: repeating tasks run when the test calls clock.tick(), scheduled ones on clock.runScheduled().
class Clock {
  constructor() {
    this.repeating = [];
    this.scheduled = [];
  }

  Task() {
    const clock = this;
    return function Task(fn, owner) {
      this.interval = 0;
      this.repeat = () => clock.repeating.push(() => fn.call(owner)) && undefined;
      this.schedule = () => clock.scheduled.push(() => fn.call(owner)) && undefined;
      this.cancel = () => undefined;
    };
  }

  tick() {
    this.repeating.forEach((fn) => fn());
  }

  runScheduled() {
    const due = this.scheduled;
    this.scheduled = [];
    due.forEach((fn) => fn());
  }
}

// Loads the real device script with the fake Max around it; returns the script's global object plus probes.
function loadDevice(set) {
  const live = new FakeLive(set);
  const clock = new Clock();
  const outlets = { 0: [], 1: [], 2: [] };
  const sandbox = {
    autowatch: 1,
    inlets: 1,
    outlets: 1,
    messagename: "",
    LiveAPI: makeLiveAPI(live),
    Task: clock.Task(),
    post: () => undefined,
    outlet: (index, ...args) => {
      const flat = [].concat(...args);
      outlets[index].push(flat);
    },
  };
  vm.createContext(sandbox);
  vm.runInContext(fs.readFileSync(DEVICE_SCRIPT, "utf8"), sandbox, { filename: DEVICE_SCRIPT });
  return {
    device: sandbox,
    live,
    clock,
    sent: () => outlets[0],
    status: () => { const last = outlets[1][outlets[1].length - 1]; return last ? last.slice(1).join(" ") : ""; },
    files: () => { const last = outlets[2][outlets[2].length - 1]; return last ? last.slice(1).join(" ") : ""; },
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

module.exports = { loadDevice };
