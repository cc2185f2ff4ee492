"""Exceptions raised by `astro_semsearch`.

Every error is a subclass of a builtin (`ValueError`, `TypeError`,
`OSError`, ...) so that code catching the builtin keeps working, and of
`AstroSemsearchError`, so that a caller (the command line, a pipeline) can
tell an error about its input from a bug. Each message names the problem.
"""

from astropy.utils.exceptions import AstropyUserWarning

__all__ = [
    "AstroSemsearchError",
    "InvalidInputError",
    "InvalidTypeError",
    "MissingDependencyError",
    "IndexIntegrityError",
    "ModelMismatchError",
    "ModelLoadError",
    "TargetNotFoundError",
    "CutoutError",
    "LockedError",
    "ServiceUnreachableError",
    "NoGoodMatchWarning",
]


class AstroSemsearchError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidInputError(AstroSemsearchError, ValueError):
    """An argument, file, catalogue or table has a value this package cannot use."""


class InvalidTypeError(AstroSemsearchError, TypeError):
    """An argument is of a type this package does not accept."""


class MissingDependencyError(AstroSemsearchError, ImportError):
    """An optional package needed for this call is not installed (the message says which)."""


class IndexIntegrityError(AstroSemsearchError, ValueError):
    """An index on disk is missing a file, truncated, or fails its sha256 check."""


class ModelMismatchError(AstroSemsearchError, ValueError):
    """An index was built by another model (fingerprint or dimension differs)."""


class ModelLoadError(AstroSemsearchError, ValueError):
    """Model weights are missing, corrupt, or do not match their configuration."""


class TargetNotFoundError(AstroSemsearchError, ValueError):
    """A target (object id or position) could not be found in the index."""


class CutoutError(AstroSemsearchError, OSError):
    """A cutout could not be fetched (server error, time-out, corrupt body).

    Attributes
    ----------
    kind : str
        ``"unreachable"`` (the service could not be connected to: refused,
        name not resolved, connect time-out), ``"network"`` (time-out, reset,
        HTTP 5xx/429 after the retries: asking again later may work) or
        ``"permanent"`` (HTTP 4xx, an unreadable or oversized answer: asking
        again gives the same). Resumed builds fetch the first two again.
    url : str or None
        The URL that was asked.
    status : int or None
        The HTTP status of the last answer, when the failure was one.
    """

    def __init__(self, message: str = "", *, kind: str = "permanent", url: str | None = None,
                 status: int | None = None):
        super().__init__(message)
        self.kind, self.url, self.status = kind, url, status

    @property
    def retryable(self) -> bool:
        """True when the failure is the network's or the service's, not the request's (``kind`` != permanent)."""
        return self.kind != "permanent"


class ServiceUnreachableError(CutoutError):
    """A cutout service cannot be reached, or fails every request: one error instead of one per position.

    Raised by ``get_cutouts`` (whatever its ``errors=``), `build_index` and
    `similar_to` when requests in a row fail to connect (or all fail for
    network reasons); the message names the URL and the setting to check.
    `~astro_semsearch.crossmatch` raises it too when the VizieR catalogue it
    was given cannot be fetched.
    """

    def __init__(self, message: str = "", *, kind: str = "unreachable", url: str | None = None):
        super().__init__(message, kind=kind, url=url)


class LockedError(AstroSemsearchError, OSError):
    """Another process (or thread) is writing to this output; the message names it and its lock file."""


class NoGoodMatchWarning(AstropyUserWarning):
    """Nothing in the index matches the query better than the index's background does.

    Raised for off-topic text ("a photo of my cat"): a query unlike anything
    the model was trained on. A second test, the best hit's excess over the
    index's background against the model's ``score_calibration["min_excess"]``,
    would flag a real concept the index holds no example of ("strong lens
    arcs" on an index without lenses); the shipped models leave it unset,
    because their best non-member hits score about as high as real members
    (``data/recipes/try_absence_test.py``). The results are returned anyway;
    ``meta["astro_semsearch"]["match"]`` says why.
    """
