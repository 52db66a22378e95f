-- @noindex
-- @description DD Bridge - Generate at edit cursor
-- @version 1.10
-- @author DD Bridge
-- @about
--   New sounds from the Dance Diffusion model alone, placed one after another on a new track at the edit
--   cursor. Rendered by the DD Bridge service (`dd-bridge serve`) without freezing REAPER.

local script_folder = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local lib = dofile(script_folder .. "DD Bridge - lib.lua")

local function main()
  local settings = lib.settings()
  local position = reaper.GetCursorPosition()
  local requests = {
    { address = "/dd/generate", label = "generate",
      args = { math.floor(settings.count), "steps=" .. math.floor(settings.steps), "folder=" .. lib.output_folder() } },
  }
  local window = lib.progress_window("Generate")
  lib.run(settings, requests, window, function(results)
    local errors = lib.errors(requests, results)
    if errors then
      lib.message("Nothing was generated:\n\n" .. errors)
      return
    end
    lib.change("DD Bridge: generate at edit cursor", function()
      local track = lib.new_track(reaper.CountTracks(0), "DD Generated")
      lib.place_files(track, results[1].lines, position)
    end)
  end)
end

main()
reaper.defer(function() end)  -- no empty undo point when the action stops early
