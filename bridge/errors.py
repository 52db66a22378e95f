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


class PlaybackError(BridgeError):
    """No audio output to play through (no PortAudio, no device, the one named is not there), or it was lost."""


class Cancelled(Exception):
    """A render stopped between sampler steps because its result is no longer wanted."""


def one_line(error: BaseException) -> str:
    """The first line of a library's error message, cut to 200 characters ("" when it has none): what goes
    inside a BridgeError's one line."""
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else ""


def described(error: BaseException) -> str:
    """``one_line`` after the error's type, for errors whose type says more than their text (``KeyError: 'x'``)."""
    text = one_line(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
