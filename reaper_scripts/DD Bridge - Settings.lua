-- @noindex
-- @description DD Bridge - Settings
-- @version 1.10
-- @author DD Bridge
-- @about
--   Noise, count, steps and model for the DD Bridge actions, the service's guides (brightness=0.5;decay=-1,
--   empty: off), drum class (off, kick, snare, hat, tom, cymbal, clap, perc, with an amount from 0 to 2) and
--   recipe (a saved set of guides by name, such as dark-kick; `dd-bridge guides` lists them), the path to the
--   dd-bridge program and the service's port. Kept with REAPER's extended state, so they survive restarts; the
--   recipe, guides and class are sent to the service when OK is pressed.

local script_folder = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local lib = dofile(script_folder .. "DD Bridge - lib.lua")

-- GetUserInputs takes its captions separated by commas (so none may hold one); `separator=|` makes "|" separate
-- the values, which cannot be part of a Windows path and almost never is of another.
local FIELDS = {
  { key = "noise", caption = "Noise (0 keeps the clip; 1 a new sound)" },
  { key = "count", caption = "Variations per run" },
  { key = "steps", caption = "Steps (more is slower and cleaner)" },
  { key = "model", caption = "Model (empty: the service's)" },
  { key = "guide", caption = "Guides (brightness=0.5;decay=-1; empty: off)" },
  { key = "class", caption = "Class: off/kick/snare/hat/tom/cymbal/clap/perc" },
  { key = "class_amount", caption = "Class amount (0 off to 2)" },
  { key = "recipe", caption = "Recipe (a name from dd-bridge guides; empty: off)" },
  { key = "command", caption = "Path to dd-bridge" },
  { key = "port", caption = "Service port" },
}

local function main()
  local settings = lib.settings()
  local captions, values = {}, {}
  for i, field in ipairs(FIELDS) do
    captions[i] = field.caption
    values[i] = tostring(settings[field.key])
  end
  local ok, answer = reaper.GetUserInputs(lib.TITLE .. " settings", #FIELDS,
    table.concat(captions, ",") .. ",separator=|,extrawidth=220", table.concat(values, "|"))
  if not ok then
    return
  end
  local entered = {}
  for value in (answer .. "|"):gmatch("([^|]*)|") do
    entered[#entered + 1] = value
  end
  if #entered ~= #FIELDS then
    lib.message("The settings could not be read back (a value holds '|'); nothing was changed.")
    return
  end
  local problems = {}
  for i, field in ipairs(FIELDS) do
    local value, problem = lib.parse_setting(field.key, entered[i])
    if value == nil then
      problems[#problems + 1] = problem
    else
      settings[field.key] = value
    end
  end
  if #problems > 0 then
    lib.message("Nothing was changed:\n\n" .. table.concat(problems, "\n"))
    return
  end
  local previous = lib.settings()
  lib.save_settings(settings)  -- as typed, even when the service refuses them: shown again to fix
  -- What the service steers by: each sent when on, or when it was on before (none, and none before, sends nothing:
  -- a producer without guides is not told about a stopped service here). One after the other, then one message.
  local sends = {}
  if settings.recipe ~= "" or settings.recipe ~= previous.recipe then
    sends[#sends + 1] = { "recipe", settings.recipe, "The recipe '" .. settings.recipe .. "' was not set: " }
  end
  local guides, previous_guides = lib.guide_text(settings), lib.guide_text(previous)
  if guides ~= "" or guides ~= previous_guides then
    sends[#sends + 1] = { "guide", guides, "The guides '" .. guides .. "' were not set: " }
  end
  local problems = {}
  local function send(i)
    if i > #sends then
      if #problems > 0 then
        lib.message(table.concat(problems, "\n"))
      end
      return
    end
    local key, value, refused = table.unpack(sends[i])
    lib.ask(settings, "/dd/set", { key, value ~= "" and value or "off" }, function(answer)
      if answer.status ~= "ok" then
        problems[#problems + 1] = refused .. table.concat(answer.lines, " ")
      end
      send(i + 1)
    end)
  end
  send(1)
end

main()
reaper.defer(function() end)  -- no undo point for a settings dialog (sending defers on its own)
