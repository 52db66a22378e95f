"""DD Bridge: Dance Diffusion variations inside the DAW."""

__version__ = "0.1.0"
