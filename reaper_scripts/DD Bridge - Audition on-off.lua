-- @noindex
-- @description DD Bridge - Audition on-off
-- @version 1.10
-- @author DD Bridge
-- @about
--   A toggle. Turns the service's audition on or off (/dd/set audition on|off): while on, Vary plays each
--   variation through the service's audio output instead of placing it, and "Keep last heard" places the last
--   one heard. Its state shows in the action list and on a toolbar button once the service has agreed.
--   Pressed again while it still waits for the service, REAPER asks what to do with the running script: choose
--   "New instance" and tick "Remember my answer" (Terminate would stop the first press's answer).

local _, script_path, section, command = reaper.get_action_context()
local lib = dofile(script_path:match("^(.*[/\\])") .. "DD Bridge - lib.lua")

local ON = 1

local function main()
  -- REAPER keeps the state for the session; -1 (never set) is off, as the service starts unless configured.
  local turning_on = reaper.GetToggleCommandStateEx(section, command) ~= ON
  local word = turning_on and "on" or "off"
  lib.ask(lib.settings(), "/dd/set", { "audition", word }, function(answer)
    if answer.status ~= "ok" then
      lib.message("Audition was not turned " .. word .. ": " .. table.concat(answer.lines, " "))
      return
    end
    reaper.SetToggleCommandState(section, command, turning_on and ON or 0)
    reaper.RefreshToolbar2(section, command)
  end)
end

main()
