-- @noindex
-- @description DD Bridge - Repaint time selection of selected items
-- @version 1.10
-- @author DD Bridge
-- @about
--   For each selected audio item, the part of the time selection that lies over it is rendered anew by Dance
--   Diffusion and the rest of what the item plays is kept to the bit (the service's repaint of the item's part
--   of its file: only that part is rendered and written); each result becomes a new take on the item, lined up
--   with the original take and with its pitch, playrate, pitch mode, volume, pan and channel mode (reversed
--   when it is reversed), its take FX and its take envelopes. Offsets, playrates, section and reversed sources
--   are followed to the file's own seconds; on an item whose source loops, the new take loops what the original
--   loops (the whole file, or its section of it) from the same point, and a selection across the loop point
--   repaints the whole loop. Items with stretch markers are skipped (glue them first). REAPER stays responsive
--   meanwhile and a small window shows the progress.

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

-- The part of its file a new take of target's item plays, when it is a part ({start, finish}), else nil (the
-- whole file). For an item whose source loops, target.region is the loop (main): a section it loops is that part,
-- so the repainted take loops that section, as the original does, not the whole file after the first pass.
local function clip_region(target)
  return not target.region.whole and target.region or nil
end

local function main()
  local from, to = reaper.GetSet_LoopTimeRange(false, false, 0, 0, false)
  if to - from < SHORTEST then
    lib.message("Make a time selection over the part of the items to repaint first.")
    return
  end
  local targets, skipped, stretched = lib.selected_audio_items_or_say()
  if not targets then
    return
  end
  -- An item whose source loops gets a new loop: what it loops (one pass of its source: the whole file, or the
  -- section it loops), played from where the original is in it (its phase), on every pass.
  for _, target in ipairs(targets) do
    target.region = lib.loop_region(target.item, target.take) or target.region
  end
  local settings = lib.settings()
  -- One request for each part of a file: items that play (or loop) the same part of a file under the same
  -- selected part share its results. An item that plays part of its file sends that part (clip_start=/clip_end=):
  -- the service renders and writes it alone. The key says whether a request is a part or the whole file, so each
  -- item gets results laid out as its offset expects.
  local requests, by_part, outside = lib.group_requests(targets, function(target)
    local part = selected_part(target, from, to)
    if not part then
      return nil
    end
    local region = clip_region(target)
    local args = { part.file, math.floor(settings.count), string.format("start=%.6f", part.start),
      string.format("end=%.6f", part.finish), "steps=" .. math.floor(settings.steps), "folder=" .. lib.output_folder() }
    if region then
      table.insert(args, string.format("clip_start=%.6f", region.start))
      table.insert(args, string.format("clip_end=%.6f", region.finish))
    end
    return string.format("%s|%.6f|%.6f|%s", lib.region_key(target.region), part.start, part.finish,
      region and "clip" or "file"),
      { address = "/dd/repaint", label = lib.basename(part.file), args = args }
  end)
  if #requests == 0 then
    lib.message("The time selection is not over any of the selected audio items.")
    return
  end
  local window = lib.progress_window("Repaint")
  lib.run(settings, requests, window, function(results)
    -- A repaint of the item's part is that part alone, played from its start (a loop's from its phase:
    -- lib.add_takes); one of the whole file is played from where the original plays its file.
    lib.finish_takes(requests, results, by_part, { undo = "DD Bridge: repaint " .. lib.items(#targets - outside),
      failed = "Some parts could not be repainted", stretched = stretched, offset = function(target)
        return clip_region(target) and 0 or target.region.start
      end,
      left_out = function() return lib.left_out(outside + skipped, "not under the time selection") end })
  end)
end

main()
reaper.defer(function() end)  -- no empty undo point when the action stops early
