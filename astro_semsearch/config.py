"""Package configuration, in the astropy ``ConfigNamespace`` style.

Values can be changed at run time (``conf.timeout = 60``), temporarily
(``with conf.set_temp("timeout", 5): ...``) or in
``~/.astropy/config/astro_semsearch.cfg``.
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
    timeout = _config.ConfigItem(30.0, "Time limit in seconds for one HTTP request.", cfgtype="float")
    max_concurrency = _config.ConfigItem(
        4, "Cutout requests in flight at once (be polite to the public service).", cfgtype="integer"
    )
    max_retries = _config.ConfigItem(
        4, "Retries for a failed cutout request (429, 5xx, time-outs).", cfgtype="integer"
    )
    backoff = _config.ConfigItem(
        1.0, "Base back-off in seconds between retries (doubled each time).", cfgtype="float"
    )
    default_model = _config.ConfigItem(
        "galclip-v1", "Name of the default aligned image-text model (or a path)."
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
    gz2_root = _config.ConfigItem(
        "", "Directory of the Galaxy Zoo 2 data set (labels.csv + images/) that training and evaluation read, "
            "when no directory is given (see docs/training.rst for how to obtain it).",
    )
    decals_root = _config.ConfigItem(
        "", "Directory of the DECaLS ring set (labels.csv + images/) that evaluation reads, when no directory "
            "is given.",
    )


conf = Conf()
