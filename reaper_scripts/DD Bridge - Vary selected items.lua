-- @noindex
-- @description DD Bridge - Vary selected items
-- @version 1.10
-- @author DD Bridge
-- @about
--   For each selected audio item, Dance Diffusion variations of what the item plays (its part of the source
--   file: offset, length and playrate, section and reversed sources included) become new takes on the item,
--   lined up with the original take (sound that starts after the item's start included) and with its pitch,
--   playrate, pitch mode, volume, polarity, pan and channel mode, its take FX (REAPER 5.95 or later) and its take
--   envelopes (volume, pan, mute, pitch, FX parameters); the first new take is active. Renders run in the DD
--   Bridge service (`dd-bridge serve`); REAPER stays responsive meanwhile and a small window shows the
--   progress. Bind a MIDI key to this action in the Action List to get variations from a key press. An item
--   whose source loops (Item properties: Loop source) gets looped variations, exactly as many bars long at the
--   project's tempo when it lasts whole bars; one that plays across the loop point (a trimmed or split loop)
--   varies the whole loop, and its new takes start at the same point in it. Items with stretch markers are
--   skipped (glue them first). With the service's audition on, a press plays its variation instead; "Keep
--   last heard" places it.
--   Pressed again while it still waits for the service, REAPER asks what to do with the running script: choose
--   "New instance" and tick "Remember my answer" (Terminate would lose the renders in flight).

local script_folder = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local lib = dofile(script_folder .. "DD Bridge - lib.lua")

local function main()
  local targets, skipped, stretched = lib.selected_audio_items_or_say()
  if not targets then
    return
  end
  local settings = lib.settings()
  local folder = lib.output_folder()
  -- One request for each part of a file: items that play the same part share its variations.
  local requests, by_region = lib.group_requests(targets, function(target)
    local loop = lib.loop_options(target)
    local args = { target.file, math.floor(settings.count), settings.noise, "steps=" .. math.floor(settings.steps),
      "folder=" .. folder }
    for _, option in ipairs(lib.region_options(target.region)) do
      args[#args + 1] = option
    end
    for _, option in ipairs(loop) do
      args[#args + 1] = option
    end
    return lib.region_key(target.region) .. "|" .. table.concat(loop, " "),
      { address = "/dd/vary", args = args, label = lib.basename(target.file) }
  end)
  local window = lib.progress_window("Vary")
  lib.run(settings, requests, window, function(results)
    lib.finish_takes(requests, results, by_region, { undo = "DD Bridge: vary " .. lib.items(#targets),
      failed = "Some variations could not be made", stretched = stretched, left_out = function(added)
        return skipped > 0 and string.format("Added %d takes. %d MIDI item%s skipped.", added, skipped,
          skipped == 1 and " was" or "s were") or nil
      end })
  end)
end

main()
reaper.defer(function() end)  -- no empty undo point when the action stops early
