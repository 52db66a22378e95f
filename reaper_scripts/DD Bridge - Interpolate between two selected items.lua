-- @noindex
-- @description DD Bridge - Interpolate between two selected items
-- @version 1.10
-- @author DD Bridge
-- @about
--   Sounds on the way from what one selected audio item plays to what the other plays, rendered by the DD
--   Bridge service and placed one after another on a new track below the first item's track, from the first
--   item's position (where its sound starts, when its audio starts after the item's start). They start from the
--   first item's sound, so they play as its take does: its playrate (each item as long as its file lasts at that
--   rate), pitch, pitch mode, volume, pan and channel mode; reversed when both items are. Items with stretch
--   markers cannot be used (glue them first).

local script_folder = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local lib = dofile(script_folder .. "DD Bridge - lib.lua")

local function main()
  local targets, skipped, stretched = lib.selected_audio_items()
  if #targets ~= 2 or stretched > 0 then
    local lines = {}
    if #targets == 0 and stretched == 0 then
      lines[1] = lib.no_audio_message(skipped)
    elseif #targets ~= 2 then
      lines[1] = string.format("Select exactly two audio items (%d %s selected).", #targets,
        #targets == 1 and "is" or "are")
    end
    lines[#lines + 1] = lib.stretched_note(stretched)
    lib.message(table.concat(lines, "\n\n"))
    return
  end
  local position = function(target) return reaper.GetMediaItemInfo_Value(target.item, "D_POSITION") end
  table.sort(targets, function(a, b) return position(a) < position(b) end)
  local first, second = targets[1], targets[2]
  -- The results start from the first item's sound, so they start where it does: after its lead-in when its audio
  -- starts after the item (a negative start offset), as new takes keep it (lib.lead_time).
  local start = position(first) + lib.lead_time(first)
  local settings = lib.settings()
  local requests = {
    { address = "/dd/interpolate", label = lib.basename(first.file) .. " to " .. lib.basename(second.file),
      args = { first.file, second.file, math.floor(settings.count), "steps=" .. math.floor(settings.steps),
        "folder=" .. lib.output_folder() } },
  }
  for _, option in ipairs(lib.region_options(first.region)) do
    table.insert(requests[1].args, option)
  end
  for _, option in ipairs(lib.region_options(second.region, "b_")) do
    table.insert(requests[1].args, option)
  end
  local window = lib.progress_window("Interpolate")
  lib.run(settings, requests, window, function(results)
    local errors = lib.errors(requests, results)
    if errors then
      lib.message("Nothing was interpolated:\n\n" .. errors)
      return
    end
    local index = reaper.CountTracks(0)
    if reaper.ValidatePtr2(0, first.item, "MediaItem*") then
      local track = reaper.GetMediaItem_Track(first.item)
      index = math.floor(reaper.GetMediaTrackInfo_Value(track, "IP_TRACKNUMBER"))  -- 1-based: the next index
    end
    lib.change("DD Bridge: interpolate between two items", function()
      local track = lib.new_track(index, "DD Interpolated")
      lib.place_files(track, results[1].lines, start, { take = first.take,
        reversed = first.region.reversed and second.region.reversed })
    end)
  end)
end

main()
reaper.defer(function() end)  -- no empty undo point when the action stops early
