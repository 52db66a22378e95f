"""Defaults, choices and limits in one place; the CLI, the service and the DAW sides all read these.

Every choice tuple (devices, precisions, backends, output formats) and every range a value is checked against is
defined here once; the modules that check or offer them import them (no torch here: the light commands read it).
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
MODELS_DIR = REPO_DIR / "models"

# Model
DEFAULT_SAMPLE_RATE = 48000
DEFAULT_WINDOW = 65536
# The shortest input, in length multiples: reflect padding needs 3 samples at the innermost level (diffusers asks
# the same); shorter clips are padded up to it.
MIN_LENGTH_MULTIPLES = 3
DEFAULT_MODEL = "dd-drums-small"  # name of the bundled model card in models/

# Sampling
DEFAULT_SAMPLER = "v-iplms"  # the rest (loops, interpolate, repaint, extend): deterministic, as interpolating needs
# New one-shots from noise (generate without loop): the SDE sampler on Karras et al.'s grid, measured closer to
# real drums on held-out kits than the SDE on the crash grid (-0.27 +- 0.03 MMD^2 on kits it was not chosen on), and
# that closer than v-iplms; with half the SDE's noise (eta 0.5) closer again and less often near-silent
# (docs/benchmarks.md). On the weights continued in session 36 eta 1 has a few fewer clicks but leaves 15 of 96
# renders under -2 dBFS against 2 ("The SDE's eta on the continued weights"): eta 0.5 stays.
NEW_SOUND_SAMPLER = "dpmpp-2m-sde-karras-eta0.5"
# Variations of one-shots (vary without loop): the SDE on the crash grid at its full noise. On 32 held-out sources it
# adds a third of v-iplms' clicks to a source's decay (+6.9 +- 1.6 a sound against +18.8 +- 4.5, one run) at the same
# distance to real drums, its shorter tails lifted back by the shape guide's finish (guidance.SHAPE_LIFT_DB;
# docs/benchmarks.md, "Which sampler for a variation, counted in clicks"). Not for loops: see vary_kind.
VARIATION_SAMPLER = "dpmpp-2m-sde"
# Variations of loops (vary --loop, a press on a clip selected as a loop): v-iplms down to t = 0.02, the SDE for the
# last steps. On 18 one-bar beats from six held-out kits it adds under half of v-iplms' clicks and keeps most of
# its groove, where the SDE throughout loses the hits (docs/benchmarks.md, "Which sampler for a loop").
LOOP_VARIATION_SAMPLER = "v-iplms-sde"
AUTO_SAMPLER = "auto"  # a sampler setting or option left to sampler_for: the one measured best for the render
DEFAULT_STEPS = 25
DEFAULT_NOISE = 0.5
DEFAULT_SHAPE = 1.0  # vary: how closely a variation keeps its source's time-frequency envelope (0: the model alone)
DEFAULT_COUNT = 1
DEFAULT_PREFETCH = 4  # variations rendered ahead of a key press for the selected clip
MAX_COUNT = 64
MAX_STEPS = 1000
MIN_SECONDS = 0.01  # generate's length
MAX_SECONDS = 600.0  # generate's length, a region's tail, any length in bars (tempo.Bars)
MAX_POSITION = 24 * 3600.0  # a region's start or end, in seconds of the source file
MAX_CLASSIFIER_MEMBERS = 16  # a class guide's ensemble: a few are worth averaging; thousands mean a broken card


# What a render makes, for sampler_for: a new one-shot from noise, a variation of a one-shot or of a loop, or
# anything else
NEW_SOUND, VARIATION, LOOP_VARIATION, OTHER = "new sound", "variation", "loop variation", "other"
SAMPLER_BY_KIND = {NEW_SOUND: NEW_SOUND_SAMPLER, VARIATION: VARIATION_SAMPLER,
                   LOOP_VARIATION: LOOP_VARIATION_SAMPLER, OTHER: DEFAULT_SAMPLER}
AUTO_SAMPLERS = (f"{NEW_SOUND_SAMPLER} for new one-shots, {VARIATION_SAMPLER} for variations of one-shots, "
                 f"{LOOP_VARIATION_SAMPLER} for variations of loops, {DEFAULT_SAMPLER} for everything "
                 "else")  # what "auto" means, for help texts


def vary_kind(loop: bool) -> str:
    """The kind of a variation: a one-shot's is VARIATION, a loop's LOOP_VARIATION (the SDE throughout kept a loop's
    hits and groove less well: docs/benchmarks.md, "Which sampler for a loop")."""
    return LOOP_VARIATION if loop else VARIATION


def sampler_for(sampler: str | None, *, kind: str = OTHER) -> str:
    """The sampler a render uses: the one asked for, or (None or AUTO_SAMPLER) the one measured best for its kind
    (SAMPLER_BY_KIND). Files and recreating commands name what this returns, never "auto", so a sound can be made
    again exactly."""
    if sampler is not None and sampler != AUTO_SAMPLER:
        return sampler
    return SAMPLER_BY_KIND[kind]


def install_command(extra: str) -> str:
    """How a producer adds the optional extra ``extra`` (cluster, plots, cpu, ...) to DD Bridge. dd-bridge is not on
    PyPI (`pip install 'dd-bridge[...]'` would fetch whatever someone else published under the name): it is
    installed from its source folder, into the .venv that bootstrap.sh made there."""
    return f".venv/bin/pip install -e '.[{extra}]' (in DD Bridge's folder)"


# Seeds: one rule for the CLI, the service and the engine. Any whole number in 0..MAX_SEED is accepted and makes
# the same sound again: a signed 64-bit int, what OSC's int64 and the recreate command carry. The seeds the bridge
# draws itself (no seed given) stay below RANDOM_SEEDS, a signed 32-bit int: what a DAW can show and send back
# (an OSC int32, a Max integer).
MAX_SEED = 2**63 - 1
RANDOM_SEEDS = 2**31

# Where the model runs
DEVICES = ("auto", "cuda", "mps", "cpu")  # auto: cuda, then mps, then cpu
PRECISIONS = ("fp32", "fp16", "bf16")
DEFAULT_PRECISION = "fp32"
AUTO_PRECISIONS = ("auto", *PRECISIONS)  # where the command may choose (the service: DEFAULT_PRECISION)
BACKENDS = ("torch", "onnx")
DEFAULT_BACKEND = "torch"


def backend_named(backend: str | None) -> str | None:
    """--backend as a file's comment and recreating command name it (the same rule for vary, generate, interpolate
    and a pack's files): named unless it is DEFAULT_BACKEND (None: left out), since onnx and torch differ in the
    last bits and the command must make the same bytes again."""
    return None if backend in (None, DEFAULT_BACKEND) else backend

# Audio out
OUTPUT_FORMATS = ("pcm16", "pcm24", "float")
DEFAULT_OUTPUT_FORMAT = "pcm24"

# Service
OSC_HOST = "127.0.0.1"
OSC_PORT = 9000  # the service listens here
OSC_REPLY_PORT = 9001  # default extra reply port: where the Max device's udpreceive listens
MIDI_PORT_NAME = "DD Bridge"
MAX_PORT = 65535  # UDP
MAX_MIDI_NUMBER = 127  # a MIDI note or controller number
MIDI_ACTIONS = ("vary", "generate", "keep")  # what a MIDI note can trigger (keep: audition mode's)
# What a MIDI controller can set: the noise, or the weight of a guide (docs/guidance.md) in the settings' guides.
MIDI_CC_SETTINGS = ("noise", "brightness", "decay", "punch", "width", "tuning")
MIN_TOKEN_LENGTH = 12  # osc.token: a secret, not a password someone could guess
MAX_PREFETCH = 16  # variations rendered ahead per clip
MAX_QUEUE = 10000  # limits.queue: requests waiting
MAX_PENDING = 100000  # limits.pending: outputs waiting over all requests
MAX_PREFETCH_CLIPS = 64  # limits.prefetch_clips
MAX_PREFETCH_MEMORY_MB = 2**20  # limits.prefetch_memory_mb
RUN_ID_HEX = 8  # /dd/hello's <run>: hex digits drawn at each start of the service (a client sees a restart by it)
