"""Thumbnails of results (thumbnails.result_images) and the montage figure (plotting.plot_results)."""
from __future__ import annotations

import io
import re
import warnings

import pytest

matplotlib = pytest.importorskip("matplotlib")  # plotting needs it (the [plot]/test extras)
matplotlib.use("Agg")  # no display in CI; plot_results itself never touches pyplot

import legacy_server as _server  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from astropy import units as u  # noqa: E402
from astropy.table import Table  # noqa: E402
from astropy.utils.exceptions import AstropyUserWarning  # noqa: E402
from fakes import MeanColourModel
from PIL import Image  # noqa: E402

from astro_semsearch.plotting import plot_results  # noqa: E402
from astro_semsearch.thumbnails import result_images  # noqa: E402

legacy_server = _server.legacy_server  # the fixture (tests/legacy_server.py)

COLOURS = [(230, 25, 25), (25, 200, 40), (30, 60, 230), (240, 220, 20), (200, 30, 200), (20, 210, 210)]


def _solid(rgb, shape=(48, 48)):
    img = np.zeros((*shape, 3), np.uint8)
    img[...] = rgb
    return img


def _textured(rgb):
    """A colour with a faint checker: builds refuse flat-colour images (they carry no structure)."""
    img = _solid(rgb).astype(np.int16)
    img[::2, ::2] += np.where(np.asarray(rgb) < 255, 1, -1)
    return img.astype(np.uint8)


def _hits(n=6, rerank=False):
    t = Table()
    t["rank"] = np.arange(1, n + 1)
    t["object_id"] = [f"J{i:02d}+0000" for i in range(n)]
    t["ra"] = np.linspace(150.0, 150.5, n) * u.deg
    t["dec"] = np.linspace(2.0, 2.5, n) * u.deg
    t["score"] = np.linspace(0.61, 0.35, n)
    if rerank:
        t["rerank_score"] = np.ma.masked_array(np.linspace(0.9, 0.2, n), mask=[i >= 3 for i in range(n)])
        t["search_rank"] = [3, 1, 2, 4, 5, 6][:n]
    t.meta["astro_semsearch"] = {"query": "ring galaxy", "index": {"name": "no-such-index-here", "path": None}}
    return t


def _panel_centre_pixel(fig, ax, png: np.ndarray, fy=0.5):
    """The saved image's pixel at the centre of an axes (fy: fraction of the axes height from the top)."""
    x0, y0, w, h = ax.get_position().bounds
    H, W = png.shape[:2]
    col = int(round((x0 + w / 2) * W))
    row = int(round((1 - (y0 + h * (1 - fy))) * H))
    return png[row, col, :3].astype(int)


# --------------------------------------------------------------------------- thumbnails
def test_thumbnails_from_mapping_directory_and_list(tmp_path):
    hits = _hits(3)
    ids = list(hits["object_id"])
    # A non-square RGB, a float (C,H,W) grz band image, and a file on disk.
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, 20:60] = (255, 0, 0)  # only the centre square is red: the crop keeps it
    bands = np.zeros((3, 32, 32), np.float32)
    bands[:, 8:24, 8:24] = 5.0
    Image.fromarray(_solid(COLOURS[2])).save(tmp_path / f"{ids[2]}.png")
    thumbs = result_images(hits, images={ids[0]: wide, ids[1]: bands, ids[2]: tmp_path / f"{ids[2]}.png"},
                           size=24, source=False)
    assert [t.shape for t in thumbs] == [(24, 24, 3)] * 3 and all(t.dtype == np.uint8 for t in thumbs)
    assert np.abs(thumbs[0].astype(int) - (255, 0, 0)).max() <= 3  # centre crop of the non-square image
    assert thumbs[1][12, 12].min() > 200 and thumbs[1][1, 1].max() < 40  # bright centre, dark sky
    assert np.abs(thumbs[2].astype(int) - COLOURS[2]).max() <= 2

    # A directory: files named by object_id, any of the usual endings.
    Image.fromarray(_solid(COLOURS[0])).save(tmp_path / f"{ids[0]}.jpg", quality=95)
    with pytest.warns(AstropyUserWarning, match=rf"no image for 1 of 3 rows: {re.escape(ids[1])} \(not in images="):
        from_dir = result_images(hits, images=tmp_path, size=None, source=False)
    assert from_dir[0].shape == (48, 48, 3) and from_dir[1] is None
    assert np.abs(from_dir[2].astype(int) - COLOURS[2]).max() <= 2
    # A list, one entry per row (e.g. an earlier call's output) is taken as is.
    again = result_images(hits, images=thumbs, size=24)
    assert all(np.array_equal(a, b) for a, b in zip(again, thumbs))
    with pytest.raises(ValueError, match="has 2 entries but the table has 3 rows"):
        result_images(hits, images=thumbs[:2])


def test_thumbnails_never_leave_the_directory(tmp_path):
    inside = tmp_path / "imgs"
    inside.mkdir()
    Image.fromarray(_solid(COLOURS[0])).save(tmp_path / "secret.png")
    t = Table({"object_id": ["../secret"], "file": ["../secret.png"], "ra": [1.0], "dec": [1.0]})
    with pytest.warns(AstropyUserWarning, match="no image for 1 of 1"):
        assert result_images(t, images=inside, source=False) == [None]


def test_thumbnails_bad_arguments():
    hits = _hits(2)
    with pytest.raises(TypeError, match="astropy Table"):
        result_images([1, 2])
    with pytest.raises(ValueError, match="size must be >= 4"):
        result_images(hits, size=2)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        result_images(hits, images="no/such/dir")
    assert result_images(hits[:0]) == []


def test_thumbnails_fetched_from_legacy_survey_and_cached(legacy_server):
    hits = _hits(3)
    hits["dec"][2] = -45.0  # outside the fake survey's footprint: a blank cutout
    with pytest.warns(AstropyUserWarning, match=rf"{re.escape(hits['object_id'][2])} \(outside the survey footprint"):
        thumbs = result_images(hits, size=64)
    assert legacy_server.counts["/jpeg-cutout"] == 3 and legacy_server.counts["/fits-cutout"] == 0
    # The default field of view is build_index's (256 px of 0.262"), asked at the thumbnail size.
    q = legacy_server.queries[0]
    assert int(q["size"]) == 64 and float(q["pixscale"]) == pytest.approx(256 * 0.262 / 64)
    # The thumbnail is the server's JPEG for that position, pixel for pixel.
    for i in range(2):
        body = _server._to_jpeg(_server.synthetic_cutout(float(hits["ra"][i]), float(hits["dec"][i]), 64))
        expected = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
        assert np.array_equal(thumbs[i], expected)
    assert thumbs[2] is None
    # A second call is served from astropy's cache, but for the blank one: blank answers are never cached.
    with pytest.warns(AstropyUserWarning):
        again = result_images(hits, size=64)
    assert legacy_server.total == 4 and legacy_server.queries[-1]["dec"].startswith("-45")
    assert np.array_equal(again[0], thumbs[0])


def test_thumbnails_failed_download_is_named(legacy_server):
    from astro_semsearch import conf

    hits = _hits(1)
    legacy_server.fail("500", times=10)
    with conf.set_temp("max_retries", 1), pytest.warns(AstropyUserWarning, match=r"J00\+0000 \(cutout failed.*500"):
        assert result_images(hits, size=32) == [None]




def test_thumbnails_from_an_index_built_from_local_images(tmp_path, legacy_server):
    from astro_semsearch import build_index, similar_to

    imgs = tmp_path / "my_images"
    imgs.mkdir()
    cat = Table({"object_id": [f"G{i}" for i in range(4)], "ra": [10.0, 11.0, 12.0, 13.0],
                 "dec": [1.0, 2.0, 3.0, 4.0], "file": [f"img_{i}.png" for i in range(4)]})
    for i in range(4):
        Image.fromarray(_textured(COLOURS[i])).save(imgs / f"img_{i}.png")
    index = build_index(cat, out=tmp_path / "idx", images=imgs, model=MeanColourModel(), progress=False)
    hits = similar_to("G0", k=3, index=index, min_separation=None)
    for index_arg in (index, None):  # None: found through the results' meta (index path)
        thumbs = result_images(hits, index=index_arg, size=16)
        for oid, th in zip(hits["object_id"], thumbs):
            assert np.abs(th.astype(int) - COLOURS[int(oid[1:])]).max() <= 2
    assert legacy_server.total == 0  # nothing fetched: the index's own images were used
    # Moved away from its images: a clear warning, then the survey's cutouts instead.
    (imgs).rename(tmp_path / "elsewhere")
    with pytest.warns(AstropyUserWarning, match="directory named 'my_images'"):
        thumbs = result_images(hits, index=index, size=16)
    assert legacy_server.counts["/jpeg-cutout"] == 3 and all(t is not None for t in thumbs)


# --------------------------------------------------------------------------- the montage
def test_montage_saved_png_shows_each_thumbnail_with_rank_score_and_id(tmp_path):
    hits = _hits(6, rerank=True)
    ids = list(hits["object_id"])
    images = {oid: _solid(c) for oid, c in zip(ids[:5], COLOURS)}  # the last hit has no image
    open_before = plt.get_fignums()
    with pytest.warns(AstropyUserWarning, match=rf"no image for 1 of 6 rows: {re.escape(ids[5])}"):
        fig = plot_results(hits, images=images, ncols=4, source=False, size=32, panel_size=1.5)
    assert plt.get_fignums() == open_before  # nothing left in pyplot's state

    path = tmp_path / "hits.png"
    fig.savefig(path, dpi=80)
    with Image.open(path) as im:
        assert im.format == "PNG"
        w_in, h_in = fig.get_size_inches()
        assert abs(im.size[0] - w_in * 80) < 1 and abs(im.size[1] - h_in * 80) < 1
        png = np.asarray(im.convert("RGB"))

    assert len(fig.axes) == 6
    assert [ax.get_label() for ax in fig.axes] == ids
    for i, ax in enumerate(fig.axes[:5]):
        assert np.abs(_panel_centre_pixel(fig, ax, png) - COLOURS[i]).max() <= 6, f"panel {i}"
    # The hit without an image: a light grey panel labelled so (pixel above the centred text).
    blank = _panel_centre_pixel(fig, fig.axes[5], png, fy=0.2)
    assert np.all(np.abs(blank - 224) <= 6)
    assert "no image" in [t.get_text() for t in fig.axes[5].texts]

    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == f"#1  rerank 0.900  score 0.610\n{ids[0]}"
    assert titles[4].startswith("#5  score ") and "rerank" not in titles[4]  # masked rerank_score
    # 4 columns, 2 rows: same row -> same y, same column -> same x, rows go down.
    pos = [ax.get_position() for ax in fig.axes]
    assert pos[0].y0 == pytest.approx(pos[3].y0) and pos[0].x0 == pytest.approx(pos[4].x0)
    assert pos[4].y0 < pos[0].y0
    assert all(p.width * w_in == pytest.approx(p.height * h_in) for p in pos)  # square panels

    fig.savefig(tmp_path / "hits.pdf")
    assert (tmp_path / "hits.pdf").read_bytes()[:5] == b"%PDF-"


def test_montage_options(tmp_path):
    from matplotlib.figure import Figure

    hits = _hits(3)
    images = [_solid(c) for c in COLOURS[:3]]
    fig = plot_results(hits, images=images, show_score=False, label=lambda row: f"RA {row['ra']:.1f}",
                       title="ring galaxy")
    assert [ax.get_title() for ax in fig.axes] == ["#1\nRA 150.0", "#2\nRA 150.2", "#3\nRA 150.5"]
    assert "ring galaxy" in [t.get_text() for t in fig.texts]
    assert len(fig.axes) == 3 and fig.get_size_inches()[0] > fig.get_size_inches()[1]  # ncols clipped to 3

    mine = Figure(figsize=(4, 2))
    out = plot_results(hits, images=images, fig=mine, label=None, ncols=3)
    assert out is mine and tuple(mine.get_size_inches()) == (4, 2) and len(mine.axes) == 3
    assert all(ax.get_title().count("\n") == 0 for ax in mine.axes)
    for ax in mine.axes:  # panels fit inside the figure
        b = ax.get_position()
        assert 0 <= b.x0 and b.x1 <= 1 and 0 <= b.y0 and b.y1 <= 1

    with pytest.raises(ValueError, match="no rows"):
        plot_results(hits[:0])
    with pytest.raises(ValueError, match="label column 'nope'"):
        plot_results(hits, images=images, label="nope")
    with pytest.raises(ValueError, match="ncols"):
        plot_results(hits, images=images, ncols=0)


def test_montage_of_fetched_cutouts(legacy_server, tmp_path):
    hits = _hits(2)
    fig = plot_results(hits, size=48)
    assert legacy_server.counts["/jpeg-cutout"] == 2
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    png = np.asarray(Image.open(buf).convert("RGB"))
    for i, ax in enumerate(fig.axes):
        thumb = result_images(hits[i : i + 1], size=48)[0]
        # The panel centre shows the galaxy's bright core, as in the thumbnail itself.
        centre = _panel_centre_pixel(fig, ax, png)
        assert np.abs(centre - thumb[24, 24].astype(int)).max() <= 25
        assert centre.sum() > 3 * _panel_centre_pixel(fig, ax, png, fy=0.04).sum()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # everything came from the cache: no warning, no request
        plot_results(hits, size=48)
    assert legacy_server.total == 2
