"""Package configuration, in the astropy ``ConfigNamespace`` style.

Values can be changed at run time (``conf.timeout = 60``), temporarily
(``with conf.set_temp("timeout", 5): ...``) or in astropy's configuration
directory (``astropy.config.get_config_dir_path()``: ``~/.config/astropy``, or
``~/.astropy/config`` where that exists), in ``astro_semsearch.cfg``, one
``name = value`` line per item and no section header::

    text_backend = onnx
    max_concurrency = 2
"""
from astropy import config as _config

__all__ = ["conf", "Conf"]


class Conf(_config.ConfigNamespace):
    """Configuration parameters for `astro_semsearch`."""

    legacysurvey_url = _config.ConfigItem(
        "https://www.legacysurvey.org/viewer",
        "Base URL of the DESI Legacy Imaging Surveys viewer (cutout service).",
    )
    hips2fits_url = _config.ConfigItem(
        "https://alasky.cds.unistra.fr/hips-image-services/hips2fits",
        "Base URL of the CDS hips2fits service (second cutout source).",
    )
    legacysurvey_bricks_url = _config.ConfigItem(
        "https://portal.nersc.gov/cfs/cosmo/data/legacysurvey/dr10/south",
        "Base URL of a Legacy Surveys data release region holding coadd/<ddd>/<brick>/ brick images "
        "(LegacySurveyBricks fetches them from here into astropy's download cache).",
    )
    timeout = _config.ConfigItem(
        30.0, "Time limit in seconds for each read of an HTTP answer (the server silent that long: a time-out). "
              "The whole request is limited by request_deadline.", cfgtype="float",
    )
    connect_timeout = _config.ConfigItem(
        10.0, "Time limit in seconds to open a connection; a service that does not accept one in time counts "
              "as unreachable (retried once only).", cfgtype="float",
    )
    request_deadline = _config.ConfigItem(
        120.0, "Total time limit in seconds for one HTTP request, connection, answer and whole body included "
               "(a server trickling its answer is cut there).", cfgtype="float",
    )
    max_body_bytes = _config.ConfigItem(
        256 * 1024**2, "Largest answer body accepted, in bytes after decompression (the largest FITS cutout, "
                       "3000 x 3000 pixels x 3 bands of float32, is 108 MB); a larger one is cut off unread.",
        cfgtype="integer",
    )
    max_concurrency = _config.ConfigItem(
        4, "Cutout requests in flight at once (be polite to the public service).", cfgtype="integer"
    )
    max_retries = _config.ConfigItem(
        4, "Retries for a failed cutout request (429, 5xx, time-outs, resets, corrupt bodies); a connection "
           "refused or a name not resolved is retried once only.", cfgtype="integer",
    )
    backoff = _config.ConfigItem(
        1.0, "Base back-off in seconds between retries (doubled each time).", cfgtype="float"
    )
    max_retry_after = _config.ConfigItem(
        60.0, "Longest wait in seconds for one Retry-After asked by a server (429/503); a longer request is "
              "cut to this.", cfgtype="float",
    )
    max_retry_time = _config.ConfigItem(
        300.0, "Total time in seconds one cutout may take, all its attempts and the waits between them; no "
               "retry starts (or waits) past it.", cfgtype="float",
    )
    unreachable_after = _config.ConfigItem(
        8, "Cutouts in a row that fail for network reasons (connection refused, name not resolved, time-outs, "
           "5xx/429 after their retries) after which the service is taken as down: get_cutouts, build_index and "
           "similar_to stop with one ServiceUnreachableError naming the URL. A call whose positions (fewer than "
           "this) all fail to connect stops the same way. 0: never stop, flag each row.", cfgtype="integer",
    )
    default_model = _config.ConfigItem(
        "galclip-v2", "Name of the default aligned image-text model (or a path)."
    )
    default_index = _config.ConfigItem(
        "decals-dr5-rings", "Name of the default index (or a path / URL)."
    )
    viewer_layer = _config.ConfigItem(
        "ls-dr10", "Legacy Survey sky-viewer layer that result links (``viewer_url``) open."
    )
    default_k = _config.ConfigItem(
        20, "Number of galaxies a search returns when k is not given (Python and command line).",
        cfgtype="integer",
    )
    text_backend = _config.ConfigItem(
        ["auto", "torch", "onnx"],
        "What runs the MiniLM text encoder: 'torch'; 'onnx' (ONNX Runtime, about three times faster for a "
        "query; needs pip install \"astro_semsearch[fast]\", exports MiniLM into the astropy cache on first "
        "use); 'auto' = 'onnx' when onnxruntime is installed and the export is already there "
        "(astro-semsearch prepare-text-encoder), else 'torch'.",
    )
    show_progress = _config.ConfigItem(
        True, "Show progress bars for long jobs.", cfgtype="boolean"
    )
    max_archive_bytes = _config.ConfigItem(
        8 * 1024**3, "Largest total size in bytes an index archive (from a URL) may expand to.", cfgtype="integer"
    )
    max_archive_members = _config.ConfigItem(
        10_000, "Most members (files and directories) an index archive may hold.", cfgtype="integer"
    )
    max_archive_ratio = _config.ConfigItem(
        50.0, "Most an index archive may expand relative to its size (index files compress little; "
              "a higher ratio is a compression bomb). Archives under 1 MiB once extracted are exempt.",
        cfgtype="float",
    )
    gz2_root = _config.ConfigItem(
        "", "Directory of the Galaxy Zoo 2 data set (labels.csv + images/) that training and evaluation read, "
            "when no directory is given (see docs/training.rst for how to obtain it).",
    )
    decals_root = _config.ConfigItem(
        "", "Directory of the DECaLS ring set (labels.csv + images/) that evaluation reads, when no directory "
            "is given.",
    )


# The items are defined in this module, so astropy would look for them under a [config] section of
# astro_semsearch.cfg; they belong to the package, at the top of the file, as the docs have always said.
for _item in vars(Conf).values():
    if isinstance(_item, _config.ConfigItem):
        _item.module = "astro_semsearch"
del _item


def _adopt_config_section() -> None:
    """Use, and warn about, items in a ``[config]`` section of astro_semsearch.cfg.

    Before the items belonged to the package, astropy read them only from
    such a section, so a file written that way keeps working (its top-level
    lines win) while the warning says how to mend it.
    """
    import warnings

    from astropy.utils.exceptions import AstropyUserWarning

    cfg = _config.get_config("astro_semsearch")
    section = cfg.get("config")
    names = [k for k in getattr(section, "keys", list)() if k in vars(Conf)]
    if not names:
        return
    for name in names:
        cfg.setdefault(name, section[name])
    warnings.warn(f"{cfg.filename} sets {', '.join(names)} under a [config] section; they are used, but belong "
                  "at the top of the file: delete the [config] line (and any other section around them)",
                  AstropyUserWarning, stacklevel=2)


_adopt_config_section()
conf = Conf()
