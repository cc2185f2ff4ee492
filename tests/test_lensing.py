"""Tests for the lensed-arc simulator (astro_semsearch.lensing)."""
import numpy as np
import pytest

pytest.importorskip("lenstronomy")

from astro_semsearch.lensing import ArcInjector, is_lens_host  # noqa: E402

SIZE = 48


@pytest.fixture(scope="module")
def simulated():
    inj = ArcInjector(seed=3, size=SIZE)
    arcs, params = inj.arcs(6, return_params=True)
    return inj, arcs, params


def radius_grid(size=SIZE):
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    return np.hypot(yy - c, xx - c)


def test_arcs_shape_nonzero_normalised(simulated):
    _, arcs, params = simulated
    assert arcs.shape == (6, SIZE, SIZE, 3) and arcs.dtype == np.float32
    assert np.all(arcs >= 0)
    np.testing.assert_allclose(arcs.max(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    # Extended arcs, not a point: many pixels lit.
    assert np.all((arcs.max(-1) > 0.1).sum(axis=(1, 2)) > 20)
    for p in params:
        assert 0.3 * SIZE / 2 <= p["theta_E"] <= 0.6 * SIZE / 2


def test_arcs_lie_on_the_einstein_radius(simulated):
    _, arcs, params = simulated
    r = radius_grid()
    for arc, p in zip(arcs, params):
        light = arc.sum(-1)
        mean_r = (light * r).sum() / light.sum()
        assert 0.7 * p["theta_E"] < mean_r < 1.3 * p["theta_E"]


def test_arcs_are_blue(simulated):
    _, arcs, _ = simulated
    r_, g_, b_ = (arcs[..., i].sum(axis=(1, 2)) for i in range(3))
    assert np.all(b_ > g_) and np.all(g_ > r_)


def test_deterministic_with_seed():
    a = ArcInjector(seed=7, size=32).arcs(2)
    b = ArcInjector(seed=7, size=32).arcs(2)
    c = ArcInjector(seed=8, size=32).arcs(2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_inject_changes_only_pixels_near_the_ring(simulated):
    inj, arcs, params = simulated
    # A red host: a Gaussian blob, brighter in R than B.
    r = radius_grid()
    blob = np.exp(-0.5 * (r / 4.0) ** 2)
    host = np.stack([40 + 150 * blob, 30 + 100 * blob, 20 + 60 * blob], -1).astype(np.uint8)
    hosts = np.repeat(host[None], len(arcs), 0)
    out = inj.inject(hosts, arcs, rng=np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.shape == hosts.shape
    for img, p in zip(out, params):
        diff = img.astype(int) - host.astype(int)
        changed = np.abs(diff).max(-1) >= 2
        assert changed.sum() > 20
        assert r[changed].min() > 0.2 * p["theta_E"]  # the host's core is untouched
        assert r[changed].max() < 2.2 * p["theta_E"]
        # Relatively bluer than the host where the arc landed.
        added = diff[changed].sum(0)
        assert added[2] > added[0]
    # A single image and a single arc work too.
    one = inj.inject(host, arcs[0])
    assert one.shape == host.shape and one.dtype == np.uint8


def test_inject_validates_input(simulated):
    inj, arcs, _ = simulated
    with pytest.raises(TypeError):
        inj.inject(np.zeros((1, SIZE, SIZE, 3), dtype=np.float32), arcs[:1])
    with pytest.raises(ValueError):
        inj.inject(np.zeros((1, SIZE + 2, SIZE + 2, 3), dtype=np.uint8), arcs[:1])
    with pytest.raises(ValueError):
        ArcInjector(theta_e=(0.5, 1.5))


def test_is_lens_host():
    assert is_lens_host({"Class1.1": 0.9, "coarse_label": "spiral"})
    assert not is_lens_host({"Class1.1": 0.2, "coarse_label": "completely round smooth"})
    assert is_lens_host({"Class1.1": float("nan"), "coarse_label": "In between smooth"})
    assert not is_lens_host({"Class1.1": float("nan"), "coarse_label": "Cigar-shaped smooth"})
    assert not is_lens_host({"coarse_label": ""})
