-- @noindex
-- @description DD Bridge - Follow selection
-- @version 1.2
-- @author DD Bridge
-- @about
--   A toggle. While on, what the selected item plays (its part of its audio file) is sent to the DD Bridge
--   service as the selected clip, so its variations are rendered ahead and "Vary selected items" answers at
--   once. Run it again to turn it off.

local _, script_path, section, command = reaper.get_action_context()
local lib = dofile(script_path:match("^(.*[/\\])") .. "DD Bridge - lib.lua")

local CHECK_SECONDS = 0.3
local RE_LAUNCH_ENDS_IT, BUTTON_ON = 1, 4

local settings = lib.settings()
local last_key = nil
local pending = nil
local next_check = 0

local function set_toggle(state)
  reaper.SetToggleCommandState(section, command, state)
  reaper.RefreshToolbar2(section, command)
end

local function selected_region()
  local item = reaper.GetSelectedMediaItem(0, 0)
  return item and lib.take_region(item, reaper.GetActiveTake(item)) or nil
end

local function follow()
  local now = reaper.time_precise()
  if pending then
    local answer = lib.poll(pending)
    if answer and answer.status == "error" then
      lib.message("Follow selection is now off:\n\n" .. table.concat(answer.lines, "\n"))
      return
    elseif not answer and lib.overdue(pending, now) then
      lib.message(lib.no_answer(settings) .. "\n\nFollow selection is now off.")
      return
    end
    pending = not answer and pending or nil
  end
  if not pending and now >= next_check then
    next_check = now + CHECK_SECONDS
    local region = selected_region()
    if region and lib.region_key(region) ~= last_key then
      local failure
      pending, failure = lib.start(settings, "/dd/select", { region.file, table.unpack(lib.region_options(region)) })
      if not pending then
        lib.message(failure)
        return
      end
      last_key = lib.region_key(region)
    end
  end
  reaper.defer(follow)
end

if reaper.set_action_options then
  reaper.set_action_options(RE_LAUNCH_ENDS_IT | BUTTON_ON)
end
set_toggle(1)
reaper.atexit(function() set_toggle(0) end)
follow()
