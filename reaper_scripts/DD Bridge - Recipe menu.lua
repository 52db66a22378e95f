-- @noindex
-- @description DD Bridge - Recipe menu
-- @version 1.10
-- @author DD Bridge
-- @about
--   A menu at the mouse of every recipe the service takes by name: yours in its recipes folder (saved with "Save
--   guides as recipe", `dd-bridge save-recipe` or by hand) and the ones that ship, the current one ticked. The one
--   you pick, or off, is set on the service (`/dd/set recipe`) and kept as the Settings' Recipe, as the Live
--   device's Recipe menu does. Bind it to a key or a toolbar button.

local script_folder = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local lib = dofile(script_folder .. "DD Bridge - lib.lua")

-- gfx.showmenu's items: "!" ticks one. A recipe's name starts with a letter, digit or _, so none reads as a mark.
local function menu(names, current)
  local items = { (current == "" and "!" or "") .. "off" }
  for _, name in ipairs(names) do
    items[#items + 1] = (name == current and "!" or "") .. name
  end
  return table.concat(items, "|")
end

-- The menu at the mouse (a window of no size there, as menus of scripts are shown); 0 when dismissed.
local function choose(text)
  local x, y = reaper.GetMousePosition()
  gfx.init("", 0, 0, 0, x, y)
  gfx.x, gfx.y = gfx.screentoclient(x, y)
  local choice = gfx.showmenu(text)
  gfx.quit()
  return choice
end

local function main()
  local settings = lib.settings()
  lib.ask(settings, "/dd/recipes", {}, function(answer)
    if answer.status ~= "ok" then
      lib.message("The recipes could not be listed: " .. table.concat(answer.lines, " "))
      return
    end
    local names = answer.lines
    local listed = settings.recipe == ""
    for _, name in ipairs(names) do
      listed = listed or name == settings.recipe
    end
    if not listed then
      names[#names + 1] = settings.recipe  -- kept, though its file is gone: shown, and refused in words if picked
    end
    local choice = choose(menu(names, settings.recipe))
    if choice < 1 then
      return
    end
    local picked = choice == 1 and "" or names[choice - 1]
    settings.recipe = picked
    lib.save_settings(settings)
    lib.ask(settings, "/dd/set", { "recipe", picked ~= "" and picked or "off" }, function(set)
      if set.status ~= "ok" then
        lib.message("The recipe '" .. picked .. "' was not set: " .. table.concat(set.lines, " "))
      end
    end)
  end)
end

main()
reaper.defer(function() end)  -- no undo point: the service's setting, not the project's
