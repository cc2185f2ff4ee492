"""Package configuration, in the astropy ``ConfigNamespace`` style.

Values can be changed at run time (``conf.timeout = 60``), temporarily
(``with conf.set_temp("timeout", 5): ...``) or in astropy's configuration
directory (``astropy.config.get_config_dir_path()``: ``~/.config/astropy``, or
``~/.astropy/config`` where only that exists), in ``astro_semsearch.cfg``, one
``name = value`` line per item and no section header::

    text_backend = onnx
    max_concurrency = 2
"""
import warnings

from astropy import config as _config
from astropy.extern.configobj import validate as _validate
from astropy.utils.exceptions import AstropyUserWarning

__all__ = ["conf", "Conf"]

_MOVED_WARNED: set = set()


class _Item(_config.ConfigItem):
    """A `~astropy.config.ConfigItem` of the package, read from the top of ``astro_semsearch.cfg``.

    Items defined in this module would otherwise be looked up under a
    ``[config]`` section, the only place earlier versions read them from; a
    value still found there is used (a top-level line wins), with a warning
    to move it. It is read at each lookup, like every item, so it survives
    ``conf.reload()`` and a broken file fails only when a value is read.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("module", "astro_semsearch")
        super().__init__(*args, **kwargs)

    def __call__(self):
        cfg = _config.get_config(self.module, rootname=self.rootname)
        old = cfg.get("config")
        if self.name in cfg or not hasattr(old, "keys") or self.name not in old:
            return super().__call__()
        if self.name not in _MOVED_WARNED:
            _MOVED_WARNED.add(self.name)
            warnings.warn(f"{cfg.filename} sets {self.name} under a [config] section; it is used, but belongs "
                          "at the top of the file: delete the [config] line (and any other section around it)",
                          AstropyUserWarning, stacklevel=3)
        try:
            return self._validate_val(old[self.name])
        except _validate.ValidateError as err:
            raise TypeError(f"Configuration value not valid: {err.args[0]}") from None


class Conf(_config.ConfigNamespace):
    """Configuration parameters for `astro_semsearch`."""

    legacysurvey_url = _Item(
        "https://www.legacysurvey.org/viewer",
        "Base URL of the DESI Legacy Imaging Surveys viewer (cutout service).",
    )
    hips2fits_url = _Item(
        "https://alasky.cds.unistra.fr/hips-image-services/hips2fits",
        "Base URL of the CDS hips2fits service (second cutout source).",
    )
    legacysurvey_bricks_url = _Item(
        "https://portal.nersc.gov/cfs/cosmo/data/legacysurvey/dr10/south",
        "Base URL of a Legacy Surveys data release region holding coadd/<ddd>/<brick>/ brick images "
        "(LegacySurveyBricks fetches them from here into astropy's download cache).",
    )
    timeout = _Item(
        30.0, "Time limit in seconds for each read of an HTTP answer (the server silent that long: a time-out). "
              "The whole request is limited by request_deadline.", cfgtype="float",
    )
    connect_timeout = _Item(
        10.0, "Time limit in seconds to open a connection; a service that does not accept one in time counts "
              "as unreachable (retried once only).", cfgtype="float",
    )
    request_deadline = _Item(
        120.0, "Total time limit in seconds for one HTTP request, connection, answer and whole body included "
               "(a server trickling its answer is cut there).", cfgtype="float",
    )
    max_body_bytes = _Item(
        256 * 1024**2, "Largest answer body accepted, in bytes after decompression (the largest FITS cutout, "
                       "3000 x 3000 pixels x 3 bands of float32, is 108 MB); a larger one is cut off unread.",
        cfgtype="integer",
    )
    max_concurrency = _Item(
        4, "Cutout requests in flight at once (be polite to the public service).", cfgtype="integer"
    )
    max_retries = _Item(
        4, "Retries for a failed cutout request (429, 5xx, time-outs, resets, corrupt bodies); a connection "
           "refused or a name not resolved is retried once only.", cfgtype="integer",
    )
    backoff = _Item(
        1.0, "Base back-off in seconds between retries (doubled each time).", cfgtype="float"
    )
    max_retry_after = _Item(
        60.0, "Longest wait in seconds for one Retry-After asked by a server (429/503); a longer request is "
              "cut to this.", cfgtype="float",
    )
    max_retry_time = _Item(
        300.0, "Total time in seconds one cutout may take, all its attempts and the waits between them; no "
               "retry starts (or waits) past it.", cfgtype="float",
    )
    unreachable_after = _Item(
        8, "Cutouts in a row that fail for network reasons (connection refused, name not resolved, time-outs, "
           "5xx/429 after their retries) after which the service is taken as down: get_cutouts, build_index and "
           "similar_to stop with one ServiceUnreachableError naming the URL. A call whose positions (fewer than "
           "this) all fail to connect stops the same way. 0: never stop, flag each row.", cfgtype="integer",
    )
    default_model = _Item(
        "galclip-v5", "Name of the default aligned image-text model (or a path)."
    )
    default_index = _Item(
        "decals-dr5-rings", "Name of the default index (or a path / URL)."
    )
    viewer_layer = _Item(
        "ls-dr10", "Legacy Survey sky-viewer layer that result links (``viewer_url``) open."
    )
    default_k = _Item(
        20, "Number of galaxies a search returns when k is not given (Python and command line).",
        cfgtype="integer",
    )
    text_backend = _Item(
        ["auto", "torch", "onnx"],
        "What runs the MiniLM text encoder: 'torch'; 'onnx' (ONNX Runtime, about three times faster for a "
        "query; needs pip install \"astro_semsearch[fast]\", exports MiniLM into the astropy cache on first "
        "use); 'auto' = 'onnx' when onnxruntime is installed and the export is already there "
        "(astro-semsearch prepare-text-encoder), else 'torch'.",
    )
    show_progress = _Item(
        True, "Show progress bars for long jobs.", cfgtype="boolean"
    )
    max_archive_bytes = _Item(
        8 * 1024**3, "Largest total size in bytes an index archive (from a URL) may expand to.", cfgtype="integer"
    )
    max_archive_members = _Item(
        10_000, "Most members (files and directories) an index archive may hold.", cfgtype="integer"
    )
    max_archive_ratio = _Item(
        50.0, "Most an index archive may expand relative to its size (index files compress little; "
              "a higher ratio is a compression bomb). Archives under 1 MiB once extracted are exempt.",
        cfgtype="float",
    )
    gz2_root = _Item(
        "", "Directory of the Galaxy Zoo 2 data set (labels.csv + images/) that training and evaluation read, "
            "when no directory is given (see docs/training.rst for how to obtain it).",
    )
    decals_root = _Item(
        "", "Directory of the DECaLS ring set (labels.csv + images/) that evaluation reads, when no directory "
            "is given.",
    )


conf = Conf()
