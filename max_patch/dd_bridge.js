// DD Bridge for Ableton Live: the device's logic, run by Max's `js` object (ES5).
// Inlet 0 takes the device's messages (init, noise, count, steps, target, trigger_low, trigger_high, audition, guide,
// class_menu, class_amount, recipe_menu, recipe_kept, save_recipe, note_menu, note, vary, generate, interpolate, extend,
// repaint, keep, cancel) and the service's replies as `osc <address> <args...>`
// (udpreceive -> prepend osc). Outlet 0 feeds udpsend (the service), outlet 1 the status line, outlet 2 the list of
// new files, outlet 3 the device's own udpreceive (`port N`), outlet 4 the midiselect that takes the trigger notes
// out of the MIDI stream, outlet 5 the Recipe menu (its items), outlet 6 the pattr that keeps its recipe in the set.
// One file: the frozen device carries exactly the scripts its js boxes name (build.py).
"use strict";

autowatch = 0;
inlets = 1;
outlets = 7;

var OUT_OSC = 0;
var OUT_STATUS = 1;
var OUT_FILES = 2;
var OUT_RECEIVE = 3;
var OUT_TRIGGER = 4;
var OUT_RECIPE_MENU = 5;
var OUT_RECIPE_KEPT = 6;

// How the service begins its answer to an audition press it held back but could not play (no audio output).
var NOT_HEARD = "not heard: ";
var PING_INTERVAL_MS = 2000;
var MISSED_PONGS_BEFORE_DOWN = 2;  // about 4 s without an answer means the service is not running
// Each device listens on a port of its own, registered with /dd/hello, so two devices never share replies. A port
// from the dynamic range; another is tried when the service stays silent (the port may be taken).
var REPLY_PORT_LOW = 49152;
var REPLY_PORT_COUNT = 16000;
var FIRST_LIVE_WITH_CREATE_AUDIO_CLIP = [12, 0, 5];
var VARIATIONS_TRACK_NAME = "DD Variations";
var TARGET_BELOW_SOURCE = 0;
var TARGET_VARIATIONS_TRACK = 1;
var ACTIONS = { vary: "Vary", generate: "Generate", interpolate: "Interpolate", extend: "Extend", repaint: "Repaint",
  keep: "Keep" };
var BEATS_PER_BAR = 4;  // the service's bars are 4/4 (docs/loops.md); Live's beats are quarter notes in any metre
// A loop's length in the file may differ from its beats at the set's tempo by this much (a brace on the grid of a
// file a hair off the tempo); the service takes such a loop round (docs/loops.md). More: the file has another tempo.
var LOOP_LENGTH_TOLERANCE = 0.01;
// A region this close to the file's edges is the whole file (a sample at 8 kHz is 0.000125 s).
var EDGE_SECONDS = 0.0005;
var SECONDS_PER_MINUTE = 60;
// The Character dials: guides of the service (docs/guidance.md), in the order they are sent. Their weights span
// -2..2 with 0 off, as the service's MIDI knobs on a guide do (GUIDE_KNOB in bridge/transports/midi.py).
var GUIDE_DIALS = ["brightness", "decay", "punch"];
var GUIDE_WEIGHT_LIMIT = 2;
// Turning a dial sends its value many times a second; each /dd/set guide drops the service's prefetch, so the
// dials' guides go out once this long after the first change, with every dial's value at that moment.
var GUIDE_SEND_DELAY_MS = 200;
// The Class menu: the names the service's `class` guide takes (`class=AMOUNT:NAME`, docs/guidance.md), in the menu's
// order after its first item, off. Its Amount dial spans the guide's 0..2 (0 off; 1 in a new set).
var CLASS_NAMES = ["kick", "snare", "hat", "tom", "cymbal", "clap", "perc"];
var CLASS_AMOUNT_LIMIT = 2;
// The Recipe menu: off, then every recipe the service takes by name (`/dd/recipes`: the producer's saved ones and
// the ones that ship), asked at every connection and after a save; until the service answers, the ones that ship
// (BUILT_IN in bridge/engine/guides/recipes.py). The service renders a recipe's guides with the dials' and Class's
// in one order of its own (class, then shape, then note). The menu's items follow the recipes folder, so the set
// keeps the recipe by name (a pattr, `recipe_kept`), never by its place in the menu.
var BUILT_IN_RECIPES = ["dark-kick", "ringing-tom"];
var RECIPE_OFF = "off";  // the menu's first item, and the name kept for none
// ... and asked again every this many keep-alives (30 s) while connected, so a recipe saved elsewhere (REAPER, the
// CLI, a file) turns up; the menu is rebuilt only when the list changed (never under an open menu for nothing).
var RECIPES_EVERY_TICKS = 15;
// The Note menu: off, then MIDI notes NOTE_LOWEST.. (NOTE_COUNT of them: 24-59, where kicks', toms' and 808s'
// fundamentals lie), named as Live names them (C3 = MIDI 60, so its A0 is the service's A1, 55 Hz). A note goes out as
// the service's `tuning` guide at weight 1 with the MIDI number as target (`tuning=1:33`): no names to confuse.
var NOTE_LOWEST = 24;
var NOTE_COUNT = 36;
// Noise, Count and Steps as the service has them (/dd/set): a turn sends dozens of values a second and each
// /dd/set noise or steps drops the service's prefetch, so they go out with the guides, once, only when changed.
var SERVICE_DIALS = ["noise", "count", "steps"];
// Live defers a warping write (LOM, Clip.warping): a result's loop, markers, pitch and gain are written in a later
// Task, once its warping reads back as wanted; it is read again this often, this many times, then given up.
var SHAPE_DELAY_MS = 80;
var SHAPE_TRIES = 6;
// A value written to a clip is read back; Live may round it this much.
var READBACK_TOLERANCE = 1e-4;

var settings = { noise: 0.5, count: 4, steps: 25, target: TARGET_BELOW_SOURCE, triggerLow: 0, triggerHigh: 0,
  audition: false, guides: { brightness: 0, decay: 0, punch: 0 }, drumClass: "", classAmount: 1,
  recipe: "", note: 0 };
var state = {
  started: false,
  connected: false,
  serviceVersion: "",
  serviceRun: "",      // what /dd/hello says of the service's run: another after a restart between two keep-alives
  instance: "",        // this device's part of every request id
  replyPort: 0,
  keepalive: null,     // the id of the /dd/hello waiting for its answer
  missedPongs: 0,
  nextRequest: 1,
  pending: {},        // request id -> {kind, answer, anchor, progress, seconds, loopBeats, markers, look}
  dialsSent: {},      // noise, count, steps as last sent to the service
  guidesDirty: false, // a Character control moved since the guides were last sent
  acknowledged: {},   // request id -> what it was, for requests answered by /dd/ack (select, set)
  cancelled: {},      // request ids dropped by Cancel: their late replies are ignored
  lastError: "",
  notice: "",
  lastHeard: null,    // audition: the press of this device heard last; Keep places its files as that press's
  clips: [],          // the last two distinct audio clips selected, newest last (see readClip)
  heldTriggers: {},   // trigger notes held down: a chord is one press
  canCreateClips: false,
  liveVersion: "",
  recipeSent: "",      // the recipe as the service has it from this device: "" for none (or the service's own)
  recipeNames: BUILT_IN_RECIPES.slice(),  // the Recipe menu's items after off, as shown
  recipesAsked: null,  // the id of the /dd/recipes waiting for its answer
  ticksSinceRecipes: 0,
  saving: {},          // request id -> the recipe name a /dd/save_recipe saves
  keeping: false       // the Recipe's name is on its way to the pattr that keeps it
};
var selectionObserver = null;
var pingTask = null;
var settingsTask = null;
var settingsQueued = false;  // settingsTask is scheduled: later dial moves ride on it
var scheduledTasks = [];     // one-off Tasks not yet run: kept referenced until they run (see later)

// ---- Entry points (messages into the js object) ----

function init() {
  if (state.started) {
    return;
  }
  state.started = true;
  var version = readLiveVersion();
  state.liveVersion = version.join(".");
  state.canCreateClips = versionAtLeast(version, FIRST_LIVE_WITH_CREATE_AUDIO_CLIP);
  state.instance = "m" + Number(new LiveAPI("this_device").id) + "." + Math.floor(Math.random() * 1e6).toString(36);
  listenOnNewPort();
  sendTriggerNotes();
  selectionObserver = new LiveAPI(onDetailClipChanged, "live_set view");
  selectionObserver.property = "detail_clip";
  pingTask = new Task(tick, this);
  pingTask.interval = PING_INTERVAL_MS;
  pingTask.repeat();
  settingsTask = new Task(sendQueuedSettings, this);
  showRecipeMenu();
  if (!state.canCreateClips) {
    outlet(OUT_FILES, "set", "Live " + state.liveVersion + ": new files are listed here to drag in from Live's browser " +
      "(Live 12.0.5 and later get them as clips)");
  }
  tick();
}

// Noise, Count and Steps: remembered at once (a press sends its own), sent to the service with the guides a moment
// later (GUIDE_SEND_DELAY_MS), only when changed, for its prefetch.
function noise(value) {
  settings.noise = clamp(value, 0, 1);
  queueSettings();
}

function count(value) {
  settings.count = Math.max(1, Math.round(value));
  queueSettings();
}

function steps(value) {
  settings.steps = Math.max(1, Math.round(value));
  queueSettings();
}

function target(value) {
  settings.target = Math.round(value) === TARGET_VARIATIONS_TRACK ? TARGET_VARIATIONS_TRACK : TARGET_BELOW_SOURCE;
}

// The trigger: the notes from Trigger Low to Trigger High (either order) start a render and are taken out of the
// MIDI stream; every other note passes on to the instrument. The default, C-2 alone, is never ordinary playing.
function trigger_low(value) {
  settings.triggerLow = Math.round(clamp(value, 0, 127));
  sendTriggerNotes();
}

function trigger_high(value) {
  settings.triggerHigh = Math.round(clamp(value, 0, 127));
  sendTriggerNotes();
}

// Audition (a toggle, saved with the set): the service plays each press's variations and holds them back until Keep.
// Like the dials, it reaches the service only once connected (and again at every connection), never at load.
function audition(value) {
  settings.audition = Number(value) !== 0;
  sendSetting("audition", settings.audition ? "on" : "off");
}

// A Character dial (`guide <name> <weight>`): remembered at once, sent with the other dials' guides a moment later
// (GUIDE_SEND_DELAY_MS). Like the other dials it reaches the service only once connected, never at load.
function guide(name, value) {
  if (!Object.prototype.hasOwnProperty.call(settings.guides, name)) {
    return;
  }
  settings.guides[name] = hundredths(clamp(value, -GUIDE_WEIGHT_LIMIT, GUIDE_WEIGHT_LIMIT));
  guidesChanged();
}

// The Class menu (its item's index; 0 is off) and its Amount: part of the same guide text as the dials, sent with it.
function class_menu(index) {
  settings.drumClass = menuItem(CLASS_NAMES, index);
  guidesChanged();
}

function class_amount(value) {
  settings.classAmount = hundredths(clamp(value, 0, CLASS_AMOUNT_LIMIT));
  guidesChanged();
}

// The Note menu (its item's index; 0 is off): the tuning guide, last in the same guide text.
function note_menu(index) {
  var item = Math.round(Number(index));
  settings.note = item >= 1 && item <= NOTE_COUNT ? NOTE_LOWEST + item - 1 : 0;
  guidesChanged();
}

// The Recipe menu (its item's index; 0 is off): sent with the Character guides, just before them, when it changed,
// and kept with the set by name.
function recipe_menu(index) {
  settings.recipe = menuItem(state.recipeNames, index);
  state.keeping = true;  // the pattr passes what it keeps on, back to recipe_kept: not a recall
  outlet(OUT_RECIPE_KEPT, settings.recipe || RECIPE_OFF);
  state.keeping = false;
  guidesChanged();
}

// The recipe the set kept (the pattr, as Live loads the set; and its echo of a pick, which changes nothing).
function recipe_kept() {
  var name = words(arguments);
  name = name === RECIPE_OFF ? "" : name;
  if (state.keeping || name === settings.recipe) {
    return;
  }
  settings.recipe = name;
  state.recipeNames = withKept(state.recipeNames);
  showRecipeMenu();
  guidesChanged();
}

// Save (or Return in the name field): the guides the service renders with now, the Character section's and the
// Recipe's, saved as a new recipe of the name typed (never over one of that name: the service refuses it).
function save_recipe() {
  var name = words(arguments);
  if (!name || name === "bang") {
    fail("Save recipe: type a name for it beside Save first");
    return;
  }
  if (!state.connected) {
    fail("Save recipe: the service is not running");
    return;
  }
  if (settingsQueued) {
    settingsTask.cancel();
    sendQueuedSettings();  // a turn not yet sent: the service saves what is heard now
  }
  state.saving[send("/dd/save_recipe", [name])] = name;
  state.lastError = "";
  state.notice = "saving recipe " + name;
  showStatus();
}

function note(pitch, velocity) {
  if (!isTrigger(pitch)) {
    return;  // midiselect passes it on; a late message from before a trigger change is not a press
  }
  if (!(velocity > 0)) {
    delete state.heldTriggers[pitch];
    return;
  }
  var chord = anyHeld();
  state.heldTriggers[pitch] = true;
  if (!chord) {
    vary();
  }
}

// Buttons (live.text in button mode) send their value; a recalled or released value (0) is not a press, and
// nothing is sent before the device is in the set (a saved set restores values while loading).
function vary(value) {
  var clip = pressed(arguments) ? selectedFor("Vary") : null;
  if (!clip) {
    return;
  }
  var loop = loopOptions(clip);
  if (loop.problem) {
    fail("Vary: " + loop.problem);
    return;
  }
  request("vary", [clip.file, settings.count, settings.noise, "steps=" + settings.steps]
    .concat(regionOptions(clip.region, ""), loop.options), anchorOf(clip), regionSeconds(clip),
  { loopBeats: loop.beats, look: lookFor(clip) });
}

// Extend: what the clip plays (its region, start=/end= in seconds of its file, or the whole file), then as much new
// material again (in bars at the set's tempo for a warped clip of a beat or more, else in seconds). The service
// continues the region from its end, so a clip that stops before its file's end is continued from where it stops.
function extend(value) {
  var clip = pressed(arguments) ? selectedFor("Extend") : null;
  if (!clip) {
    return;
  }
  var tempo = setTempo();
  // Under a beat (a warped one-shot) bars say nothing musical, and the service takes a beat at the least.
  var bars = clip.beats === null || clip.beats < 1 ? 0 : clip.beats / BEATS_PER_BAR;
  var length = bars > 0 ? ["bars=" + seconds(bars), "bpm=" + seconds(tempo)] : [seconds(regionSeconds(clip))];
  var added = bars > 0 ? bars * BEATS_PER_BAR * SECONDS_PER_MINUTE / tempo : regionSeconds(clip);
  var played = regionSeconds(clip);
  request("extend", [clip.file, settings.count].concat(length, ["steps=" + settings.steps],
    regionOptions(clip.region, "")), anchorOf(clip), played ? played + added : 0, { look: lookFor(clip) });
}

// Repaint: a part of the clip made new, or a variation of it at the Noise dial's value; the rest of what the clip
// plays is kept to the bit. Live shows a device no loop brace on a clip with Loop off (LOM: loop_start/loop_end are
// then the clip's start/end), and unwarped audio cannot loop, so the part is marked where Live does expose it:
// - an Arrangement clip (unwarped): the Arrangement's loop brace (live_set loop_start/loop_length, beats) over it;
// - a Session clip: Warp and Loop on, its loop brace over the part (beats, mapped to the file by its warp markers).
// The request names the part (start=/end=) and, when the clip plays part of its file, that region (clip_start=/
// clip_end=): the service then answers with the region alone. Each result is placed unwarped, with its markers over
// what the source plays (Loop off: nothing is written to its brace). A new file's warp markers would be Live's own
// guess, so a warped copy would not play the same beats; a warped Session source's results play at the file's speed.
function repaint(value) {
  var clip = pressed(arguments) ? selectedFor("Repaint") : null;
  if (!clip) {
    return;
  }
  var range = repaintRange(clip);
  if (range.problem) {
    fail("Repaint: " + range.problem);
    return;
  }
  var span = range.span;
  var part = { start: Math.max(range.part.start, span.start), end: Math.min(range.part.end, span.end) };
  if (!(part.end - part.start > EDGE_SECONDS)) {
    fail("Repaint: the loop brace is not over the clip: " + range.how);
    return;
  }
  if (part.start <= span.start + EDGE_SECONDS && part.end >= span.end - EDGE_SECONDS) {
    fail("Repaint: the loop brace covers the whole clip (Vary makes all of it new): " + range.how);
    return;
  }
  var length = clip.seconds > 0 ? clip.seconds : null;
  var whole = span.start < EDGE_SECONDS && (length === null || span.end > length - EDGE_SECONDS);
  request("repaint", [clip.file, settings.count, "start=" + seconds(part.start), "end=" + seconds(part.end),
    "noise=" + settings.noise, "steps=" + settings.steps].concat(whole ? [] :
    ["clip_start=" + seconds(span.start), "clip_end=" + seconds(span.end)]), anchorOf(clip), span.end - span.start,
  { markers: whole ? { start: span.start, end: span.end } : { start: 0, end: span.end - span.start },
    look: lookFor(clip) });
}

// What Repaint makes new and what the clip plays, in seconds of its file: {part, span, how}, or {problem} in words.
function repaintRange(clip) {
  var api = new LiveAPI("id " + clip.id);
  if (!api.id || Number(api.id) === 0) {
    return { problem: "the clip is gone: select one" };
  }
  var how;
  var markers = { start: Number(api.get("start_marker")), end: Number(api.get("end_marker")) };
  if (clip.arrangement) {
    how = "set the Arrangement's loop brace over the part of the clip to make new";
    if (clip.beats !== null) {
      return { problem: "in the Arrangement it works on unwarped clips (a new file is warped by Live's own guess): " +
        "turn Warp off, then " + how };
    }
    var set = new LiveAPI("live_set");
    if (Number(set.get("loop")) !== 1) {  // the brace is always somewhere (bars 1-5 at first): only Loop on marks
      return { problem: "turn the Arrangement's Loop switch on and " + how };
    }
    var tempo = Number(set.get("tempo"));
    var from = Number(set.get("loop_start"));
    var to = from + Number(set.get("loop_length"));
    var clipStart = Number(api.get("start_time"));
    var clipEnd = Number(api.get("end_time"));
    // Unwarped audio plays faster or slower with its Transpose and Detune (Live resamples it): a beat of the
    // timeline holds that many more or fewer seconds of the file.
    var rate = Math.pow(2, (Number(api.get("pitch_coarse")) + Number(api.get("pitch_fine")) / 100) / 12) || 1;
    var toSeconds = function (beat) {
      return markers.start + (beat - clipStart) * rate * SECONDS_PER_MINUTE / tempo;
    };
    return { how: how, span: { start: markers.start, end: Math.min(markers.end, toSeconds(clipEnd)) },
      part: { start: toSeconds(Math.max(from, clipStart)), end: toSeconds(Math.min(to, clipEnd)) } };
  }
  how = "in the Session turn the clip's Warp and Loop on and set its loop brace over the part to make new";
  if (clip.beats === null || !clip.looping) {
    return { problem: how + " (or drag it to the Arrangement and set the Arrangement's loop brace over the part)" };
  }
  var map = warpMap(api);
  if (!map) {
    return { problem: "the clip's warp markers cannot be read" };
  }
  var length = fileSeconds(api);
  var inFile = function (value) { return Math.max(0, length === null ? value : Math.min(value, length)); };
  return { how: how, span: { start: inFile(map(markers.start)), end: inFile(map(markers.end)) },
    part: { start: inFile(map(Number(api.get("loop_start")))), end: inFile(map(Number(api.get("loop_end")))) } };
}

// The source's Transpose, Detune and Gain (and Warp Mode, for results Live warps) for its results; pitch is left
// alone while the Note guide is on: the render is already tuned to it.
function lookFor(clip) {
  var look = clip.look;
  if (!look) {
    return null;
  }
  return { pitchCoarse: settings.note ? null : look.pitchCoarse, pitchFine: settings.note ? null : look.pitchFine,
    gain: look.gain, warpMode: look.warpMode };
}

// Audition: writes the last Count variations heard into the sample folder (/dd/keep N: a press's worth, as Vary
// would have added); they come back as /dd/done vary and are placed as the press heard last would have been (beside
// its clip, looping if it is a loop).
function keep(value) {
  if (!pressed(arguments)) {
    return;
  }
  var heard = state.lastHeard;
  var clip = currentClip();
  var anchor = heard ? heard.anchor : clip ? anchorOf(clip) : selectedTrackAnchor();
  request("keep", [settings.count], anchor, heard ? heard.seconds : 0,
    { answer: "vary", loopBeats: heard ? heard.loopBeats : 0, look: heard ? heard.look : null });
}

function generate(value) {
  if (!pressed(arguments)) {
    return;
  }
  var clip = currentClip();
  request("generate", [settings.count, "steps=" + settings.steps], clip ? anchorOf(clip) : selectedTrackAnchor(), 0);
}

function interpolate(value) {
  if (!pressed(arguments)) {
    return;
  }
  if (state.clips.length < 2) {
    fail("Interpolate: select two audio clips, one after the other");
    return;
  }
  var a = refreshed(state.clips[0]);
  var b = refreshed(state.clips[1]);
  request("interpolate", [a.file, b.file, settings.count, "steps=" + settings.steps]
    .concat(regionOptions(a.region, ""), regionOptions(b.region, "b_")), anchorOf(b), regionSeconds(a));
}

// Stops this device's renders: the service drops queued and prefetch work (/dd/cancel); late replies are ignored.
function cancel(value) {
  if (!pressed(arguments)) {
    return;
  }
  var dropped = 0;
  for (var id in state.pending) {
    if (Object.prototype.hasOwnProperty.call(state.pending, id)) {
      state.cancelled[id] = true;
      dropped += 1;
    }
  }
  state.pending = {};
  send("/dd/cancel", []);
  state.lastError = "";
  state.notice = dropped ? "cancelled " + dropped + " render" + (dropped === 1 ? "" : "s") : "nothing to cancel";
  showStatus();
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
  "/dd/hello": function (id, args) {
    if (!id || id !== state.keepalive) {
      return;  // another device's keep-alive, or a stray packet
    }
    state.keepalive = null;
    state.missedPongs = 0;
    state.serviceVersion = args.length ? String(args[0]) : "";
    var run = args.length > 1 ? String(args[1]) : "";
    var restarted = run !== "" && state.serviceRun !== "" && run !== state.serviceRun;
    state.serviceRun = run;
    if (restarted) {
      // Restarted between two keep-alives: this run never heard what is pending nor the device's settings. (A
      // render waiting in a long queue hears nothing for minutes and is still coming: no time limit stands in.)
      dropPending("the service restarted before answering: press again");
      state.connected = false;
    }
    if (!state.connected) {
      state.connected = true;
      sendCurrentSettings();
      askRecipes();
    }
    showStatus();
  },
  "/dd/progress": function (id, args) {
    var job = state.pending[id];
    var fraction = Number(args[args.length - 1]);
    if (job && isFinite(fraction)) {
      job.progress = clamp(fraction, 0, 1);
      showStatus();
    }
  },
  "/dd/done": function (id, args) {
    var job = state.pending[id];
    var files = args.slice(1).map(String).filter(function (file) { return file !== ""; });
    if (!job || String(args[0]) !== job.answer || !files.length) {
      return;  // a reply to another client of the same service, or one that names no file: the request waits on
    }
    delete state.pending[id];
    state.lastError = "";
    // Changing the set is deferred out of the network callback: LiveAPI changes belong on the main thread's
    // low-priority queue, never inside a notification.
    later(function () { placeResults(job, files); }, 0);
    showStatus();
  },
  "/dd/recipes": function (id, args) {
    if (!id || id !== state.recipesAsked) {
      return;  // another client's list
    }
    state.recipesAsked = null;
    var names = withKept(args.map(String).filter(function (name) { return name !== "" && name !== RECIPE_OFF; }));
    if (names.join("\n") !== state.recipeNames.join("\n")) {
      state.recipeNames = names;
      showRecipeMenu();
    }
  },
  "/dd/ack": function (id, args) {
    if (state.saving[id] !== undefined) {
      var name = state.saving[id];
      delete state.saving[id];
      state.notice = "saved recipe " + name + ": in the Recipe menu";
      showStatus();
      askRecipes();
      return;
    }
    var job = state.pending[id];
    if (job && job.kind === "vary" && String(args[0]) === "vary" && String(args[1]) === "heard") {
      // Audition: the press is answered by ear, its variations held back until Keep.
      delete state.pending[id];
      state.lastHeard = job;
      state.lastError = "";
      state.notice = "heard " + Number(args[2]) + ", Keep to add";
      showStatus();
      return;
    }
    delete state.acknowledged[id];
  },
  "/dd/error": function (id, args) {
    if (state.saving[id] !== undefined) {
      delete state.saving[id];
      state.notice = "";
      fail("Save recipe: " + args.slice(1).join(" "));
      return;
    }
    if (id && id === state.recipesAsked) {
      state.recipesAsked = null;  // an older service without /dd/recipes: the menu keeps the ones that ship
      return;
    }
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
    if (job.kind === "vary" && String(args[1]).indexOf(NOT_HEARD) === 0) {
      // Audition with no audio output (or one just lost): the press was held back all the same, so Keep places
      // its files as this press's, not beside the press heard before it.
      state.lastHeard = job;
    }
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
  var clip = readClip(new LiveAPI("id " + clipId));
  if (!clip) {
    return;
  }
  if (!rememberClip(clip)) {
    return;
  }
  // A looping clip is selected as the loop its presses make, so the service renders those loops ahead.
  var looped = loopOptions(clip).options || [];
  state.acknowledged[send("/dd/select", [clip.file].concat(regionOptions(clip.region, ""), looped))] =
    "Select " + clip.file.split(/[\\/]/).pop();
}

// What the device keeps of an audio clip: its id and its track's id (so results find it after tracks move), its
// file and the part of the file it plays, and where it sits. null for MIDI clips and clips without a file.
function readClip(api) {
  if (!api.id || Number(api.id) === 0 || Number(api.get("is_audio_clip")) !== 1) {
    return null;
  }
  var file = String(api.get("file_path"));
  if (!file) {
    return null;
  }
  var place = parseClipPath(api.unquotedpath);
  var arrangement = Number(api.get("is_arrangement_clip")) === 1;  // take-lane clips (Live 12.2) too
  var span = playedSpan(api);
  var region = clipRegion(api, span);
  if (region && region.problem) {
    state.notice = region.problem;
    region = null;
  }
  return {
    id: Number(api.id),
    trackId: place.track === null ? 0 : Number(new LiveAPI("live_set tracks " + place.track).id),
    file: file,
    region: region,
    seconds: fileSeconds(api) || 0,
    beats: span.warped ? span.to - span.from : null,  // only a warped clip's span is in beats
    looping: span.looping,
    // Transpose, Detune, Gain and (warped) Warp Mode: what its results are given (lookFor).
    look: { pitchCoarse: Number(api.get("pitch_coarse")), pitchFine: Number(api.get("pitch_fine")),
      gain: Number(api.get("gain")), warpMode: span.warped ? Number(api.get("warp_mode")) : null },
    arrangement: arrangement
  };
}

// What a clip plays, in its own units (beats when warped, seconds when not): its loop when it loops, else from its
// start to its end marker.
function playedSpan(clip) {
  var looping = Number(clip.get("looping")) === 1;
  return {
    looping: looping,
    warped: Number(clip.get("warping")) === 1,
    from: Number(clip.get(looping ? "loop_start" : "start_marker")),
    to: Number(clip.get(looping ? "loop_end" : "end_marker"))
  };
}

// The part of its file a clip plays, in seconds of the file: {start, end}, or null for the whole file.
// Markers and loop are in beats for warped clips (mapped to the file through the warp markers) and in seconds
// for unwarped ones (which cannot loop). A looping clip plays its loop; any other from start to end marker.
function clipRegion(clip, span) {
  var from = span.from;
  var to = span.to;
  var toSeconds = function (seconds) { return seconds; };
  if (span.warped) {
    toSeconds = warpMap(clip);
    if (!toSeconds) {
      return { problem: "the clip's warp markers cannot be read: its whole file is used" };
    }
  }
  var start = Math.max(0, toSeconds(from));
  var end = toSeconds(to);
  var length = fileSeconds(clip);
  if (length !== null) {
    end = Math.min(end, length);
  }
  if (!(end > start)) {
    return null;
  }
  if (start < EDGE_SECONDS && length !== null && end > length - EDGE_SECONDS) {
    return null;
  }
  return { start: start, end: end };
}

// Beats of a warped clip -> seconds of its file, through its warp markers (Clip.warp_markers, Live 11): linear
// between markers and, outside them, along the nearest pair. null when fewer than two markers can be read.
function warpMap(clip) {
  var markers;
  try {
    markers = JSON.parse([].concat(clip.get("warp_markers")).join(" ")).warp_markers;
  } catch (error) {
    return null;
  }
  if (!markers || markers.length < 2) {
    return null;
  }
  markers = markers.slice().sort(function (a, b) { return a.beat_time - b.beat_time; });
  return function (beats) {
    var i = 0;
    while (i < markers.length - 2 && beats > markers[i + 1].beat_time) {
      i += 1;
    }
    var a = markers[i];
    var b = markers[i + 1];
    var span = b.beat_time - a.beat_time;
    return span > 0 ? a.sample_time + (beats - a.beat_time) * (b.sample_time - a.sample_time) / span : a.sample_time;
  };
}

// The file's length in seconds (Clip.sample_length / sample_rate, Live 11.0.5), or null when Live does not say.
function fileSeconds(clip) {
  var frames = Number(clip.get("sample_length"));
  var rate = Number(clip.get("sample_rate"));
  return frames > 0 && rate > 0 ? frames / rate : null;
}

// A looping warped clip's variations are loops of its loop's length in beats at the set's tempo: loop=on bars=
// bpm= (the region is the loop, sent as start=/end=). {options, beats} or {problem} when the loop's part of the file
// is not that long: the file is at another tempo, and a loop at the set's tempo would cut it or fall short.
function loopOptions(clip) {
  if (!clip.looping || clip.beats === null || !(clip.beats > 0)) {
    return { options: [], beats: 0 };
  }
  var tempo = setTempo();
  var wanted = clip.beats * SECONDS_PER_MINUTE / tempo;
  var has = regionSeconds(clip);
  if (has > 0 && Math.abs(has - wanted) > LOOP_LENGTH_TOLERANCE * wanted) {
    return { problem: "the loop is " + seconds(has) + " s of its file, but its " + seconds(clip.beats) +
      " beats at the set's " + seconds(tempo) + " BPM are " + seconds(wanted) + " s: loops are made at the set's " +
      "tempo, so set the tempo to the file's or turn the clip's Loop off" };
  }
  return { options: ["loop=on", "bars=" + seconds(clip.beats / BEATS_PER_BAR), "bpm=" + seconds(tempo)],
    beats: clip.beats };
}

function setTempo() {
  return Number(new LiveAPI("live_set").get("tempo"));
}

// The region as request options: start= and end= (or b_start= and b_end= for interpolate's second clip).
function regionOptions(region, prefix) {
  if (!region) {
    return [];
  }
  return [prefix + "start=" + seconds(region.start), prefix + "end=" + seconds(region.end)];
}

function seconds(value) {
  return String(Math.round(value * 1e6) / 1e6);
}

// Seconds of audio a request's outputs last, for laying them out in the Arrangement before they exist: the
// region's, else the whole file's; 0 when Live does not say.
function regionSeconds(clip) {
  return clip.region ? clip.region.end - clip.region.start : clip.seconds;
}

// True when the clip is new: another clip, or the same clip playing another part of its file.
function rememberClip(clip) {
  var current = currentClip();
  if (current && current.id === clip.id && current.file === clip.file && sameRegion(current.region, clip.region)) {
    return false;
  }
  if (current && current.id === clip.id) {
    state.clips.pop();
  }
  state.clips.push(clip);
  if (state.clips.length > 2) {
    state.clips.shift();
  }
  return true;
}

function sameRegion(a, b) {
  return a === b || (a !== null && b !== null && a.start === b.start && a.end === b.end);
}

// The clip as it is now: markers moved since it was selected (Live tells no one) change its region. A clip
// that is gone is used as it was; its file is still there.
function refreshed(clip) {
  if (!clip) {
    return null;
  }
  var now = readClip(new LiveAPI("id " + clip.id));
  return now && now.file === clip.file ? now : clip;
}

// The selected clip as it is now, for a press of `action`; null (and the status says so) when there is none.
function selectedFor(action) {
  var clip = refreshed(currentClip());
  if (!clip) {
    fail(action + ": select an audio clip first");
  }
  return clip;
}

function currentClip() {
  return state.clips.length ? state.clips[state.clips.length - 1] : null;
}

function anchorOf(clip) {
  return { clipId: clip.id, trackId: clip.trackId, arrangement: clip.arrangement };
}

function selectedTrackAnchor() {
  var track = new LiveAPI("live_set view selected_track");
  return { clipId: 0, trackId: track.id ? Number(track.id) : 0, arrangement: false };
}

// ---- Placing results ----

function placeResults(job, files) {
  if (!state.canCreateClips) {
    showFilesForDragAndDrop(files, "Live " + state.liveVersion + " cannot add clips from a device (12.0.5+ can): " +
      "drag these from the sample folder in Live's browser");
    return;
  }
  var place = resolveAnchor(job.anchor);
  var trackIndex = place.track;
  if (settings.target === TARGET_VARIATIONS_TRACK || trackIndex === null || !isAudioTrack(trackIndex)) {
    trackIndex = variationsTrack();
  }
  var plan = { kind: job.kind, warping: job.loopBeats ? 1 : job.markers ? 0 : null, loopBeats: job.loopBeats,
    markers: job.markers, look: job.look, clips: [], tries: 0, missed: {}, short: [] };
  var shape = function (clip) {
    // Only warping now, and only when it differs: Live applies it later, so the rest waits for it (finishShaping).
    if (plan.warping !== null && Number(clip.get("warping")) !== plan.warping) {
      clip.set("warping", plan.warping);
    }
    plan.clips.push({ id: Number(clip.id), name: String(clip.get("file_path")).split(/[\\/]/).pop() });
  };
  var report = { covered: 0 };
  var placed = place.arrangement ?
    placeInArrangement(trackIndex, trackIndex === place.track ? place.end : place.start, files, job.seconds, shape,
      report) :
    placeInSession(trackIndex, trackIndex === place.track ? place.scene + 1 : Math.max(0, place.scene), files, shape);
  if (plan.clips.length) {
    later(function () { finishShaping(plan); }, SHAPE_DELAY_MS);
  }
  var name = String(new LiveAPI("live_set tracks " + trackIndex).get("name"));
  var where = (place.arrangement ? " in the Arrangement" : "") + " on " + name;
  var refused = files.length - placed;
  if (report.covered) {
    state.notice = report.covered + " new clip" + (report.covered === 1 ? "" : "s") + where + " came out longer " +
      "than " + (report.covered === 1 ? "its" : "their") + " gap and cover" + (report.covered === 1 ? "s" : "") +
      " part of the next clip (Undo, a step at a time, brings it back); the rest went after the track's last clip";
  }
  if (!refused) {
    showFilesForDragAndDrop(files, placed + " new clip" + (placed === 1 ? "" : "s") + where);
    return;
  }
  showFilesForDragAndDrop(files, "Live refused " + refused + " of " + files.length + " clips" + where +
    " (a frozen track, or a file that is gone): drag these from Live's browser");
  fail(ACTIONS[job.kind] + ": Live refused " + refused + " clip" + (refused === 1 ? "" : "s") + where);
}

// The second step of shaping the results, once Live has applied their warping (read back, asked again a few times):
// Transpose, Detune, Gain, Warp Mode, the loop or the markers, each read back. What Live did not take is said on
// the status line.
function finishShaping(plan) {
  var waiting = [];
  plan.clips.forEach(function (entry) {
    var clip = new LiveAPI("id " + entry.id);
    if (!clip.id || Number(clip.id) === 0) {
      return;  // deleted meanwhile
    }
    var warped = Number(clip.get("warping"));
    if (plan.warping !== null && warped !== plan.warping) {
      if (plan.tries < SHAPE_TRIES) {
        waiting.push(entry);
      } else {
        missedOn(plan, entry, "Warp " + (plan.warping ? "on" : "off"));
      }
      return;
    }
    shapeClip(clip, plan, warped === 1).forEach(function (what) { missedOn(plan, entry, what); });
  });
  if (waiting.length) {
    plan.clips = waiting;
    plan.tries += 1;
    later(function () { finishShaping(plan); }, SHAPE_DELAY_MS);
    return;
  }
  var missed = Object.keys(plan.missed);
  if (missed.length) {
    var names = [];
    missed.forEach(function (what) {
      plan.missed[what].forEach(function (name) {
        if (names.indexOf(name) < 0) {
          names.push(name);
        }
      });
    });
    fail(ACTIONS[plan.kind] + ": placed, but Live did not take " + missed.join(", ") + " on " + names.length +
      " clip" + (names.length === 1 ? "" : "s") + " (" + names.join(", ") + ")");
  }
}

function missedOn(plan, entry, what) {
  plan.missed[what] = (plan.missed[what] || []).concat([entry.name]);
}

// Writes what a result takes from its source and its request; returns what Live did not take (read back).
function shapeClip(clip, plan, warped) {
  var missed = [];
  var put = function (name, value, label) {
    if (!sameValue(clip.get(name), value)) {
      clip.set(name, value);
      if (!sameValue(clip.get(name), value)) {
        missed.push(label);
      }
    }
  };
  var look = plan.look;
  if (look) {
    if (look.pitchCoarse !== null && isFinite(look.pitchCoarse)) {
      put("pitch_coarse", look.pitchCoarse, "Transpose");
      put("pitch_fine", look.pitchFine, "Detune");
    }
    if (isFinite(look.gain)) {
      put("gain", look.gain, "Gain");
    }
    if (look.warpMode !== null && isFinite(look.warpMode) && warped) {
      put("warp_mode", look.warpMode, "Warp Mode");
    }
  }
  if (plan.loopBeats) {
    // A loop's file is exactly its beats at the set's tempo: warped, it plays as it is, looping over those beats.
    put("looping", 1, "Loop");
    if (missed.indexOf("Loop") < 0) {  // unlooped, loop_start/loop_end would move the clip's start and end
      putSpan(clip, "loop_start", "loop_end", 0, plan.loopBeats, "the loop", missed);
    }
  }
  if (plan.markers) {
    // A repaint, unwarped: its markers (seconds) over what its source plays.
    putSpan(clip, "start_marker", "end_marker", plan.markers.start, plan.markers.end, "the start/end markers", missed);
  }
  return missed;
}

// A start/end pair, written so Live never sees an end before its start, then read back.
function putSpan(clip, startName, endName, start, end, label, missed) {
  if (start < Number(clip.get(endName))) {
    clip.set(startName, start);
    clip.set(endName, end);
  } else {
    clip.set(endName, end);
    clip.set(startName, start);
  }
  if (!sameValue(clip.get(startName), start) || !sameValue(clip.get(endName), end)) {
    missed.push(label);
  }
}

function sameValue(got, wanted) {
  return Math.abs(Number([].concat(got)[0]) - wanted) <= READBACK_TOLERANCE;
}

// Where the anchor is now: its clip's track and slot (or Arrangement time), found by id, so inserted or moved
// tracks do not matter. A deleted clip falls back to its track; a deleted track to no track (null).
function resolveAnchor(anchor) {
  var clip = anchor.clipId ? new LiveAPI("id " + anchor.clipId) : null;
  if (clip && clip.id && Number(clip.id) !== 0) {
    var place = parseClipPath(clip.unquotedpath);
    place.arrangement = Number(clip.get("is_arrangement_clip")) === 1;
    if (place.arrangement) {
      place.scene = -1;
      place.start = Number(clip.get("start_time"));
      place.end = Number(clip.get("end_time"));
    }
    return place;
  }
  var track = anchor.trackId ? new LiveAPI("id " + anchor.trackId) : null;
  var found = track && track.id && Number(track.id) !== 0 ? parseClipPath(track.unquotedpath) : { track: null };
  return { track: found.track, scene: -1, arrangement: anchor.arrangement, start: 0, end: 0 };
}

// A clip's (or track's) path: its track and Session slot. Arrangement clips (arrangement_clips, and take lanes'
// `take_lanes M arrangement_clips K`, Live 12.2) are told by Clip.is_arrangement_clip, read by the callers.
function parseClipPath(path) {
  var match = /^live_set tracks (\d+)(?: (clip_slots|arrangement_clips|take_lanes \d+ (?:arrangement_)?clips) (\d+))?/
    .exec(path || "");
  return {
    track: match ? Number(match[1]) : null,
    scene: match && match[2] === "clip_slots" ? Number(match[3]) : -1,
    arrangement: !!(match && match[2] && match[2] !== "clip_slots"),
    start: 0,
    end: 0
  };
}

function isAudioTrack(index) {
  var track = new LiveAPI("live_set tracks " + index);
  return Number(track.get("has_audio_input")) === 1 && Number(track.get("is_foldable")) !== 1;
}

// The audio track named "DD Variations" (a MIDI or group track of that name is not it), made once.
function variationsTrack() {
  var set = new LiveAPI("live_set");
  var tracks = set.getcount("tracks");
  for (var i = 0; i < tracks; i++) {
    if (String(new LiveAPI("live_set tracks " + i).get("name")) === VARIATIONS_TRACK_NAME && isAudioTrack(i)) {
      return i;
    }
  }
  set.call("create_audio_track", -1);
  var created = new LiveAPI("live_set tracks " + tracks);
  created.set("name", VARIATIONS_TRACK_NAME);
  return tracks;
}

// Session: each file into the next free slot from `firstScene` down (scenes are added at the end when the track
// runs out), then `shape(clip)`. Returns how many clips Live really made: a refused one leaves its slot empty.
function placeInSession(trackIndex, firstScene, files, shape) {
  var placed = 0;
  var slots = freeSlots(trackIndex, firstScene, files.length);
  for (var i = 0; i < files.length; i++) {
    var slot = new LiveAPI(slots[i]);
    slot.call("create_audio_clip", files[i]);
    var clip = new LiveAPI(slots[i] + " clip");
    if (Number(slot.get("has_clip")) === 1 && String(clip.get("file_path")) === files[i]) {
      shape(clip);
      placed += 1;
    }
  }
  return placed;
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

// Arrangement: each file as a clip (Track.create_audio_clip(path, beats)) one after another from `from`, each in
// the first gap long enough for it (after every clip that follows, when its length is not known), so no clip of
// the producer's is covered; then `shape(clip)`. The track's clips are read once (their spans kept up to date as
// clips are made); the new clip is the one whose id was not there before. A clip Live made longer than its gap
// (Auto-Warp at another tempo) is counted in report.covered, and the rest go after the track's last clip.
// Returns how many Live really made.
function placeInArrangement(trackIndex, from, files, seconds, shape, report) {
  var track = new LiveAPI("live_set tracks " + trackIndex);
  var beats = seconds > 0 ? seconds * setTempo() / SECONDS_PER_MINUTE : Infinity;
  var spans = clipSpans(track);
  var placed = 0;
  var position = from;
  for (var i = 0; i < files.length; i++) {
    position = firstGap(spans, position, beats);
    var before = spans.map(function (span) { return span.id; });
    track.call("create_audio_clip", files[i], position);
    var made = newClip(track, before, files[i]);
    if (!made) {
      continue;
    }
    var span = { id: Number(made.id), start: Number(made.get("start_time")), end: Number(made.get("end_time")) };
    var covers = spans.filter(function (other) {
      return other.start < span.end - 1e-6 && other.end > span.start + 1e-6;
    });
    // Live cuts away what the new clip covers and keeps the rest of a clip it overlaps (or splits one it lies
    // inside): read the track again then, so the next result never lands on what is left of it.
    spans = covers.length ? clipSpans(track) : spans.concat([span]);
    shape(made);
    placed += 1;
    position = span.end;
    if (covers.length) {
      report.covered += 1;
      spans.forEach(function (other) { position = Math.max(position, other.end); });
    }
  }
  return placed;
}

// A track's Arrangement clips as {id, start, end} (beats).
function clipSpans(track) {
  return clipIds(track).map(function (id) {
    var clip = new LiveAPI("id " + id);
    return { id: id, start: Number(clip.get("start_time")), end: Number(clip.get("end_time")) };
  });
}

// The ids of a track's Arrangement clips (Track.arrangement_clips reads as `id 4 id 9 ...`).
function clipIds(track) {
  var ids = [];
  var atoms = [].concat(track.get("arrangement_clips"));
  for (var i = 0; i + 1 < atoms.length; i += 2) {
    if (String(atoms[i]) === "id" && Number(atoms[i + 1]) > 0) {
      ids.push(Number(atoms[i + 1]));
    }
  }
  return ids;
}

// The clip of `file` that create_audio_clip added (an id not in `before`), or null when Live refused it.
function newClip(track, before, file) {
  var ids = clipIds(track);
  for (var i = 0; i < ids.length; i++) {
    if (before.indexOf(ids[i]) < 0) {
      var clip = new LiveAPI("id " + ids[i]);
      if (String(clip.get("file_path")) === file) {
        return clip;
      }
    }
  }
  return null;
}

function firstGap(spans, position, beats) {
  var moved = true;
  while (moved) {
    moved = false;
    for (var i = 0; i < spans.length; i++) {
      if (spans[i].start < position + Math.max(beats, 1e-6) && spans[i].end > position) {
        position = spans[i].end;
        moved = true;
      }
    }
  }
  return position;
}

function showFilesForDragAndDrop(files, headline) {
  var names = files.map(function (file) { return file.split(/[\\/]/).pop(); });
  outlet(OUT_FILES, "set", headline + ":\n" + names.join("\n") + "\n(" + folderOf(files[0]) + ")");
  showStatus();
}

function folderOf(file) {
  return String(file || "").replace(/[\\/][^\\/]*$/, "");
}

// ---- The trigger ----

function isTrigger(pitch) {
  var low = Math.min(settings.triggerLow, settings.triggerHigh);
  var high = Math.max(settings.triggerLow, settings.triggerHigh);
  return pitch >= low && pitch <= high;
}

function anyHeld() {
  for (var pitch in state.heldTriggers) {
    if (Object.prototype.hasOwnProperty.call(state.heldTriggers, pitch)) {
      return true;
    }
  }
  return false;
}

// midiselect's `note` attribute: the notes it takes out of the stream for the device; the rest pass through.
function sendTriggerNotes() {
  var low = Math.min(settings.triggerLow, settings.triggerHigh);
  var high = Math.max(settings.triggerLow, settings.triggerHigh);
  var notes = [];
  for (var pitch = low; pitch <= high; pitch++) {
    notes.push(pitch);
  }
  state.heldTriggers = {};
  outlet(OUT_TRIGGER, ["note"].concat(notes));
}

function pressed(args) {
  if (!state.started) {
    return false;
  }
  if (!args.length) {
    return true;
  }
  var value = args[0];
  return value === "bang" || Number(value) !== 0;
}

// ---- Service connection ----

function tick() {
  if (state.keepalive) {
    state.missedPongs += 1;
    if (state.missedPongs >= MISSED_PONGS_BEFORE_DOWN) {
      state.connected = false;
      dropPending();
      if (state.missedPongs % MISSED_PONGS_BEFORE_DOWN === 0) {
        listenOnNewPort();  // the service may be up and our port taken: try another
      }
    }
  }
  // /dd/hello is the keep-alive: it registers the reply port again each time, so a restarted service finds us.
  state.keepalive = send("/dd/hello", [state.replyPort]);
  state.ticksSinceRecipes += 1;
  if (state.connected && state.ticksSinceRecipes >= RECIPES_EVERY_TICKS) {
    askRecipes();
  }
  showStatus();
}

function listenOnNewPort() {
  state.replyPort = REPLY_PORT_LOW + Math.floor(Math.random() * REPLY_PORT_COUNT);
  outlet(OUT_RECEIVE, "port", state.replyPort);
}

function dropPending(why) {
  for (var id in state.pending) {
    if (Object.prototype.hasOwnProperty.call(state.pending, id)) {
      state.lastError = ACTIONS[state.pending[id].kind] + ": " + (why || "the service stopped before answering");
      state.cancelled[id] = true;  // a late answer (from a service that did hear it after all) is not placed
    }
  }
  state.pending = {};
  state.acknowledged = {};
  state.saving = {};
  state.recipesAsked = null;
  state.dialsSent = {};
}

// A render request, waiting for its /dd/done <answer> (the kind itself, or `vary` for a keep). extra: answer,
// loopBeats (the results are loops of that many beats), markers (the results play that part: a repaint).
// A press while the service is not answering fails at once, in the status line's words.
function request(kind, args, anchor, seconds, extra) {
  if (!state.connected) {
    state.notice = "";
    fail(ACTIONS[kind] + (state.missedPongs < MISSED_PONGS_BEFORE_DOWN ? ": still connecting to dd-bridge: press " +
      "again in a moment" : ": service not running: start it with 'dd-bridge serve'"));
    return;
  }
  var id = send("/dd/" + kind, args);
  state.pending[id] = { kind: kind, answer: (extra && extra.answer) || kind, anchor: anchor, progress: 0,
    seconds: seconds, loopBeats: (extra && extra.loopBeats) || 0, markers: (extra && extra.markers) || null,
    look: (extra && extra.look) || null };
  state.lastError = "";
  state.notice = "";
  showStatus();
}

function send(address, args) {
  var id = "#" + state.instance + "." + state.nextRequest;
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

// The service's prefetch renders with its own settings: bring them in line with the device's dials (its audition
// with the Audition toggle, its guides with the Character dials: `off` when all are at the centre).
function sendCurrentSettings() {
  sendSetting("audition", settings.audition ? "on" : "off");
  state.recipeSent = "";
  state.dialsSent = {};
  state.guidesDirty = false;
  sendGuides();
  sendChangedDials();
}

// Noise, Count and Steps the service does not have yet from this device.
function sendChangedDials() {
  SERVICE_DIALS.forEach(function (key) {
    if (state.dialsSent[key] !== settings[key]) {
      state.dialsSent[key] = settings[key];
      sendSetting(key, settings[key]);
    }
  });
}

// A dial moved: Noise, Count, Steps and the guides go out GUIDE_SEND_DELAY_MS later with every control's value then
// (one send per turn); before the service answers nothing is sent, the connection sends them all.
function queueSettings() {
  if (!state.connected || settingsQueued) {
    return;
  }
  settingsQueued = true;
  settingsTask.schedule(GUIDE_SEND_DELAY_MS);
}

function sendQueuedSettings() {
  settingsQueued = false;
  if (state.guidesDirty) {
    state.guidesDirty = false;
    sendGuides();
  }
  if (state.connected) {
    sendChangedDials();
  }
}

// A one-off Task, kept referenced until it has run (nothing else holds it once the handler that made it returns).
function later(fn, delay) {
  var task = new Task(function () {
    var index = scheduledTasks.indexOf(task);
    if (index >= 0) {
      scheduledTasks.splice(index, 1);
    }
    fn();
  });
  scheduledTasks.push(task);
  task.schedule(delay);
}

// A Character control moved: its guides go out GUIDE_SEND_DELAY_MS later with every control's value then (one
// send per turn); before the service answers nothing is sent, the connection sends them all.
function guidesChanged() {
  if (!state.connected) {
    return;
  }
  state.guidesDirty = true;
  queueSettings();
}

// The recipe goes first, and only when it changed (each /dd/set recipe reads the recipe again); the guide text always,
// so a turn takes the service's guides back from another client as before. A connection sends the menu's recipe
// only when one is picked: Recipe off leaves the service's own (`render.recipe`, or one set by name: a recipe the
// menu cannot offer) until a recipe picked here is set off again.
function sendGuides() {
  if (state.connected && settings.recipe !== state.recipeSent) {
    state.recipeSent = settings.recipe;
    sendSetting("recipe", settings.recipe || "off");
  }
  sendSetting("guide", guideText());
}

// All the Character guides as one /dd/set guide value: every non-zero dial, then the class when the menu is not off
// and its Amount not 0, then the note (`brightness=0.5;decay=-1;class=1:kick;tuning=1:33`), or `off` when none is on.
// The tuning goes last: a guide's step is taken on what the ones before left, and the kick at a note was measured
// that way (docs/guidance.md, "A kick at a note").
function guideText() {
  var parts = [];
  GUIDE_DIALS.forEach(function (name) {
    if (settings.guides[name] !== 0) {
      parts.push(name + "=" + settings.guides[name]);
    }
  });
  if (settings.drumClass && settings.classAmount > 0) {
    parts.push("class=" + settings.classAmount + ":" + settings.drumClass);
  }
  if (settings.note) {
    parts.push("tuning=1:" + settings.note);
  }
  return parts.length ? parts.join(";") : "off";
}

// ---- The Recipe menu ----

function askRecipes() {
  state.ticksSinceRecipes = 0;
  state.recipesAsked = send("/dd/recipes", []);
}

// The names the service listed, and the kept recipe where the list lacks it (a recipe whose file is gone: shown,
// so the set says what it asks for, and refused by the service in one line on the status line).
function withKept(names) {
  return settings.recipe && names.indexOf(settings.recipe) < 0 ? names.concat([settings.recipe]) : names.slice();
}

// The menu's items: off, then state.recipeNames; the kept recipe picked.
function showRecipeMenu() {
  outlet(OUT_RECIPE_MENU, "clear");
  outlet(OUT_RECIPE_MENU, "append", RECIPE_OFF);
  state.recipeNames.forEach(function (name) {
    outlet(OUT_RECIPE_MENU, "append", name);
  });
  outlet(OUT_RECIPE_MENU, "set", settings.recipe ? state.recipeNames.indexOf(settings.recipe) + 1 : 0);
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
  if (state.notice) {
    parts.push(state.notice);
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

// The name a menu's item stands for, its first item being off: "" for off and anything out of the menu's range.
function menuItem(names, index) {
  return names[Math.round(Number(index)) - 1] || "";
}

// A message's arguments as one name (a name of digits comes from Max as a number, one with spaces as several atoms).
function words(args) {
  return Array.prototype.slice.call(args).map(String).join(" ").replace(/^\s+|\s+$/g, "");
}

// A Character value as sent: to hundredths, so a turn's float noise (0.30000001) never reaches the guide text.
function hundredths(value) {
  return Math.round(100 * value) / 100;
}

// Only the entry points above answer messages; everything else is private to the script.
[onDetailClipChanged, readClip, playedSpan, clipRegion, loopOptions, setTempo, repaintRange, lookFor, finishShaping,
  missedOn, shapeClip, putSpan, sameValue, clipIds, newClip, clipSpans, sendChangedDials, queueSettings,
  sendQueuedSettings, later, warpMap, fileSeconds, regionOptions, seconds, regionSeconds, rememberClip,
  sameRegion, refreshed, selectedFor, currentClip, anchorOf, selectedTrackAnchor, placeResults, resolveAnchor, parseClipPath, isAudioTrack,
  variationsTrack, placeInSession, freeSlots, placeInArrangement, firstGap,
  showFilesForDragAndDrop, folderOf, isTrigger, anyHeld, sendTriggerNotes, pressed, tick, listenOnNewPort,
  dropPending, request, send, sendSetting, sendCurrentSettings, guidesChanged, sendGuides, guideText, showStatus,
  statusText, fail, readLiveVersion, versionAtLeast, clamp, menuItem, hundredths, askRecipes, withKept,
  showRecipeMenu, words].forEach(function (fn) { fn.local = 1; });
