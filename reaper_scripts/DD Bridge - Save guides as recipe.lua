-- @noindex
-- @description DD Bridge - Save guides as recipe
-- @version 1.10
-- @author DD Bridge
-- @about
--   Saves the guides the service renders with now (the Settings' Recipe, Guides and Class, as OK sent them) as a
--   new recipe of the name you type, in the service's recipes folder. It is then a name for the Settings' Recipe
--   field, an item of the Live device's Recipe menu and `--recipe NAME` for dd-bridge. A recipe of that name is
--   never replaced: pick another name, or delete its file.

local script_folder = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local lib = dofile(script_folder .. "DD Bridge - lib.lua")

local function main()
  local settings = lib.settings()
  local ok, typed = reaper.GetUserInputs(lib.TITLE .. ": save the guides as a recipe", 1,
    "Recipe name (letters digits space .-_),extrawidth=160", "")
  if not ok then
    return
  end
  local name = typed:match("^%s*(.-)%s*$")
  if name == "" then
    lib.message("No recipe was saved: type a name for it.")
    return
  end
  lib.ask(settings, "/dd/save_recipe", { name }, function(answer)
    if answer.status ~= "ok" then
      lib.message("The recipe '" .. name .. "' was not saved: " .. table.concat(answer.lines, " "))
      return
    end
    -- /dd/ack save_recipe <name> <file>
    lib.message("Saved the recipe '" .. name .. "' in " .. (answer.lines[3] or "the recipes folder") ..
      ".\n\nIt is now a Recipe name in DD Bridge - Settings.")
  end)
end

main()
reaper.defer(function() end)  -- no undo point: nothing in the project changes
