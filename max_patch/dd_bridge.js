// DD Bridge for Ableton Live: the device's logic, run by Max's `js` object (ES5).
// Inlet 0 takes the device's messages (init, noise, count, steps, target, note, vary, generate, interpolate)
// and the service's replies as `osc <address> <args...>` (udpreceive -> prepend osc).
// Outlet 0 feeds udpsend (the service), outlet 1 the status line, outlet 2 the list of new files.
"use strict";

autowatch = 0;
inlets = 1;
outlets = 3;

var OUT_OSC = 0;
var OUT_STATUS = 1;
var OUT_FILES = 2;

var PING_INTERVAL_MS = 2000;
var MISSED_PONGS_BEFORE_DOWN = 2;  // about 4 s without an answer means the service is not running
var FIRST_LIVE_WITH_CREATE_AUDIO_CLIP = [12, 0, 5];
var VARIATIONS_TRACK_NAME = "DD Variations";
var TARGET_BELOW_SOURCE = 0;
var TARGET_VARIATIONS_TRACK = 1;
var ACTIONS = { vary: "Vary", generate: "Generate", interpolate: "Interpolate" };

var settings = { noise: 0.5, count: 4, steps: 25, target: TARGET_BELOW_SOURCE };
var state = {
  started: false,
  connected: false,
  serviceVersion: "",
  awaitingPong: false,
  missedPongs: 0,
  nextRequest: 1,
  pending: {},        // request id -> {kind, anchor, progress}: renders
  acknowledged: {},   // request id -> what it was, for requests answered by /dd/ack (select, set)
  lastError: "",
  clips: [],          // the last two distinct audio clips selected: [{path, file}], newest last
  canCreateClips: false,
  liveVersion: ""
};
var selectionObserver = null;
var pingTask = null;

// ---- Entry points (messages into the js object) ----

function init() {
  if (state.started) {
    return;
  }
  state.started = true;
  var version = readLiveVersion();
  state.liveVersion = version.join(".");
  state.canCreateClips = versionAtLeast(version, FIRST_LIVE_WITH_CREATE_AUDIO_CLIP);
  selectionObserver = new LiveAPI(onDetailClipChanged, "live_set view");
  selectionObserver.property = "detail_clip";
  pingTask = new Task(tick, this);
  pingTask.interval = PING_INTERVAL_MS;
  pingTask.repeat();
  if (!state.canCreateClips) {
    outlet(OUT_FILES, "set", "Live " + state.liveVersion + ": new files are listed here to drag in from Live's browser " +
      "(Live 12.0.5 and later get them as clips)");
  }
  tick();
}

function noise(value) {
  settings.noise = clamp(value, 0, 1);
  sendSetting("noise", settings.noise);
}

function count(value) {
  settings.count = Math.max(1, Math.round(value));
  sendSetting("count", settings.count);
}

function steps(value) {
  settings.steps = Math.max(1, Math.round(value));
  sendSetting("steps", settings.steps);
}

function target(value) {
  settings.target = Math.round(value) === TARGET_VARIATIONS_TRACK ? TARGET_VARIATIONS_TRACK : TARGET_BELOW_SOURCE;
}

function note(pitch, velocity) {
  if (velocity > 0) {
    vary();
  }
}

function vary() {
  var clip = currentClip();
  if (!clip) {
    fail("Vary: select an audio clip first");
    return;
  }
  request("vary", [clip.file, settings.count, settings.noise, "steps=" + settings.steps], clip.path);
}

function generate() {
  var clip = currentClip();
  request("generate", [settings.count, "steps=" + settings.steps], clip ? clip.path : selectedTrackPath());
}

function interpolate() {
  if (state.clips.length < 2) {
    fail("Interpolate: select two audio clips, one after the other");
    return;
  }
  var a = state.clips[0];
  var b = state.clips[1];
  request("interpolate", [a.file, b.file, settings.count, "steps=" + settings.steps], b.path);
}

function osc(address) {
  var args = Array.prototype.slice.call(arguments, 1);
  var id = (typeof args[0] === "string" && args[0].charAt(0) === "#") ? args.shift() : null;
  var handler = REPLIES[address];
  if (handler) {
    handler(id, args);
  }
}

function anything() {
  fail("unknown message '" + messagename + "'");
}

// ---- Replies from the service ----

var REPLIES = {
  "/dd/pong": function (id, args) {
    state.awaitingPong = false;
    state.missedPongs = 0;
    state.serviceVersion = args.length ? String(args[0]) : "";
    if (!state.connected) {
      state.connected = true;
      sendCurrentSettings();
    }
    showStatus();
  },
  "/dd/progress": function (id, args) {
    var job = state.pending[id];
    if (job) {
      job.progress = Number(args[args.length - 1]);
      showStatus();
    }
  },
  "/dd/done": function (id, args) {
    var job = state.pending[id];
    if (!job) {
      return;  // a reply to another client of the same service
    }
    delete state.pending[id];
    var files = args.slice(1).map(String);
    state.lastError = "";
    // Changing the set is deferred out of the network callback: LiveAPI changes belong on the main thread's
    // low-priority queue, never inside a notification.
    var placeTask = new Task(function () { placeResults(job, files); });
    placeTask.schedule(0);
    showStatus();
  },
  "/dd/ack": function (id, args) {
    delete state.acknowledged[id];
  },
  "/dd/error": function (id, args) {
    if (state.acknowledged[id]) {
      var what = state.acknowledged[id];
      delete state.acknowledged[id];
      fail(what + ": " + args.slice(1).join(" "));
      return;
    }
    if (!state.pending[id]) {
      return;
    }
    var job = state.pending[id];
    delete state.pending[id];
    fail(ACTIONS[job.kind] + ": " + args.slice(1).join(" "));
  }
};

// ---- Selection ----

function onDetailClipChanged(args) {
  // Only reads here: the set is never changed from inside an observer callback.
  if (!args || args[0] !== "detail_clip") {
    return;
  }
  var clipId = args[args.length - 1];
  if (!clipId || Number(clipId) === 0) {
    return;
  }
  var clip = new LiveAPI("id " + clipId);
  if (Number(clip.get("is_audio_clip")) !== 1) {
    return;
  }
  var file = String(clip.get("file_path"));
  if (!file) {
    return;
  }
  rememberClip({ path: clip.unquotedpath, file: file });
  state.acknowledged[send("/dd/select", [file])] = "Select " + file.split(/[\\/]/).pop();
}

function rememberClip(clip) {
  var current = currentClip();
  if (current && current.path === clip.path && current.file === clip.file) {
    return;
  }
  state.clips.push(clip);
  if (state.clips.length > 2) {
    state.clips.shift();
  }
}

function currentClip() {
  return state.clips.length ? state.clips[state.clips.length - 1] : null;
}

function selectedTrackPath() {
  var track = new LiveAPI("live_set view selected_track");
  return track.id && Number(track.id) !== 0 ? track.unquotedpath : "";
}

// ---- Placing results ----

function placeResults(job, files) {
  if (!state.canCreateClips) {
    showFilesForDragAndDrop(files, "Live " + state.liveVersion + " cannot add clips from a device (12.0.5+ can): " +
      "drag these from the sample folder in Live's browser");
    return;
  }
  var slots = freeSlotsFor(job.anchor, files.length);
  if (!slots.length) {
    showFilesForDragAndDrop(files, "No audio track to put the clips on: drag these from Live's browser");
    return;
  }
  for (var i = 0; i < files.length; i++) {
    new LiveAPI(slots[i]).call("create_audio_clip", files[i]);
  }
  showFilesForDragAndDrop(files, files.length + " new clip" + (files.length === 1 ? "" : "s") + " on " + trackName(slots[0]));
}

function freeSlotsFor(anchor, wanted) {
  var place = parseClipPath(anchor);
  var trackIndex = place.track;
  var firstScene = place.scene === null ? 0 : place.scene + 1;
  if (settings.target === TARGET_VARIATIONS_TRACK || trackIndex === null || !isAudioTrack(trackIndex)) {
    trackIndex = variationsTrack();
    firstScene = place.scene === null ? 0 : place.scene;
  }
  return freeSlots(trackIndex, firstScene, wanted);
}

function parseClipPath(path) {
  var match = /^live_set tracks (\d+)(?: clip_slots (\d+))?/.exec(path || "");
  return {
    track: match ? Number(match[1]) : null,
    scene: match && match[2] !== undefined ? Number(match[2]) : null
  };
}

function isAudioTrack(index) {
  var track = new LiveAPI("live_set tracks " + index);
  return Number(track.get("has_audio_input")) === 1 && Number(track.get("is_foldable")) !== 1;
}

function variationsTrack() {
  var set = new LiveAPI("live_set");
  var tracks = set.getcount("tracks");
  for (var i = 0; i < tracks; i++) {
    if (String(new LiveAPI("live_set tracks " + i).get("name")) === VARIATIONS_TRACK_NAME) {
      return i;
    }
  }
  set.call("create_audio_track", -1);
  var created = new LiveAPI("live_set tracks " + tracks);
  created.set("name", VARIATIONS_TRACK_NAME);
  return tracks;
}

// The free slots below `firstScene` on the track; scenes are added at the end when the track runs out.
function freeSlots(trackIndex, firstScene, wanted) {
  var set = new LiveAPI("live_set");
  var found = [];
  var scene = firstScene;
  while (found.length < wanted) {
    if (scene >= set.getcount("scenes")) {
      set.call("create_scene", -1);
    }
    var slotPath = "live_set tracks " + trackIndex + " clip_slots " + scene;
    if (Number(new LiveAPI(slotPath).get("has_clip")) !== 1) {
      found.push(slotPath);
    }
    scene += 1;
  }
  return found;
}

function trackName(slotPath) {
  return String(new LiveAPI(slotPath.replace(/ clip_slots \d+$/, "")).get("name"));
}

function showFilesForDragAndDrop(files, headline) {
  var names = files.map(function (file) { return file.split(/[\\/]/).pop(); });
  outlet(OUT_FILES, "set", headline + ":\n" + names.join("\n") + "\n(" + folderOf(files[0]) + ")");
  showStatus();
}

function folderOf(file) {
  return String(file || "").replace(/[\\/][^\\/]*$/, "");
}

// ---- Service connection ----

function tick() {
  if (state.awaitingPong) {
    state.missedPongs += 1;
    if (state.missedPongs >= MISSED_PONGS_BEFORE_DOWN) {
      state.connected = false;
      dropPending();
    }
  }
  state.awaitingPong = true;
  send("/dd/ping", []);
  showStatus();
}

function dropPending() {
  for (var id in state.pending) {
    if (Object.prototype.hasOwnProperty.call(state.pending, id)) {
      state.lastError = ACTIONS[state.pending[id].kind] + ": the service stopped before answering";
    }
  }
  state.pending = {};
  state.acknowledged = {};
}

function request(kind, args, anchor) {
  var id = send("/dd/" + kind, args);
  state.pending[id] = { kind: kind, anchor: anchor, progress: 0 };
  state.lastError = "";
  showStatus();
}

function send(address, args) {
  var id = "#m" + state.nextRequest;
  state.nextRequest += 1;
  outlet(OUT_OSC, [address, id].concat(args));
  return id;
}

function sendSetting(key, value) {
  if (state.connected) {
    state.acknowledged[send("/dd/set", [key, value])] = "Setting " + key;
  }
  showStatus();
}

// The service's prefetch renders with its own settings: bring them in line with the device's dials.
function sendCurrentSettings() {
  sendSetting("noise", settings.noise);
  sendSetting("count", settings.count);
  sendSetting("steps", settings.steps);
}

// ---- Status line ----

function showStatus() {
  outlet(OUT_STATUS, "set", statusText());
}

function statusText() {
  if (!state.started) {
    return "starting";
  }
  var missing = state.missedPongs >= MISSED_PONGS_BEFORE_DOWN && !state.connected;
  var parts = [missing ? "service not running: start it with 'dd-bridge serve'" :
    state.connected ? "connected" + (state.serviceVersion ? " to dd-bridge " + state.serviceVersion : "") :
      "connecting to dd-bridge"];
  for (var id in state.pending) {
    if (Object.prototype.hasOwnProperty.call(state.pending, id)) {
      var job = state.pending[id];
      parts.push(ACTIONS[job.kind].toLowerCase() + " " + Math.round(100 * job.progress) + "%");
    }
  }
  if (state.lastError) {
    parts.push("error: " + state.lastError);
  }
  return parts.join(" | ");
}

function fail(message) {
  state.lastError = message;
  showStatus();
}

// ---- Small helpers ----

function readLiveVersion() {
  var app = new LiveAPI("live_app");
  return [
    Number(app.call("get_major_version")),
    Number(app.call("get_minor_version")),
    Number(app.call("get_bugfix_version"))
  ];
}

function versionAtLeast(version, minimum) {
  for (var i = 0; i < minimum.length; i++) {
    if (version[i] !== minimum[i]) {
      return version[i] > minimum[i];
    }
  }
  return true;
}

function clamp(value, low, high) {
  return Math.min(high, Math.max(low, Number(value)));
}

// Only the entry points above answer messages; everything else is private to the script.
onDetailClipChanged.local = 1;
rememberClip.local = 1;
currentClip.local = 1;
selectedTrackPath.local = 1;
placeResults.local = 1;
freeSlotsFor.local = 1;
parseClipPath.local = 1;
isAudioTrack.local = 1;
variationsTrack.local = 1;
freeSlots.local = 1;
trackName.local = 1;
showFilesForDragAndDrop.local = 1;
folderOf.local = 1;
tick.local = 1;
dropPending.local = 1;
request.local = 1;
send.local = 1;
sendSetting.local = 1;
sendCurrentSettings.local = 1;
showStatus.local = 1;
statusText.local = 1;
fail.local = 1;
readLiveVersion.local = 1;
versionAtLeast.local = 1;
clamp.local = 1;
