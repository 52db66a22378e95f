-- @noindex
-- @description DD Bridge - Settings
-- @version 1.1
-- @author DD Bridge
-- @about
--   Noise, count, steps and model for the DD Bridge actions, the path to the dd-bridge program and the
--   service's port. Kept with REAPER's extended state, so they survive restarts.

local script_folder = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local lib = dofile(script_folder .. "DD Bridge - lib.lua")

-- GetUserInputs takes its captions separated by commas (so none may hold one); `separator=|` makes "|" separate
-- the values, which cannot be part of a Windows path and almost never is of another.
local FIELDS = {
  { key = "noise", caption = "Noise (0 keeps the clip; 1 a new sound)" },
  { key = "count", caption = "Variations per run" },
  { key = "steps", caption = "Steps (more is slower and cleaner)" },
  { key = "model", caption = "Model (empty: the service's)" },
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
  lib.save_settings(settings)
end

main()
reaper.defer(function() end)  -- no undo point for a settings dialog
