"""Audio files in and out, and the trip to and from the model's rate and stereo layout.

Reading takes wav, aiff, flac, ogg and mp3 (libsndfile) at any rate, channel count and bit depth. Writing makes
WAV only, clamped to [-1, 1] and never normalised, through ``bridge.files``: complete when it appears, never
replacing a file.

A file cut short is refused, not read as the shorter sound it still holds: WAV and AIFF by their chunk sizes,
RF64 and W64 by their data chunk's 64-bit size against the file's (which libsndfile does not compare), FLAC, MP3
and the rest by the frame count in their header. An Ogg file carries no total length: a cut one is refused where
libsndfile finds no frames and its end-of-stream mark missing (a file cut well inside), else (a stream captured
without its end mark, which reads whole) it reads as what is left. A WAV
whose data chunk says 0 bytes with audio after it (a recorder that crashed) is said to be so, not just empty.

A whole file is read up to 4 GiB; a region of a larger one (RF64, W64, CAF, FLAC: a live set's recording) is read
alone, weighed by what it decodes to. Paths in messages show control characters escaped (bridge.files.printable):
one line, whatever a file is named.

Channels meet the model's stereo as L/R pairs: channels (1, 2), (3, 4), ... are pairs and an unpaired last
channel (all of a mono file) is centred. The model hears the average of the pairs' lefts (plus the centre) on
its left and of their rights (plus the centre) on its right; on the way back every pair gets the result's L and
R and an unpaired channel gets its mid (L + R) / 2. Mono and stereo are the plain cases of that rule, quad
(FL FR BL BR) maps exactly, and 5.1 (FL FR C LFE BL BR) keeps centre and LFE in the mix, as the pair they
form, instead of dropping them.

Over 300 lines: the truncation check of each file format and the channel rule both ways belong together:
what is read must come back in the same layout.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from bridge import files
from bridge.constants import OUTPUT_FORMATS
from bridge.engine.tempo import BEATS_PER_BAR
from bridge.engine.regions import Region
from bridge.errors import AudioError

log = logging.getLogger(__name__)

SUBTYPES = {"pcm16": "PCM_16", "pcm24": "PCM_24", "float": "FLOAT"}
assert set(SUBTYPES) == set(OUTPUT_FORMATS)
RESAMPLE_QUALITY = "VHQ"
PCM_PEAK = 10 ** (-0.1 / 20)  # -0.1 dBFS: where audio over full scale is turned down to (finish, encode_wav)
LOSSY_FORMATS = {"MP3", "OGG"}  # their header frame counts are estimates: allow 1 % slack
# libsndfile logs a chunk whose declared size runs past the end of the file as "data : 288000 (should be 143978)".
_SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_PLACEHOLDER_SIZES = {0, 0xFFFFFFFF, 0x7FFFFFFF, 2**64 - 1}  # streaming writers leave these until they know the size
# libsndfile's words for an Ogg stream cut off ("File ended unexpectedly without an End-Of-Stream flag set.")
_NO_END_OF_STREAM = re.compile(r"without an End-Of-Stream flag|lacks an end-of-stream", re.IGNORECASE)
# A whole file is read only up to the WAV format's own limit: a longer clip could not be rendered anyway. A header,
# or a region of a file (only its frames are decoded, weighed by fits and _check_memory), is read from a file of any
# size up to a sanity bound: RF64, W64, CAF and FLAC exist to go past 4 GiB (a live set's recording).
MAX_AUDIO_FILE_BYTES = 4 << 30
MAX_AUDIO_REGION_FILE_BYTES = 1 << 40
# Decodes up to this size are not weighed against the memory free: any machine this runs on holds them. About 3
# minutes of 48 kHz stereo as float32 (bridge.engine.memory weighs the rest without loading torch).
UNCHECKED_DECODE_BYTES = 64 << 20
_TOLERATED_MISSING_BYTES = 64  # a miscounted pad byte or frame is not a truncation worth refusing


@dataclass(frozen=True, eq=False)
class Clip:
    """Audio in memory: float32 samples [frames, channels] at sample_rate."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self):
        samples = np.asarray(self.samples, dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[:, None]
        if samples.ndim != 2 or samples.shape[1] < 1:
            raise ValueError(f"samples must be [frames, channels], got shape {samples.shape}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample rate must be positive, got {self.sample_rate}")
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "sample_rate", int(self.sample_rate))

    @property
    def frames(self) -> int:
        return self.samples.shape[0]

    @property
    def channels(self) -> int:
        return self.samples.shape[1]

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    @property
    def nbytes(self) -> int:
        return self.samples.nbytes

    @property
    def silent(self) -> bool:
        """Every sample 0: digital silence, whose variations keeping its envelope (a --shape over 0) are silent too."""
        return not self.samples.any()


@dataclass(frozen=True)
class AudioHeader:
    """What a file's header says about the frames to read (the whole file, or a region of it with its tail), known
    before a sample is decoded: enough to refuse a file too long to render or too large to hold, and to tell a clip
    that is not worth prefetching, as its Clip would (``frames``, ``seconds``, ``nbytes`` alike)."""

    frames: int
    sample_rate: int
    channels: int
    subtype: str = ""  # libsndfile's sample format (PCM_24, FLOAT, ...): how much a sample holds (kept_format)

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    @property
    def nbytes(self) -> int:
        return self.frames * self.channels * np.dtype(np.float32).itemsize  # decoded as read_audio decodes

    def region(self, region: Region | None, name: str) -> Region | None:
        """``region`` of this file with a concrete end (None: the whole file); ConfigError if it lies outside."""
        return None if region is None else region.resolved(self.frames, self.sample_rate, name)


Fits = Callable[[AudioHeader], None]  # a caller's check of what is about to be decoded: raises to refuse it


def read_header(path: str | os.PathLike) -> tuple[os.stat_result, AudioHeader]:
    """The stat of an audio file and its header (the whole file), read without decoding and without ever waiting:
    through files.open_regular, so a FIFO or a device put in its place after check_input is refused at once (the
    service reads headers on its door's thread, which must not wait), and the stat is the very file's whose header was read. Every
    way it fails is one AudioError naming the file, in read_audio's words."""
    path = Path(path)
    files.check_input(path, AudioError)
    try:
        with files.open_regular(path, MAX_AUDIO_REGION_FILE_BYTES) as opened, soundfile.SoundFile(opened) as file:
            return os.fstat(opened.fileno()), AudioHeader(file.frames, file.samplerate, file.channels, file.subtype)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{files.printable(path)}: not an audio file this can read ({_reason(error)})") from None
    except OSError as error:  # a FIFO or device named .wav, or a file past the size limit
        raise AudioError(f"{files.printable(path)}: cannot read ({files.reason(error)})") from None


def read_audio(path: str | os.PathLike, region: Region | None = None, *, fits: Fits | None = None) -> Clip:
    """Read an audio file whole, or only ``region`` of it (only those frames are decoded); every way it can be
    unusable is one AudioError naming the file, a region outside it a ConfigError. What the header says is to be
    decoded goes to ``fits`` first (a render's length check, the prefetch's bounds), then is weighed against the
    memory free (an AudioError when it would not fit): a long file is refused by its header, not after gigabytes
    of decoding."""
    path = Path(path)
    files.check_input(path, AudioError)
    shown = files.printable(path)
    limit = MAX_AUDIO_FILE_BYTES if region is None else MAX_AUDIO_REGION_FILE_BYTES
    try:
        with files.open_regular(path, limit) as opened:
            data = _data_chunk(opened)  # before libsndfile reads the file: it reads on from where this leaves it
            with soundfile.SoundFile(opened) as file:
                declared = file.frames
                log_text = file.extra_info
                kind = file.format
                sample_rate = file.samplerate
                if region is not None:  # a cut file is refused as such, not as a region outside what is left of it
                    _check_complete(shown, declared, declared, log_text, kind, data)
                first, stop = region.frames(declared, sample_rate, path.name) if region else (0, declared)
                wanted = AudioHeader(stop - first, sample_rate, file.channels)
                if fits is not None:
                    fits(wanted)
                _check_memory(shown, wanted)
                try:
                    if first:
                        file.seek(first)
                    samples = file.read(stop - first if region else -1, dtype="float32", always_2d=True)
                except (soundfile.LibsndfileError, RuntimeError) as error:
                    raise AudioError(f"{shown}: damaged or truncated audio ({_reason(error)})") from None
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{shown}: not an audio file this can read ({_reason(error)})") from None
    except files.TooLarge as error:  # only a whole file is held to the limit
        raise AudioError(f"{shown}: cannot read the whole file ({files.reason(error)}); a region of it (a start and "
                         "an end) can be read") from None
    except OSError as error:  # a FIFO or device named .wav
        raise AudioError(f"{shown}: cannot read ({files.reason(error)})") from None
    # A region is complete when all its frames came: the frames around it are not read, so count them as there.
    _check_complete(shown, first + samples.shape[0] + (declared - stop), declared, log_text, kind, data)
    if samples.shape[0] == 0:
        if data is not None and data.declared == 0 and data.following:
            raise AudioError(f"{shown}: holds no audio by its header: the data chunk's size is 0, yet "
                             f"{data.present} bytes follow it (a recording cut off?)")
        raise AudioError(f"{shown}: holds no audio (0 frames)")
    if not np.isfinite(samples).all():
        raise AudioError(f"{shown}: contains NaN or infinite samples")
    return Clip(samples, sample_rate)


def _check_memory(path: str, wanted: AudioHeader) -> None:
    """Refuse a decode larger than the memory free allows (the service would be killed in the middle of it, and
    maybe the DAW with it), with the margin the engine plans with (bridge.engine.memory)."""
    if wanted.nbytes <= UNCHECKED_DECODE_BYTES:
        return
    from bridge.engine import memory  # here: the engine's package, which small decodes (playback's) never need

    free = memory.host_free_bytes()
    if wanted.nbytes > memory.USABLE_FRACTION * free:
        raise AudioError(f"{path}: {wanted.seconds:.1f} s of {wanted.channels} channel(s) at {wanted.sample_rate} Hz "
                         f"decode to {memory.gib(wanted.nbytes)}, more than the memory free now "
                         f"({memory.gib(free)}) allows")


def resolve_region(path: str | os.PathLike, region: Region | None) -> Region | None:
    """``region`` of the file at path with a concrete end (None: the whole file), reading only its header
    (read_header: never waiting on a FIFO put in the file's place)."""
    if region is None:
        return None
    _, header = read_header(path)
    return header.region(region, Path(path).name)


def _reason(error: Exception) -> str:
    """libsndfile's own words without its prefix: "Error opening 'x.wav': Format not recognised." -> the last part."""
    lines = str(error).strip().splitlines()
    return lines[-1].rsplit(": ", 1)[-1].strip().rstrip(".") if lines else type(error).__name__


def _check_complete(path: str, frames_read: int, frames_declared: int, log_text: str, kind: str,
                    data: "_DataChunk | None" = None) -> None:
    """Refuse a file cut short: libsndfile reads what is there without complaint, so compare with the header: WAV
    and AIFF by the chunk sizes libsndfile logs, RF64 and W64 by their data chunk's 64-bit size against the file's
    (_data_chunk: libsndfile takes the file's length for it without a word), Ogg by its missing end-of-stream."""
    sizes = [(int(declared), int(present)) for declared, present in _SHORT_CHUNK.findall(log_text)]
    if data is not None and data.wide:
        sizes.append((data.declared, data.present))
    for declared, present in sizes:
        if declared not in _PLACEHOLDER_SIZES and declared - present > _TOLERATED_MISSING_BYTES:
            raise AudioError(f"{path}: truncated: the header announces {declared} bytes of audio, "
                             f"the file holds {present}")
    if kind == "OGG" and frames_declared == 0 and _NO_END_OF_STREAM.search(log_text):  # not an empty stream: cut
        raise AudioError(f"{path}: truncated: the Ogg stream stops before its end (no end-of-stream mark)")
    slack = frames_declared // 100 if kind in LOSSY_FORMATS else 0
    if frames_read < frames_declared - slack:
        raise AudioError(f"{path}: truncated: the header announces {frames_declared} frames, "
                         f"the file holds {frames_read}")


@dataclass(frozen=True)
class _DataChunk:
    """Where a RIFF-like file's audio is, as its own chunks say: the bytes its data chunk declares (RF64's and BW64's
    from their ds64 chunk), the bytes the file holds from the data's start on, and whether what follows a data chunk
    of size 0 is audio rather than the next chunk (``following``)."""

    declared: int
    present: int
    wide: bool  # RF64, BW64 or W64: sizes of 64 bits, which libsndfile does not check against the file's
    following: bool = False


_W64_RIFF = b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc1\x00\x00"
_W64_DATA = b"data\xf3\xac\xd3\x11\x8c\xd1\x00\xc0\x4f\x8e\xdb\x8a"
_MAX_CHUNKS = 1000  # chunks looked through for the data chunk; a file with more is not judged here


def _data_chunk(opened: io.BufferedReader) -> _DataChunk | None:
    """The data chunk of a WAV, RF64, BW64 or W64 file, found by walking its chunk headers (a few small reads,
    seeking over the chunks' bodies); None for another kind of file, or one whose chunks make no sense (libsndfile
    then says what is wrong). Leaves the file at its start."""
    try:
        size = os.fstat(opened.fileno()).st_size
        head = opened.read(40)
        if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
            return _riff_data(opened, size, wide=head[:4] != b"RIFF")
        if head[:16] == _W64_RIFF and len(head) == 40:
            return _w64_data(opened, size)
        return None
    except (OSError, struct.error):
        return None
    finally:
        opened.seek(0)


def _riff_data(opened: io.BufferedReader, size: int, *, wide: bool) -> _DataChunk | None:
    offset, wide_size = 12, None
    for _ in range(_MAX_CHUNKS):
        opened.seek(offset)
        header = opened.read(8)
        if len(header) < 8:
            return None
        chunk_id, chunk_size = struct.unpack("<4sI", header)
        if chunk_id == b"ds64" and wide:
            wide_size = struct.unpack("<QQ", opened.read(16))[1]  # RIFF's size, then data's
        elif chunk_id == b"data":
            start = offset + 8
            declared = wide_size if wide and chunk_size == 0xFFFFFFFF and wide_size is not None else chunk_size
            following = False
            if declared == 0 and size > start:  # audio after an empty data chunk, or just the next chunk?
                after = opened.read(4)
                following = not (len(after) == 4 and all(32 <= byte < 127 for byte in after))
            return _DataChunk(declared, size - start, wide, following)
        offset += 8 + chunk_size + (chunk_size & 1)
        if offset >= size:
            return None
    return None


def _w64_data(opened: io.BufferedReader, size: int) -> _DataChunk | None:
    offset = 40  # riff GUID and size, wave GUID
    for _ in range(_MAX_CHUNKS):
        opened.seek(offset)
        header = opened.read(24)
        if len(header) < 24:
            return None
        chunk_size = struct.unpack_from("<Q", header, 16)[0]  # counts its own 24-byte header
        if header[:16] == _W64_DATA:
            return _DataChunk(max(0, chunk_size - 24), size - offset - 24, True)
        if chunk_size < 24:
            return None
        offset += (chunk_size + 7) // 8 * 8
        if offset >= size:
            return None
    return None


def write_audio(path: str | os.PathLike, clip: Clip, fmt: str = "pcm24", metadata: dict | None = None) -> Path:
    """Write a new WAV file at path, complete or not at all; an existing path is refused, never replaced."""
    path = Path(path)
    if path.suffix.lower() != ".wav":
        raise AudioError(f"{files.printable(path)}: output files are WAV, the name must end in .wav")
    files.check_new(path, AudioError)  # before the encoding, as before a render
    data = encode_wav(clip, fmt, metadata)
    try:
        return files.create_new(path, data, AudioError)
    except OSError as error:
        raise AudioError(f"{files.printable(path.parent)}: could not write audio ({files.reason(error)})") from None


def write_numbered(folder: str | os.PathLike | files.Folder, stem: str, clip: Clip, fmt: str = "pcm24",
                   metadata: dict | None = None) -> Path:
    """Write clip as the next free "<stem> NNN.wav" in folder (a path, or a folder already open); safe against
    other writers taking numbers too."""
    data = encode_wav(clip, fmt, metadata)
    try:
        if isinstance(folder, files.Folder):
            return folder.create_numbered(stem, ".wav", data)
        with files.open_folder(folder, AudioError) as opened:
            return opened.create_numbered(stem, ".wav", data)
    except OSError as error:
        where = folder.path if isinstance(folder, files.Folder) else folder
        raise AudioError(f"{files.printable(where)}: could not write audio ({files.reason(error)})") from None


def next_free_path(folder: str | os.PathLike, stem: str) -> Path:
    """"<stem> 001.wav", or one above the highest number already in folder, so new files sort after old ones."""
    folder = Path(folder)
    if not folder.is_dir():
        return folder / files.numbered_name(stem, 1, ".wav")
    with files.Folder(folder) as opened:
        return folder / opened.next_free_name(stem, ".wav")


# The bits a source's samples hold, by libsndfile's subtype (those over 24, and floats, are float's to keep); a lossy
# or unknown one (MP3, Vorbis, Opus) widens nothing: what it decodes to has no exact depth to keep.
_SOURCE_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "ALAC_16": 16, "DWVW_16": 16, "ALAC_20": 24, "PCM_24": 24,
                "ALAC_24": 24, "DWVW_24": 24, "PCM_32": 32, "ALAC_32": 32, "FLOAT": 32, "DOUBLE": 64}
_FORMAT_BITS = {"pcm16": 16, "pcm24": 24, "float": 32}


def kept_format(source: AudioHeader, asked: str, name: str = "the source") -> str:
    """The output format of a repaint or an extension, which keep their source outside what they render: ``asked``,
    or a wider one where the source holds more than ``asked`` can (a 32-bit float bounce written as pcm24 lost its
    lowest bits and, over full scale, its level; a 24-bit take written as pcm16, its lowest 8 bits), said in a line.
    For a format asked for by name (the CLI's --format, a request's format=), not this: the asked one is written."""
    bits = _SOURCE_BITS.get(source.subtype, 0)
    if bits <= _FORMAT_BITS[asked]:
        return asked
    wider = next(fmt for fmt in OUTPUT_FORMATS if _FORMAT_BITS[fmt] >= bits or fmt == "float")
    log.info("%s holds %s samples: written as %s, so that what is kept stays as it is (--format or format= to "
             "choose)", name, source.subtype, wider)
    return wider


def encode_wav(clip: Clip, fmt: str = "pcm24", metadata: dict | None = None) -> bytes:
    """The WAV file's bytes, metadata as JSON in its comment. Made in memory, so a full disk is reported by the
    write itself ("No space left on device"), not as libsndfile's "System error".

    Never clamped: float keeps what is over full scale (a repaint or extension of a hot float bounce keeps its
    source to the bit); PCM cannot hold it, so audio peaking over full scale is turned down as a whole to
    PCM_PEAK, and a line says so (clipping would put distortion into the producer's own sound)."""
    if fmt not in SUBTYPES:
        raise AudioError(f"unknown output format {fmt!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
    samples = clip.samples
    if not np.isfinite(samples).all():
        raise AudioError("refusing to write audio with NaN or infinite samples (the render went wrong)")
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if fmt != "float" and peak > 1.0:
        log.warning("the audio peaks at %+.1f dBFS, over what %s holds: turned down as a whole by %.1f dB "
                    "(--format float keeps it as it is)", 20 * np.log10(peak), fmt, 20 * np.log10(peak / PCM_PEAK))
        samples = samples * np.float32(PCM_PEAK / peak)
    buffer = io.BytesIO()
    try:
        with soundfile.SoundFile(buffer, "w", clip.sample_rate, clip.channels, SUBTYPES[fmt], format="WAV") as file:
            if metadata is not None:
                # ASCII JSON: WAV INFO text has no declared encoding, and readers differ on what they assume.
                file.comment = json.dumps(metadata, ensure_ascii=True, separators=(",", ":"))
            file.write(samples)
    except OSError as error:
        raise AudioError(f"could not write audio ({files.reason(error)})") from None
    except RuntimeError as error:
        raise AudioError(f"could not write audio ({_reason(error)})") from None
    data = buffer.getvalue()
    extra = _loop_chunks(clip.frames, clip.sample_rate, metadata)
    if not extra:
        return data
    return data[:4] + struct.pack("<I", len(data) - 8 + len(extra)) + data[8:] + extra


def _loop_chunks(frames: int, rate: int, metadata: dict | None) -> bytes:
    """A loop's file says it is one (the recipe's "loop", with its "bars" and "bpm" when asked in bars): a ``smpl``
    chunk with one forward loop over the whole file, which samplers loop by, and, in bars, an ``acid`` chunk with
    its beats and tempo, which DAWs that read ACID loops (REAPER among them) stretch by. Dropped into a sampler or
    a project from the browser it loops and sits at its tempo, as in the set the DAW sides place it."""
    if not metadata or metadata.get("loop") is not True or frames < 1:
        return b""
    period = round(1e9 / rate)  # nanoseconds a sample
    chunks = _chunk(b"smpl", struct.pack("<9I", 0, 0, period, 60, 0, 0, 0, 1, 0)
                    + struct.pack("<6I", 0, 0, 0, frames - 1, 0, 0))  # cue 0, forward, the whole file
    bars, bpm = metadata.get("bars"), metadata.get("bpm")
    beats = round(bars * BEATS_PER_BAR) if isinstance(bars, (int, float)) else 0
    if beats >= 1 and isinstance(bpm, (int, float)) and bpm > 0:
        # flags 0x04: a loop to stretch (not a one-shot, no root note: drums); then root note, two fields ACID
        # leaves as these, the beats, the meter (4/4: bridge.engine.tempo) and the tempo
        chunks += _chunk(b"acid", struct.pack("<IHHfIHHf", 0x04, 60, 0x8000, 0.0, beats, 4, BEATS_PER_BAR,
                                              float(bpm)))
    return chunks


def _chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)


def read_metadata(path: str | os.PathLike) -> dict | None:
    """The JSON this project stores in a WAV's comment (INFO/ICMT), or None when there is none.

    Parsed from the RIFF chunks directly: libsndfile drops comments longer than about 2 kB when reading.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise AudioError(f"{files.printable(path)}: cannot read ({files.reason(error)})") from None
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    for chunk_id, body in _chunks(data, 12):
        if chunk_id == b"LIST" and body[:4] == b"INFO":
            for sub_id, text in _chunks(body, 4):
                if sub_id == b"ICMT":
                    try:
                        value = json.loads(text.rstrip(b"\0").decode("utf-8"))
                    except (UnicodeDecodeError, ValueError):
                        return None
                    return value if isinstance(value, dict) else None
    return None


def _chunks(data: bytes, offset: int):
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        yield chunk_id, data[offset + 8: offset + 8 + size]
        offset += 8 + size + (size & 1)


def model_length(clip: Clip | AudioHeader, sample_rate: int) -> int:
    """The clip's length in samples once resampled to sample_rate: known before the (costly) resampling, so a
    short file whose header claims 1 Hz is refused before it becomes gigabytes; known from the header (an
    AudioHeader) before the file is even decoded."""
    return math.ceil(clip.frames * sample_rate / clip.sample_rate)


def resample(samples: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """[frames, channels] from rate to new_rate with soxr's very-high-quality filter (the samples as they are
    when the rates are equal)."""
    if rate == new_rate:
        return samples
    return soxr.resample(np.ascontiguousarray(samples), rate, new_rate, quality=RESAMPLE_QUALITY)


def stereo(clip: Clip) -> np.ndarray:
    """The clip's channels as L/R ([frames, 2] at its own rate), by the pairing rule above."""
    return clip.samples @ _mixdown(clip.channels)


def to_model(clip: Clip, sample_rate: int, *, loop: bool = False) -> torch.Tensor:
    """The clip as the model hears it: float32 [2, L] at sample_rate (L follows the duration). ``loop``: the clip
    is one cycle of a loop, resampled as such (``resample_loop``), to the nearest whole number of samples."""
    import torch  # here, not at the top: playback reads and resamples audio without loading torch

    samples = stereo(clip)
    if loop:
        samples = resample_loop(samples, max(1, round(clip.frames * sample_rate / clip.sample_rate)))
    else:
        samples = resample(samples, clip.sample_rate, sample_rate)
    return torch.from_numpy(np.ascontiguousarray(samples.T, dtype=np.float32))


def from_model(x: torch.Tensor, like: Clip, *, sample_rate: int, loop: bool = False) -> Clip:
    """A model output [2, L] at sample_rate back in like's rate, channel layout and exact frame count (``loop``:
    one cycle of a loop, resampled as such to exactly like's frames)."""
    if x.ndim != 2 or x.shape[0] != 2:
        raise ValueError(f"expected a [2, L] model output, got shape {tuple(x.shape)}")
    import torch

    samples = x.detach().to("cpu", torch.float32).numpy().T
    if loop:
        return Clip(resample_loop(samples, like.frames) @ _upmix(like.channels), like.sample_rate)
    samples = resample(samples, sample_rate, like.sample_rate)[: like.frames]
    if samples.shape[0] < like.frames:  # the resampler's rounding can leave us a frame or two short
        samples = np.pad(samples, ((0, like.frames - samples.shape[0]), (0, 0)))
    return Clip(samples @ _upmix(like.channels), like.sample_rate)


def resample_loop(samples: np.ndarray, frames: int) -> np.ndarray:
    """[frames_in, channels] taken as one period of a periodic signal, resampled to exactly ``frames`` samples per
    period (Fourier interpolation: the spectrum cut or zero-extended). A loop's end then still flows into its start:
    a resampler that sees the cycle as a one-off (soxr) rings at both ends and leaves a step at the wrap, and the
    period would come out a fraction of a sample off. Band-limited to the lower rate's Nyquist, as soxr is."""
    length = samples.shape[0]
    if frames == length:
        return samples.astype(np.float32, copy=True)
    spectrum = np.fft.rfft(samples.astype(np.float64), axis=0)
    bins = min(length, frames) // 2 + 1
    out = np.zeros((frames // 2 + 1, samples.shape[1]), np.complex128)
    out[:bins] = spectrum[:bins]
    if min(length, frames) % 2 == 0:  # the shorter period's Nyquist bin stands for two bins of the longer one
        out[bins - 1] *= 0.5 if frames > length else 1.0
    return (np.fft.irfft(out, n=frames, axis=0) * (frames / length)).astype(np.float32)


def _mixdown(channels: int) -> np.ndarray:
    """[channels, 2]: pairs feed L and R, an unpaired last channel feeds both; each side is an average."""
    weights = np.zeros((channels, 2), np.float32)
    weights[0: channels - channels % 2: 2, 0] = 1
    weights[1: channels - channels % 2: 2, 1] = 1
    if channels % 2:
        weights[-1, :] = 1
    return weights / weights.sum(axis=0)


def _upmix(channels: int) -> np.ndarray:
    """[2, channels]: every pair gets L and R, an unpaired last channel the mid."""
    weights = np.zeros((2, channels), np.float32)
    weights[0, 0: channels - channels % 2: 2] = 1
    weights[1, 1: channels - channels % 2: 2] = 1
    if channels % 2:
        weights[:, -1] = 0.5
    return weights
