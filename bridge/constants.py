"""Defaults and limits in one place; the CLI, the service and the DAW sides all read these."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
MODELS_DIR = REPO_DIR / "models"

# Model
DEFAULT_SAMPLE_RATE = 48000
DEFAULT_WINDOW = 65536
LENGTH_MULTIPLE = 8192  # 13 halvings of the time axis in the released architecture
DEFAULT_MODEL = "dd-drums-small"  # name of the bundled model card in models/

# Sampling
DEFAULT_SAMPLER = "v-iplms"
DEFAULT_STEPS = 25
DEFAULT_NOISE = 0.5
DEFAULT_SHAPE = 1.0  # vary: how closely a variation keeps its source's time-frequency envelope (0: the model alone)
DEFAULT_COUNT = 1
MAX_COUNT = 64

# Audio out
OUTPUT_FORMATS = ("pcm16", "pcm24", "float")
DEFAULT_OUTPUT_FORMAT = "pcm24"

# Service
OSC_HOST = "127.0.0.1"
OSC_PORT = 9000  # the service listens here
OSC_REPLY_PORT = 9001  # default extra reply port: where the Max device's udpreceive listens
MIDI_PORT_NAME = "DD Bridge"
