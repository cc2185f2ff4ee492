"""Tests of the training pipeline on tiny synthetic fixtures (no ../shared data).

A fake Galaxy Zoo directory (labels.csv + JPEGs of synthetic galaxies) is
written to tmp_path; the real pipeline (captions, lens injection, MiniLM
caption features, SimCLR, alignment, checkpoints) runs on it for one or two
epochs with a tiny network.
"""
import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from astro_semsearch.model import GalaxyModel
from astro_semsearch.training import augment as aug_mod
import astro_semsearch.training.train as train_mod
from astro_semsearch.training.data import GZ2_COLUMNS, load_gz2, load_images, split_of

N_GAL = 32


def _galaxy(rng, kind, size=48):
    """A smooth red blob ("elliptical") or a blue two-armed spiral, noisy."""
    y, x = np.mgrid[:size, :size] - size / 2 + 0.5
    r = np.hypot(x, y)
    if kind == "smooth":
        light = np.exp(-r / 4.0)
        colour = np.array([1.0, 0.7, 0.45])
    else:
        phi = np.arctan2(y, x)
        arms = 0.5 * (1 + np.cos(2 * phi - 0.6 * r))
        light = np.exp(-r / 8.0) * (0.3 + arms)
        colour = np.array([0.6, 0.75, 1.0])
    img = light[..., None] * colour * 220 + rng.normal(0, 4, (size, size, 3)) + 10
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def gz2_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("gz2")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    ids = [g for g in range(100000, 101000) if split_of(g) == "train"][:N_GAL]
    ids.append(next(g for g in range(100000, 101000) if split_of(g) == "val"))
    rows = []
    for i, gid in enumerate(ids):
        kind = "smooth" if i % 2 == 0 else "spiral"
        Image.fromarray(_galaxy(rng, kind)).save(root / "images" / f"{gid}.jpg", quality=95)
        votes = {c: "" for c in GZ2_COLUMNS}
        if i % 4 == 0:  # a few fully voted rows
            votes.update({"Class1.1": 0.9, "Class1.2": 0.1, "Class1.3": 0.0, "Class7.1": 0.8, "Class7.2": 0.1,
                          "Class7.3": 0.0, "Class6.1": 0.0, "Class6.2": 1.0})
        coarse = "completely round smooth" if kind == "smooth" else "spiral"
        n_votes = 17 if i % 4 == 0 else 0
        rows.append({"file": f"images/{gid}.jpg", "galaxy_id": gid, "coarse_label": coarse,
                     "n_vote_columns": n_votes, **votes})
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["file", "galaxy_id", "coarse_label", "n_vote_columns", *GZ2_COLUMNS])
        w.writeheader()
        w.writerows(rows)
    return root


def _config(gz2_dir, align_epochs=1):
    return {
        "data": {"gz2_root": str(gz2_dir), "preload_size": 40, "load_threads": 1, "max_images": 0},
        "model": {"name": "tiny", "dim": 16, "image_size": 32, "stem_channels": 8, "channels": [8, 16, 16],
                  "head_hidden": 32},
        "ssl": {"epochs": 1, "batch_size": 16},
        "align": {"epochs": align_epochs, "batch_size": 16, "captions_per_object": 2, "lens_probability": 0.2,
                  "n_arcs": 4, "n_lens_captions": 4},
        "train": {"seed": 0, "threads": 1},
    }


def test_split_is_stable_and_about_15_percent():
    ids = range(200000, 204000)
    val = sum(split_of(i) == "val" for i in ids) / len(ids)
    assert 0.12 < val < 0.18
    assert split_of(123) == split_of("123")


def test_load_gz2_and_images(gz2_dir):
    table = load_gz2(gz2_dir)
    assert len(table) == N_GAL + 1
    assert set(GZ2_COLUMNS) <= set(table.colnames)
    assert np.isnan(table["Class3.1"]).all()  # missing votes are NaN, not masked
    imgs = load_images(table["path"][:3], size=20, threads=1)
    assert imgs.shape == (3, 20, 20, 3) and imgs.dtype == np.uint8
    with pytest.raises(FileNotFoundError, match="labels.csv"):
        load_gz2(gz2_dir / "images")


def test_augment_keeps_shape_and_range_and_is_seeded():
    batch = torch.randint(0, 256, (6, 40, 40, 3), dtype=torch.uint8)
    a = aug_mod.Augment(out_size=32)
    x1 = a(batch, generator=torch.Generator().manual_seed(1))
    x2 = a(batch, generator=torch.Generator().manual_seed(1))
    x3 = a(batch, generator=torch.Generator().manual_seed(2))
    assert x1.shape == (6, 3, 32, 32) and x1.dtype == torch.float32
    assert 0 <= float(x1.min()) and float(x1.max()) <= 1
    assert torch.equal(x1, x2) and not torch.equal(x1, x3)
    # With every random change switched off, the view is the centre crop.
    plain = aug_mod.Augment(out_size=32, scale=(1, 1), shift=0, rotate=False, flip=False,
                            blur_sigma=(0, 0), noise=0, brightness=0)
    ref = aug_mod.center_crop(batch, 32, 0.8)
    assert torch.allclose(plain(batch), ref, atol=0.08)


def test_augment_rotation_preserves_a_round_galaxy():
    # A centred round blob is rotation invariant: a rotated view differs little.
    y, x = np.mgrid[:40, :40] - 19.5
    blob = (np.exp(-np.hypot(x, y) / 4)[..., None] * np.ones(3) * 255).astype(np.uint8)
    batch = torch.from_numpy(np.stack([blob] * 4))
    rot = aug_mod.Augment(out_size=32, scale=(1, 1), shift=0, blur_sigma=(0, 0), noise=0, brightness=0)
    out = rot(batch, generator=torch.Generator().manual_seed(0))
    ref = aug_mod.center_crop(batch, 32, 0.8)
    assert float((out - ref).abs().max()) < 0.15


def test_losses():
    z = torch.nn.functional.normalize(torch.randn(8, 4), dim=-1)
    assert train_mod.nt_xent(z, z, 0.1) < train_mod.nt_xent(z, z.roll(1, 0), 0.1)
    scale = torch.tensor(10.0)
    assert train_mod.clip_loss(z, z, scale) < train_mod.clip_loss(z, z.roll(1, 0), scale)
    # Masking pairs that share a caption removes them from the negatives.
    ids = torch.tensor([0, 0, 1, 2, 3, 4, 5, 6])
    t = z.clone()
    t[1] = t[0]
    assert train_mod.clip_loss(z, t, scale, ids) < train_mod.clip_loss(z, t, scale)


def test_load_config(tmp_path):
    cfg = train_mod.load_config()
    assert cfg["model"]["dim"] == 128 and cfg["ssl"]["epochs"] >= 1
    path = tmp_path / "c.toml"
    path.write_text("[align]\nepochs = 3\n")
    cfg = train_mod.load_config(path)
    assert cfg["align"]["epochs"] == 3 and cfg["align"]["batch_size"] == 256
    path.write_text("[align\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        train_mod.load_config(path)
    with pytest.raises(FileNotFoundError):
        train_mod.load_config(tmp_path / "nope.toml")


def test_end_to_end_train(gz2_dir, tmp_path):
    out = train_mod.train(_config(gz2_dir), tmp_path / "run", device="cpu")
    model = GalaxyModel.load(out)
    assert model.name == "tiny" and model.dim == 16 and model.image_size == 32
    log = json.loads((tmp_path / "run" / "training_log.json").read_text())
    assert [e["stage"] for e in log["epochs"]] == ["ssl", "align"]
    assert all(np.isfinite(e["loss"]) for e in log["epochs"])
    assert log["n_ssl_images"] == N_GAL  # the val-split galaxy is never used
    assert log["model_sha256"] == model.fingerprint
    card = (out / "MODEL_CARD.md").read_text()
    assert "Willett et al. 2013" in card and "SDSS" in card
    emb = model.embed_images(sorted((gz2_dir / "images").glob("*.jpg"))[:4])
    assert emb.shape == (4, 16) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    # Caches let a second run skip decoding and caption embedding.
    assert list((tmp_path / "run").glob("images_40_*.npy"))
    assert list((tmp_path / "run").glob("caption_features_*.npy"))


def test_resume_continues_from_checkpoint(gz2_dir, tmp_path, monkeypatch):
    cfg = _config(gz2_dir, align_epochs=2)
    reference = GalaxyModel.load(train_mod.train(cfg, tmp_path / "full", device="cpu"))

    calls = {"ssl": 0, "align": 0}
    real_ssl, real_align = train_mod._run_ssl_epoch, train_mod._run_align_epoch

    def ssl(*a, **k):
        calls["ssl"] += 1
        return real_ssl(*a, **k)

    def crashing_align(*a, **k):
        calls["align"] += 1
        if calls["align"] == 2:
            raise KeyboardInterrupt("simulated interruption")
        return real_align(*a, **k)

    monkeypatch.setattr(train_mod, "_run_ssl_epoch", ssl)
    monkeypatch.setattr(train_mod, "_run_align_epoch", crashing_align)
    with pytest.raises(KeyboardInterrupt):
        train_mod.train(cfg, tmp_path / "cut", device="cpu")
    assert not (tmp_path / "cut" / "model").exists()
    assert (tmp_path / "cut" / "checkpoints" / "epoch-002" / "optimizer.pt").is_file()

    def align(*a, **k):
        calls["align"] += 1
        return real_align(*a, **k)

    monkeypatch.setattr(train_mod, "_run_align_epoch", align)
    calls.update(ssl=0, align=0)
    resumed = GalaxyModel.load(train_mod.train(cfg, tmp_path / "cut", device="cpu"))
    assert calls == {"ssl": 0, "align": 1}  # only the missing epoch ran
    log = json.loads((tmp_path / "cut" / "training_log.json").read_text())
    assert log["resumed_from"] == "epoch-002"
    assert [e["stage"] for e in log["epochs"]] == ["ssl", "align", "align"]
    # Per-epoch seeds + restored optimiser state: the same weights as without the interruption.
    assert resumed.fingerprint == reference.fingerprint

    # --no-resume starts again from scratch.
    calls.update(ssl=0, align=0)
    train_mod.train(cfg, tmp_path / "cut", resume=False, device="cpu")
    assert calls == {"ssl": 1, "align": 2}


def test_cli_registers_train(tmp_path):
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    from astro_semsearch.training import add_cli

    add_cli(sub)
    args = parser.parse_args(["train", "--out", str(tmp_path), "--no-resume", "--device", "cpu"])
    assert args.resume is False and args.device == "cpu" and callable(args.func)
