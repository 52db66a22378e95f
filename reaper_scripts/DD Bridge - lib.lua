-- @noindex
-- DD Bridge: what every action shares. Loaded by the actions with dofile from their own folder.
--
-- Lua in REAPER has no sockets, so every request goes through `dd-bridge send --result FILE`, started with
-- ExecProcess(cmd, -2) (no waiting); the action polls FILE from a reaper.defer loop, so REAPER never freezes.

local lib = {}

lib.SECTION = "DD Bridge"  -- ExtState section for every setting
lib.TITLE = "DD Bridge"

-- Defaults and limits: the same values as bridge/constants.py (tests/daw checks they agree).
lib.DEFAULTS = { noise = 0.5, count = 4, steps = 25, model = "", command = "dd-bridge", port = 9000 }
lib.MAX_COUNT = 64
lib.MAX_STEPS = 1000

local NO_WAIT_MINIMIZED = -2
local POLL_SECONDS = 0.3
local QUICK_SECONDS = 5     -- a running service answers these at once, even while rendering
local QUICK = { ["/dd/ping"] = true, ["/dd/select"] = true }  -- not /dd/set: a new model takes a while to load
local OVERDUE_SECONDS = 60  -- on top of QUICK_SECONDS: starting dd-bridge can take long on a busy machine
local REQUEST_TIMEOUT = 600  -- seconds `dd-bridge send` waits for a render without a reply or a progress message
local UNDO_STATE_ALL = -1  -- items, takes and the tracks Generate and Interpolate add

-- ---- Settings ----

function lib.settings()
  local settings = {}
  for key, default in pairs(lib.DEFAULTS) do
    local stored = reaper.GetExtState(lib.SECTION, key)
    if stored == "" then
      settings[key] = default
    elseif type(default) == "number" then
      settings[key] = tonumber(stored) or default
    else
      settings[key] = stored
    end
  end
  return settings
end

function lib.save_settings(settings)
  for key in pairs(lib.DEFAULTS) do
    reaper.SetExtState(lib.SECTION, key, tostring(settings[key]), true)
  end
end

-- Checks one edited setting; returns the value or nil and a message that names the allowed range.
function lib.parse_setting(key, text)
  text = (text or ""):match("^%s*(.-)%s*$")
  if key == "model" or key == "command" then
    if key == "command" and text == "" then
      return nil, "the path to dd-bridge cannot be empty (the default is dd-bridge)"
    end
    return text
  end
  local number = tonumber(text)
  local limits = {
    noise = { 0, 1, false }, count = { 1, lib.MAX_COUNT, true }, steps = { 1, lib.MAX_STEPS, true },
    port = { 1, 65535, true },
  }
  local low, high, integer = table.unpack(limits[key])
  if not number or number < low or number > high or (integer and number % 1 ~= 0) then
    return nil, string.format("%s must be %s from %s to %s, not '%s'", key, integer and "a whole number" or "a number",
      low, high, text)
  end
  return number
end

-- ---- Paths and processes ----

function lib.is_windows()
  return reaper.GetOS():find("Win") ~= nil
end

function lib.separator()
  return lib.is_windows() and "\\" or "/"
end

function lib.join(folder, name)
  if folder:sub(-1) == "/" or folder:sub(-1) == "\\" then
    return folder .. name
  end
  return folder .. lib.separator() .. name
end

function lib.basename(path)
  return path:match("([^/\\]+)$") or path
end

-- One argument for ExecProcess, or nil when it cannot be passed. ExecProcess runs the program without a shell:
-- it splits the command line at spaces, honouring "...", '...' and `...` quotes, and keeps every other
-- character as it is (no backslash escapes; TeamAudio/reaspeech#187). So each argument is wrapped in the
-- first quote character it does not contain. Windows programs read a backslash before the closing quote as
-- an escape, so trailing backslashes are doubled there (a doubled separator is harmless in a path).
function lib.quote(argument)
  argument = tostring(argument)
  if lib.is_windows() then
    argument = argument:gsub("(\\+)$", "%1%1")
  end
  for _, mark in ipairs({ '"', "'", "`" }) do
    if not argument:find(mark, 1, true) then
      return mark .. argument .. mark
    end
  end
  return nil
end

-- The dd-bridge program: the configured path, or the first one found on PATH and the usual install places
-- (REAPER started from the Dock or Start menu sees a short PATH). nil when there is none.
function lib.find_command(command)
  if command:find("[/\\]") then
    return reaper.file_exists(command) and command or nil
  end
  local windows = lib.is_windows()
  local folders = {}
  for folder in (os.getenv("PATH") or ""):gmatch(windows and "[^;]+" or "[^:]+") do
    folders[#folders + 1] = folder
  end
  local home = os.getenv(windows and "USERPROFILE" or "HOME")
  if home then
    folders[#folders + 1] = lib.join(home, ".local" .. lib.separator() .. "bin")
  end
  if not windows then
    folders[#folders + 1] = "/opt/homebrew/bin"
    folders[#folders + 1] = "/usr/local/bin"
  end
  local suffixes = windows and { ".exe", ".cmd", ".bat", "" } or { "" }
  for _, folder in ipairs(folders) do
    for _, suffix in ipairs(suffixes) do
      local candidate = lib.join(folder, command .. suffix)
      if reaper.file_exists(candidate) then
        return candidate
      end
    end
  end
  return nil
end

local function jobs_folder()
  local folder = lib.join(reaper.GetResourcePath(), "Data" .. lib.separator() .. "DD Bridge")
  reaper.RecursiveCreateDirectory(folder, 0)
  return folder
end

local function read_lines(path)
  local file = io.open(path, "rb")
  if not file then
    return nil
  end
  local text = file:read("a")
  file:close()
  local lines = {}
  for line in text:gmatch("[^\r\n]+") do
    lines[#lines + 1] = line
  end
  return lines
end

local job_counter = 0

-- Starts `dd-bridge send --result FILE <address> <args...>` without waiting. Returns the job or nil, message.
function lib.start(settings, address, args)
  local program = lib.find_command(settings.command)
  if not program then
    return nil, "Cannot find dd-bridge ('" .. settings.command .. "').\n\n" ..
      "Install DD Bridge, or set the full path to dd-bridge in the action 'DD Bridge - Settings'."
  end
  job_counter = job_counter + 1
  local name = string.format("job-%d-%d-%d", math.floor(reaper.time_precise() * 1000), job_counter,
    math.random(0, 999999))
  local job = { result = lib.join(jobs_folder(), name .. ".txt"), started = reaper.time_precise(), address = address }
  job.progress_file = job.result .. ".progress"
  local words = { lib.quote(program), "send", "--port", tostring(math.floor(settings.port)),
    "--timeout", tostring(QUICK[address] and QUICK_SECONDS or REQUEST_TIMEOUT),
    "--result", lib.quote(job.result), lib.quote(address) }
  for _, arg in ipairs(args or {}) do
    local quoted = lib.quote(arg)
    if not quoted then
      return nil, "Cannot pass this to dd-bridge, it holds all three quote characters (\", ' and `):\n" .. arg
    end
    words[#words + 1] = quoted
  end
  if reaper.ExecProcess(table.concat(words, " "), NO_WAIT_MINIMIZED) == nil then
    return nil, "Could not start " .. program .. "."
  end
  return job
end

-- nil while the job runs; then {status = "done" | "ok" | "error", lines = {...}} (files cleaned up).
function lib.poll(job)
  local progress = read_lines(job.progress_file)
  if progress and progress[1] then
    job.fraction = tonumber(progress[1]) or job.fraction
  end
  local lines = read_lines(job.result)
  if not lines or not lines[1] then
    return nil
  end
  os.remove(job.result)
  os.remove(job.progress_file)
  local status = table.remove(lines, 1)
  return { status = status, lines = lines }
end

-- ---- Running requests from a defer loop ----

function lib.not_running(settings)
  return string.format("The DD Bridge service is not running (no answer on port %d).\n\n" ..
    "Start it with 'dd-bridge serve' (or ./bootstrap.sh serve) and try again.", settings.port)
end

-- dd-bridge writes an answer even when the service is silent; none long after that means the program did not
-- run as it should (a wrong path in Settings, a broken install).
function lib.overdue(job, now)
  return now - job.started > QUICK_SECONDS + OVERDUE_SECONDS
end

function lib.no_answer(settings)
  return string.format("'%s' gave no answer within %d s.\n\nCheck the path to dd-bridge in 'DD Bridge - Settings' " ..
    "and that 'dd-bridge serve' is running.", settings.command, QUICK_SECONDS + OVERDUE_SECONDS)
end

-- Runs `requests` ({address, args, label}) side by side. First a ping tells quickly whether the service is
-- there, then the model setting (when one is set) is applied, then the requests start. window (see
-- lib.progress_window) shows a line a request while they run and is closed at the end; finish(results) is
-- called once with {[i] = {status, lines}} when all have answered. A failure before the requests start is
-- shown in a message box and finish is not called.
function lib.run(settings, requests, window, finish)
  local waiting, failure = lib.start(settings, "/dd/ping", {})
  if not waiting then
    lib.message(failure)
    return
  end
  local phase = "ping"
  local jobs, results, remaining = {}, {}, #requests
  local next_poll = 0

  -- Ends the run: the window closes before any message shows. Returns false, for advance.
  local function stop(message)
    window.close()
    if message then
      lib.message(message)
    end
    return false
  end

  local function start_requests()
    for i, request in ipairs(requests) do
      jobs[i], failure = lib.start(settings, request.address, request.args)
      if not jobs[i] then
        return stop(failure)
      end
    end
    phase = "requests"
    return true
  end

  -- One poll; returns false when the run is over.
  local function advance(now)
    if phase == "ping" then
      local answer = lib.poll(waiting)
      if answer and answer.status == "ok" then
        if settings.model == "" then
          return start_requests()
        end
        waiting, failure = lib.start(settings, "/dd/set", { "model", settings.model })
        if not waiting then
          return stop(failure)
        end
        phase = "model"
      elseif answer then
        return stop(lib.not_running(settings))
      elseif lib.overdue(waiting, now) then
        return stop(lib.no_answer(settings))
      end
    elseif phase == "model" then
      local answer = lib.poll(waiting)
      if answer and answer.status ~= "ok" then
        return stop("Cannot use the model '" .. settings.model .. "':\n\n" .. table.concat(answer.lines, "\n") ..
          "\n\nChange it in 'DD Bridge - Settings'.")
      elseif answer then
        return start_requests()
      end
    else
      for i in ipairs(requests) do
        if not results[i] then
          results[i] = lib.poll(jobs[i])
          remaining = remaining - (results[i] and 1 or 0)
        end
      end
      if remaining == 0 then
        stop()
        finish(results)
        return false
      end
    end
    return true
  end

  local function step()
    local now = reaper.time_precise()
    if now >= next_poll then
      next_poll = now + POLL_SECONDS
      if not advance(now) then
        return
      end
      local lines = {}
      for i, request in ipairs(requests) do
        local state = phase ~= "requests" and "waiting for the service" or results[i] and "done" or
          string.format("%d%%", math.floor(100 * (jobs[i].fraction or 0)))
        lines[#lines + 1] = request.label .. ": " .. state
      end
      window.show(lines)
    end
    reaper.defer(step)
  end

  step()
end

-- The errors of a finished run, one line each, or nil when all went well.
function lib.errors(requests, results)
  local lines = {}
  for i, result in ipairs(results) do
    if result.status == "error" then
      lines[#lines + 1] = requests[i].label .. ": " .. table.concat(result.lines, " ")
    end
  end
  return #lines > 0 and table.concat(lines, "\n") or nil
end

-- ---- What the producer sees ----

function lib.message(text)
  reaper.ShowMessageBox(text, lib.TITLE, 0)
end

-- A small window with one line a request; closing it only hides it, the work goes on.
function lib.progress_window(title)
  local window = { open = false, closed = false }
  function window.show(lines)
    if window.closed then
      return
    end
    if not window.open then
      gfx.init(lib.TITLE .. ": " .. title, 360, 24 + 18 * math.min(#lines, 12))
      gfx.setfont(1, "Arial", 15)
      window.open = true
    end
    if gfx.getchar() < 0 then
      window.closed = true
      return
    end
    gfx.set(0.15, 0.15, 0.15)
    gfx.rect(0, 0, gfx.w, gfx.h, 1)
    gfx.set(0.9, 0.9, 0.9)
    for i, line in ipairs(lines) do
      gfx.x, gfx.y = 10, 6 + 18 * (i - 1)
      gfx.drawstr(line)
    end
    gfx.update()
  end
  function window.close()
    if window.open then
      gfx.quit()
    end
    window.open = false
  end
  return window
end

-- ---- Items, takes and tracks ----

-- The file behind a take (through sections and reversed sources), or nil for MIDI and empty takes.
function lib.take_file(take)
  if not take or reaper.TakeIsMIDI(take) then
    return nil
  end
  local source = reaper.GetMediaItemTake_Source(take)
  while source and reaper.GetMediaSourceParent(source) do
    source = reaper.GetMediaSourceParent(source)
  end
  local file = source and reaper.GetMediaSourceFileName(source, "") or ""
  return file ~= "" and file or nil
end

-- The selected items: {item, take, file} for audio, and how many were MIDI (or had no source file).
function lib.selected_audio_items()
  local audio, skipped = {}, 0
  for i = 0, reaper.CountSelectedMediaItems(0) - 1 do
    local item = reaper.GetSelectedMediaItem(0, i)
    local take = reaper.GetActiveTake(item)
    local file = lib.take_file(take)
    if file then
      audio[#audio + 1] = { item = item, take = take, file = file }
    else
      skipped = skipped + 1
    end
  end
  return audio, skipped
end

function lib.no_audio_message(skipped)
  if skipped > 0 then
    return "The selected items are MIDI (or have no audio file): DD Bridge works on audio items."
  end
  return "Select one or more audio items first."
end

-- Where new files go: the project's media folder.
function lib.output_folder()
  return reaper.GetProjectPath("")
end

function lib.begin_changes()
  reaper.Undo_BeginBlock()
  reaper.PreventUIRefresh(1)
end

function lib.end_changes(description)
  reaper.PreventUIRefresh(-1)
  reaper.UpdateArrange()
  reaper.Undo_EndBlock(description, UNDO_STATE_ALL)
end

-- A new track at `index` (0-based) named `name`; returns it.
function lib.new_track(index, name)
  reaper.InsertTrackAtIndex(index, true)
  local track = reaper.GetTrack(0, index)
  reaper.GetSetMediaTrackInfo_String(track, "P_NAME", name, true)
  return track
end

-- Puts `files` one after another on `track` from `position` (seconds); returns the end position.
function lib.place_files(track, files, position)
  for _, file in ipairs(files) do
    local item = reaper.AddMediaItemToTrack(track)
    local take = reaper.AddTakeToMediaItem(item)
    local source = reaper.PCM_Source_CreateFromFile(file)
    reaper.SetMediaItemTake_Source(take, source)
    reaper.GetSetMediaItemTakeInfo_String(take, "P_NAME", lib.basename(file), true)
    local length = reaper.GetMediaSourceLength(source)
    reaper.SetMediaItemInfo_Value(item, "D_POSITION", position)
    reaper.SetMediaItemInfo_Value(item, "D_LENGTH", length)
    position = position + length
  end
  return position
end

return lib
