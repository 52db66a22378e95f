-- @noindex
-- @description DD Bridge - Vary selected items
-- @version 1.1
-- @author DD Bridge
-- @about
--   For each selected audio item, Dance Diffusion variations of what the item plays (its part of the source
--   file: offset, length and playrate, section and reversed sources included) become new takes on the item,
--   lined up with the original take and with its pitch, playrate and channel mode; the first new take is
--   active. Renders run in the DD Bridge service (`dd-bridge serve`); REAPER stays responsive meanwhile and a
--   small window shows the progress. Bind a MIDI key to this action in the Action List to get variations from
--   a key press.

local script_folder = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local lib = dofile(script_folder .. "DD Bridge - lib.lua")

-- What a new take copies from the original one, so it sounds in the same place, pitch and channels.
local INHERITED = { "D_PLAYRATE", "D_PITCH", "B_PPITCH", "I_CHANMODE" }

-- Adds `files` (variations of exactly what the take plays) as takes on the item; returns how many.
local function add_takes(target, files)
  if not reaper.ValidatePtr2(0, target.item, "MediaItem*") then
    return 0  -- deleted while the service worked
  end
  local original = reaper.ValidatePtr2(0, target.take, "MediaItem_Take*") and target.take or nil
  local first
  for _, file in ipairs(files) do
    local take = reaper.AddTakeToMediaItem(target.item)
    reaper.SetMediaItemTake_Source(take, lib.new_source(file))
    reaper.GetSetMediaItemTakeInfo_String(take, "P_NAME", lib.basename(file), true)
    -- The file starts where the item's part of the source starts: no offset.
    reaper.SetMediaItemTakeInfo_Value(take, "D_STARTOFFS", 0)
    for _, name in ipairs(INHERITED) do
      if original then
        reaper.SetMediaItemTakeInfo_Value(take, name, reaper.GetMediaItemTakeInfo_Value(original, name))
      end
    end
    if target.region.reversed then
      lib.reverse_take(target.item, take)
    end
    first = first or take
  end
  if first then
    reaper.SetActiveTake(first)
  end
  return #files
end

local function main()
  local targets, skipped = lib.selected_audio_items()
  if #targets == 0 then
    lib.message(lib.no_audio_message(skipped))
    return
  end
  local settings = lib.settings()
  local folder = lib.output_folder()
  -- One request for each part of a file: items that play the same part share its variations.
  local requests, by_region = {}, {}
  for _, target in ipairs(targets) do
    local key = lib.region_key(target.region)
    if not by_region[key] then
      by_region[key] = {}
      local args = { target.file, math.floor(settings.count), settings.noise, "steps=" .. math.floor(settings.steps),
        "folder=" .. folder }
      for _, option in ipairs(lib.region_options(target.region)) do
        args[#args + 1] = option
      end
      requests[#requests + 1] = { address = "/dd/vary", args = args, label = lib.basename(target.file), key = key }
    end
    table.insert(by_region[key], target)
  end
  local window = lib.progress_window("Vary")
  lib.run(settings, requests, window, function(results)
    local added, rendered = 0, {}
    for i, request in ipairs(requests) do
      if results[i].status == "done" then
        rendered[#rendered + 1] = { key = request.key, files = results[i].lines }
      end
    end
    if #rendered > 0 then  -- collect first: no empty undo point when every request failed
      local selected = lib.selection()
      lib.change("DD Bridge: vary " .. #targets .. " item" .. (#targets == 1 and "" or "s"), function()
        for _, result in ipairs(rendered) do
          for _, target in ipairs(by_region[result.key]) do
            added = added + add_takes(target, result.files)
          end
        end
        lib.restore_selection(selected)
      end)
    end
    local errors = lib.errors(requests, results)
    if errors then
      lib.message("Some variations could not be made:\n\n" .. errors)
    elseif skipped > 0 then
      lib.message(string.format("Added %d takes. %d MIDI item%s skipped.", added, skipped, skipped == 1 and " was" or "s were"))
    end
  end)
end

main()
reaper.defer(function() end)  -- no empty undo point when the action stops early
