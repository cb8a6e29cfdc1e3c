"""Exceptions raised by loom. Each also derives from the matching built-in,
so `except ValueError` catches a bad shape just as it would in NumPy."""
from loom import _C


class LoomError(Exception):
    """Base of every error raised by loom's core."""


class LoomValueError(LoomError, ValueError):
    """A bad value or shape (e.g. shapes that do not broadcast)."""


class LoomTypeError(LoomError, TypeError):
    """An unsupported dtype or argument type."""


class LoomIndexError(LoomError, IndexError):
    """An index or axis out of range."""


class LoomNotImplementedError(LoomError, NotImplementedError):
    """A valid request this build of loom cannot serve (yet)."""


class LoomRuntimeError(LoomError, RuntimeError):
    """Anything else that failed while running."""


# Order matches loom::ErrorKind in microkernel/base/error.h.
_C._set_error_types([LoomValueError, LoomTypeError, LoomIndexError, LoomNotImplementedError,
                     LoomRuntimeError])
