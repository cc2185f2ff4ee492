"""The data recipes that a user runs by hand: laying out the Galaxy Zoo 2 data."""
import csv
import importlib.util
from pathlib import Path

import numpy as np

RECIPES = Path(__file__).resolve().parent.parent / "data" / "recipes"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_gz2_lays_out_what_load_gz2_reads(tmp_path):
    from PIL import Image

    from astro_semsearch.datasets import GZ2_COLUMNS, load_gz2

    kaggle = tmp_path / "images_training_rev1"
    kaggle.mkdir()
    img = np.zeros((424, 424, 3), np.uint8)
    img[212 - 10:212 + 10, 212 - 10:212 + 10] = 255  # a bright centre: kept by the central crop
    ids = ["100008", "100023"]
    for gid in ids:
        Image.fromarray(img).save(kaggle / f"{gid}.jpg")
    with open(tmp_path / "solutions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["GalaxyID", *GZ2_COLUMNS])
        for k, gid in enumerate(ids):
            w.writerow([gid, *[0.1 * k] * len(GZ2_COLUMNS)])
    assert _load("prepare_gz2").main([str(kaggle), str(tmp_path / "solutions.csv"), "--out", str(tmp_path / "gz2")]) == 0
    table = load_gz2(tmp_path / "gz2")
    assert table["galaxy_id"].tolist() == [100008, 100023] and (table["n_vote_columns"] == 37).all()
    assert table["Class4.1"][1] == 0.1 * 1
    with Image.open(table["path"][0]) as im:
        arr = np.asarray(im)
    assert arr.shape == (160, 160, 3) and arr[80, 80].mean() > 200 and arr[5, 5].mean() < 30
