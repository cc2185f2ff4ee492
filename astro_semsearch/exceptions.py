"""Exceptions raised by `astro_semsearch`.

Every error is a subclass of a builtin (`ValueError`, `OSError`, ...) so that
code catching the builtin keeps working, and its message names the problem.
"""

__all__ = [
    "AstroSemsearchError",
    "IndexIntegrityError",
    "ModelMismatchError",
    "ModelLoadError",
    "TargetNotFoundError",
    "CutoutError",
]


class AstroSemsearchError(Exception):
    """Base class of every error this package raises on purpose."""


class IndexIntegrityError(AstroSemsearchError, ValueError):
    """An index on disk is missing a file, truncated, or fails its sha256 check."""


class ModelMismatchError(AstroSemsearchError, ValueError):
    """An index was built by another model (fingerprint or dimension differs)."""


class ModelLoadError(AstroSemsearchError, ValueError):
    """Model weights are missing, corrupt, or do not match their configuration."""


class TargetNotFoundError(AstroSemsearchError, ValueError):
    """A target (object id or position) could not be found in the index."""


class CutoutError(AstroSemsearchError, OSError):
    """A cutout could not be fetched (server error, time-out, corrupt body)."""
