"""Errors a producer sees: each one line that names the input and what is wrong with it."""


class BridgeError(Exception):
    """A user-facing failure; its message is shown as one line, without a traceback."""


class AudioError(BridgeError):
    """An audio file that cannot be read or written."""


class CheckpointError(BridgeError):
    """A model file that cannot be loaded safely or does not fit the architecture."""


class DownloadError(BridgeError):
    """A model download that failed: no network, the server's answer, a full disk, a file that does not verify."""


class ConfigError(BridgeError):
    """A configuration value or request argument out of range or of the wrong type."""


class Cancelled(Exception):
    """A render stopped between sampler steps because its result is no longer wanted."""
