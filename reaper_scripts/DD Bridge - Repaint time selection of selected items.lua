-- @noindex
-- @description DD Bridge - Repaint time selection of selected items
-- @version 1.3
-- @author DD Bridge
-- @about
--   For each selected audio item, the part of the time selection that lies over it is rendered anew by Dance
--   Diffusion and the rest of its file is kept to the bit (the service's repaint); each result becomes a new
--   take on the item, lined up with the original take and with its pitch, playrate and channel mode (reversed
--   when it is reversed). Offsets, playrates, section and reversed sources are followed to the file's own
--   seconds. REAPER stays responsive meanwhile and a small window shows the progress.

local script_folder = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local lib = dofile(script_folder .. "DD Bridge - lib.lua")

local SHORTEST = 0.001  -- seconds: less of an item under the time selection is not a part to repaint

-- The part of the time selection over target's item, in seconds of its file ({start, finish}), or nil.
local function selected_part(target, from, to)
  local position = reaper.GetMediaItemInfo_Value(target.item, "D_POSITION")
  local length = reaper.GetMediaItemInfo_Value(target.item, "D_LENGTH")
  local first, last = math.max(from, position), math.min(to, position + length)
  if last - first < SHORTEST then
    return nil
  end
  local span = lib.take_span(target.item, target.take, first - position, last - position)
  return span and span.finish - span.start >= SHORTEST and span or nil
end

local function main()
  local from, to = reaper.GetSet_LoopTimeRange(false, false, 0, 0, false)
  if to - from < SHORTEST then
    lib.message("Make a time selection over the part of the items to repaint first.")
    return
  end
  local targets, skipped = lib.selected_audio_items_or_say()
  if not targets then
    return
  end
  local settings = lib.settings()
  -- One request for each part of a file: items that play the same file under the same part share its results.
  local requests, by_part, outside = lib.group_requests(targets, function(target)
    local part = selected_part(target, from, to)
    if not part then
      return nil
    end
    return string.format("%s|%.6f|%.6f", part.file, part.start, part.finish), { address = "/dd/repaint",
      label = lib.basename(part.file), args = { part.file, math.floor(settings.count),
        string.format("start=%.6f", part.start), string.format("end=%.6f", part.finish),
        "steps=" .. math.floor(settings.steps), "folder=" .. lib.output_folder() } }
  end)
  if #requests == 0 then
    lib.message("The time selection is not over any of the selected audio items.")
    return
  end
  local window = lib.progress_window("Repaint")
  lib.run(settings, requests, window, function(results)
    -- A repaint is the whole file: the new take plays it from where the original plays its file.
    lib.finish_takes(requests, results, by_part, { undo = "DD Bridge: repaint " .. lib.items(#targets - outside),
      failed = "Some parts could not be repainted", offset = function(target) return target.region.start end,
      left_out = function() return lib.left_out(outside + skipped, "not under the time selection") end })
  end)
end

main()
reaper.defer(function() end)  -- no empty undo point when the action stops early
