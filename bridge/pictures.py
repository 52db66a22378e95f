"""Pictures a producer reads: spectrograms of sounds laid out as a contact sheet, and a training run's loss curve.

Every spectrogram is drawn the same way so that any two pictures compare: time in seconds, frequency on a log
axis from 20 Hz to 24 kHz (where drums live, and how producers read an analyser), and one fixed dBFS colour
scale (a full-scale sine reads 0 dBFS). Under each one a level strip (peak dBFS per STFT hop, every channel)
shows the decay and any click; samples at full scale are marked in red.

matplotlib draws them; it is the optional extra `plots`. Without it every drawing function raises
PlotsUnavailable, one line naming the extra. Files are written complete or not at all: a new picture never
replaces an existing file (a contact sheet), or replaces its own older version atomically (a run's loss curve).

Just over 300 lines: the contact sheet and the loss curve share one set of axes, colour scale and file rules.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge import constants, files
from bridge.engine.audio import Clip
from bridge.errors import BridgeError

EXTRA = "plots"
FORMATS = (".png", ".svg", ".pdf")  # what matplotlib writes without further libraries
FLOOR_DB, TOP_DB = -100.0, 0.0  # the colour scale, fixed: the same colour means the same level in every picture
LEVEL_FLOOR_DB = -80.0  # bottom of the level strips: a real one-shot falls below it, a hiss floor does not
LOW_HZ, HIGH_HZ = 20.0, 24000.0
FREQUENCY_ROWS = 160  # log-spaced rows: smooth at any tile size and a small file
MAX_COLUMNS = 400  # STFT frames per tile at most: a long file gets a longer hop, not a huge picture
CLIPPING = 0.999  # |sample| at or above this is marked as clipping (red): at full scale
TICKS_HZ = (50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
COLOUR_MAP = "magma"  # dark to bright, perceptually even, readable in grey


class PlotsUnavailable(BridgeError):
    """matplotlib is not installed: pictures cannot be drawn (everything else works)."""


def _figure_class():
    """matplotlib's Figure, drawn off-screen; no pyplot, so no global state and no window."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotsUnavailable(f"pictures need matplotlib, which is not installed: "
                               f"{constants.install_command(EXTRA)}") from None
    return Figure


def require() -> None:
    """PlotsUnavailable now, before any long work whose result could not be drawn."""
    _figure_class()


def available() -> bool:
    try:
        require()
    except PlotsUnavailable:
        return False
    return True


def check_output(path: Path) -> Path:
    """A new picture's path: a known format, in an existing folder, not taken. Checked before any work."""
    _kind(path)
    return files.check_new(path, BridgeError)


def _kind(path) -> str:
    """The format matplotlib is to write, from the name's extension."""
    kind = Path(path).suffix.lower()
    if kind not in FORMATS:
        raise BridgeError(f"{path}: the picture's name must end in {', '.join(FORMATS)}")
    return kind[1:]


@dataclass(frozen=True, eq=False)
class Tile:
    """One sound on a sheet and the line above it."""

    title: str
    clip: Clip


@dataclass(frozen=True, eq=False)
class Spectrogram:
    """dBFS of the mid channel on log-spaced frequency rows: db[row, column] at freqs[row] Hz, times[column] s."""

    times: np.ndarray
    freqs: np.ndarray
    db: np.ndarray
    hop: int


def spectrogram(clip: Clip, rows: int = FREQUENCY_ROWS) -> Spectrogram:
    rate = clip.sample_rate
    n_fft = int(2 ** round(np.log2(rate * 0.02)))  # about 20 ms: drum attacks stay sharp, 47 Hz bins at 48 kHz
    hop = max(n_fft // 8, -(-clip.frames // MAX_COLUMNS))
    mid = clip.samples.mean(axis=1, dtype=np.float64)
    # Silence around the clip (not a reflection, which would invent a second attack) centres frame k at k * hop.
    padded = np.pad(mid, (n_fft // 2, n_fft // 2 + hop))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:clip.frames // hop + 1]
    window = np.hanning(n_fft)
    magnitude = np.abs(np.fft.rfft(frames * window, axis=1)).T  # [bins, frames]
    db = 20 * np.log10(magnitude / (window.sum() / 2) + 1e-10)
    freqs = np.geomspace(LOW_HZ, min(HIGH_HZ, rate / 2), rows)
    return Spectrogram(np.arange(frames.shape[0]) * hop / rate, freqs, _log_rows(db, rate / n_fft, freqs), hop)


def _log_rows(db: np.ndarray, bin_hz: float, freqs: np.ndarray) -> np.ndarray:
    """db[bins, frames] on log-spaced rows: the loudest bin within each row's band, so a narrow peak between rows
    still shows (high rows span many bins); interpolated between bins where a band holds none (low rows)."""
    position = freqs / bin_hz  # fractional bin of each row
    low = np.minimum(position.astype(int), db.shape[0] - 2)
    fraction = (position - low)[:, None]
    interpolated = db[low] * (1 - fraction) + db[low + 1] * fraction
    edges = np.sqrt(freqs[1:] * freqs[:-1]) / bin_hz  # between neighbouring rows, in bins
    first = np.ceil(np.concatenate([[position[0]], edges])).astype(int)  # a row's band: bins first..next first-1
    inside = np.append(first[1:], np.floor(position[-1]) + 1) > first
    top = int(np.floor(position[-1])) + 1  # bins above the top row (a file over 48 kHz) are not drawn
    loudest = np.maximum.reduceat(db[:top], np.minimum(first, top - 1), axis=0)
    return np.where(inside[:, None], np.maximum(loudest, interpolated), interpolated)


def level(clip: Clip, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Peak dBFS over every channel per block of hop frames: (block centres in s, levels)."""
    peak = np.abs(clip.samples).max(axis=1)
    blocks = -(-len(peak) // hop)
    peak = np.pad(peak, (0, blocks * hop - len(peak))).reshape(blocks, hop).max(axis=1)
    times = (np.arange(blocks) + 0.5) * hop / clip.sample_rate
    return times, np.maximum(20 * np.log10(peak + 1e-10), LEVEL_FLOOR_DB)


@dataclass(frozen=True)
class SheetLayout:
    """Where things sit on a contact sheet, in inches: fixed sizes, so every sheet reads at the same scale."""

    width: float = 1.7  # of a spectrogram and its strip
    spectrogram: float = 1.05
    strip: float = 0.3
    title: float = 0.22  # above each tile
    ticks: float = 0.26  # under each strip
    gap: float = 0.4  # between columns: room for the frequency labels
    left: float = 0.62
    right: float = 0.85  # the colour bar
    top: float = 0.45  # the sheet's title
    bottom: float = 0.18
    title_characters: int = 30  # a longer tile title is cut short rather than run into its neighbour

    @property
    def row(self) -> float:
        return self.title + self.spectrogram + self.strip + self.ticks

    def size(self, rows: int, columns: int) -> tuple[float, float]:
        return (self.left + columns * self.width + (columns - 1) * self.gap + self.right,
                self.top + rows * self.row + self.bottom)


def contact_sheet(path, rows: Sequence[Sequence[Tile]], *, title: str | None = None, dpi: int = 100,
                  layout: SheetLayout = SheetLayout(), replace: bool = False) -> Path:
    """Rows of tiles, each a spectrogram over its level strip, with one dB colour bar; written to path."""
    Figure = _figure_class()
    from matplotlib import colormaps
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

    rows = [list(row) for row in rows if row]
    columns = max(len(row) for row in rows)
    width, height = layout.size(len(rows), columns)
    figure = Figure(figsize=(width, height))
    if title:
        figure.suptitle(title, fontsize=10, y=1 - 0.12 / height, va="top")
    cmap = colormaps[COLOUR_MAP]

    def axes(left: float, top: float, w: float, h: float, **options):
        """Axes placed in inches from the sheet's top left corner."""
        return figure.add_axes((left / width, 1 - (top + h) / height, w / width, h / height), **options)

    mesh = None
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            left = layout.left + c * (layout.width + layout.gap)
            top_edge = layout.top + r * layout.row + layout.title
            top = axes(left, top_edge, layout.width, layout.spectrogram)
            strip = axes(left, top_edge + layout.spectrogram, layout.width, layout.strip, sharex=top)
            spec = spectrogram(tile.clip)
            seconds = tile.clip.frames / tile.clip.sample_rate
            # An image on rows already log-spaced, on an axis in log10(Hz): what pcolormesh on a log axis draws,
            # at a fraction of the time (a sheet holds dozens of tiles).
            half = spec.hop / tile.clip.sample_rate / 2
            top.set_facecolor(cmap(0.0))  # above a file's Nyquist: nothing, drawn as the floor
            mesh = top.imshow(spec.db, origin="lower", aspect="auto", cmap=cmap, vmin=FLOOR_DB, vmax=TOP_DB,
                              extent=(-half, spec.times[-1] + half, *np.log10(spec.freqs[[0, -1]])))
            top.set_ylim(np.log10(LOW_HZ), np.log10(HIGH_HZ))
            top.yaxis.set_major_locator(FixedLocator(np.log10(TICKS_HZ)))
            top.yaxis.set_major_formatter(FuncFormatter(_hertz))
            top.set_xlim(0, seconds)
            top.tick_params(labelbottom=False, labelsize=6, length=2, pad=1)
            top.set_title(_shorten(tile.title, layout.title_characters), fontsize=7, loc="left", pad=3)

            times, levels = level(tile.clip, spec.hop)
            strip.fill_between(times, LEVEL_FLOOR_DB, levels, step="mid", color="#3b4a6b", linewidth=0)
            clipped = np.flatnonzero(np.abs(tile.clip.samples).max(axis=1) >= CLIPPING)
            if len(clipped):
                strip.plot(clipped / tile.clip.sample_rate, np.full(len(clipped), -6.0), "|", color="red",
                           markersize=4)
            strip.set_ylim(LEVEL_FLOOR_DB, 0)
            strip.xaxis.set_major_locator(MaxNLocator(nbins=4))
            strip.set_yticks((-60, -30, 0))
            strip.tick_params(labelsize=6, length=2, pad=1)
            strip.grid(axis="y", linewidth=0.3, alpha=0.5)
            if c == 0:
                top.set_ylabel("Hz", fontsize=7, labelpad=1)
                strip.set_ylabel("peak\ndBFS", fontsize=6, labelpad=1)
            if r == len(rows) - 1:
                strip.set_xlabel("time (s)", fontsize=7, labelpad=1)
    bar_left = layout.left + columns * (layout.width + layout.gap) - layout.gap + 0.12
    colour_bar = figure.colorbar(mesh, cax=axes(bar_left, layout.top + layout.title, 0.1, layout.spectrogram))
    colour_bar.set_label("dBFS (mid channel)", fontsize=7)
    colour_bar.ax.tick_params(labelsize=6, length=2)
    return _save(figure, path, dpi=dpi, replace=replace)


def _shorten(text: str, characters: int) -> str:
    return text if len(text) <= characters else text[:characters - 1] + "…"


def loss_curve(path, steps: Sequence[int], losses: Sequence[float], *, title: str | None = None,
               dpi: int = 100) -> Path:
    """Training loss per step (log scale past a decade): each step a grey dot, a smoothed curve in red; replaces
    path."""
    Figure = _figure_class()
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

    figure = Figure(figsize=(6.4, 3.4), layout="constrained")
    axes = figure.add_subplot()
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(losses):
        x = np.asarray(steps, dtype=np.float64)
        y = np.maximum(np.asarray(losses, dtype=np.float64), 1e-8)
        axes.plot(x, y, ".", color="0.6", markersize=2, label="loss per step")
        if len(y) > 1:
            axes.plot(x, _smooth(y), color="#c81e1e", linewidth=1.5, label="smoothed")
        if y.max() / y.min() > 10:  # a log scale once the loss spans more than a decade, in plain numbers
            plain = FuncFormatter(lambda value, _position: f"{value:g}")
            axes.set_yscale("log")
            axes.yaxis.set_minor_locator(LogLocator(subs=(2, 5)))
            axes.yaxis.set_major_formatter(plain)
            axes.yaxis.set_minor_formatter(plain)
            axes.tick_params(axis="y", which="minor", labelsize=7)
        axes.legend(fontsize=8, frameon=False)
    axes.set_xlabel("training step")
    axes.set_ylabel("loss (mean squared error of v)")  # what train.py minimises
    axes.grid(which="both", linewidth=0.3, alpha=0.5)
    if title:
        axes.set_title(title, fontsize=10)
    return _save(figure, path, dpi=dpi, replace=True)


def _smooth(y: np.ndarray, keep: float = 0.95) -> np.ndarray:
    """An exponential moving average in log space, as the progress line smooths the loss."""
    logs = np.log(y)
    out = np.empty_like(logs)
    out[0] = logs[0]
    for i in range(1, len(logs)):
        out[i] = keep * out[i - 1] + (1 - keep) * logs[i]
    return np.exp(out)


def _hertz(log10_hz: float, _position) -> str:
    hz = round(10 ** log10_hz)
    return f"{hz / 1000:g}k" if hz >= 1000 else f"{hz:g}"


def _palette_png(buffer: io.BytesIO) -> io.BytesIO:
    """The PNG with 256 colours instead of millions: a third of the size, no visible change (the colour map
    itself has 256 entries). Pillow is matplotlib's own dependency."""
    from PIL import Image

    image = Image.open(buffer).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT,
                                                        dither=Image.Dither.NONE)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out


def _save(figure, path, *, dpi: int, replace: bool) -> Path:
    """The figure's bytes, then one new file (or one atomic replacement): never a half-written picture."""
    path = Path(path)
    kind = _kind(path)
    buffer = io.BytesIO()
    # No dates or tool versions in the file: the same sounds make the same bytes.
    metadata = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None},
                "pdf": {"CreationDate": None, "Producer": None, "Creator": None}}[kind]
    figure.savefig(buffer, format=kind, dpi=dpi, metadata=metadata)
    if kind == "png":
        buffer = _palette_png(buffer)
    try:
        if not replace:
            return files.create_new(path, buffer.getvalue(), BridgeError)
        return files.replace_file(path, buffer.getvalue())  # a hidden exclusive temporary: never through a link
    except OSError as error:  # a full disk, a folder gone read-only: one line, nothing half-written
        raise BridgeError(f"{path}: could not write it ({files.reason(error)})") from None
