-- @noindex
-- @description DD Bridge - Follow selection
-- @version 1.10
-- @author DD Bridge
-- @about
--   A toggle. While on, what the selected item plays (its part of its audio file) is sent to the DD Bridge
--   service as the selected clip, so its variations are rendered ahead and "Vary selected items" answers at
--   once. Run it again to turn it off. It turns itself off only when the service is gone (not running, or no
--   answer); a clip the service refuses (a file it cannot read, say) or an item with stretch markers is passed
--   over with one line in the ReaScript console, and the next selection is followed as usual.

local _, script_path, section, command = reaper.get_action_context()
local lib = dofile(script_path:match("^(.*[/\\])") .. "DD Bridge - lib.lua")

local CHECK_SECONDS = 0.3
local RE_LAUNCH_ENDS_IT, BUTTON_ON = 1, 4

local settings = lib.settings()
local last_key = nil
local pending = nil   -- the /dd/select on its way, with its .key and .file
local passed = {}     -- [key] = true: refused by the service, said once and not sent again
local stretched_said = nil  -- the take with stretch markers last said to be skipped
local next_check = 0

local function set_toggle(state)
  reaper.SetToggleCommandState(section, command, state)
  reaper.RefreshToolbar2(section, command)
end

-- The selected item as Vary sees it ({item, take, region}), or nil.
local function selected_target()
  local item = reaper.GetSelectedMediaItem(0, 0)
  local take = item and reaper.GetActiveTake(item)
  local region = take and lib.take_region(item, take)
  return region and { item = item, take = take, region = region } or nil
end

-- One line in the console (no dialog: following goes on) the first time a selection is passed over.
local function pass_over(key, file, why)
  if not passed[key] then
    passed[key] = true
    reaper.ShowConsoleMsg(string.format("%s Follow selection: skipped %s: %s\n", lib.TITLE, lib.basename(file), why))
  end
end

local function follow()
  local now = reaper.time_precise()
  if pending then
    local answer = lib.poll(pending)
    if answer and lib.no_reply(answer) then  -- the service is gone: nothing more can be followed
      lib.message("Follow selection is now off:\n\n" .. table.concat(answer.lines, "\n"))
      return
    elseif answer and answer.status == "error" then  -- this clip refused: the next selection may well be taken
      pass_over(pending.key, pending.file, table.concat(answer.lines, " "))
    elseif not answer and lib.overdue(pending, now) then
      lib.message(lib.no_answer(settings) .. "\n\nFollow selection is now off.")
      return
    end
    pending = not answer and pending or nil
  end
  if not pending and now >= next_check then
    next_check = now + CHECK_SECONDS
    local target = selected_target()
    -- An item whose source loops is selected as the loop Vary makes of it, so the service renders those ahead.
    local request = target and { target.region.file, table.unpack(lib.region_options(target.region)) }
    for _, option in ipairs(target and lib.loop_options(target) or {}) do
      request[#request + 1] = option
    end
    local key = request and table.concat(request, "|")
    -- Stretch markers belong to the take, not to the part of the file it plays: said once per take, and the part
    -- stays free for an unstretched item (or this one, glued or with its markers gone).
    if key and lib.stretched(target.take) then
      if stretched_said ~= target.take then
        stretched_said = target.take
        reaper.ShowConsoleMsg(string.format("%s Follow selection: skipped %s: it has stretch markers (glue it: Item > "
          .. "Glue items)\n", lib.TITLE, lib.basename(target.region.file)))
      end
      key = nil
    end
    if key and key ~= last_key and not passed[key] then
      local failure
      pending, failure = lib.start(settings, "/dd/select", request)
      if not pending then
        lib.message(failure)
        return
      end
      pending.key, pending.file = key, target.region.file
    end
    last_key = key or last_key
  end
  reaper.defer(follow)
end

if reaper.set_action_options then
  reaper.set_action_options(RE_LAUNCH_ENDS_IT | BUTTON_ON)
end
set_toggle(1)
reaper.atexit(function() set_toggle(0) end)
follow()
