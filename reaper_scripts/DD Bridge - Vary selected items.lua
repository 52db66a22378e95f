-- @description DD Bridge - Vary selected items
-- @version 1.0
-- @author DD Bridge
-- @about
--   For each selected audio item, Dance Diffusion variations of its source file become new takes on the item
--   (the first new take active, lined up with the original take). Renders run in the DD Bridge service
--   (`dd-bridge serve`); REAPER stays responsive meanwhile and a small window shows the progress.
--   Bind a MIDI key to this action in the Action List to get variations from a key press.

local script_folder = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local lib = dofile(script_folder .. "DD Bridge - lib.lua")

local function add_takes(target, files)
  if not reaper.ValidatePtr2(0, target.item, "MediaItem*") then
    return 0  -- deleted while the service worked
  end
  local offset = reaper.GetMediaItemTakeInfo_Value(target.take, "D_STARTOFFS")
  local rate = reaper.GetMediaItemTakeInfo_Value(target.take, "D_PLAYRATE")
  for i, file in ipairs(files) do
    local take = reaper.AddTakeToMediaItem(target.item)
    reaper.SetMediaItemTake_Source(take, reaper.PCM_Source_CreateFromFile(file))
    reaper.SetMediaItemTakeInfo_Value(take, "D_STARTOFFS", offset)
    reaper.SetMediaItemTakeInfo_Value(take, "D_PLAYRATE", rate)
    reaper.GetSetMediaItemTakeInfo_String(take, "P_NAME", lib.basename(file), true)
    if i == 1 then
      reaper.SetActiveTake(take)
    end
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
  -- One request a source file: items that share a file share its variations.
  local requests, by_file = {}, {}
  for _, target in ipairs(targets) do
    if not by_file[target.file] then
      by_file[target.file] = {}
      local args = { target.file, math.floor(settings.count), settings.noise, "steps=" .. math.floor(settings.steps),
        "folder=" .. folder }
      requests[#requests + 1] = { address = "/dd/vary", args = args, label = lib.basename(target.file),
        file = target.file }
    end
    table.insert(by_file[target.file], target)
  end
  local window = lib.progress_window("Vary")
  lib.run(settings, requests, window, function(results)
    local added, rendered = 0, {}
    for i, request in ipairs(requests) do
      if results[i].status == "done" then
        rendered[#rendered + 1] = { file = request.file, files = results[i].lines }
      end
    end
    if #rendered > 0 then  -- collect first: no empty undo point when every request failed
      lib.begin_changes()
      for _, result in ipairs(rendered) do
        for _, target in ipairs(by_file[result.file]) do
          added = added + add_takes(target, result.files)
        end
      end
      lib.end_changes("DD Bridge: vary " .. #targets .. " item" .. (#targets == 1 and "" or "s"))
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
