"""Re-rank search results by asking a vision-language model about each image.

AION-Search (Koblischke et al. 2025) found that showing the top candidates of an
embedding search to a vision-language model (VLM) and re-ordering them by its
answer nearly doubled the strong lenses in the top 100 (7 -> 13). `VLMReranker`
does the same with any image-text-to-text model of the ``transformers``
library that you have on disk (LLaVA and Idefics3/SmolVLM are tested, with
tiny random models; others such as Qwen2-VL may work but are untested): for
every candidate it asks one yes/no question,

    "Does this image show {query}? Answer yes or no."

and scores the candidate by the model's probability of answering "yes"
rather than "no",

    rerank_score = P(yes) / (P(yes) + P(no)),

read from the next-token distribution of a single forward pass (no sampling,
no generated text, so the score is deterministic and costs one pass per
candidate). Candidates are batched; a progress bar and a cost report (model,
parameter count, seconds, candidates per second, prompt tokens) go into the
result's ``meta``.

Nothing is ever downloaded unless you ask: get a model once, e.g.::

    hf download HuggingFaceTB/SmolVLM-256M-Instruct --local-dir SmolVLM-256M-Instruct

(``huggingface-cli download`` on older ``huggingface_hub``) and pass the
directory, or pass the hub name once it is in your Hugging Face cache.

Examples
--------
>>> from astro_semsearch import semantic_search
>>> from astro_semsearch.rerank import VLMReranker, rerank
>>> hits = semantic_search("strong gravitational lens with a blue arc", k=200)   # doctest: +SKIP
>>> vlm = VLMReranker("SmolVLM-256M-Instruct")                                   # doctest: +SKIP
>>> best = rerank(hits, vlm, top_n=100)                                          # doctest: +SKIP
>>> best["rank", "object_id", "score", "rerank_score", "search_rank"][:5]        # doctest: +SKIP
>>> best.meta["astro_semsearch"]["rerank"]["parameters"]["candidates_per_second"]  # doctest: +SKIP
"""
from __future__ import annotations

import inspect
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from .._io import progress
from .._validate import check_int
from ..exceptions import InvalidInputError, ModelLoadError
from ..search import Query, Reranker
from .vlm_loading import model_source, pick_device, torch_dtype

__all__ = ["VLMReranker", "DEFAULT_QUESTION"]

#: Question asked about every candidate; ``{query}`` is replaced by the query text.
DEFAULT_QUESTION = "Does this image show {query}? Answer yes or no."


def _answer_ids(tokenizer, word: str, source: str) -> list[int]:
    """Token ids that start the answer ``word`` ("yes"): all capitalisations, with and without a leading space.

    A tokenizer may spell " Yes" and "yes" as different tokens; the model's
    probability of answering "yes" is the sum over them.
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    ids: set[int] = set()
    first: list[int] = []
    for form in dict.fromkeys([word, word.lower(), word.capitalize(), word.upper()]):
        for text in (form, " " + form):
            toks = tokenizer.encode(text, add_special_tokens=False)
            toks = [t for t in toks if t != unk]
            if len(toks) == 1:
                ids.add(int(toks[0]))
            elif toks:
                first.append(int(toks[0]))
    if not ids:
        # No single-token spelling: take first tokens that are a real prefix of the word ("Y" for "Yes").
        for t in first:
            piece = tokenizer.decode([t]).strip().lower()
            if piece and word.lower().startswith(piece):
                ids.add(t)
    if not ids:
        raise ModelLoadError(f"the tokenizer of {source} has no token for the answer {word!r}")
    return sorted(ids)


def _to_pil(image, max_image_size: int | None):
    """An RGB PIL image from an HxWx3 array (uint8, or float in [0, 1]) or a PIL image."""
    from PIL import Image

    if isinstance(image, Image.Image):
        im = image.convert("RGB")
    else:
        a = np.asarray(image)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=-1)
        if a.ndim != 3 or a.shape[-1] not in (3, 4):
            raise InvalidInputError(
                f"a candidate image has shape {a.shape}; expected an HxWx3 RGB image "
                "(turn band images into RGB with astro_semsearch.images.to_rgb first)"
            )
        a = a[..., :3]
        if a.dtype.kind == "f":
            a = (np.clip(np.nan_to_num(a), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        elif a.dtype != np.uint8:
            a = np.clip(a, 0, 255).astype(np.uint8)
        im = Image.fromarray(np.ascontiguousarray(a), "RGB")
    if max_image_size and max(im.size) > max_image_size:
        im = im.copy()
        im.thumbnail((max_image_size, max_image_size), Image.Resampling.LANCZOS)
    return im


class VLMReranker(Reranker):
    """Score candidates by a vision-language model's yes/no answer about the query.

    Parameters
    ----------
    model : str or path-like
        Directory of a ``transformers`` image-text-to-text model (what
        ``save_pretrained`` or ``hf download ... --local-dir DIR`` writes), or
        its hub name (e.g. ``"HuggingFaceTB/SmolVLM-256M-Instruct"``) if it is
        already in your Hugging Face cache. Get one with
        ``hf download HuggingFaceTB/SmolVLM-256M-Instruct --local-dir SmolVLM-256M-Instruct``.
    question : str
        The question asked about every image. ``{query}`` is replaced by the
        search text (if the query has several phrasings, each is asked and the
        probabilities are averaged, which multiplies the cost). A question
        without ``{query}`` is asked as is.
    batch_size : int
        Images per forward pass. Scores do not depend on it.
    device : str or `torch.device`, optional
        Default: CUDA if available, else Apple MPS, else CPU.
    dtype : str or `torch.dtype`, optional
        Default: float32 on CPU, bfloat16 (or float16) on GPU. ``"auto"``
        uses the checkpoint's own.
    max_image_size : int or None
        Images larger than this (pixels, longest side) are shrunk first; it
        caps the image tokens of models that read native resolution.
    answers : (str, str)
        The positive and negative answer words.
    local_files_only : bool
        Never contact the Hugging Face hub (default). ``False`` lets
        ``transformers`` download the model named by ``model``.
    vlm_model : str or path-like, optional
        The same as ``model`` (for ``rerank(hits, "vlm", vlm_model=PATH)``,
        where ``model=`` names the search model).
    processor_options : dict, optional
        Passed to ``AutoProcessor.from_pretrained``. For SmolVLM / Idefics3,
        ``{"do_image_splitting": False}`` shows a thumbnail as one tile
        instead of upscaling it and cutting it into many (much cheaper; see
        the cost section of the documentation).

    Notes
    -----
    The score of a candidate is ``P(yes) / (P(yes) + P(no))`` from the logits
    of the first answer token, summing over spellings (" Yes", "yes", ...) of
    each answer. Candidates without an image (``None``) get ``NaN`` and one
    `~astropy.utils.exceptions.AstropyUserWarning` names them; if no
    candidate has an image, `ValueError` is raised. The model sees only the
    thumbnail, so the answer is only as good as the model's eye for galaxies
    at that resolution: measure it on your own problem before trusting it
    (see the "VLM re-ranking" page of the documentation).

    After each call, `describe` also reports the cost of that call:
    ``seconds``, ``candidates``, ``prompts``, ``prompt_tokens`` (text and
    image tokens fed to the model) and ``candidates_per_second``.

    Examples
    --------
    >>> vlm = VLMReranker("SmolVLM-256M-Instruct")          # doctest: +SKIP
    >>> print(vlm.prompt("a ring galaxy"))                   # doctest: +SKIP
    >>> scores = vlm.score(list_of_rgb_arrays, "a ring galaxy")  # doctest: +SKIP
    """

    name = "vlm"
    needs_images = True

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        question: str = DEFAULT_QUESTION,
        *,
        batch_size: int = 8,
        device=None,
        dtype=None,
        max_image_size: int | None = 512,
        answers: tuple[str, str] = ("yes", "no"),
        local_files_only: bool = True,
        processor_options: dict | None = None,
        vlm_model: str | os.PathLike | None = None,
    ) -> None:
        # ``rerank(hits, "vlm", vlm_model=PATH)``: there ``model=`` is the search model.
        model = model if vlm_model is None else vlm_model
        if model is None:
            raise InvalidInputError(
                "the VLM re-ranker needs a vision-language model: VLMReranker('path/to/model') "
                "(on the command line: --rerank vlm --vlm-model PATH)"
            )
        if not isinstance(question, str) or not question.strip():
            raise InvalidInputError("question must be a non-empty string, e.g. 'Does this image show {query}?'")
        batch_size = check_int(batch_size, "batch_size")
        if max_image_size is not None:
            check_int(max_image_size, "max_image_size", minimum=8)
        if len(answers) != 2 or not all(isinstance(a, str) and a.strip() for a in answers):
            raise InvalidInputError(f"answers must be two non-empty words (positive, negative), got {answers!r}")
        self.question = question
        self.batch_size = int(batch_size)
        self.max_image_size = None if max_image_size is None else int(max_image_size)
        self.answers = (answers[0].strip(), answers[1].strip())
        self.local_files_only = bool(local_files_only)
        self.processor_options = dict(processor_options or {})
        self._last: dict[str, Any] = {}

        source, _ = model_source(model)  # a bad path fails before anything is imported
        self.model_name = source
        self.device = pick_device(device)
        load_dtype = torch_dtype(dtype, self.device)
        start = time.perf_counter()
        self.processor, self.model = self._load(source, load_dtype)
        self.load_seconds = time.perf_counter() - start
        self.dtype = next(self.model.parameters()).dtype
        self.n_parameters = int(sum(p.numel() for p in self.model.parameters()))

        tokenizer = self.processor.tokenizer
        # Right padding: every real token then sees exactly the tokens it would
        # see unpadded (causal attention), so scores do not depend on batch_size.
        # The answer logit is read at each row's last real token.
        tokenizer.padding_side = "right"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
        self._yes = _answer_ids(tokenizer, self.answers[0], source)
        self._no = _answer_ids(tokenizer, self.answers[1], source)
        if set(self._yes) & set(self._no):
            raise ModelLoadError(
                f"the tokenizer of {source} spells the answers {self.answers} with the same token; "
                "choose other answers="
            )
        self._chat = bool(getattr(self.processor, "chat_template", None))
        self._image_token = self._find_image_token()
        self._can_keep = "logits_to_keep" in inspect.signature(self.model.forward).parameters

    # -- loading -----------------------------------------------------------------------------------

    def _load(self, source: str, torch_dtype):
        try:
            from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
        except ImportError as err:  # pragma: no cover - transformers < 4.46
            raise ImportError(
                "VLMReranker needs transformers >= 4.50 (AutoModelForImageTextToText)"
            ) from err

        kw = {"local_files_only": self.local_files_only}
        try:
            config = AutoConfig.from_pretrained(source, **kw)
        except OSError as err:
            hint = (
                f"; it is not in the local Hugging Face cache and local_files_only=True: download it once with "
                f"`hf download {source} --local-dir DIR` and pass DIR"
                if self.local_files_only
                else ""
            )
            raise ModelLoadError(f"cannot load VLM {source}{hint} ({err})") from err
        except (ValueError, KeyError) as err:
            raise ModelLoadError(f"cannot read the configuration of VLM {source}: {err}") from err
        mapping = AutoModelForImageTextToText._model_mapping
        if type(config) not in mapping:
            raise ModelLoadError(
                f"{source} is a {config.model_type!r} model, not an image-text-to-text (vision-language) "
                "model; VLMReranker needs one such as SmolVLM, LLaVA, Idefics3 or Qwen2-VL"
            )
        try:
            processor = AutoProcessor.from_pretrained(source, **kw, **self.processor_options)
            model = AutoModelForImageTextToText.from_pretrained(source, dtype=torch_dtype, **kw)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
            raise ModelLoadError(f"cannot load VLM {source}: {err}") from err
        if getattr(processor, "image_processor", None) is None or getattr(processor, "tokenizer", None) is None:
            raise ModelLoadError(
                f"{source} has no image processor + tokenizer pair (AutoProcessor gave "
                f"{type(processor).__name__}); it cannot be shown images"
            )
        return processor, model.eval().to(self.device)

    def _find_image_token(self) -> str | None:
        token = getattr(self.processor, "image_token", None)
        if token is None:
            token = getattr(self.processor.tokenizer, "image_token", None)
        return token if isinstance(token, str) else None

    # -- prompts -----------------------------------------------------------------------------------

    def _question(self, text: str) -> str:
        # str.replace, not format: a question may contain other braces.
        return self.question.replace("{query}", text.strip())

    def prompt(self, text: str) -> str:
        """The exact text prompt sent with each image for the query ``text``.

        With a chat template (instruction-tuned models) it is the user turn
        "<image> + question" followed by the assistant's turn opening; without
        one, ``"<image token>\\n{question}\\nAnswer:"``.
        """
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("the query text is empty; the VLM needs something to ask about")
        question = self._question(text)
        if self._chat:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
            return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        if self._image_token is None:
            raise ModelLoadError(
                f"the processor of {self.model_name} has neither a chat template nor an image token, "
                "so there is no way to place the image in the prompt"
            )
        return f"{self._image_token}\n{question}\nAnswer:"

    # -- scoring -----------------------------------------------------------------------------------

    def _log_odds(self, inputs) -> np.ndarray:
        """log P(yes) - log P(no) for the next token after each row's last real token."""
        import torch

        mask = inputs["attention_mask"]
        positions = torch.arange(mask.shape[1], device=mask.device)
        last = (mask * positions).argmax(dim=1)  # last real token, whichever side is padded
        rows = torch.arange(mask.shape[0], device=mask.device)
        kwargs = dict(inputs)
        with torch.inference_mode():
            if self._can_keep:
                # Project only the needed positions onto the (large) vocabulary.
                keep = torch.unique(last)
                logits = self.model(**kwargs, use_cache=False, logits_to_keep=keep).logits
                logits = logits[rows, torch.searchsorted(keep, last)]
            else:  # pragma: no cover - models without logits_to_keep
                logits = self.model(**kwargs, use_cache=False).logits[rows, last]
            logp = torch.log_softmax(logits.float(), dim=-1)
            yes = torch.logsumexp(logp[:, self._yes], dim=-1)
            no = torch.logsumexp(logp[:, self._no], dim=-1)
        return (yes - no).cpu().numpy().astype(np.float64)

    def score(self, images: Sequence, query: str | Sequence[str], *, ids: Sequence[str] | None = None) -> np.ndarray:
        """P(yes) / (P(yes) + P(no)) for each image, asked about ``query``.

        Parameters
        ----------
        images : sequence
            One per candidate: an ``HxWx3`` RGB array (uint8, or float in
            [0, 1]), a PIL image, or ``None`` (no image: the score is NaN).
        query : str or sequence of str
            The search text; several phrasings are each asked and averaged.
        ids : sequence of str, optional
            Names of the candidates, used in the warning about missing images.

        Returns
        -------
        `numpy.ndarray`
            ``(len(images),)`` float64 in [0, 1], NaN where there was no image.
        """
        texts = [query] if isinstance(query, str) else list(query or [])
        if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
            raise InvalidInputError(f"the query text is empty ({query!r}); the VLM needs something to ask about")
        prompts = [self.prompt(t) for t in texts]
        images = list(images)
        n = len(images)
        have = [i for i, im in enumerate(images) if im is not None]
        if n and not have:
            raise InvalidInputError(
                f"none of the {n} candidates has an image, so the VLM cannot judge any of them "
                "(were the cutouts reachable? pass images= to rerank())"
            )
        missing = [i for i in range(n) if images[i] is None]
        if missing:
            names = [str(ids[i]) if ids is not None else f"row {i}" for i in missing]
            warnings.warn(
                f"no image for {len(missing)} of {n} candidates, their VLM score is NaN: "
                + ", ".join(names[:20]) + (" ..." if len(names) > 20 else ""),
                AstropyUserWarning,
                stacklevel=2,
            )

        # Every (candidate, phrasing) pair is one prompt; batching them together
        # mixes prompt lengths, which right padding makes harmless.
        pairs = [(i, j) for i in have for j in range(len(prompts))]
        log_odds = np.full((n, len(prompts)), np.nan)
        tokens = 0
        start = time.perf_counter()
        with progress(total=len(pairs), desc=f"VLM re-ranking ({Path(self.model_name).name})", unit="prompt") as bar:
            for b in range(0, len(pairs), self.batch_size):
                chunk = pairs[b : b + self.batch_size]
                batch = self.processor(
                    text=[prompts[j] for _, j in chunk],
                    images=[[_to_pil(images[i], self.max_image_size)] for i, _ in chunk],
                    padding=True,
                    return_tensors="pt",
                )
                batch = batch.to(self.device)
                for key, value in batch.items():  # pixel values in the model's dtype, ids stay integer
                    if getattr(value, "is_floating_point", lambda: False)():
                        batch[key] = value.to(self.dtype)
                tokens += int(batch["attention_mask"].sum())
                for (i, j), value in zip(chunk, self._log_odds(batch)):
                    log_odds[i, j] = value
                bar.update(len(chunk))
        seconds = time.perf_counter() - start
        # Average P(yes) over the phrasings (NaN stays NaN for rows without an image).
        scores = (1.0 / (1.0 + np.exp(-log_odds))).mean(axis=1)
        self._last = {
            "seconds": round(seconds, 4),
            "candidates": len(have),
            "prompts": len(pairs),
            "prompt_tokens": tokens,
            "candidates_per_second": round(len(have) / seconds, 3) if seconds > 0 else None,
        }
        return scores

    def __call__(
        self,
        query: Query | str | Sequence[str],
        candidates,
        *,
        vectors: np.ndarray | None = None,
        images: Sequence | None = None,
    ) -> np.ndarray:
        """Scores for the rows of ``candidates`` (higher = the VLM says "yes" more surely).

        ``vectors`` are not used; ``images`` (one per row, ``None`` where
        missing) are required — `~astro_semsearch.rerank.rerank` passes them.
        """
        text = query.text if isinstance(query, Query) else query
        if text is None or (not isinstance(text, str) and len(text) == 0):
            raise InvalidInputError(
                "VLM re-ranking needs a text query to ask about; results of similar_to have none, "
                "so pass query='...' to rerank()"
            )
        if images is None:
            raise InvalidInputError("VLMReranker needs one image per candidate (images=); rerank() passes them")
        if len(images) != len(candidates):
            raise InvalidInputError(f"got {len(images)} images for {len(candidates)} candidates")
        ids = list(candidates["object_id"]) if "object_id" in getattr(candidates, "colnames", ()) else None
        return self.score(images, text, ids=ids)

    def describe(self) -> dict:
        """The model, question and settings, plus the cost of the last call (JSON-able)."""
        info = {
            "model": self.model_name,
            "model_type": getattr(self.model.config, "model_type", None),
            "parameters": self.n_parameters,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "question": self.question,
            "answers": list(self.answers),
            "chat_template": self._chat,
            "batch_size": self.batch_size,
            "max_image_size": self.max_image_size,
            "processor_options": {k: v for k, v in self.processor_options.items()
                                  if isinstance(v, (str, int, float, bool, type(None), list, dict))},
            "load_seconds": round(self.load_seconds, 3),
        }
        info.update(self._last)
        return info

    def __repr__(self) -> str:
        return (
            f"VLMReranker({self.model_name!r}, {self.n_parameters / 1e6:.1f}M parameters, "
            f"question={self.question!r}, device={str(self.device)!r})"
        )
