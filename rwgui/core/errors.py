"""Errors a user can cause. Each carries a message a person can act on.

The CLI prints ``str(err)`` and exits 2; the GUI shows it in a dialog and keeps its state.
"""


class RwguiError(Exception):
    """Base of every error the user can cause and fix."""


class ImageReadError(RwguiError):
    """A photo could not be read: missing, empty, corrupt or of an unknown format."""


class ImageTooLargeError(RwguiError):
    """A photo is larger than rwgui is willing to decode."""


class ImageWriteError(RwguiError):
    """A result could not be written."""


class OutputPathError(RwguiError):
    """A file the run would write cannot be written there: a missing or read-only folder, an unknown image
    format, or the input photo itself (without --overwrite). Raised before the run, not after it."""


class MaskError(RwguiError):
    """A mask does not fit its photo (size, channels) or holds no known pixel."""


class ConfigError(RwguiError):
    """A setting is unknown, of the wrong type or out of its range."""


class KernelError(ConfigError):
    """A blur kernel cannot be made: a malformed ``--kernel`` spec, a bad number, an unreadable or empty image."""


class WeightsError(ConfigError):
    """Classifier weights are missing, unreadable, unsafe to load (not a plain state dict) or of an unknown layout."""


class SessionFileError(RwguiError):
    """A saved session cannot be read (newer format, malformed manifest, missing or wrong member) or written;
    the session open in the studio is left as it was."""


class DeviceError(RwguiError):
    """The requested compute device does not exist on this machine."""


class OutOfMemoryError(RwguiError):
    """The run does not fit the device's memory; the message offers a working size."""


class WorkingSizeError(OutOfMemoryError):
    """The working size asked for cannot be used (a crop that does not fit, a crop of a task without a mask)."""
