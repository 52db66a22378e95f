// The Character section against a real running service, over real UDP: the service takes the one /dd/set guide the
// device sends for a turn of its dials (checked by building each guide) and its `off`; then the Class menu is set to
// kick (Amount 1.5) with Brightness at 0.5 and the Note at A0, and what the service made of that one setting is recorded: acknowledged,
// or refused in one line on the device's status line, after which the service still answers; then the same for the
// Recipe menu's dark-kick (a kick guide too), and the Recipe back to off; then Save with Brightness at 0.5 and the
// name "device saved", which the Recipe menu lists after. Renders nothing.
// Used by tests/daw/test_device_with_service.py:   node service_character.js <service port>
// Prints, as JSON, {acknowledged: the `guide` values the service acknowledged, classStatus: the status line after
// the class setting's answer, recipes: the `recipe` values it acknowledged, recipeStatus: the status line after the
// recipe setting's answer, menuAtConnection and menuAfterSave: the Recipe menu's items, saveStatus: the status line
// after the save's answer}.
"use strict";

const assert = require("node:assert/strict");
const { connectDevice } = require("./service_session.js");

async function main() {
  const { probe, waitFor, messages, close } = await connectDevice({ version: [12, 1, 0], tracks: [] });
  const acknowledged = () => messages.filter((m) => m[0] === "/dd/ack" && m[2] === "set" && m[3] === "guide")
    .map((m) => m[4]);
  const recipes = () => messages.filter((m) => m[0] === "/dd/ack" && m[2] === "set" && m[3] === "recipe")
    .map((m) => m[4]);
  const refused = () => messages.filter((m) => m[0] === "/dd/error").length;
  const answered = (count) => () => acknowledged().length + refused() >= count;
  try {
    await waitFor("the connection's guide setting", answered(1), 30);
    for (const [name, value] of [["brightness", 0.3], ["brightness", 0.5], ["decay", -1], ["punch", 0.123]]) {
      probe.message("guide", name, value);  // a turn: several values before the send is due
    }
    probe.clock.runScheduled();
    await waitFor("the turn's guide setting", answered(2), 30);
    assert.doesNotMatch(probe.status(), /error/);
    probe.message("guide", "decay", 0);
    probe.message("guide", "punch", 0);
    probe.message("class_menu", 1);  // kick
    probe.message("class_amount", 1.5);
    probe.message("note_menu", 10);  // Live's A0: tuning=1:33, after the class
    probe.clock.runScheduled();
    await waitFor("the class setting's answer", answered(3), 30);
    const classStatus = probe.status();
    probe.message("class_menu", 0);  // the service is shared with the other suites: leave it unguided
    probe.message("note_menu", 0);
    probe.message("guide", "brightness", 0);
    probe.clock.runScheduled();
    await waitFor("the guides cleared", () => acknowledged().slice(-1)[0] === "off" && answered(4)(), 30);
    const refusedBefore = refused();
    probe.message("recipe_menu", 1);  // dark-kick: its recipe setting, then the guide text (off) again
    probe.clock.runScheduled();
    await waitFor("the recipe setting's answer", () => recipes().length >= 1 || refused() > refusedBefore, 30);
    const recipeStatus = probe.status();
    probe.message("recipe_menu", 0);  // leave the shared service without a recipe
    probe.clock.runScheduled();
    await waitFor("the recipe cleared", () => recipes().slice(-1)[0] === "off", 30);
    const listed = () => messages.filter((m) => m[0] === "/dd/recipes").length;
    await waitFor("the recipes the menu lists", () => listed() >= 1, 30);
    const menuAtConnection = probe.recipeMenu().items;
    probe.message("guide", "brightness", 0.5);  // a turn not yet sent when Save is pressed
    probe.message("save_recipe", "device", "saved");
    await waitFor("the save's answer and the menu again", () => listed() >= 2, 30);
    const saveStatus = probe.status();
    const menuAfterSave = probe.recipeMenu().items;
    probe.message("guide", "brightness", 0);
    probe.clock.runScheduled();
    await waitFor("the guides cleared again", () => acknowledged().slice(-1)[0] === "off", 30);
    console.log(JSON.stringify({ acknowledged: acknowledged(), classStatus, recipes: recipes(), recipeStatus,
      menuAtConnection, saveStatus, menuAfterSave }));
  } finally {
    close();
  }
}

main().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
