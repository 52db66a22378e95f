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
