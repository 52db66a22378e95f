-- @description DD Bridge
-- @version 1.10
-- @author DD Bridge
-- @about
--   Dance Diffusion variations of the selected items, rendered by the DD Bridge service (`dd-bridge serve`)
--   while REAPER stays responsive. New files go to the project's media folder: add your REAPER projects
--   folder to `allowed_folders` in the service's configuration.
-- @provides
--   [nomain] .
--   [main] DD Bridge - Audition on-off.lua
--   [main] DD Bridge - Extend selected items.lua
--   [main] DD Bridge - Follow selection.lua
--   [main] DD Bridge - Generate at edit cursor.lua
--   [main] DD Bridge - Interpolate between two selected items.lua
--   [main] DD Bridge - Keep last heard.lua
--   [main] DD Bridge - Recipe menu.lua
--   [main] DD Bridge - Repaint time selection of selected items.lua
--   [main] DD Bridge - Save guides as recipe.lua
--   [main] DD Bridge - Settings.lua
--   [main] DD Bridge - Vary selected items.lua
--
-- The ReaPack package (ReaTeam's layout: this library, not an action, carries the package's header and
-- provides the actions, which are @noindex). And what every action shares. Loaded by the actions with dofile from their own folder.
--
-- Lua in REAPER has no sockets, so every request goes through `dd-bridge send --result FILE`, started with
-- ExecProcess(cmd, -2) (no waiting); the action polls FILE from a reaper.defer loop, so REAPER never freezes.

local lib = {}

lib.SECTION = "DD Bridge"  -- ExtState section for every setting
lib.TITLE = "DD Bridge"

-- Defaults and limits: the same values as bridge/constants.py (tests/daw checks they agree).
lib.DEFAULTS = { noise = 0.5, count = 4, steps = 25, model = "", command = "dd-bridge", port = 9000, guide = "",
  class = "off", class_amount = 1, recipe = "" }
lib.MAX_COUNT = 64
lib.MAX_STEPS = 1000
-- The names the service's `class` guide takes (`class=AMOUNT:NAME`, docs/guidance.md; the Live device's Class menu
-- has the same), and its amount's range (0: off).
lib.CLASSES = { "kick", "snare", "hat", "tom", "cymbal", "clap", "perc" }
lib.MAX_CLASS_AMOUNT = 2

local NO_WAIT_MINIMIZED = -2
local POLL_SECONDS = 0.3
local QUICK_SECONDS = 5     -- a running service answers these at once, even while rendering
local QUICK = { ["/dd/ping"] = true, ["/dd/select"] = true }  -- not /dd/set: a new model takes a while to load
local OVERDUE_SECONDS = 60  -- on top of QUICK_SECONDS: starting dd-bridge can take long on a busy machine
local REQUEST_TIMEOUT = 600  -- seconds `dd-bridge send` waits for a render without a reply or a progress message
local UNDO_STATE_ALL = -1  -- items, takes and the tracks Generate and Interpolate add
-- `dd-bridge send` gives up after REQUEST_TIMEOUT s without news and then writes its answer: no answer and no
-- new progress for this much longer means it died (killed, crashed) and the action stops waiting.
local GIVE_UP_SECONDS = REQUEST_TIMEOUT + OVERDUE_SECONDS
local EDGE_SECONDS = 0.0005  -- a region this close to the file's edges is the whole file
local TOGGLE_TAKE_REVERSE = 41051  -- "Item properties: Toggle take reverse" (acts on the selected items' active takes)
local MISSING_ANSWER = "dd-bridge stopped without an answer"

-- ---- Settings ----

function lib.settings()
  local settings = {}
  for key, default in pairs(lib.DEFAULTS) do
    local stored = reaper.GetExtState(lib.SECTION, key)
    if stored == "" then
      settings[key] = default
    elseif type(default) == "number" then
      settings[key] = tonumber(stored) or default
    elseif key == "command" or key == "model" then
      settings[key] = lib.unquote(stored)  -- kept with quotes before they were taken off on OK
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

-- A path without one pair of surrounding double quotes: Windows Explorer's "Copy as path" adds them, and the file
-- is then never found. Spaces inside need no quotes here: lib.quote passes each argument whole.
function lib.unquote(text)
  return text:match('^%s*"(.*)"%s*$') or text
end

-- Checks one edited setting; returns the value or nil and a message that names the allowed range.
function lib.parse_setting(key, text)
  text = (text or ""):match("^%s*(.-)%s*$")
  if key == "model" or key == "command" then
    text = lib.unquote(text)
  end
  if key == "model" or key == "command" or key == "guide" or key == "recipe" then  -- the service checks these
    if key == "command" and text == "" then
      return nil, "the path to dd-bridge cannot be empty (the default is dd-bridge)"
    end
    return text
  end
  if key == "class" then
    local name = text == "" and "off" or text:lower()
    for _, known in ipairs(lib.CLASSES) do
      if name == known then
        return name
      end
    end
    if name == "off" then
      return name
    end
    return nil, string.format("class must be off or one of %s, not '%s'", table.concat(lib.CLASSES, ", "), text)
  end
  local number = tonumber(text)
  local limits = {
    noise = { 0, 1, false }, count = { 1, lib.MAX_COUNT, true }, steps = { 1, lib.MAX_STEPS, true },
    port = { 1, 65535, true }, class_amount = { 0, lib.MAX_CLASS_AMOUNT, false },
  }
  local low, high, integer = table.unpack(limits[key])
  if not number or number < low or number > high or (integer and number % 1 ~= 0) then
    return nil, string.format("%s must be %s from %s to %s, not '%s'", key, integer and "a whole number" or "a number",
      low, high, text)
  end
  return number
end

-- The guides the service is to steer by, as one `/dd/set guide` value: the Guides field as typed, then the class
-- when it is not off and its amount above 0 (`brightness=0.5;class=1:kick`); "" when there are none.
function lib.guide_text(settings)
  local parts = {}
  if settings.guide ~= "" then
    parts[#parts + 1] = settings.guide
  end
  if settings.class ~= "off" and settings.class_amount > 0 then
    parts[#parts + 1] = string.format("class=%g:%s", settings.class_amount, settings.class)
  end
  return table.concat(parts, ";")
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

-- One argument for ExecProcess, or nil when it cannot be passed.
-- On macOS and Linux ExecProcess runs the program without a shell: it splits the command line at spaces,
-- honouring "...", '...' and `...` quotes, and keeps every other character as it is (no backslash escapes;
-- TeamAudio/reaspeech#187). So each argument is wrapped in the first quote character it does not contain.
-- On Windows the command line goes to the program as it is, and the program splits it by the Microsoft C
-- runtime's rules (only "..." quotes; a backslash escapes a quote; backslashes before a quote are doubled):
-- every argument can be passed that way.
function lib.quote(argument)
  argument = tostring(argument)
  if lib.is_windows() then
    local escaped = argument:gsub('(\\*)"', function(slashes) return slashes .. slashes .. '\\"' end)
    escaped = escaped:gsub("(\\+)$", "%1%1")
    return '"' .. escaped .. '"'
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
-- quick: the service answers at once (as it does /dd/ping), so dd-bridge waits only a few seconds for it.
function lib.start(settings, address, args, quick)
  local program = lib.find_command(settings.command)
  if not program then
    return nil, "Cannot find dd-bridge ('" .. settings.command .. "').\n\n" ..
      "Install DD Bridge, or set the full path to dd-bridge in the action 'DD Bridge - Settings'."
  end
  job_counter = job_counter + 1
  local name = string.format("job-%d-%d-%d", math.floor(reaper.time_precise() * 1000), job_counter,
    math.random(0, 999999))
  local now = reaper.time_precise()
  local job = { result = lib.join(jobs_folder(), name .. ".txt"), started = now, heard = now, address = address }
  job.progress_file = job.result .. ".progress"
  local words = { lib.quote(program), "send", "--port", tostring(math.floor(settings.port)),
    "--timeout", tostring((quick or QUICK[address]) and QUICK_SECONDS or REQUEST_TIMEOUT),
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
  local fraction = progress and progress[1] and tonumber(progress[1])
  if fraction and fraction ~= job.fraction then
    job.fraction, job.heard = fraction, reaper.time_precise()
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

-- Is `answer` dd-bridge's own error for a service that sent no reply (not running, or gone), rather than the
-- service refusing a request? `dd-bridge send` starts that line with "no reply from the service".
function lib.no_reply(answer)
  return answer.status == "error" and (answer.lines[1] or ""):find("^no reply") ~= nil
end

-- dd-bridge writes an answer even when the service is silent; none long after that means the program did not
-- run as it should (a wrong path in Settings, a broken install).
function lib.overdue(job, now)
  return now - job.started > QUICK_SECONDS + OVERDUE_SECONDS
end

-- No answer and no new progress for longer than `dd-bridge send` itself waits: it is gone.
function lib.gone(job, now)
  return now - job.heard > GIVE_UP_SECONDS
end

function lib.no_answer(settings)
  return string.format("'%s' gave no answer within %d s.\n\nCheck the path to dd-bridge in 'DD Bridge - Settings' " ..
    "and that 'dd-bridge serve' is running.", settings.command, QUICK_SECONDS + OVERDUE_SECONDS)
end

-- Sends one request the service answers at once (a setting other than the model) and, from a defer loop,
-- calls done(answer) with its {status, lines}; no answer in time is an error answer that says why. A failure to
-- start dd-bridge is shown in a message box and done is not called.
function lib.ask(settings, address, args, done)
  local job, failure = lib.start(settings, address, args, true)
  if not job then
    lib.message(failure)
    return
  end
  local next_poll = 0
  local function step()
    local now = reaper.time_precise()
    if now >= next_poll then
      next_poll = now + POLL_SECONDS
      local answer = lib.poll(job)
      if not answer and lib.overdue(job, now) then
        answer = { status = "error", lines = { (lib.no_answer(settings):gsub("\n+", " ")) } }
      end
      if answer then
        done(answer)
        return
      end
    end
    reaper.defer(step)
  end
  step()
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
      if not answer and lib.gone(waiting, now) then
        return stop("Cannot use the model '" .. settings.model .. "': " .. MISSING_ANSWER .. " after " ..
          GIVE_UP_SECONDS .. " s.\n\nCheck that 'dd-bridge serve' is running, and try again.")
      elseif answer and answer.status ~= "ok" then
        return stop("Cannot use the model '" .. settings.model .. "':\n\n" .. table.concat(answer.lines, "\n") ..
          "\n\nChange it in 'DD Bridge - Settings'.")
      elseif answer then
        return start_requests()
      end
    else
      for i in ipairs(requests) do
        if not results[i] then
          results[i] = lib.poll(jobs[i])
          if not results[i] and lib.gone(jobs[i], now) then
            results[i] = { status = "error", lines = { MISSING_ANSWER .. " (nothing heard for " .. GIVE_UP_SECONDS .. " s)" } }
          end
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

-- What a take plays of its file between `from` and `to` seconds of the item's own time (0: the item's start):
-- {file, start, finish, reversed, whole, lead, tail, phase}, in seconds of the file, or nil for MIDI and empty
-- takes (and for a range that plays none of the file). The take plays its source from D_STARTOFFS at D_PLAYRATE;
-- a section source (REAPER's "Section" and reversed takes) maps that into its parent, flipped when it is
-- reversed. Seconds before the source's start or past its end are silence: left out, and kept as lead and tail
-- (seconds of the take's source before and after it), so a new take can start as late as the original does.
-- A looped source (B_LOOPSRC) plays over and over from any offset: a range that crosses the loop point or lasts
-- a whole pass is the whole source, and phase is where in it the range begins (nil otherwise).
function lib.take_span(item, take, from, to)
  if not take or not reaper.ValidatePtr2(0, take, "MediaItem_Take*") or reaper.TakeIsMIDI(take) then
    return nil
  end
  local source = reaper.GetMediaItemTake_Source(take)
  if not source then
    return nil
  end
  local offset, rate = reaper.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS"), reaper.GetMediaItemTakeInfo_Value(take, "D_PLAYRATE")
  from, to = offset + from * rate, offset + to * rate
  local period = reaper.GetMediaSourceLength(source)  -- of the take's own source: a section's length for one
  local lead, tail, phase = 0, 0, nil
  if period > 0 then
    if reaper.GetMediaItemInfo_Value(item, "B_LOOPSRC") == 1 then
      -- A looped take's offset may lie past the source's length (the right part of a split loop) or below 0: the
      -- pass it starts in is found modulo the source's length. An item that plays across the loop point (the
      -- source's end, then its start) plays no one range of it: only the whole source is.
      local shift = math.floor((from + EDGE_SECONDS) / period) * period
      from, to = math.max(0, from - shift), to - shift
      if to > period + EDGE_SECONDS or to - from >= period - EDGE_SECONDS then
        from, to, phase = 0, period, from
      end
    end
    lead, tail = math.max(0, -from), math.max(0, to - period)
    from, to = from + lead, to - tail
    if to <= from then
      return nil  -- only the silence before or after the source
    end
  end
  local reversed = false
  local parent = reaper.GetMediaSourceParent(source)
  while parent do
    local ok, section_offset, length, reverse = reaper.PCM_Source_GetSectionInfo(source)
    if ok and reverse then
      from, to, reversed = section_offset + length - to, section_offset + length - from, not reversed
    elseif ok then
      from, to = section_offset + from, section_offset + to
    end
    source, parent = parent, reaper.GetMediaSourceParent(parent)
  end
  local file = reaper.GetMediaSourceFileName(source, "")
  if file == "" then
    return nil
  end
  local length = reaper.GetMediaSourceLength(source)
  from, to = math.max(0, from), math.min(to, length)
  return { file = file, start = from, finish = to, reversed = reversed, length = length, lead = lead, tail = tail,
    phase = phase, whole = from < EDGE_SECONDS and to > length - EDGE_SECONDS }
end

-- What a take plays of its file over the whole item (lib.take_span).
function lib.take_region(item, take)
  if not reaper.ValidatePtr2(0, item, "MediaItem*") then
    return nil
  end
  return lib.take_span(item, take, 0, reaper.GetMediaItemInfo_Value(item, "D_LENGTH"))
end

-- What an item whose source loops (B_LOOPSRC) loops: one whole pass of its take's source, in seconds of the file
-- (lib.take_span's region: the section it loops, or the whole file), with phase where in the pass the item starts;
-- nil for an item that does not loop. A new take that plays this part of the file alone, looped, from that phase
-- plays as the original does on every pass, whatever the item's length.
function lib.loop_region(item, take)
  if not reaper.ValidatePtr2(0, item, "MediaItem*") or reaper.GetMediaItemInfo_Value(item, "B_LOOPSRC") ~= 1 or
    not take or not reaper.ValidatePtr2(0, take, "MediaItem_Take*") or reaper.TakeIsMIDI(take) then
    return nil
  end
  local source = reaper.GetMediaItemTake_Source(take)
  local period = source and reaper.GetMediaSourceLength(source) or 0
  local rate = reaper.GetMediaItemTakeInfo_Value(take, "D_PLAYRATE")
  if period <= 0 or rate <= 0 then
    return nil
  end
  return lib.take_span(item, take, 0, period / rate)  -- a whole pass from where the item starts
end

-- Seconds from the item's start to where its take's sound starts: the silence it plays before its file (its
-- region's lead, lib.take_span: in the take's own seconds at the item's start, for reversed takes too) at its
-- playrate. 0 for a take whose sound starts with the item.
function lib.lead_time(target)
  return (target.region.lead or 0) / reaper.GetMediaItemTakeInfo_Value(target.take, "D_PLAYRATE")
end

-- The file behind a take (through sections and reversed sources), or nil for MIDI and empty takes.
function lib.take_file(item, take)
  local region = lib.take_region(item, take)
  return region and region.file or nil
end

-- The region as request options (start=, end= in seconds of the file; prefix "b_" for interpolate's second
-- clip); none for the whole file, which every service understands.
function lib.region_options(region, prefix)
  if region.whole then
    return {}
  end
  prefix = prefix or ""
  return { string.format("%sstart=%.6f", prefix, region.start), string.format("%send=%.6f", prefix, region.finish) }
end

-- A key that is the same for takes that play the same part of the same file.
function lib.region_key(region)
  return region.whole and region.file or string.format("%s|%.6f|%.6f", region.file, region.start, region.finish)
end

-- Does the take have stretch markers? Then its item plays the file at rates that change from marker to marker:
-- what it plays is not D_STARTOFFS + length x playrate, and a new take (which has none) would not line up.
function lib.stretched(take)
  return reaper.GetTakeNumStretchMarkers ~= nil and reaper.GetTakeNumStretchMarkers(take) > 0
end

-- One line on the selected items passed over for their stretch markers, or nil for none.
function lib.stretched_note(count)
  if (count or 0) == 0 then
    return nil
  end
  return string.format("%s stretch markers and %s skipped: glue %s (Item > Glue items) to use %s with DD Bridge.",
    count == 1 and "1 selected item has" or count .. " selected items have", count == 1 and "was" or "were",
    count == 1 and "it" or "them", count == 1 and "it" or "them")
end

-- The selected items: {item, take, file, region} for audio, how many were MIDI (or had no source file), and how
-- many had stretch markers (lib.stretched).
function lib.selected_audio_items()
  local audio, skipped, stretched = {}, 0, 0
  for i = 0, reaper.CountSelectedMediaItems(0) - 1 do
    local item = reaper.GetSelectedMediaItem(0, i)
    local take = reaper.GetActiveTake(item)
    local region = lib.take_region(item, take)
    if region and lib.stretched(take) then
      stretched = stretched + 1
    elseif region then
      audio[#audio + 1] = { item = item, take = take, file = region.file, region = region }
    else
      skipped = skipped + 1
    end
  end
  return audio, skipped, stretched
end

-- lib.selected_audio_items for an action that needs some: nil when there are none, after saying so.
function lib.selected_audio_items_or_say()
  local targets, skipped, stretched = lib.selected_audio_items()
  if #targets == 0 then
    lib.message(lib.no_audio_message(skipped, stretched))
    return nil
  end
  return targets, skipped, stretched
end

function lib.no_audio_message(skipped, stretched)
  if (stretched or 0) > 0 then
    return lib.stretched_note(stretched)
  end
  if skipped > 0 then
    return "The selected items are MIDI (or have no audio file): DD Bridge works on audio items."
  end
  return "Select one or more audio items first."
end

-- Where new files go: the project's media folder.
function lib.output_folder()
  return reaper.GetProjectPath("")
end

-- Runs fn(), which changes the project, as one undo point with the screen refreshed once at the end. Undo and
-- refresh stay balanced whatever fn does: an error in it is caught and shown. Returns true when fn ran through.
function lib.change(description, fn)
  reaper.Undo_BeginBlock()
  reaper.PreventUIRefresh(1)
  local ok, failure = xpcall(fn, debug.traceback)
  reaper.PreventUIRefresh(-1)
  reaper.UpdateArrange()
  reaper.Undo_EndBlock(description, UNDO_STATE_ALL)
  if not ok then
    lib.message("Placing the results went wrong part way (Edit > Undo takes back what was done):\n\n" ..
      tostring(failure))
  end
  return ok
end

-- A source for a new file, with its peaks built so the waveform shows at once.
function lib.new_source(file)
  local source = reaper.PCM_Source_CreateFromFile(file)
  if reaper.PCM_Source_BuildPeaks(source, 0) ~= 0 then
    while reaper.PCM_Source_BuildPeaks(source, 1) ~= 0 do
    end
    reaper.PCM_Source_BuildPeaks(source, 2)
  end
  return source
end

-- The selected items, to put the selection back after an action that works on selected items.
function lib.selection()
  local items = {}
  for i = 0, reaper.CountSelectedMediaItems(0) - 1 do
    items[#items + 1] = reaper.GetSelectedMediaItem(0, i)
  end
  return items
end

function lib.restore_selection(items)
  reaper.SelectAllMediaItems(0, false)
  for _, item in ipairs(items) do
    if reaper.ValidatePtr2(0, item, "MediaItem*") then
      reaper.SetMediaItemSelected(item, true)
    end
  end
end

-- Runs REAPER's action `command` on `take` alone: the take actions work on the active takes of the selected items,
-- so the item is selected alone with the take active for it (the caller puts the selection back).
local function act_on_take(item, take, command)
  reaper.SelectAllMediaItems(0, false)
  reaper.SetMediaItemSelected(item, true)
  reaper.SetActiveTake(take)
  reaper.Main_OnCommand(command, 0)
end

-- Reverses `take` as REAPER's "Toggle take reverse" does (there is no API call for it).
function lib.reverse_take(item, take)
  act_on_take(item, take, TOGGLE_TAKE_REVERSE)
end

-- ---- Take FX and take envelopes: what the producer put on the original take ----

-- The actions that show a take's volume, pan, mute and pitch envelope on the active takes of the selected items,
-- making the envelope when the take has none ("Take: Toggle take volume envelope" 40693, "... pan envelope" 40694,
-- "... mute envelope" 40695, "... pitch envelope" 41612; the IDs OSARA's envelope commands run,
-- jcsteh/osara src/envelopeCommands.cpp). The API has no call that makes one of these four
-- (GetTakeEnvelopeByName only finds one, by its localized name), so they are made as REAPER's own menus make
-- them, then given the original's state with SetEnvelopeStateChunk ("Sets the RPPXML state of an envelope").
-- Keyed by the tag the envelope's state chunk opens with (<VOLENV, <PANENV, <MUTEENV, <PITCHENV, as in a
-- project file's take), which does not change with REAPER's language. Not the take's part of the item chunk
-- (GetItemStateChunk/SetItemStateChunk): that is parsing and writing back the whole item, every take with its
-- source and FX, to move a few lines; an envelope's chunk is that envelope alone.
local TAKE_ENVELOPE_ACTIONS = { VOLENV = 40693, PANENV = 40694, MUTEENV = 40695, PITCHENV = 41612 }

-- The state chunk of `envelope` ("Gets the RPPXML state of an envelope"; isundo false: the full state, not the
-- undo system's shortcut), or nil.
local function envelope_chunk(envelope)
  local ok, chunk = reaper.GetEnvelopeStateChunk(envelope, "", false)
  return ok and chunk ~= "" and chunk or nil
end

local function chunk_tag(chunk)
  return chunk:match("^%s*<(%S+)")
end

-- The envelope of `take` whose chunk opens with `tag` (one of TAKE_ENVELOPE_ACTIONS), or nil.
local function take_envelope(take, tag)
  for i = 0, reaper.CountTakeEnvelopes(take) - 1 do
    local envelope = reaper.GetTakeEnvelope(take, i)
    local chunk = envelope and envelope_chunk(envelope)
    if chunk and chunk_tag(chunk) == tag then
      return envelope
    end
  end
  return nil
end

-- Gives `envelope` the state `chunk` (points, shapes, active, shown, armed: SetEnvelopeStateChunk) of another
-- envelope of the same kind, keeping its own EGUID line: two envelopes must not share one GUID.
local function set_envelope(envelope, chunk)
  local own = (envelope_chunk(envelope) or ""):match("\n%s*(EGUID[^\n]*)")
  chunk = chunk:gsub("\n(%s*)EGUID[^\n]*", function(indent) return own and "\n" .. indent .. own or "" end, 1)
  return reaper.SetEnvelopeStateChunk(envelope, chunk, false)
end

-- The envelope on take `to` that matches `from`'s envelope `envelope` (chunk `chunk`), made when `to` has none,
-- or nil when it cannot be made. An FX parameter's envelope (Envelope_GetParentTake gives its FX and parameter)
-- is made with TakeFX_GetEnvelope(..., create true) on the same FX of `to`, which lib.carry_sound has copied at
-- the same index; the take's own four by their action.
local function matching_envelope(item, to, envelope, chunk)
  local fx, parameter = -1, -1
  if reaper.Envelope_GetParentTake then
    local _
    _, fx, parameter = reaper.Envelope_GetParentTake(envelope)
  end
  if fx and fx >= 0 then
    return reaper.TakeFX_GetEnvelope and reaper.TakeFX_GetEnvelope(to, fx, parameter, true) or nil
  end
  local tag = chunk_tag(chunk)
  local command = TAKE_ENVELOPE_ACTIONS[tag]
  if not command then
    return nil  -- an FX parameter's envelope on a REAPER without Envelope_GetParentTake, or a kind not known here
  end
  local found = take_envelope(to, tag)
  if not found then
    act_on_take(item, to, command)  -- makes it: the take has none, so the toggle can only add it
    found = take_envelope(to, tag)
  end
  return found
end

-- Gives the new take `to` on `item` the original take `from`'s FX chain (TakeFX_CopyToTake, REAPER 5.95 and later:
-- "Copies (or moves) FX from src_take to dest_take"; each FX as it is set, in the same order) and its take
-- envelopes (volume, pan, mute, pitch and the FX parameters'), so a producer who switches to the new take hears
-- it through the same EQ, fades and rides as the original. The envelopes are copied as they are: their times
-- count from the item's start, not the file's, and the new take sits in the same item, at the same playrate
-- (INHERITED), lined up with the original (lib.add_takes), so every point falls on the same sound. Call it once
-- the new take plays as it will (reversed when it is): the envelopes are then the original's exactly, whatever
-- reversing a take does to its envelopes. Changes the item selection and the active take (lib.place_takes_now
-- puts both back). Returns what could not be carried: {fx = true, envelopes = true}, or an empty table.
function lib.carry_sound(item, from, to)
  local missing = {}
  if not (from and reaper.ValidatePtr2(0, from, "MediaItem_Take*")) then
    return missing
  end
  local fx_count = reaper.TakeFX_GetCount and reaper.TakeFX_GetCount(from) or 0
  local fx_copied = fx_count == 0
  if fx_count > 0 and reaper.TakeFX_CopyToTake then
    for fx = 0, fx_count - 1 do
      reaper.TakeFX_CopyToTake(from, fx, to, reaper.TakeFX_GetCount(to), false)
    end
    fx_copied = true
  elseif fx_count > 0 then
    missing.fx = true
  end
  local envelopes = reaper.CountTakeEnvelopes and reaper.CountTakeEnvelopes(from) or 0
  if envelopes > 0 and not (reaper.GetEnvelopeStateChunk and reaper.SetEnvelopeStateChunk) then
    missing.envelopes = true
    return missing
  end
  for i = 0, envelopes - 1 do
    local envelope = reaper.GetTakeEnvelope(from, i)
    local chunk = envelope and envelope_chunk(envelope)
    -- An FX parameter's envelope needs its FX on the new take.
    local target = chunk and (fx_copied or chunk_tag(chunk) ~= "PARMENV") and
      matching_envelope(item, to, envelope, chunk) or nil
    if not (target and set_envelope(target, chunk)) then
      missing.envelopes = true
    end
  end
  return missing
end

-- One line on what lib.carry_sound could not give the new takes ({fx, envelopes} as it returns them, merged), or nil.
function lib.carried_note(missing)
  if missing.fx then
    return "The new takes have no take FX: copying the original take's FX needs REAPER 5.95 or later " ..
      "(TakeFX_CopyToTake). Copy them by hand, or update REAPER." .. (missing.envelopes and
      " Some of its take envelopes could not be copied either." or "")
  end
  if missing.envelopes then
    return "Some of the original take's envelopes could not be copied to the new takes: copy them by hand " ..
      "(right-click the envelope, Copy points) or update REAPER."
  end
  return nil
end

-- What a new take copies from the original one, so it sounds in the same place, pitch, level and channels: take
-- volume (negative when the polarity is flipped: Normalize sets it), pan and pan law, and the pitch shifter the
-- producer chose for the pitch.
local INHERITED = { "D_PLAYRATE", "D_PITCH", "B_PPITCH", "I_CHANMODE", "I_PITCHMODE", "D_VOL", "D_PAN", "D_PANLAW" }

-- Copies INHERITED from take `from` (when it still exists) onto `to`.
local function inherit(from, to)
  if from and reaper.ValidatePtr2(0, from, "MediaItem_Take*") then
    for _, name in ipairs(INHERITED) do
      reaper.SetMediaItemTakeInfo_Value(to, name, reaper.GetMediaItemTakeInfo_Value(from, name))
    end
  end
end

-- Adds `files` as takes on target.item ({item, take, region} from lib.selected_audio_items), lined up with the
-- original take: each new take plays its file from `offset` seconds (0 for a variation, which is exactly what
-- the item plays; the region's start for a repaint or extension, which is the whole file), with the original's
-- playrate, pitch, level and channel mode, reversed when it is, and with its take FX and take envelopes
-- (lib.carry_sound). The silence the original plays before its file starts (a negative D_STARTOFFS) is kept, so
-- the new take's sound starts as late; a looped whole source starts at the original's phase in its loop. The
-- first new take becomes active. Returns the takes, and what could not be carried (lib.carry_sound).
function lib.add_takes(target, files, offset)
  if not reaper.ValidatePtr2(0, target.item, "MediaItem*") then
    return {}, {}  -- deleted while the service worked
  end
  local original = reaper.ValidatePtr2(0, target.take, "MediaItem_Take*") and target.take or nil
  local takes, missing = {}, {}
  for _, file in ipairs(files) do
    local take = reaper.AddTakeToMediaItem(target.item)
    reaper.SetMediaItemTake_Source(take, lib.new_source(file))
    reaper.GetSetMediaItemTakeInfo_String(take, "P_NAME", lib.basename(file), true)
    -- Offsets here are in the file's forward seconds: the silence before the file is the lead of a forward
    -- take, and the tail of a reversed one (which plays its file from the end); reversing mirrors the offset.
    local region = target.region
    reaper.SetMediaItemTakeInfo_Value(take, "D_STARTOFFS", (offset or 0) - (region.reversed and region.tail or
      region.lead or 0))
    inherit(original, take)
    if region.reversed then
      lib.reverse_take(target.item, take)
    end
    if region.phase then  -- in the take's own seconds (reversed ones too), so set once it plays as it will
      reaper.SetMediaItemTakeInfo_Value(take, "D_STARTOFFS", (region.reversed and 0 or offset or 0) + region.phase)
    end
    for what in pairs(lib.carry_sound(target.item, original, take)) do
      missing[what] = true
    end
    takes[#takes + 1] = take
  end
  if takes[1] then
    reaper.SetActiveTake(takes[1])
  end
  return takes, missing
end

-- Places each finished request's files on the items that asked for them, the selection kept as it was; call it
-- inside lib.change. rendered: {{targets = {...}, files = {...}, offset = fn(target), after = fn(target, takes)}};
-- offset (optional) says where each new take starts in its file, after (optional) changes the item once its
-- takes are there. Returns how many takes were added, and a line on what of the original takes' FX and envelopes
-- could not be carried to them (lib.carried_note), or nil.
function lib.place_takes_now(rendered)
  local added, missing = 0, {}
  local selected = lib.selection()
  for _, result in ipairs(rendered) do
    for _, target in ipairs(result.targets) do
      local takes, not_carried = lib.add_takes(target, result.files, result.offset and result.offset(target) or 0)
      for what in pairs(not_carried) do
        missing[what] = true
      end
      if result.after and #takes > 0 then
        result.after(target, takes)
      end
      added = added + #takes
    end
  end
  lib.restore_selection(selected)
  return added, lib.carried_note(missing)
end

-- lib.place_takes_now as one undo point named `description`; none when nothing was rendered. Returns as it does.
function lib.place_takes(description, rendered)
  local added, note = 0, nil
  if #rendered > 0 then
    lib.change(description, function() added, note = lib.place_takes_now(rendered) end)
  end
  return added, note
end

-- One request for what several targets share (a part of a file): request_of(target) gives a key and the
-- request ({address, args, label}) for it, or nil to pass the target over. Returns the requests (each with its
-- key), the targets by key and how many were passed over.
function lib.group_requests(targets, request_of)
  local requests, by_key, passed = {}, {}, 0
  for _, target in ipairs(targets) do
    local key, request = request_of(target)
    if not key then
      passed = passed + 1
    else
      if not by_key[key] then
        by_key[key], request.key = {}, key
        requests[#requests + 1] = request
      end
      table.insert(by_key[key], target)
    end
  end
  return requests, by_key, passed
end

-- How an action that adds takes ends (from lib.run's finish): every finished request's files become takes on the
-- items that asked for them (by_key[request.key]) as one undo point, then what failed is said, or else
-- how.left_out(added) when it has something to say, with the stretched items passed over (how.stretched) and
-- what of the original takes' FX and envelopes could not be carried, all in one message. how: {undo =
-- description, failed = "Some ... could not be made", offset, after (lib.place_takes_now)}. Requests answered
-- "ok" (a vary press heard in audition) place nothing and say nothing; one held but not heard is said as
-- lib.unheard_note says.
function lib.finish_takes(requests, results, by_key, how)
  local unheard = lib.unheard_note(lib.held_unheard(results))
  local rendered = {}
  for i, request in ipairs(requests) do
    if results[i].status == "done" then
      rendered[#rendered + 1] = { targets = by_key[request.key], files = results[i].lines, offset = how.offset,
        after = how.after }
    end
  end
  local added, not_carried = lib.place_takes(how.undo, rendered)
  local errors = lib.errors(requests, results)
  local notes = { errors and how.failed .. ":\n\n" .. errors or how.left_out and how.left_out(added) or nil }
  notes[#notes + 1] = unheard
  notes[#notes + 1] = lib.stretched_note(how.stretched)
  notes[#notes + 1] = not_carried
  if #notes > 0 then
    lib.message(table.concat(notes, "\n\n"))
  end
end

-- How the service begins its answer to an audition press it held back but could not play (no audio output, or
-- one just lost): the press worked, it only went unheard.
local NOT_HEARD = "not heard: "

-- Marks the results of such presses "ok" (nothing to place, not a failed render) and returns one line saying
-- why nothing was heard, or nil when every press was heard.
function lib.held_unheard(results)
  local said
  for _, result in ipairs(results) do
    local text = result.status == "error" and table.concat(result.lines, " ") or ""
    if text:sub(1, #NOT_HEARD) == NOT_HEARD then
      result.status = "ok"
      said = "Audition: " .. text .. " (DD Bridge - Keep last heard)."
    end
  end
  return said
end

-- With audition on and no audio output every Vary press goes unheard, and Vary is often on a MIDI key for going
-- through sounds fast: a message box each time would have to be dismissed before the next press (review s40 #6).
-- So it is a box the first time in a REAPER session (an ExtState set with persist=false lives until REAPER quits)
-- and a line in REAPER's console, which does not stop the next press, from then on.
local UNHEARD_SAID_KEY = "unheard_said"

-- `line` (from lib.held_unheard) for the action's message the first time in this REAPER session, with where the
-- next ones will be said; later ones are written to the console and give nil. nil for nil.
function lib.unheard_note(line)
  if not line then
    return nil
  end
  if reaper.GetExtState(lib.SECTION, UNHEARD_SAID_KEY) == "" then
    reaper.SetExtState(lib.SECTION, UNHEARD_SAID_KEY, "1", false)
    return line .. "\n\nUntil REAPER is restarted, further presses not heard are said in the ReaScript console, not "
      .. "in a box like this one."
  end
  reaper.ShowConsoleMsg(lib.TITLE .. " " .. line .. "\n")
  return nil
end

-- What an action says of the selected items it passed over (`why`, or not audio), or nil for none.
function lib.left_out(count, why)
  if count == 0 then
    return nil
  end
  return string.format("%d selected item%s %s (or not audio) and got no new take.", count,
    count == 1 and " was" or "s were", why)
end

-- "1 item", "2 items".
function lib.items(count)
  return count .. " item" .. (count == 1 and "" or "s")
end

-- ---- Tempo ----

-- The service's bars are 4/4 (bridge/engine/tempo.py): a bar is four beats.
local BEATS_PER_BAR = 4
local WHOLE_BAR_TOLERANCE = 0.01  -- of a bar: the service takes a loop up to 1 % short round (docs/loops.md)

-- The project's tempo (beats a minute) at `time` seconds: the tempo map's, or the master tempo where there is
-- no tempo map call (REAPER before 5.0).
function lib.bpm_at(time)
  if reaper.TimeMap2_GetDividedBpmAtTime then
    return reaper.TimeMap2_GetDividedBpmAtTime(0, time)
  end
  return reaper.Master_GetTempo()
end

function lib.bar_seconds(bpm)
  return BEATS_PER_BAR * 60 / bpm
end

-- How many whole bars at `bpm` `seconds` is, or nil when it is not (within the service's tolerance).
function lib.whole_bars(seconds, bpm)
  local bars = seconds / lib.bar_seconds(bpm)
  local whole = math.floor(bars + 0.5)
  if whole < 1 or math.abs(bars - whole) > WHOLE_BAR_TOLERANCE then
    return nil
  end
  return whole
end

-- bars= bpm= for the service: `bars` at the project's `bpm`, for an item playing its file at `rate` (the
-- service counts in the file's own time, so its tempo is the project's divided by the playrate).
function lib.tempo_options(bars, bpm, rate)
  return { string.format("bars=%g", bars), string.format("bpm=%.6f", bpm / rate) }
end

-- The loop options for a variation of target (an item whose source loops, B_LOOPSRC): loop=on, and bars= bpm=
-- when what the item plays of its file lasts whole bars at the project's tempo where it starts, so the service
-- makes variations exactly that long. bpm is in the file's own time (the project's divided by the playrate), as
-- the service measures the file. {} for an item that does not loop.
function lib.loop_options(target)
  if reaper.GetMediaItemInfo_Value(target.item, "B_LOOPSRC") ~= 1 then
    return {}
  end
  local rate = reaper.GetMediaItemTakeInfo_Value(target.take, "D_PLAYRATE")
  local bpm = lib.bpm_at(reaper.GetMediaItemInfo_Value(target.item, "D_POSITION"))
  local bars = lib.whole_bars((target.region.finish - target.region.start) / rate, bpm)
  local options = bars and lib.tempo_options(bars, bpm, rate) or {}
  table.insert(options, 1, "loop=on")
  return options
end

-- A new track at `index` (0-based) named `name`; returns it.
function lib.new_track(index, name)
  reaper.InsertTrackAtIndex(index, true)
  local track = reaper.GetTrack(0, index)
  reaper.GetSetMediaTrackInfo_String(track, "P_NAME", name, true)
  return track
end

-- Puts `files` one after another on `track` from `position` (seconds); returns the end position. like
-- (optional): {take, reversed}: each new take plays as that take does (lib.add_takes' INHERITED: playrate, pitch,
-- level, channels), reversed when `reversed`, its item as long as its file lasts at that playrate.
function lib.place_files(track, files, position, like)
  local selected = like and like.reversed and lib.selection()
  for _, file in ipairs(files) do
    local item = reaper.AddMediaItemToTrack(track)
    local take = reaper.AddTakeToMediaItem(item)
    local source = lib.new_source(file)
    reaper.SetMediaItemTake_Source(take, source)
    reaper.GetSetMediaItemTakeInfo_String(take, "P_NAME", lib.basename(file), true)
    inherit(like and like.take, take)
    local length = reaper.GetMediaSourceLength(source) / reaper.GetMediaItemTakeInfo_Value(take, "D_PLAYRATE")
    reaper.SetMediaItemInfo_Value(item, "D_POSITION", position)
    reaper.SetMediaItemInfo_Value(item, "D_LENGTH", length)
    if like and like.reversed then
      lib.reverse_take(item, take)
    end
    position = position + length
  end
  if selected then
    lib.restore_selection(selected)
  end
  return position
end

return lib
