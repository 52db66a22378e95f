-- @noindex
-- @description DD Bridge - Extend selected items
-- @version 1.10
-- @author DD Bridge
-- @about
--   Asks how much longer (seconds, or bars at the project's tempo: "2 bars"), then for each selected audio item
--   Dance Diffusion continues what the item plays by that much (kept to the bit: the service's extend). An item
--   that plays its whole file continues the file; one that plays a part of it (a hit chopped out of a longer
--   recording) continues that part from its end, not the rest of the recording. Each result becomes a new take
--   on the item, lined up with the original take (with its take FX and take envelopes), and the item grows to
--   play on through the new material.
--   Reversed items are left as they are (an extension goes forwards), and so are looping items (Loop source on:
--   the new take would loop the extension with it) and items with stretch markers (glue them first). REAPER stays responsive meanwhile and a small window shows the progress.

local script_folder = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local lib = dofile(script_folder .. "DD Bridge - lib.lua")

local LENGTH_KEY = "extend_length"  -- the last answer, offered next time
local DEFAULT_LENGTH = "1 bar"
local MAX_SECONDS = 600  -- the longest the service renders (docs/osc.md, Limits)

-- "2.5" (seconds) or "2 bars" / "1 bar" / "0.5 bars" into {seconds = S} or {bars = N}; nil and a message.
local function parse_length(text)
  text = text:match("^%s*(.-)%s*$"):lower()
  local bars = tonumber(text:match("^([%d.]+)%s*bars?$"))
  if bars and bars > 0 then
    return { bars = bars }
  end
  local seconds = tonumber(text:match("^([%d.]+)%s*s?$"))
  if seconds and seconds > 0 and seconds <= MAX_SECONDS then
    return { seconds = seconds }
  end
  return nil, string.format("The length must be seconds (up to %d, e.g. 2.5) or bars (e.g. 2 bars), not '%s'.",
    MAX_SECONDS, text)
end

local function ask_length()
  local last = reaper.GetExtState(lib.SECTION, LENGTH_KEY)
  local ok, answer = reaper.GetUserInputs(lib.TITLE .. " extend", 1,
    "Length (seconds or N bars),extrawidth=60", last ~= "" and last or DEFAULT_LENGTH)
  if not ok then
    return nil
  end
  local length, problem = parse_length(answer)
  if not length then
    lib.message(problem)
    return nil
  end
  reaper.SetExtState(lib.SECTION, LENGTH_KEY, answer, true)
  return length
end

-- The request's length options for target: seconds as they are (in the file's time: times the playrate), bars
-- at the project's tempo where the item ends.
local function length_args(length, target)
  local rate = reaper.GetMediaItemTakeInfo_Value(target.take, "D_PLAYRATE")
  if length.seconds then
    return { string.format("%.6f", length.seconds * rate) }
  end
  local ends = reaper.GetMediaItemInfo_Value(target.item, "D_POSITION") + reaper.GetMediaItemInfo_Value(target.item, "D_LENGTH")
  return lib.tempo_options(length.bars, lib.bpm_at(ends), rate)
end

-- The item plays on to the end of the longest new take's file (never shorter than it was), from where the take
-- starts in it (a late start included: the offset is below 0 then).
local function grow(target, takes)
  local rate = reaper.GetMediaItemTakeInfo_Value(takes[1], "D_PLAYRATE")
  local length = reaper.GetMediaItemInfo_Value(target.item, "D_LENGTH")
  for _, take in ipairs(takes) do
    local seconds = reaper.GetMediaSourceLength(reaper.GetMediaItemTake_Source(take))
    length = math.max(length, (seconds - reaper.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS")) / rate)
  end
  reaper.SetMediaItemInfo_Value(target.item, "D_LENGTH", length)
end

local function main()
  local targets, skipped, stretched = lib.selected_audio_items_or_say()
  if not targets then
    return
  end
  local length = ask_length()
  if not length then
    return
  end
  local settings = lib.settings()
  -- One request for each file and length: items that play the same file at the same tempo share the results.
  local requests, by_file, reversed = lib.group_requests(targets, function(target)
    -- Reversed: an extension goes forwards. Looped: the new take would loop too, the extension inside every pass.
    if target.region.reversed or reaper.GetMediaItemInfo_Value(target.item, "B_LOOPSRC") == 1 then
      return nil
    end
    local args = { target.file, math.floor(settings.count) }
    for _, arg in ipairs(length_args(length, target)) do
      args[#args + 1] = arg
    end
    -- A part of the file (a chop): the service continues that part from its end and answers with it and what
    -- follows, so the chop goes on as itself, not into the rest of the recording.
    for _, arg in ipairs(lib.region_options(target.region)) do
      args[#args + 1] = arg
    end
    local key = table.concat(args, "|")
    args[#args + 1] = "steps=" .. math.floor(settings.steps)
    args[#args + 1] = "folder=" .. lib.output_folder()
    return key, { address = "/dd/extend", label = lib.basename(target.file), args = args }
  end)
  if #requests == 0 then
    lib.message("The selected items are reversed or loop their source: an extension continues a sound forwards, "
      .. "once (turn off Loop source in the item's properties to extend it).")
    return
  end
  local window = lib.progress_window("Extend")
  lib.run(settings, requests, window, function(results)
    -- An extension is what was sent (the whole file, or the part) and more: the new take plays it from where the
    -- original plays that, the file's start for a part.
    lib.finish_takes(requests, results, by_file, { undo = "DD Bridge: extend " .. lib.items(#targets - reversed),
      failed = "Some items could not be extended", stretched = stretched,
      offset = function(target) return target.region.whole and target.region.start or 0 end,
      after = grow, left_out = function() return lib.left_out(reversed + skipped, "reversed or looping") end })
  end)
end

main()
reaper.defer(function() end)  -- no empty undo point when the action stops early
