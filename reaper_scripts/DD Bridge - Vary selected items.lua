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
--   a key press. An item whose source loops (Item properties: Loop source) gets looped variations, exactly as
--   many bars long at the project's tempo when it lasts whole bars. With the service's audition on, a press
--   plays its variation instead; "Keep last heard" places it.

local script_folder = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local lib = dofile(script_folder .. "DD Bridge - lib.lua")

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
    local loop = lib.loop_options(target)
    local key = lib.region_key(target.region) .. "|" .. table.concat(loop, " ")
    if not by_region[key] then
      by_region[key] = {}
      local args = { target.file, math.floor(settings.count), settings.noise, "steps=" .. math.floor(settings.steps),
        "folder=" .. folder }
      for _, option in ipairs(lib.region_options(target.region)) do
        args[#args + 1] = option
      end
      for _, option in ipairs(loop) do
        args[#args + 1] = option
      end
      requests[#requests + 1] = { address = "/dd/vary", args = args, label = lib.basename(target.file), key = key }
    end
    table.insert(by_region[key], target)
  end
  local window = lib.progress_window("Vary")
  lib.run(settings, requests, window, function(results)
    local rendered = {}
    for i, request in ipairs(requests) do
      if results[i].status == "done" then  -- with audition on, "ok": heard, held back until Keep last heard
        rendered[#rendered + 1] = { targets = by_region[request.key], files = results[i].lines }
      end
    end
    local added = lib.place_takes("DD Bridge: vary " .. #targets .. " item" .. (#targets == 1 and "" or "s"), rendered)
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
