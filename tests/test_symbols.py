"""Tests of the schematic galaxy symbols (astro_semsearch.sketch) and their Galaxy Zoo mapping (training.symbols)."""
import math

import numpy as np
import pytest
from astropy.table import Table

from astro_semsearch.sketch import SYMBOL_KINDS, draw_symbol, draw_symbols, embed_symbol
from astro_semsearch.training.symbols import GZ2_LABELS, gz2_label, gz2_symbol

# A clean, upright, noise-free drawing: R = radius * size / 2 = 16 px.
CLEAN = {"radius": 0.5, "angle": 0.0, "noise": 0.0, "blur": 0.3, "brightness": 1.0, "line_width": 1.8}
SIZE = 64
C = (SIZE - 1) / 2
R = 16.0


def _gray(img):
    return img.astype(float).mean(-1) / 255.0


def _sample(light, x, y):
    """Bilinear sample of an image at float pixel positions."""
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    return (light[y0, x0] * (1 - fx) * (1 - fy) + light[y0, x0 + 1] * fx * (1 - fy)
            + light[y0 + 1, x0] * (1 - fx) * fy + light[y0 + 1, x0 + 1] * fx * fy)


def _circle(light, r, n=360):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return _sample(light, C + r * np.cos(t), C + r * np.sin(t))


def _moments(light):
    """Axis ratio and major-axis angle (deg) of the light distribution's second moments."""
    w = np.clip(light - np.median(light), 0, None)
    y, x = np.mgrid[:light.shape[0], :light.shape[1]]
    xc, yc = (w * x).sum() / w.sum(), (w * y).sum() / w.sum()
    cov = np.cov(np.stack([(x - xc).ravel(), (y - yc).ravel()]), aweights=w.ravel())
    vals, vecs = np.linalg.eigh(cov)
    return math.sqrt(vals[0] / vals[1]), math.degrees(math.atan2(vecs[1, 1], vecs[0, 1])) % 180


@pytest.mark.parametrize("kind", SYMBOL_KINDS)
def test_every_kind_draws_an_rgb_galaxy_like_image(kind):
    img = draw_symbol(kind, rng=0)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    g = _gray(img)
    assert g.max() > 0.6                                   # something bright is drawn ...
    assert np.median(np.r_[g[:6].ravel(), g[-6:].ravel()]) < 0.06  # ... on a dark sky
    # Light (above the sky level) is concentrated in the middle of the field, like a Galaxy Zoo cutout.
    light = np.clip(g - 0.04, 0, None)
    assert light[16:48, 16:48].sum() > 0.8 * light.sum()
    big = draw_symbol(kind, rng=0, size=100)
    assert big.shape == (100, 100, 3)


@pytest.mark.parametrize("kind", SYMBOL_KINDS)
def test_seeded_symbols_are_reproducible(kind):
    a, b = draw_symbol(kind, rng=7), draw_symbol(kind, rng=7)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, draw_symbol(kind, rng=8))
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    assert np.array_equal(draw_symbols(kind, 2, g1), draw_symbols(kind, 2, g2))


def test_ring_has_a_dark_gap_inside_the_ring():
    light = _gray(draw_symbol("ring", rng=0, axis_ratio=1.0, ring_radius=0.85, nucleus=False, **CLEAN))
    on_ring = _circle(light, 0.85 * R).mean()
    assert light[int(C) - 1:int(C) + 2, int(C) - 1:int(C) + 2].mean() < 0.15 * on_ring
    assert _circle(light, 0.4 * R).mean() < 0.2 * on_ring
    # The ring is closed: bright all the way round.
    assert _circle(light, 0.85 * R).min() > 0.4 * on_ring
    # A lens with one arc is bright on one side only.
    arc = _circle(_gray(draw_symbol("lens", rng=0, n_arcs=1, einstein_radius=0.85, **CLEAN)), 0.85 * R)
    assert arc.min() < 0.2 * arc.max()


def test_edge_on_is_elongated_along_the_position_angle():
    q, ang = _moments(_gray(draw_symbol("edge_on", rng=0, bulge="none", **{**CLEAN, "angle": 30.0})))
    assert q < 0.25
    assert abs(ang - 30.0) < 4
    q_round, _ = _moments(_gray(draw_symbol("elliptical", rng=0, axis_ratio=1.0, **CLEAN)))
    q_cigar, a_cigar = _moments(_gray(draw_symbol("elliptical", rng=0, axis_ratio=0.3, **{**CLEAN, "angle": 120.0})))
    assert q_round > 0.9 and q_cigar < 0.45 and abs(a_cigar - 120.0) < 4


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_n_arms_give_n_fold_structure(n):
    light = _gray(draw_symbol("spiral", rng=1, n_arms=n, winding="medium", axis_ratio=1.0, bulge=0.12, **CLEAN))
    profile = _circle(light, 0.7 * R, n=720)
    power = np.abs(np.fft.rfft(profile - profile.mean()))[1:9]
    assert int(np.argmax(power)) + 1 == n


def test_bar_lies_along_the_position_angle():
    light = _gray(draw_symbol("barred_spiral", rng=0, n_arms=0, bar_length=0.5, axis_ratio=1.0,
                              **{**CLEAN, "angle": 0.0}))
    along = _sample(light, np.array([C + 0.3 * R, C - 0.3 * R]), np.array([C, C])).mean()
    across = _sample(light, np.array([C, C]), np.array([C + 0.3 * R, C - 0.3 * R])).mean()
    assert along > 1.5 * across
    assert _moments(light)[1] < 5 or _moments(light)[1] > 175


def test_merger_has_two_nuclei_and_irregular_is_lopsided():
    light = _gray(draw_symbol("merger", rng=0, separation=1.2, size_ratio=0.9, tails=False, **CLEAN))
    # Two separate maxima along the major axis, with a dip between them.
    cut = light[int(round(C)) - 2:int(round(C)) + 3].max(0)
    peaks = [i for i in range(1, SIZE - 1) if cut[i] >= cut[i - 1] and cut[i] > cut[i + 1] and cut[i] > 0.4]
    assert len(peaks) == 2
    assert cut[peaks[0]:peaks[1]].min() < 0.7 * min(cut[peaks[0]], cut[peaks[1]])

    def asymmetry(img):
        g = _gray(img) - 0.02
        return np.abs(g - g[::-1, ::-1]).sum() / np.abs(g).sum()

    irregular = np.mean([asymmetry(draw_symbol("irregular", rng=s, **CLEAN)) for s in range(5)])
    elliptical = np.mean([asymmetry(draw_symbol("elliptical", rng=s, **CLEAN)) for s in range(5)])
    assert irregular > 0.4 > 0.1 > elliptical


def test_bad_kind_and_parameters_raise_with_helpful_messages():
    with pytest.raises(ValueError, match="valid kinds: elliptical, disk, spiral"):
        draw_symbol("starburst")
    with pytest.raises(ValueError, match="n_arms"):
        draw_symbol("spiral", n_arms=7)
    with pytest.raises(ValueError, match="unknown parameter.*'n_arms'.*valid:"):
        draw_symbol("elliptical", n_arms=2)
    with pytest.raises(ValueError, match="winding"):
        draw_symbol("spiral", winding="very")
    with pytest.raises(ValueError, match="axis_ratio"):
        draw_symbol("elliptical", axis_ratio=1.5)
    with pytest.raises(ValueError, match="bulge"):
        draw_symbol("edge_on", bulge="huge")
    with pytest.raises(ValueError, match="size"):
        draw_symbol("ring", size=8)
    with pytest.raises(ValueError, match="color"):
        draw_symbol("ring", color=(2, 0, 0))


def test_ranges_and_colour():
    # A (low, high) range is drawn uniformly; a degenerate range fixes the value.
    a = draw_symbol("elliptical", rng=0, axis_ratio=(0.4, 0.4), **CLEAN)
    b = draw_symbol("elliptical", rng=5, axis_ratio=0.4, **CLEAN)
    assert np.array_equal(a, b) or np.abs(a.astype(int) - b).max() <= 1
    red = draw_symbol("ring", rng=0, color=(1.0, 0.2, 0.2), **CLEAN)
    sky = np.median(red, axis=(0, 1))
    assert (red[..., 0] - sky[0]).sum() > 3 * (red[..., 2].astype(float) - sky[2]).clip(0).sum()


def test_embed_symbol_is_a_unit_vector_usable_as_a_query():
    from astro_semsearch.model import GalaxyModel

    model = GalaxyModel.from_config({"dim": 16}, seed=0)
    v = embed_symbol("spiral", model, n=3, rng=0, n_arms=2)
    assert v.shape == (16,) and abs(np.linalg.norm(v) - 1) < 1e-5
    manual = model.embed_images(draw_symbols("spiral", 3, 0, n_arms=2)).mean(0)
    assert np.allclose(v, manual / np.linalg.norm(manual), atol=1e-5)
    with pytest.raises(ValueError, match="n must be"):
        embed_symbol("spiral", model, n=0)


def test_similar_to_accepts_a_symbol_as_sketch_query(tmp_path):
    """similar_to(draw_symbol(...)) embeds the sketch with the image encoder and searches with it."""
    from astro_semsearch import similar_to
    from astro_semsearch.index import GalaxyIndex
    from astro_semsearch.model import GalaxyModel

    model = GalaxyModel.from_config({"dim": 16}, seed=0)
    gallery = np.concatenate([draw_symbols("ring", 4, 1), draw_symbols("edge_on", 4, 2)])
    table = Table({"object_id": [f"g{i}" for i in range(8)], "ra": np.arange(8.0), "dec": np.zeros(8)})
    index = GalaxyIndex.build(model.embed_images(gallery), table, kind="flat", model=model, name="sketches")
    sketch = draw_symbol("ring", rng=99)
    hits = similar_to(sketch, k=8, index=index, model=model, min_separation=None)
    assert len(hits) == 8
    expected = np.sort(model.embed_images(gallery) @ model.embed_images(sketch)[0])[::-1]
    assert np.allclose(np.asarray(hits["score"]), expected, atol=1e-4)


# ----------------------------------------------------------------------- Galaxy Zoo 2 mapping
def _votes(**fractions):
    """A 37-column record: every answer 0 unless given (Class1_2 -> "Class1.2")."""
    from astro_semsearch.datasets import GZ2_COLUMNS

    rec = {c: 0.0 for c in GZ2_COLUMNS}
    rec.update({k.replace("_", "."): v for k, v in fractions.items()})
    rec["n_vote_columns"], rec["coarse_label"] = 37, ""
    return rec


def test_coarse_labels_map_to_symbols():
    assert gz2_label({"coarse_label": "completely round smooth"}) == "round smooth"
    assert gz2_symbol({"coarse_label": "In between smooth"}) == ("elliptical", {"axis_ratio": (0.5, 0.8)})
    assert gz2_symbol({"coarse_label": "Cigar-shaped smooth"})[1]["axis_ratio"][1] < 0.5
    assert gz2_symbol({"coarse_label": "edge-on"}) == ("edge_on", {})
    assert gz2_symbol({"coarse_label": "spiral"}) == ("spiral", {})
    assert gz2_label({"coarse_label": ""}) is None and gz2_symbol({}) is None


def test_vote_fractions_map_to_symbols_with_details():
    smooth_cigar = _votes(Class1_1=0.8, Class1_2=0.2, Class7_3=0.7, Class7_2=0.2)
    assert gz2_label(smooth_cigar) == "cigar-shaped smooth"
    ring = _votes(Class1_1=0.3, Class1_2=0.7, Class8_1=0.55, Class8_6=0.1, Class3_1=0.6, Class3_2=0.1)
    assert gz2_symbol(ring) == ("ring", {"bar": True})
    merger = _votes(Class1_1=0.7, Class1_2=0.3, Class8_6=0.45, Class8_1=0.2)
    assert gz2_label(merger) == "merger"
    weak_merger = _votes(Class1_1=0.7, Class1_2=0.3, Class7_1=0.6, Class8_6=0.3)
    assert gz2_label(weak_merger) == "round smooth"   # below ODD_THRESHOLD: the main type decides
    disturbed = _votes(Class1_1=0.2, Class1_2=0.8, Class8_3=0.5)
    assert gz2_symbol(disturbed)[0] == "irregular"
    edge = _votes(Class1_2=0.9, Class2_1=0.8, Class2_2=0.1, Class9_2=0.6, Class9_1=0.2)
    assert gz2_symbol(edge) == ("edge_on", {"bulge": "boxy"})
    spiral = _votes(Class1_2=0.9, Class2_2=0.9, Class3_1=0.7, Class3_2=0.2, Class4_1=0.8, Class4_2=0.1,
                    Class10_3=0.5, Class10_1=0.1, Class11_3=0.4, Class11_2=0.2)
    assert gz2_symbol(spiral) == ("barred_spiral", {"n_arms": 3, "winding": "loose"})
    barred_disk = _votes(Class1_2=0.9, Class2_2=0.9, Class3_1=0.7, Class3_2=0.2, Class4_1=0.1, Class4_2=0.8)
    assert gz2_symbol(barred_disk) == ("barred_spiral", {"n_arms": 0})
    lenticular = _votes(Class1_2=0.9, Class2_2=0.9, Class3_2=0.9, Class4_2=0.9, Class5_4=0.7)
    assert gz2_symbol(lenticular) == ("disk", {"bulge": 0.36})
    star = _votes(Class1_3=0.9, Class1_1=0.1)
    assert gz2_symbol(star) is None
    # 17-column record: no spiral question; the coarse label decides between spiral and disk.
    short = {"Class1.1": 0.1, "Class1.2": 0.9, "Class1.3": 0.0, "Class2.1": 0.1, "Class2.2": 0.8,
             "n_vote_columns": 17, "coarse_label": "spiral"}
    assert gz2_label(short) == "spiral"
    assert gz2_label({**short, "coarse_label": ""}) == "disk"
    # Every label is one of GZ2_LABELS and every mapped symbol draws.
    for rec in (smooth_cigar, ring, merger, disturbed, edge, spiral, barred_disk, lenticular, short):
        assert gz2_label(rec) in GZ2_LABELS
        kind, params = gz2_symbol(rec)
        assert draw_symbol(kind, rng=0, **params).shape == (64, 64, 3)


def test_mapping_reads_astropy_rows():
    from astro_semsearch.datasets import GZ2_COLUMNS

    t = Table({c: [np.nan, 0.0] for c in GZ2_COLUMNS})
    t["coarse_label"] = ["edge-on", ""]
    t["Class1.1"][1], t["Class1.2"][1], t["Class8.1"][1] = 0.2, 0.8, 0.7
    rows = [{c: row[c] for c in t.colnames} for row in t]
    assert [gz2_label(r) for r in rows] == ["edge-on", "ring"]
    assert gz2_label(t[0]) == "edge-on"
