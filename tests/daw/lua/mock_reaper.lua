-- A stand-in for REAPER around the real ReaScripts: the `reaper` and `gfx` tables with the real API's names,
-- argument orders and return values, over a small project (tracks, items, takes, sources). ExecProcess really
-- starts the program, splitting the command line the way REAPER does (at spaces, honouring "", '' and ``
-- quotes, every other character literal), so the scripts talk to a real `dd-bridge`.
--
--   local mock = dofile("mock_reaper.lua")
--   mock.setup{resource = DIR, project_path = DIR}
--   local item = mock.add_item(track, {file = ..., position = 1})
--   mock.run_action(script_path)      -- runs the script, then its defer loop until it ends

local mock = {}

local function fail(message)
  error(message, 3)
end

-- ---- The project ----

local function new_state(options)
  return {
    os = options.os or "Other",
    resource = options.resource,
    project_path = options.project_path,
    tracks = {},
    valid = {},          -- pointers that exist: [object] = kind
    ext = {},            -- [section .. "/" .. key] = value
    session_only = {},   -- [section .. "/" .. key] = true: set with persist=false, gone when REAPER restarts
    messages = {},       -- ShowMessageBox texts
    console = {},        -- ShowConsoleMsg texts
    undo = { depth = 0, blocks = {} },
    ui_refresh = 0,
    deferred = {},
    atexit = {},
    clock = 1000.0,
    exec = {},           -- {command, timeout, argv}
    removed = {},        -- [path] = true for every file the script removed
    toggles = {},
    cursor = options.cursor or 0,
    time_selection = { 0, 0 },  -- start, end in seconds; equal: none
    bpm = options.bpm or 120,   -- one tempo for the whole project
    gfx = { open = false, drawn = {} },
    menus = {},          -- the text of each gfx.showmenu
    menu_choice = nil,   -- the item a menu picks (nil: dismissed)
    inputs = options.inputs,  -- what GetUserInputs "types"
    faults = {},         -- [API name] = true: that call raises a Lua error, as a REAPER call given bad input does
  }
end

local state

function mock.setup(options)
  state = new_state(options)
  mock.state = state
  return state
end

-- REAPER quit and started again: ExtState set with persist=false is gone, the rest (reaper-extstate.ini, and
-- what a test put in state.ext as such) is read back.
function mock.restart()
  for key in pairs(state.session_only) do
    state.ext[key] = nil
  end
  state.session_only = {}
end

function mock.add_track(name)
  local track = { name = name or "", items = {} }
  table.insert(state.tracks, track)
  state.valid[track] = "MediaTrack*"
  return track
end

local wav_seconds

-- A file's source, or a section of `parent` ({offset, length, reversed}), as REAPER's "Section" and reversed
-- takes make them.
local function file_source(file)
  local source = { file = file, length = wav_seconds(file) or 0 }  -- REAPER: 0 for a file it cannot read
  state.valid[source] = "PCM_source*"
  return source
end

local function section_source(parent, section)
  local source = { parent = parent, section = { offset = section.offset or 0,
    length = section.length or parent.length - (section.offset or 0), reversed = section.reversed or false } }
  source.length = source.section.length
  state.valid[source] = "PCM_source*"
  return source
end

-- A new take's values as REAPER gives them (GetMediaItemTakeInfo_Value): unity volume, centre, the project's pan
-- law and pitch shifter (-1), no stretch markers, no take FX and no take envelopes; `options` changes any of them
-- (fx: a list of FX names, each FX {name, state}; the envelopes are added with mock.add_take_envelope).
local function new_take(item, options)
  options = options or {}
  local fx = {}
  for i, name in ipairs(options.fx or {}) do
    fx[i] = { name = name, state = "settings of " .. name }
  end
  return { item = item, startoffs = options.startoffs or 0, playrate = options.playrate or 1, name = "",
    midi = options.midi or false, pitch = options.pitch or 0, chanmode = options.chanmode or 0,
    preserve_pitch = options.preserve_pitch or 0, vol = options.vol or 1, pan = options.pan or 0,
    panlaw = options.panlaw or -1, pitchmode = options.pitchmode or -1, stretch_markers = options.stretch_markers or {},
    fx = fx, envelopes = {} }
end

-- ---- Take envelopes ----
-- A take's envelopes are its volume, pan, mute and pitch envelopes (made by the "Take: Toggle take ... envelope"
-- actions, Main_OnCommand below) and its FX parameters' (TakeFX_GetEnvelope with create). Each has a GUID and a
-- state chunk, text that opens with its kind's tag ("<VOLENV", "<PANENV", "<MUTEENV", "<PITCHENV", "<PARMENV"),
-- as GetEnvelopeStateChunk gives it.

local guids = 0
function mock.new_guid()
  guids = guids + 1
  return string.format("{00000000-0000-4000-8000-%012d}", guids)
end

-- The envelope a take gets when it has none: REAPER's default for its kind, shown, active, one point.
local DEFAULT_ENVELOPES = {
  VOLENV = "DEFSHAPE 0 -1 -1\nVOLTYPE 1\nPT 0 1 0", PANENV = "DEFSHAPE 0 -1 -1\nPT 0 0 0",
  MUTEENV = "DEFSHAPE 1 -1 -1\nPT 0 1 1", PITCHENV = "DEFSHAPE 0 -1 -1\nPT 0 0 0",
  PARMENV = "DEFSHAPE 0 -1 -1\nPT 0 0.5 0",
}
local ENVELOPE_NAMES = { VOLENV = "Volume", PANENV = "Pan", MUTEENV = "Mute", PITCHENV = "Pitch" }

local function envelope_tag(chunk)
  return chunk:match("^%s*<(%S+)")
end

-- Adds an envelope to `take` with state `chunk` (its EGUID line is the envelope's GUID); fx and parameter (0-based)
-- for an FX parameter's envelope. Returns it.
function mock.add_take_envelope(take, chunk, fx, parameter)
  local envelope = { take = take, chunk = chunk, fx = fx or -1, parameter = parameter or -1 }
  table.insert(take.envelopes, envelope)
  state.valid[envelope] = "TrackEnvelope*"
  return envelope
end

local function default_envelope(take, tag, fx, parameter)
  local head = tag == "PARMENV" and string.format("<PARMENV %d 0 1 0.5", parameter) or "<" .. tag
  return mock.add_take_envelope(take, string.format("%s\nEGUID %s\nACT 1 -1\nVIS 1 1 1\nLANEHEIGHT 0 0\nARM 1\n%s\n>",
    head, mock.new_guid(), DEFAULT_ENVELOPES[tag]), fx, parameter)
end

local function find_envelope(take, tag, fx, parameter)
  for _, envelope in ipairs(take.envelopes) do
    local kind = envelope_tag(envelope.chunk)
    if kind == tag and envelope.fx == (fx or -1) and envelope.parameter == (parameter or -1) then
      return envelope
    end
  end
  return nil
end
mock.find_envelope = find_envelope

-- file: an audio file, or nil with midi = true for a MIDI item. length (1 s), startoffs, playrate, pitch,
-- chanmode, preserve_pitch, vol (negative: polarity flipped), pan, panlaw, pitchmode, stretch_markers (a list of
-- {pos, srcpos}); sections: a list of {offset, length, reversed}, innermost last, between the file and the take
-- (a reversed take is one reversed section over the whole file); fx: take FX names; envelopes: take envelopes,
-- each a state chunk or {chunk, fx, parameter} (an FX parameter's).
function mock.add_item(track, options)
  local item = { track = track, position = options.position or 0, length = options.length or 1,
    takes = {}, selected = options.selected ~= false, loopsrc = options.loopsrc and 1 or 0 }
  local take = new_take(item, options)
  state.valid[take] = "MediaItem_Take*"
  for _, envelope in ipairs(options.envelopes or {}) do  -- {chunk, fx, parameter} or a chunk
    if type(envelope) == "string" then
      mock.add_take_envelope(take, envelope)
    else
      mock.add_take_envelope(take, envelope.chunk, envelope.fx, envelope.parameter)
    end
  end
  if options.file then
    take.source = file_source(options.file)
    for _, section in ipairs(options.sections or {}) do
      take.source = section_source(take.source, section)
    end
  end
  item.takes[1] = take
  item.active = take
  table.insert(track.items, item)
  state.valid[item] = "MediaItem*"
  return item
end

-- Deletes `object` from `list` and makes its pointer invalid, as deleting it in REAPER does.
local function delete(object, list)
  state.valid[object] = nil
  for i, other in ipairs(list) do
    if other == object then
      table.remove(list, i)
    end
  end
end

function mock.delete_item(item)
  delete(item, item.track.items)
end

function mock.delete_take(take)
  delete(take, take.item.takes)
  if take.item.active == take then
    take.item.active = take.item.takes[1]
  end
end

-- The length in seconds of a WAV file, read from its header (so a take's length comes from the real file).
function wav_seconds(path)
  local file = io.open(path, "rb")
  if not file then
    return nil
  end
  local data = file:read("a")
  file:close()
  if data:sub(1, 4) ~= "RIFF" or data:sub(9, 12) ~= "WAVE" then
    return nil
  end
  local position, rate, block, frames = 13, nil, nil, nil
  while position + 8 <= #data do
    local id, size = data:sub(position, position + 3), string.unpack("<I4", data, position + 4)
    if id == "fmt " then
      rate = string.unpack("<I4", data, position + 12)
      block = string.unpack("<I2", data, position + 20)
    elseif id == "data" then
      frames = size // block
    end
    position = position + 8 + size + size % 2
  end
  return rate and frames and frames / rate or nil
end
mock.wav_seconds = wav_seconds

-- ---- REAPER's command-line splitting and process start ----

-- How a Windows program splits its command line (the Microsoft C runtime, CommandLineToArgvW): arguments
-- between spaces or tabs; "..." quotes; 2n backslashes before a quote are n backslashes and the quote opens or
-- closes; 2n+1 are n backslashes and a literal quote; other backslashes are themselves.
local function split_windows_command(command)
  local argv, current, quoted, started, i = {}, {}, false, false, 1
  while i <= #command do
    local char = command:sub(i, i)
    if char == "\\" then
      local run = command:match("^\\+", i)
      local after = command:sub(i + #run, i + #run)
      if after == '"' then
        current[#current + 1] = string.rep("\\", #run // 2)
        if #run % 2 == 1 then
          current[#current + 1] = '"'
          i = i + 1
        end
      else
        current[#current + 1] = run
      end
      i, started = i + #run, true
    elseif char == '"' then
      quoted, started, i = not quoted, true, i + 1
    elseif (char == " " or char == "\t") and not quoted then
      if started then
        argv[#argv + 1] = table.concat(current)
        current, started = {}, false
      end
      i = i + 1
    else
      current[#current + 1] = char
      started, i = true, i + 1
    end
  end
  if started then
    argv[#argv + 1] = table.concat(current)
  end
  return argv
end

-- The arguments a program receives from ExecProcess(command): REAPER's own splitting on macOS and Linux, the
-- program's on Windows.
function mock.split_command(command)
  if state.os == "Win" then
    return split_windows_command(command)
  end
  local argv, current, quote, started = {}, {}, nil, false
  for char in command:gmatch(utf8.charpattern) do
    if quote then
      if char == quote then
        quote = nil
      else
        current[#current + 1] = char
      end
    elseif char == '"' or char == "'" or char == "`" then
      quote, started = char, true
    elseif char == " " then
      if started then
        argv[#argv + 1] = table.concat(current)
        current, started = {}, false
      end
    else
      current[#current + 1] = char
      started = true
    end
  end
  if quote then
    fail("unbalanced quote in command line: " .. command)
  end
  if started then
    argv[#argv + 1] = table.concat(current)
  end
  return argv
end

local function shell_word(word)
  return "'" .. word:gsub("'", "'\\''") .. "'"
end

local function file_exists(path)
  local file = io.open(path, "rb")
  if file then
    file:close()
    return true
  end
  return false
end

-- ---- The reaper table ----

local reaper = {}
mock.reaper = reaper

local function check(value, kind, name)
  if state.faults[name] then
    fail(name .. ": a fault the test injected")
  end
  if state.valid[value] ~= kind then
    fail(string.format("%s: expected a %s, got %s", name, kind, tostring(value)))
  end
end

local function selected_items()
  local items = {}
  for _, track in ipairs(state.tracks) do
    for _, item in ipairs(track.items) do
      if item.selected then
        items[#items + 1] = item
      end
    end
  end
  return items
end

function reaper.GetOS() return state.os == "Win" and "Win64" or state.os end
function reaper.GetResourcePath() return state.resource end
function reaper.GetProjectPath(_) return state.project_path end
function reaper.time_precise() return state.clock end
function reaper.file_exists(path) return file_exists(path) end
function reaper.RecursiveCreateDirectory(path, _)
  os.execute("mkdir -p " .. shell_word(path))
  return 1
end

function reaper.get_action_context()
  return false, state.script, 0, 55555, -1, -1, -1
end

function reaper.ExecProcess(command, timeout)
  if type(command) ~= "string" or type(timeout) ~= "number" then
    fail("ExecProcess(string command, integer timeoutmsec)")
  end
  local argv = mock.split_command(command)
  local started = { command = command, timeout = timeout, argv = argv }
  for i, word in ipairs(argv) do
    started.result = argv[i - 1] == "--result" and word or started.result
  end
  table.insert(state.exec, started)
  if timeout ~= -1 and timeout ~= -2 then
    fail("ExecProcess must not wait (timeout -1 or -2), it froze REAPER: " .. command)
  end
  if not file_exists(argv[1]) then
    return nil
  end
  local words = {}
  for i, word in ipairs(argv) do
    words[i] = shell_word(word)
  end
  os.execute(table.concat(words, " ") .. " >>" .. shell_word(state.resource .. "/exec.log") .. " 2>&1 &")
  return ""
end

function reaper.GetMousePosition() return 640, 400 end
function reaper.defer(fn) table.insert(state.deferred, fn) end
function reaper.atexit(fn) table.insert(state.atexit, fn) end

function reaper.ShowConsoleMsg(text)
  if type(text) ~= "string" then
    fail("ShowConsoleMsg(string msg)")
  end
  table.insert(state.console, text)
end

function reaper.ShowMessageBox(text, title, kind)
  if type(text) ~= "string" or type(title) ~= "string" or type(kind) ~= "number" then
    fail("ShowMessageBox(string msg, string title, integer type)")
  end
  table.insert(state.messages, text)
  return 1
end

function reaper.GetExtState(section, key) return state.ext[section .. "/" .. key] or "" end
function reaper.SetExtState(section, key, value, persist)
  if type(value) ~= "string" or type(persist) ~= "boolean" then
    fail("SetExtState(string section, string key, string value, boolean persist)")
  end
  state.ext[section .. "/" .. key] = value
  state.session_only[section .. "/" .. key] = not persist or nil
end

-- captions_csv: the captions separated by commas, then options (separator=X, extrawidth=N); separator= changes
-- only what separates the values.
function reaper.GetUserInputs(title, count, captions_csv, values)
  local captions, options = {}, {}
  for part in (captions_csv .. ","):gmatch("([^,]*),") do
    local key, value = part:match("^(%a+)=(.*)$")
    if key == "separator" or key == "extrawidth" then
      options[key] = value
    else
      captions[#captions + 1] = part
    end
  end
  if #captions ~= count then
    fail(string.format("GetUserInputs: %d captions for %d fields: %s", #captions, count, captions_csv))
  end
  state.dialog = { title = title, count = count, captions = captions, options = options, values = values }
  if not state.inputs then
    return false, values
  end
  return true, state.inputs
end

function reaper.SetToggleCommandState(section, command, value)
  state.toggles[section .. "/" .. command] = value
  return true
end
function reaper.GetToggleCommandStateEx(section, command)
  return state.toggles[section .. "/" .. command] or -1  -- -1: never set, as REAPER answers
end
function reaper.RefreshToolbar2(_, _) end
function reaper.set_action_options(flags) state.action_options = flags end

function reaper.Undo_BeginBlock() state.undo.depth = state.undo.depth + 1 end
function reaper.Undo_EndBlock(description, flags)
  if state.undo.depth < 1 then
    fail("Undo_EndBlock without Undo_BeginBlock")
  end
  state.undo.depth = state.undo.depth - 1
  table.insert(state.undo.blocks, { description = description, flags = flags })
end
function reaper.PreventUIRefresh(change) state.ui_refresh = state.ui_refresh + change end
function reaper.UpdateArrange() state.arrange_updated = true end

function reaper.CountSelectedMediaItems(project)
  assert(project == 0, "project 0")
  return #selected_items()
end
function reaper.GetSelectedMediaItem(project, index)
  assert(project == 0, "project 0")
  return selected_items()[index + 1]
end
function reaper.GetActiveTake(item)
  check(item, "MediaItem*", "GetActiveTake")
  return item.active
end
function reaper.TakeIsMIDI(take)
  check(take, "MediaItem_Take*", "TakeIsMIDI")
  return take.midi
end
function reaper.GetMediaItemTake_Source(take)
  check(take, "MediaItem_Take*", "GetMediaItemTake_Source")
  return take.source
end
function reaper.GetMediaSourceParent(source)
  check(source, "PCM_source*", "GetMediaSourceParent")
  return source.parent
end
function reaper.GetMediaSourceFileName(source, _)
  check(source, "PCM_source*", "GetMediaSourceFileName")
  return source.file or ""
end
function reaper.GetMediaSourceLength(source)
  check(source, "PCM_source*", "GetMediaSourceLength")
  return source.length, false
end
function reaper.PCM_Source_CreateFromFile(path)
  if not wav_seconds(path) then
    fail("PCM_Source_CreateFromFile: not a WAV file: " .. tostring(path))
  end
  return file_source(path)
end
-- retval, offset, length, reversed: false for a source that is not a section.
function reaper.PCM_Source_GetSectionInfo(source)
  check(source, "PCM_source*", "PCM_Source_GetSectionInfo")
  if not source.section then
    return false, 0, 0, false
  end
  return true, source.section.offset, source.section.length, source.section.reversed
end
-- mode 0 starts (0: peaks exist, nothing to do), 1 runs (the percentage left), 2 finishes.
function reaper.PCM_Source_BuildPeaks(source, mode)
  check(source, "PCM_source*", "PCM_Source_BuildPeaks")
  if mode == 0 then
    if source.peaks then
      return 0
    end
    source.building = 100
    return 100
  end
  assert(source.building, "PCM_Source_BuildPeaks(src, " .. mode .. ") before PCM_Source_BuildPeaks(src, 0)")
  if mode == 1 then
    source.building = math.max(0, source.building - 50)
    return source.building
  end
  assert(mode == 2 and source.building == 0, "PCM_Source_BuildPeaks(src, 2) before the run finished")
  source.building, source.peaks = nil, true
  return 0
end
function reaper.SelectAllMediaItems(project, selected)
  assert(project == 0, "project 0")
  for _, track in ipairs(state.tracks) do
    for _, item in ipairs(track.items) do
      item.selected = selected
    end
  end
end
function reaper.SetMediaItemSelected(item, selected)
  check(item, "MediaItem*", "SetMediaItemSelected")
  item.selected = selected
end
-- The actions the scripts run. 41051, "Item properties: Toggle take reverse": the active take of each selected
-- item plays its source backwards (a reversed section over it, or the section's direction flipped), the same
-- part of it as before. 40693, 40694, 40695 and 41612, "Take: Toggle take volume / pan / mute / pitch envelope":
-- the active take of each selected item gets that envelope, shown, when it has none, and else has it shown or
-- hidden (the VIS line's first field flipped).
local TOGGLE_TAKE_ENVELOPE = { [40693] = "VOLENV", [40694] = "PANENV", [40695] = "MUTEENV", [41612] = "PITCHENV" }
function reaper.Main_OnCommand(command, flag)
  assert(flag == 0, "Main_OnCommand(command, 0)")
  local tag = TOGGLE_TAKE_ENVELOPE[command]
  if tag then
    for _, item in ipairs(selected_items()) do
      local take = item.active
      local envelope = take and find_envelope(take, tag)
      if envelope then
        envelope.chunk = envelope.chunk:gsub("\nVIS (%d)", function(shown) return "\nVIS " .. 1 - shown end, 1)
      elseif take then
        default_envelope(take, tag)
      end
    end
    return
  end
  if command ~= 41051 then
    fail("Main_OnCommand: the mock does not know action " .. tostring(command))
  end
  for _, item in ipairs(selected_items()) do
    local take = item.active
    if take and not take.midi then
      local source = take.source
      local length = source.length
      take.startoffs = length - (take.startoffs + item.length * take.playrate)
      if source.section and source.section.offset == 0 and source.section.length == source.parent.length then
        source.section.reversed = not source.section.reversed
      else
        take.source = section_source(source, { offset = 0, length = length, reversed = true })
      end
    end
  end
end
function reaper.ValidatePtr2(project, pointer, kind)
  assert(project == 0, "project 0")
  return state.valid[pointer] == kind
end

local ITEM_NUMBERS = { D_POSITION = "position", D_LENGTH = "length", B_LOOPSRC = "loopsrc" }
local TAKE_NUMBERS = { D_STARTOFFS = "startoffs", D_PLAYRATE = "playrate", D_PITCH = "pitch", I_CHANMODE = "chanmode",
  B_PPITCH = "preserve_pitch", D_VOL = "vol", D_PAN = "pan", D_PANLAW = "panlaw", I_PITCHMODE = "pitchmode" }

function reaper.GetMediaItemInfo_Value(item, name)
  check(item, "MediaItem*", "GetMediaItemInfo_Value")
  return item[ITEM_NUMBERS[name] or fail("unknown item value " .. name)]
end
function reaper.SetMediaItemInfo_Value(item, name, value)
  check(item, "MediaItem*", "SetMediaItemInfo_Value")
  item[ITEM_NUMBERS[name] or fail("unknown item value " .. name)] = value
  return true
end
function reaper.GetMediaItemTakeInfo_Value(take, name)
  check(take, "MediaItem_Take*", "GetMediaItemTakeInfo_Value")
  return take[TAKE_NUMBERS[name] or fail("unknown take value " .. name)]
end
function reaper.SetMediaItemTakeInfo_Value(take, name, value)
  check(take, "MediaItem_Take*", "SetMediaItemTakeInfo_Value")
  take[TAKE_NUMBERS[name] or fail("unknown take value " .. name)] = value
  return true
end
function reaper.GetSetMediaItemTakeInfo_String(take, name, value, set)
  check(take, "MediaItem_Take*", "GetSetMediaItemTakeInfo_String")
  assert(name == "P_NAME", "take strings: P_NAME")
  if set then
    take.name = value
  end
  return true, take.name
end
function reaper.AddTakeToMediaItem(item)
  check(item, "MediaItem*", "AddTakeToMediaItem")
  local take = new_take(item)
  table.insert(item.takes, take)
  state.valid[take] = "MediaItem_Take*"
  return take
end
-- Stretch markers: each maps a position in the item to a position in the source (GetTakeStretchMarker).
function reaper.GetTakeNumStretchMarkers(take)
  check(take, "MediaItem_Take*", "GetTakeNumStretchMarkers")
  return #take.stretch_markers
end
-- Take FX: a list of {name, state} on each take.
function reaper.TakeFX_GetCount(take)
  check(take, "MediaItem_Take*", "TakeFX_GetCount")
  return #take.fx
end
function reaper.TakeFX_GetFXName(take, fx, _)
  check(take, "MediaItem_Take*", "TakeFX_GetFXName")
  local found = take.fx[fx + 1]
  return found ~= nil, found and found.name or ""
end
-- "Copies (or moves) FX from src_take to dest_take. Can be used with src_take=dest_take to reorder." The FX, with
-- its settings, goes in at dest_fx (past the end: after the last). Whether its parameters' envelopes go with it
-- the documentation does not say: here they do not, so a script that needs them copies them itself.
function reaper.TakeFX_CopyToTake(src_take, src_fx, dest_take, dest_fx, is_move)
  check(src_take, "MediaItem_Take*", "TakeFX_CopyToTake")
  check(dest_take, "MediaItem_Take*", "TakeFX_CopyToTake")
  if type(src_fx) ~= "number" or type(dest_fx) ~= "number" or type(is_move) ~= "boolean" then
    fail("TakeFX_CopyToTake(MediaItem_Take src_take, integer src_fx, MediaItem_Take dest_take, integer dest_fx, " ..
      "boolean is_move)")
  end
  local fx = src_take.fx[src_fx + 1]
  if not fx then
    return
  end
  if is_move then
    table.remove(src_take.fx, src_fx + 1)
  end
  table.insert(dest_take.fx, math.min(dest_fx, #dest_take.fx) + 1, { name = fx.name, state = fx.state })
end
-- A take's envelopes: CountTakeEnvelopes, GetTakeEnvelope (0-based), GetTakeEnvelopeByName (English names).
function reaper.CountTakeEnvelopes(take)
  check(take, "MediaItem_Take*", "CountTakeEnvelopes")
  return #take.envelopes
end
function reaper.GetTakeEnvelope(take, index)
  check(take, "MediaItem_Take*", "GetTakeEnvelope")
  return take.envelopes[index + 1]
end
function reaper.GetTakeEnvelopeByName(take, name)
  check(take, "MediaItem_Take*", "GetTakeEnvelopeByName")
  for tag, known in pairs(ENVELOPE_NAMES) do
    if known == name then
      return find_envelope(take, tag)
    end
  end
  return nil
end
function reaper.GetEnvelopeName(envelope)
  check(envelope, "TrackEnvelope*", "GetEnvelopeName")
  local tag = envelope_tag(envelope.chunk)
  if tag == "PARMENV" then
    return true, string.format("Parameter %d / %s", envelope.parameter + 1, envelope.take.fx[envelope.fx + 1].name)
  end
  return true, ENVELOPE_NAMES[tag] or tag
end
-- "If take envelope, gets the take from the envelope. If FX, indexOut set to FX index, index2Out set to parameter
-- index, otherwise -1."
function reaper.Envelope_GetParentTake(envelope)
  check(envelope, "TrackEnvelope*", "Envelope_GetParentTake")
  return envelope.take, envelope.fx, envelope.parameter
end
-- The envelope of the take's FX `fx`'s parameter, made when `create` and there is none; nil for an FX it lacks.
function reaper.TakeFX_GetEnvelope(take, fx, parameter, create)
  check(take, "MediaItem_Take*", "TakeFX_GetEnvelope")
  if type(create) ~= "boolean" then
    fail("TakeFX_GetEnvelope(MediaItem_Take take, integer fxindex, integer parameterindex, boolean create)")
  end
  if not take.fx[fx + 1] then
    return nil
  end
  return find_envelope(take, "PARMENV", fx, parameter) or create and default_envelope(take, "PARMENV", fx, parameter)
    or nil
end
-- "Gets the RPPXML state of an envelope, returns true if successful."
function reaper.GetEnvelopeStateChunk(envelope, text, isundo)
  check(envelope, "TrackEnvelope*", "GetEnvelopeStateChunk")
  if type(text) ~= "string" or type(isundo) ~= "boolean" then
    fail("GetEnvelopeStateChunk(TrackEnvelope env, string str, boolean isundo)")
  end
  return true, envelope.chunk
end
-- "Sets the RPPXML state of an envelope, returns true if successful." A chunk of another kind of envelope (a pan
-- chunk on a volume envelope) is a script's mistake: the mock stops there.
function reaper.SetEnvelopeStateChunk(envelope, chunk, isundo)
  check(envelope, "TrackEnvelope*", "SetEnvelopeStateChunk")
  if type(chunk) ~= "string" or type(isundo) ~= "boolean" then
    fail("SetEnvelopeStateChunk(TrackEnvelope env, string str, boolean isundo)")
  end
  if envelope_tag(chunk) ~= envelope_tag(envelope.chunk) then
    fail("SetEnvelopeStateChunk: a " .. tostring(envelope_tag(chunk)) .. " chunk on a " ..
      envelope_tag(envelope.chunk) .. " envelope")
  end
  envelope.chunk = chunk
  return true
end
function reaper.SetMediaItemTake_Source(take, source)
  check(take, "MediaItem_Take*", "SetMediaItemTake_Source")
  check(source, "PCM_source*", "SetMediaItemTake_Source")
  take.source = source
  return true
end
function reaper.SetActiveTake(take)
  check(take, "MediaItem_Take*", "SetActiveTake")
  take.item.active = take
end
function reaper.GetMediaItem_Track(item)
  check(item, "MediaItem*", "GetMediaItem_Track")
  return item.track
end

function reaper.CountTracks(project)
  assert(project == 0, "project 0")
  return #state.tracks
end
function reaper.GetTrack(project, index)
  assert(project == 0, "project 0")
  return state.tracks[index + 1]
end
function reaper.InsertTrackAtIndex(index, _)
  local track = { name = "", items = {} }
  table.insert(state.tracks, index + 1, track)
  state.valid[track] = "MediaTrack*"
end
function reaper.GetMediaTrackInfo_Value(track, name)
  check(track, "MediaTrack*", "GetMediaTrackInfo_Value")
  assert(name == "IP_TRACKNUMBER", "track values: IP_TRACKNUMBER")
  for i, other in ipairs(state.tracks) do
    if other == track then
      return i
    end
  end
end
function reaper.GetSetMediaTrackInfo_String(track, name, value, set)
  check(track, "MediaTrack*", "GetSetMediaTrackInfo_String")
  assert(name == "P_NAME", "track strings: P_NAME")
  if set then
    track.name = value
  end
  return true, track.name
end
function reaper.AddMediaItemToTrack(track)
  check(track, "MediaTrack*", "AddMediaItemToTrack")
  local item = { track = track, position = 0, length = 0, takes = {}, selected = false, loopsrc = 0 }
  table.insert(track.items, item)
  state.valid[item] = "MediaItem*"
  return item
end
function reaper.GetCursorPosition() return state.cursor end
-- The time selection (isLoop false) or the loop points (true; the mock keeps none): start, end.
function reaper.GetSet_LoopTimeRange(set, is_loop, start, finish, _)
  assert(not is_loop, "the mock keeps only the time selection")
  if set then
    state.time_selection = { start, finish }
  end
  return state.time_selection[1], state.time_selection[2]
end
function reaper.Master_GetTempo() return state.bpm end
function reaper.TimeMap2_GetDividedBpmAtTime(project, time)
  assert(project == 0 and type(time) == "number", "TimeMap2_GetDividedBpmAtTime(0, time)")
  return state.bpm
end

-- ---- gfx: the progress window ----

local gfx = { w = 0, h = 0, x = 0, y = 0 }
mock.gfx = gfx
function gfx.init(title, w, h)
  state.gfx.open, state.gfx.title = true, title
  gfx.w, gfx.h = w, h
end
function gfx.setfont() end
function gfx.set() end
function gfx.rect() end
function gfx.drawstr(text) table.insert(state.gfx.drawn, text) end
function gfx.update() end
function gfx.getchar() return state.gfx.open and 0 or -1 end
function gfx.quit() state.gfx.open = false end
function gfx.screentoclient(x, y) return x - 100, y - 50 end
-- A menu: the item whose name (its marks "!", "#" taken off) is state.menu_choice is picked, else it is dismissed
-- (0); the menu's text is kept in state.menus.
function gfx.showmenu(text)
  if not state.gfx.open then
    fail("gfx.showmenu needs a gfx window (gfx.init)")
  end
  table.insert(state.menus, text)
  local index = 0
  for item in (text .. "|"):gmatch("([^|]*)|") do
    index = index + 1
    if item:gsub("^[!#]+", "") == state.menu_choice then
      return index
    end
  end
  return 0
end

-- ---- Running an action ----

local function sleep(seconds)
  os.execute("sleep " .. seconds)
  state.clock = state.clock + seconds  -- never ahead of the real time that passed
end

-- Runs the script as REAPER would, then its defer loop until it stops. options.each(seconds) is called between
-- rounds; returning true ends the script there, as re-launching a toggle action does. More than
-- options.limit seconds (300) is an error: the loop never ended.
function mock.run_action(script, options)
  options = options or {}
  local limit = options.limit or 300
  state.script = script
  _G.reaper, _G.gfx = reaper, gfx
  state.removed = state.removed or {}
  local remove = os.remove
  os.remove = function(path)  -- noted, so tests can tell which answers the script has read
    state.removed[path] = true
    return remove(path)
  end
  dofile(script)
  local waited = 0
  while #state.deferred > 0 do
    local due = state.deferred
    state.deferred = {}
    for _, fn in ipairs(due) do
      fn()
    end
    if #state.deferred > 0 then
      if waited > limit then
        fail("the defer loop did not end within " .. limit .. " s")
      end
      sleep(0.05)
      waited = waited + 0.05
      if options.each and options.each(waited) then
        state.deferred = {}
      end
    end
  end
  for _, fn in ipairs(state.atexit) do
    fn()
  end
  state.atexit = {}
  os.remove = remove
  if state.undo.depth ~= 0 then
    fail("an undo block was left open")
  end
  if state.ui_refresh ~= 0 then
    fail("PreventUIRefresh is unbalanced")
  end
  return waited
end

return mock
