-- @noindex
-- @description DD Bridge - Keep last heard
-- @version 1.10
-- @author DD Bridge
-- @about
--   Audition (the service's `audition` on): "Vary selected items" plays each variation instead of placing it.
--   This action keeps the last one heard: the service writes it into the project's media folder and it becomes
--   a new take on the selected item it is a variation of, as Vary places its results (with the original take's
--   FX and envelopes; or, with no such item selected, a new item at the edit cursor on a new track). Bind it to a
--   MIDI key next to Vary's.
--   Pressed again while it still waits for the service, REAPER asks what to do with the running script: choose
--   "New instance" and tick "Remember my answer" (Terminate would lose the renders in flight).

local script_folder = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local lib = dofile(script_folder .. "DD Bridge - lib.lua")

-- A source's stem as the service writes it into its variations' names (docs/osc.md, Files): control characters
-- and /\:*?"<>| become _.
local function service_stem(file)
  local stem = lib.basename(file):gsub("%.[^.]*$", "")
  return (stem:gsub('[%c/\\:*?"<>|]', "_"))
end

-- Is `kept` (a variation's file) a variation of what target plays? Its name starts with the source's stem and,
-- for a part of the file, shows that part ("kick 1.000-1.200s var 001.wav").
local function made_from(kept, target)
  local name, stem = lib.basename(kept), service_stem(target.file)
  if name:sub(1, #stem + 1) ~= stem .. " " then
    return false
  end
  local rest = name:sub(#stem + 2)
  if target.region.whole then
    return rest:find("^%d+%.%d%d%d%-%d+%.%d%d%ds ") == nil
  end
  return rest:find(string.format("%.3f-%.3fs ", target.region.start, target.region.finish), 1, true) == 1
end

local function main()
  local settings = lib.settings()
  local targets = lib.selected_audio_items()
  local position = reaper.GetCursorPosition()
  local requests = { { address = "/dd/keep", label = "keep", args = {} } }
  local window = lib.progress_window("Keep")
  lib.run(settings, requests, window, function(results)
    local errors = lib.errors(requests, results)
    if errors then
      lib.message("Nothing was kept:\n\n" .. errors)
      return
    end
    local rendered, placed = {}, {}
    for _, file in ipairs(results[1].lines) do
      local owners = {}
      for _, target in ipairs(targets) do
        if made_from(file, target) then
          owners[#owners + 1] = target
        end
      end
      if #owners > 0 then
        rendered[#rendered + 1] = { targets = owners, files = { file } }
        placed[file] = true
      end
    end
    local loose = {}
    for _, file in ipairs(results[1].lines) do
      loose[#loose + 1] = not placed[file] and file or nil
    end
    local not_carried  -- what of the original take's FX and envelopes the kept take could not get
    lib.change("DD Bridge: keep last heard", function()
      local _
      _, not_carried = lib.place_takes_now(rendered)
      if #loose > 0 then
        lib.place_files(lib.new_track(reaper.CountTracks(0), "DD Kept"), loose, position)
      end
    end)
    if not_carried then
      lib.message(not_carried)
    end
  end)
end

main()
reaper.defer(function() end)  -- no empty undo point when the action stops early
