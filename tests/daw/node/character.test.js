// The Character dials (Brightness, Decay, Punch): what they send to the service, when, and how often.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { loadDevice } = require("./fake_max.js");
const { lastSent, connect, start } = require("./helpers.js");

const KICK = "/Users/me/Music/Samples/Kick 01.wav";

function session() {
  return { version: [12, 1, 0], tracks: [{ name: "Drums", slots: [{ file: KICK }, null] }] };
}

function guidesSent(probe) {
  return probe.sent().filter((m) => m[0] === "/dd/set" && m[2] === "guide").map((m) => m.slice(3));
}

test("dials recalled at load send nothing until the service answers, then their guides go as one setting", () => {
  const probe = loadDevice(session());
  probe.message("guide", "brightness", 0.5);  // saved values, restored before the device is in the set
  probe.message("guide", "decay", -1);
  probe.message("init");
  probe.clock.runScheduled();
  probe.clock.tick();
  assert.deepEqual(guidesSent(probe), [], "nothing before the service answers");
  connect(probe);
  assert.deepEqual(guidesSent(probe), [["brightness=0.5;decay=-1"]], "sent with the other dials at connection");
  probe.clock.runScheduled();
  assert.equal(guidesSent(probe).length, 1, "and only once");
});

test("all dials at the centre: the connection clears the service's guides with off", () => {
  const probe = start(session());
  assert.deepEqual(guidesSent(probe), [["off"]]);
});

test("turning a dial sends one setting a moment later, with every dial's value then, not one per move", () => {
  const probe = start(session());
  const before = probe.sent().length;
  for (let step = 0; step <= 20; step++) {
    probe.message("guide", "punch", step / 20);  // Live sends a dial's value many times a second while it turns
  }
  probe.message("guide", "brightness", -0.25);
  assert.equal(probe.sent().length, before, "nothing while the dials turn");
  assert.equal(probe.clock.scheduled.length, 1, "one send waits, however many moves");
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).slice(1), [["brightness=-0.25;punch=1"]], "dial order, zero dials left out");
  probe.message("guide", "punch", 0);
  probe.message("guide", "brightness", 0);
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).slice(2), [["off"]], "all back at the centre: off");
  probe.message("guide", "decay", 0.5);
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).slice(3), [["decay=0.5"]], "a later turn is sent again");
});

test("weights are the service's -2..2, rounded to hundredths; other names are not guides", () => {
  const probe = start(session());
  probe.message("guide", "brightness", 7);
  probe.message("guide", "decay", -2.5);
  probe.message("guide", "punch", 0.123456);
  probe.message("guide", "width", 1);  // a guide, but no dial of this device
  probe.message("guide", "toString", 1);
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).pop(), ["brightness=2;decay=-2;punch=0.12"]);
  probe.message("guide", "punch", 0.004);  // under a hundredth: the centre
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).pop(), ["brightness=2;decay=-2"]);
});

test("a dial turned while the service is down is sent when it answers again", () => {
  const probe = loadDevice(session());
  probe.message("init");
  probe.message("guide", "decay", 1.5);  // connecting: not sent, and nothing is left waiting
  assert.equal(probe.clock.scheduled.length, 0);
  connect(probe);
  assert.deepEqual(guidesSent(probe), [["decay=1.5"]]);
  probe.message("guide", "decay", -1.5);
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).pop(), ["decay=-1.5"]);
});

test("a guide the service refuses is shown as the setting's error", () => {
  const probe = start(session());
  probe.message("guide", "brightness", 1);
  probe.clock.runScheduled();
  const id = lastSent(probe, "/dd/set")[1];
  probe.reply("/dd/error", id, "/dd/set", "guide brightness: the model has no such guide");
  assert.match(probe.status(), /error: Setting guide: guide brightness: the model has no such guide/);
});

test("the Class menu and its Amount recalled at load are sent with the dials at connection, never before", () => {
  const probe = loadDevice(session());
  probe.message("class_menu", 2);  // snare, restored with the set before the device is in it
  probe.message("class_amount", 1.5);
  probe.message("guide", "brightness", 0.5);
  probe.message("init");
  probe.clock.runScheduled();
  probe.clock.tick();
  assert.deepEqual(guidesSent(probe), [], "nothing before the service answers");
  connect(probe);
  assert.deepEqual(guidesSent(probe), [["brightness=0.5;class=1.5:snare"]], "one setting: dials, then the class");
});

test("the Amount is 1 in a new set: picking a class sends class=1:NAME once, a moment later", () => {
  const probe = start(session());
  const before = probe.sent().length;
  probe.message("class_menu", 1);
  probe.message("class_menu", 3);  // scrolling through the menu: only where it stops counts
  assert.equal(probe.sent().length, before, "nothing at once");
  assert.equal(probe.clock.scheduled.length, 1);
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).slice(1), [["class=1:hat"]]);
});

test("a class move and a dial turn together are one setting", () => {
  const probe = start(session());
  probe.message("guide", "decay", -1);
  probe.message("class_menu", 7);
  for (let step = 0; step <= 10; step++) {
    probe.message("class_amount", step / 5);  // automation or a turn of Amount: many values
  }
  assert.equal(probe.clock.scheduled.length, 1, "one send waits");
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).slice(1), [["decay=-1;class=2:perc"]]);
});

test("every menu item sends its own name, in the menu's order; off leaves the class out", () => {
  const probe = start(session());
  const names = [];
  for (let index = 1; index <= 7; index++) {
    probe.message("class_menu", index);
    probe.clock.runScheduled();
    names.push(guidesSent(probe).pop()[0]);
  }
  assert.deepEqual(names, ["kick", "snare", "hat", "tom", "cymbal", "clap", "perc"].map((name) => `class=1:${name}`));
  probe.message("class_menu", 0);
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).pop(), ["off"]);
});

test("an Amount of 0 is off; amounts are the guide's 0..2 in hundredths; a menu index out of range is off", () => {
  const probe = start(session());
  probe.message("class_menu", 1);
  probe.message("class_amount", 0);
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).pop(), ["off"], "a class at amount 0 is no guide");
  probe.message("class_amount", 5);
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).pop(), ["class=2:kick"]);
  probe.message("class_amount", 0.333333);
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).pop(), ["class=0.33:kick"]);
  probe.message("class_amount", -1);
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).pop(), ["off"]);
  probe.message("class_amount", 1);
  for (const index of [8, -1, "snare"]) {
    probe.message("class_menu", index);
    probe.clock.runScheduled();
    assert.deepEqual(guidesSent(probe).pop(), ["off"], String(index));
  }
});

test("a class the service cannot meet is shown on the status line, and the device keeps working", () => {
  const probe = start(session());
  probe.message("class_menu", 1);
  probe.clock.runScheduled();
  const id = lastSent(probe, "/dd/set")[1];
  probe.reply("/dd/error", id, "/dd/set", "guide class: no such guide (installed: brightness, decay)");
  assert.match(probe.status(), /^connected.*\| error: Setting guide: guide class: no such guide/);
  probe.message("class_menu", 0);
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).pop(), ["off"], "a later change is sent as usual");
});

// The Recipe menu: the service's built-in recipes by name, sent as /dd/set recipe just before the guide text.
function settingsSent(probe) {
  return probe.sent().filter((m) => m[0] === "/dd/set" && (m[2] === "recipe" || m[2] === "guide"))
    .map((m) => `${m[2]} ${m[3]}`);
}

test("a Recipe recalled at load goes out at connection, just before the guides, never before", () => {
  const probe = loadDevice(session());
  probe.message("recipe_menu", 1);  // dark-kick, restored with the set before the device is in it
  probe.message("guide", "brightness", 0.5);
  probe.message("init");
  probe.clock.runScheduled();
  probe.clock.tick();
  assert.deepEqual(settingsSent(probe), [], "nothing before the service answers");
  connect(probe);
  assert.deepEqual(settingsSent(probe), ["recipe dark-kick", "guide brightness=0.5"]);
});

test("Recipe off at connection sends no recipe: the service keeps its own (the config's, or one set by name)", () => {
  const probe = start(session());
  assert.deepEqual(settingsSent(probe), ["guide off"]);
  probe.message("guide", "punch", 1);
  probe.clock.runScheduled();
  probe.message("class_menu", 1);
  probe.clock.runScheduled();
  assert.deepEqual(settingsSent(probe).slice(1), ["guide punch=1", "guide punch=1;class=1:kick"],
    "nor with a turn of a dial");
});

test("picking a recipe sends it a moment later with the guides, once, where the menu stops; off then sends off", () => {
  const probe = start(session());
  const before = probe.sent().length;
  probe.message("recipe_menu", 1);
  probe.message("recipe_menu", 0);  // scrolling through the menu: only where it stops counts
  probe.message("recipe_menu", 1);
  probe.message("guide", "decay", -0.5);
  assert.equal(probe.sent().length, before, "nothing at once");
  assert.equal(probe.clock.scheduled.length, 1, "one send waits");
  probe.clock.runScheduled();
  assert.deepEqual(settingsSent(probe).slice(1), ["recipe dark-kick", "guide decay=-0.5"]);
  probe.message("recipe_menu", 0);
  probe.clock.runScheduled();
  assert.deepEqual(settingsSent(probe).slice(3), ["recipe off", "guide decay=-0.5"], "set off again: off");
  for (const index of [99, -1, "dark-kick"]) {  // out of the menu's range: off, which the service already has
    probe.message("recipe_menu", index);
    probe.clock.runScheduled();
  }
  assert.deepEqual(settingsSent(probe).slice(5), ["guide decay=-0.5", "guide decay=-0.5", "guide decay=-0.5"]);
});

test("the Recipe goes out again when the service comes back; a refusal is one line on the status line", () => {
  const probe = start(session());
  probe.message("recipe_menu", 1);
  probe.clock.runScheduled();
  const id = probe.sent().filter((m) => m[0] === "/dd/set" && m[2] === "recipe").pop()[1];
  probe.reply("/dd/error", id, "/dd/set", "recipe: no recipe named 'dark-kick' in /home/me/.config/dd-bridge/recipes");
  assert.match(probe.status(), /^connected.*\| error: Setting recipe: recipe: no recipe named 'dark-kick'/);
  for (let tick = 0; tick < 3; tick++) {
    probe.clock.tick();  // the service stops answering its keep-alive
  }
  assert.match(probe.status(), /service not running/);
  connect(probe);
  assert.deepEqual(settingsSent(probe).slice(-2), ["recipe dark-kick", "guide off"], "the whole setting again");
});

// The Note menu: the tuning guide toward a MIDI note, last in the guide text.
test("a Note sends tuning=1:<MIDI number> after the dials and the class; off and out of range leave it out", () => {
  const probe = start(session());
  probe.message("note_menu", 10);  // Live's A0: MIDI 33, 55 Hz
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).pop(), ["tuning=1:33"]);
  probe.message("class_menu", 1);
  probe.message("guide", "brightness", -0.5);
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).pop(), ["brightness=-0.5;class=1:kick;tuning=1:33"], "the tuning last");
  probe.message("note_menu", 1);
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).pop(), ["brightness=-0.5;class=1:kick;tuning=1:24"], "the first note is C0");
  probe.message("note_menu", 36);
  probe.clock.runScheduled();
  assert.deepEqual(guidesSent(probe).pop(), ["brightness=-0.5;class=1:kick;tuning=1:59"], "the last is B2");
  for (const index of [0, 37, -1, "A0"]) {
    probe.message("note_menu", index);
    probe.clock.runScheduled();
    assert.deepEqual(guidesSent(probe).pop(), ["brightness=-0.5;class=1:kick"], String(index));
  }
});

test("a Note recalled at load is sent with the dials at connection, never before", () => {
  const probe = loadDevice(session());
  probe.message("note_menu", 22);  // Live's A1: MIDI 45
  probe.message("init");
  probe.clock.runScheduled();
  probe.clock.tick();
  assert.deepEqual(guidesSent(probe), [], "nothing before the service answers");
  connect(probe);
  assert.deepEqual(guidesSent(probe), [["tuning=1:45"]]);
});

// The Recipe menu lists what the service takes by name (/dd/recipes), keeps its pick by name, and Save makes one.
function answerRecipes(probe, ...names) {
  probe.reply("/dd/recipes", lastSent(probe, "/dd/recipes")[1], ...names);
}

test("the Recipe menu shows the recipes that ship, then every recipe the service lists; a pick goes out by name", () => {
  const probe = loadDevice(session());
  probe.message("init");
  assert.deepEqual(probe.recipeMenu(), { items: ["off", "dark-kick", "ringing-tom"], shown: "off" });
  connect(probe);
  assert.equal(probe.sent().filter((m) => m[0] === "/dd/recipes").length, 1, "asked once at connection");
  probe.reply("/dd/recipes", "#someone.else.1", "not mine");  // another client's list
  assert.deepEqual(probe.recipeMenu().items, ["off", "dark-kick", "ringing-tom"]);
  answerRecipes(probe, "808", "dark-kick", "my kick", "ringing-tom");
  assert.deepEqual(probe.recipeMenu(), { items: ["off", "808", "dark-kick", "my kick", "ringing-tom"], shown: "off" });
  probe.message("recipe_menu", 3);
  probe.clock.runScheduled();
  assert.deepEqual(settingsSent(probe).slice(-2), ["recipe my kick", "guide off"]);
  assert.deepEqual(probe.kept(), ["my kick"], "the set keeps the name, not the menu's index");
  probe.message("recipe_menu", 0);
  assert.deepEqual(probe.kept(), ["off"]);
});

test("a Recipe kept with the set is shown and sent by name wherever the service's list puts it, or lacks it", () => {
  const probe = loadDevice(session());
  probe.message("recipe_kept", "my", "kick");  // Live recalls the pattr (a name with a space: two atoms)
  probe.message("init");
  assert.deepEqual(probe.recipeMenu(), { items: ["off", "dark-kick", "ringing-tom", "my kick"], shown: "my kick" });
  connect(probe);
  assert.deepEqual(settingsSent(probe), ["recipe my kick", "guide off"]);
  answerRecipes(probe, "a first one", "dark-kick", "my kick", "ringing-tom");
  assert.deepEqual(probe.recipeMenu(), { items: ["off", "a first one", "dark-kick", "my kick", "ringing-tom"],
    shown: "my kick" });
  const gone = loadDevice(session());
  gone.message("recipe_kept", 808);  // a name of digits comes from Max as a number
  gone.message("init");
  connect(gone);
  answerRecipes(gone, "dark-kick", "ringing-tom");  // its file was deleted: still shown, and the service says so
  assert.deepEqual(gone.recipeMenu(), { items: ["off", "dark-kick", "ringing-tom", "808"], shown: "808" });
  assert.deepEqual(settingsSent(gone), ["recipe 808", "guide off"]);
  const older = start(session());  // an older service without /dd/recipes: the menu keeps the ones that ship
  older.reply("/dd/error", lastSent(older, "/dd/recipes")[1], "/dd/recipes", "unknown address; known: /dd/ping");
  assert.doesNotMatch(older.status(), /error/);
  assert.deepEqual(older.recipeMenu().items, ["off", "dark-kick", "ringing-tom"]);
});

test("Save keeps what is dialled in as a recipe of the typed name, then lists it; a refusal is one line", () => {
  const probe = start(session());
  answerRecipes(probe, "dark-kick", "ringing-tom");
  probe.message("guide", "decay", -1);  // a turn not yet sent: Save sends it first, so the service saves it
  probe.message("save_recipe", "short", "kick");
  const [setting, save] = probe.sent().slice(-2);
  assert.deepEqual([setting[0], setting[2], setting[3]], ["/dd/set", "guide", "decay=-1"]);
  assert.deepEqual([save[0], save[2]], ["/dd/save_recipe", "short kick"]);
  assert.match(probe.status(), /saving recipe short kick/);
  probe.clock.runScheduled();
  assert.equal(guidesSent(probe).length, 2, "the turn went out once");
  probe.reply("/dd/ack", save[1], "save_recipe", "short kick", "/home/me/.config/dd-bridge/recipes/short kick.yaml");
  assert.match(probe.status(), /saved recipe short kick: in the Recipe menu/);
  assert.equal(probe.sent().filter((m) => m[0] === "/dd/recipes").length, 2, "the menu is asked again");
  answerRecipes(probe, "dark-kick", "ringing-tom", "short kick");
  assert.deepEqual(probe.recipeMenu().items, ["off", "dark-kick", "ringing-tom", "short kick"]);
  assert.equal(probe.recipeMenu().shown, "off", "saving picks nothing: the dials already make that sound");

  probe.message("save_recipe", "short", "kick");
  const again = lastSent(probe, "/dd/save_recipe");
  probe.reply("/dd/error", again[1], "/dd/save_recipe", "a recipe named 'short kick' is already saved (...); not " +
    "replacing it: pick another name, or delete that file first");
  assert.match(probe.status(), /error: Save recipe: a recipe named 'short kick' is already saved/);
  assert.doesNotMatch(probe.status(), /saving/);
  const before = probe.sent().length;
  for (const typed of [[], ["bang"], [" "]]) {  // an empty field: route text passes a bare bang on
    probe.message("save_recipe", ...typed);
    assert.match(probe.status(), /error: Save recipe: type a name for it beside Save first/);
  }
  assert.equal(probe.sent().length, before, "nothing sent");
  const alone = loadDevice(session());
  alone.message("init");
  alone.message("save_recipe", "kick");
  assert.match(alone.status(), /error: Save recipe: the service is not running/);
  assert.equal(alone.sent().filter((m) => m[0] === "/dd/save_recipe").length, 0);
});

test("the Recipe menu is asked again every 30 s while connected, and rebuilt only when the list changed", () => {
  const probe = start(session());
  answerRecipes(probe, "dark-kick", "ringing-tom");
  const asked = () => probe.sent().filter((m) => m[0] === "/dd/recipes").length;
  for (let tick = 0; tick < 14; tick++) {
    probe.clock.tick();
    connect(probe);  // the service answers each keep-alive
  }
  assert.equal(asked(), 1, "not before 30 s");
  probe.clock.tick();
  connect(probe);
  assert.equal(asked(), 2, "asked again at 30 s");
  const before = probe.recipeMenuMessages();
  answerRecipes(probe, "dark-kick", "ringing-tom");
  assert.equal(probe.recipeMenuMessages(), before, "the same list: the menu is left as it is");
  for (let tick = 0; tick < 15; tick++) {
    probe.clock.tick();
    connect(probe);
  }
  answerRecipes(probe, "dark-kick", "from reaper", "ringing-tom");  // saved elsewhere meanwhile
  assert.deepEqual(probe.recipeMenu().items, ["off", "dark-kick", "from reaper", "ringing-tom"]);
  assert.ok(probe.recipeMenuMessages() > before);
});
