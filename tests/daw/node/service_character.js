// The Character dials against a real running service, over real UDP: the service takes the one /dd/set guide the
// device sends for a turn of its dials (checked by building each guide) and its `off`. Renders nothing.
// Used by tests/daw/test_device_with_service.py:   node service_character.js <service port>
// Prints the values the service acknowledged for `guide`, as JSON.
"use strict";

const assert = require("node:assert/strict");
const { connectDevice } = require("./service_session.js");

async function main() {
  const { probe, waitFor, messages, close } = await connectDevice({ version: [12, 1, 0], tracks: [] });
  const acknowledged = () => messages.filter((m) => m[0] === "/dd/ack" && m[2] === "set" && m[3] === "guide")
    .map((m) => m[4]);
  try {
    await waitFor("the connection's guide setting", () => acknowledged().length === 1 || /error/.test(probe.status()), 30);
    for (const [name, value] of [["brightness", 0.3], ["brightness", 0.5], ["decay", -1], ["punch", 0.123]]) {
      probe.message("guide", name, value);  // a turn: several values before the send is due
    }
    probe.clock.runScheduled();
    await waitFor("the turn's guide setting", () => acknowledged().length === 2 || /error/.test(probe.status()), 30);
    for (const name of ["brightness", "decay", "punch"]) {
      probe.message("guide", name, 0);  // the service is shared with the other suites: leave it unguided
    }
    probe.clock.runScheduled();
    await waitFor("the guides cleared", () => acknowledged().length === 3 || /error/.test(probe.status()), 30);
    assert.doesNotMatch(probe.status(), /error/);
    console.log(JSON.stringify(acknowledged()));
  } finally {
    close();
  }
}

main().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
