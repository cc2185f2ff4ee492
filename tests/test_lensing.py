"""Tests for the lens simulators (astro_semsearch.lensing), in physical units.

`ArcInjector` (training, lenstronomy) tests are skipped without lenstronomy;
`RayTracedLensSimulator` (evaluation, NumPy only) and the shared helpers
always run.
"""
import collections
import importlib.util

import numpy as np
import pytest
from scipy import stats
from scipy.signal import convolve2d

from astro_semsearch.exceptions import InvalidInputError, InvalidTypeError
from astro_semsearch.lensing import (
    CONFIGURATIONS,
    FRAME_SPAN_R90,
    ArcInjector,
    RayTracedLensSimulator,
    arc_contrast,
    is_lens_host,
    pixscale_from_r90,
    visible_arcs,
)
from astro_semsearch.lensing._checks import arc_pixscales, check_range, check_weights
from astro_semsearch.lensing.configurations import (
    azimuthal_coverage,
    label_configuration,
    polar_grid,
)
from astro_semsearch.lensing.physics import (
    convolve_fft,
    epl_deflection,
    moffat_kernel,
    sed_band_fluxes,
)

needs_lenstronomy = pytest.mark.skipif(importlib.util.find_spec("lenstronomy") is None,
                                       reason="ArcInjector needs lenstronomy (the 'train' extra)")
SIZE = 48


# ----------------------------------------------------------------- helpers
def radius_grid(size: int) -> np.ndarray:
    """Distance of each pixel from the frame centre ((size - 1) / 2), in pixels."""
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2.0
    return np.hypot(yy - c, xx - c)


def arc_radius(arc: np.ndarray, level: float = 0.2) -> float:
    """Median distance from the centre of the pixels brighter than ``level`` of the arc's peak."""
    light = arc.sum(-1)
    lit = light > level * light.max()
    return float(np.median(radius_grid(arc.shape[0])[lit]))


def red_host(size: int) -> np.ndarray:
    """A uint8 red Gaussian blob (brighter in R than B) on a dark sky."""
    blob = np.exp(-0.5 * (radius_grid(size) / (size / 12.0)) ** 2)
    return np.stack([40 + 150 * blob, 30 + 100 * blob, 20 + 60 * blob], -1).astype(np.uint8)


@pytest.fixture(scope="module")
def sie_arcs():
    inj = ArcInjector(seed=3, size=SIZE)
    arcs, params = inj.arcs(6, pixscale=0.25, return_params=True)
    return inj, arcs, params


@pytest.fixture(scope="module")
def rt_arcs():
    sim = RayTracedLensSimulator(seed=3, size=40)
    arcs, params = sim.arcs(5, pixscale=0.25, return_params=True)
    return sim, arcs, params


# ---------------------------------------------------------- shared pieces
def test_pixscale_from_r90_and_per_arc_scales():
    assert FRAME_SPAN_R90 == 6.4
    assert pixscale_from_r90(5.0, 80) == pytest.approx(0.4)
    np.testing.assert_allclose(pixscale_from_r90([2.5, 5.0], 160), [0.1, 0.2])
    ps, r = arc_pixscales(3, None, None, 40, (2.0, 8.0), np.random.default_rng(0))
    assert np.all((2.0 <= r) & (r <= 8.0)) and ps == pytest.approx(6.4 * r / 40)
    ps, r = arc_pixscales(2, 0.3, None, 40, (2.0, 8.0), None)
    assert ps.tolist() == [0.3, 0.3] and np.isnan(r).all()
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(InvalidInputError, match="r90"):
            pixscale_from_r90(bad, 80)
    with pytest.raises(InvalidInputError, match="not both"):
        arc_pixscales(1, 0.2, 3.0, 40, (2.0, 8.0), None)


def test_range_and_weight_checks():
    assert check_range("x", (1, 2)) == (1.0, 2.0)
    assert check_range("q", (0.2, 1.0), 0.2, 1.0, closed=True) == (0.2, 1.0)
    for bad in [(2, 1), (0, 1), (1, np.inf), "ab", (1,), None]:
        with pytest.raises(InvalidInputError, match="x"):
            check_range("x", bad)
    assert check_weights("mix", {"a": 1, "b": 0}, ("a", "b")) == {"a": 1.0}
    for bad in [{}, {"c": 1}, {"a": -1}, {"a": 0}, [("a", 1)]]:
        with pytest.raises(InvalidInputError, match="mix"):
            check_weights("mix", bad, ("a", "b"))


def test_configuration_labels():
    assert CONFIGURATIONS == ("ring", "quad", "pair", "single")
    assert label_configuration({"coverage": 0.8, "n_images": 1, "flux_ratio": np.inf}) == "ring"
    assert label_configuration({"coverage": 0.5, "n_images": 4, "flux_ratio": 1.0}) == "quad"
    assert label_configuration({"coverage": 0.5, "n_images": 2, "flux_ratio": 2.0}) == "pair"
    assert label_configuration({"coverage": 0.5, "n_images": 2, "flux_ratio": 3.0}) == "single"
    rad, x, y = polar_grid(2.0, (0.5, 0.0))
    assert x.shape == (48, 90) and rad[0] == pytest.approx(0.6)
    # Two opposite arcs: half the azimuths lit, two separate runs.
    ang = np.arctan2(y, x - 0.5)
    two = (np.abs(np.sin(ang)) > 0.7).astype(float)
    cov, n_arcs = azimuthal_coverage(two, rad)
    assert 0.4 < cov < 0.6 and n_arcs == 2
    assert azimuthal_coverage(np.zeros_like(x), rad) == (0.0, 0)


def test_arc_contrast_separates_core_from_outskirts():
    host = red_host(SIZE)
    r = radius_grid(SIZE)
    on_core = np.exp(-0.5 * (r / 1.5) ** 2)[..., None] * np.ones(3)
    ring = np.exp(-0.5 * ((r - 14) / 1.5) ** 2)[..., None] * np.ones(3)
    c = arc_contrast(np.stack([on_core, ring, np.zeros_like(ring)]), host)
    assert c[0] < 1.5 and c[1] > 3 and c[2] == 0
    assert arc_contrast(ring, host).shape == (1,)
    with pytest.raises(InvalidInputError):
        arc_contrast(ring, host[:10])


def test_visible_arcs_keeps_drawing_until_enough_stand_out():
    host = red_host(32)
    sim = RayTracedLensSimulator(seed=4, size=32)
    arcs, contrast, n_drawn = visible_arcs(sim, 3, host, 2.0, r90=2.0)
    assert arcs.shape == (3, 32, 32, 3) and np.all(contrast >= 2.0) and n_drawn >= 3
    np.testing.assert_allclose(arc_contrast(arcs, host), contrast)
    # Reproducible from the seed; an impossible threshold gives up after max_draws.
    again = visible_arcs(RayTracedLensSimulator(seed=4, size=32), 3, host, 2.0, r90=2.0)
    np.testing.assert_array_equal(again[0], arcs)
    none, _, n = visible_arcs(sim, 2, host, 1e9, max_draws=3)
    assert none.shape == (0, 32, 32, 3) and n == 3
    assert len(visible_arcs(sim, 2, host, 0.0)[0]) == 2
    with pytest.raises(InvalidInputError):
        visible_arcs(sim, 2, host, -1.0)


@needs_lenstronomy
def test_training_lens_bank_filters_invisible_arcs():
    from astropy.table import Table

    from astro_semsearch.training.data import lens_bank

    table = Table({"Class1.1": [0.9, 0.2, 0.8], "coarse_label": ["", "", ""]})
    images = np.repeat(red_host(40)[None], 3, 0)
    cfg = {"data": {"preload_size": 40}, "train": {"seed": 0},
           "align": {"n_arcs": 4, "lens_min_contrast": 2.0}}
    sid, caps = {"a lens": 0, "an Einstein ring": 1}, ["a lens", "an Einstein ring"]
    bank = lens_bank(table, images, cfg, sid, caps)
    assert bank["arcs"].shape == (4, 40, 40, 3) and len(bank["hosts"]) == 2
    assert np.all(bank["contrast"] >= 2.0) and bank["caption_ids"].tolist() == [0, 1]
    assert np.all(arc_contrast(bank["arcs"], images[0]) >= 2.0)
    # 0 keeps every arc (the old behaviour); a contrast no arc reaches disables lens injection.
    cfg["align"]["lens_min_contrast"] = 0
    assert len(lens_bank(table, images, cfg, sid, caps)["arcs"]) == 4
    cfg["align"].update(n_arcs=1, lens_min_contrast=1e9)
    with pytest.warns(UserWarning, match="lens_min_contrast"):
        assert lens_bank(table, images, cfg, sid, caps) is None


def test_is_lens_host():
    assert is_lens_host({"Class1.1": 0.9, "coarse_label": "spiral"})
    assert not is_lens_host({"Class1.1": 0.2, "coarse_label": "completely round smooth"})
    assert is_lens_host({"Class1.1": float("nan"), "coarse_label": "In between smooth"})
    assert not is_lens_host({"Class1.1": float("nan"), "coarse_label": "Cigar-shaped smooth"})
    assert not is_lens_host({"coarse_label": ""})


# ------------------------------------------------ ArcInjector (training)
@needs_lenstronomy
def test_sie_arcs_shape_dtype_normalised(sie_arcs):
    _, arcs, params = sie_arcs
    assert arcs.shape == (6, SIZE, SIZE, 3) and arcs.dtype == np.float32
    assert np.all(arcs >= 0)
    np.testing.assert_allclose(arcs.max(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    for p in params:
        assert 0.8 <= p["theta_E"] <= 3.0
        assert p["theta_E_pix"] == pytest.approx(p["theta_E"] / 0.25)
        assert p["fwhm_pix"] == pytest.approx(p["fwhm"] / 0.25) and 0.9 <= p["fwhm"] <= 1.6
        assert p["config"] in CONFIGURATIONS and p["target_config"] in CONFIGURATIONS
        assert np.isnan(p["r90"])


@needs_lenstronomy
def test_sie_reproducible_with_seed():
    a, pa = ArcInjector(seed=7, size=32).arcs(2, return_params=True)
    b, pb = ArcInjector(seed=7, size=32).arcs(2, return_params=True)
    c = ArcInjector(seed=8, size=32).arcs(2)
    np.testing.assert_array_equal(a, b)
    assert [p["theta_E"] for p in pa] == [p["theta_E"] for p in pb]
    assert not np.allclose(a, c)
    hosts = np.full((2, 32, 32, 3), 40, np.uint8)
    inj = ArcInjector(seed=0, size=32)
    np.testing.assert_array_equal(inj.inject(hosts, a, rng=np.random.default_rng(1)),
                                  inj.inject(hosts, a, rng=np.random.default_rng(1)))


@needs_lenstronomy
def test_sie_pixel_scale_from_r90_and_per_arc():
    inj = ArcInjector(seed=0, size=40)
    _, params = inj.arcs(2, r90=[2.5, 5.0], return_params=True)
    assert [p["pixscale"] for p in params] == pytest.approx([6.4 * 2.5 / 40, 6.4 * 5.0 / 40])
    assert [p["r90"] for p in params] == [2.5, 5.0]
    _, params = inj.arcs(2, pixscale=[0.2, 0.5], return_params=True)
    assert [p["pixscale"] for p in params] == [0.2, 0.5]
    # Default: R90 log-uniform in (2, 8) arcsec.
    ps = [inj.draw_parameters()["pixscale"] for _ in range(20)]
    assert 6.4 * 2 / 40 <= min(ps) and max(ps) <= 6.4 * 8 / 40


@needs_lenstronomy
def test_sie_einstein_radius_scales_as_one_over_pixscale():
    # Sources near the centre put the images on the Einstein radius.
    kw = dict(size=64, theta_e=(1.5, 1.5), mix={"quad": 1, "ring": 1}, source_radius=(0.12, 0.2))
    radii = {}
    for ps in (0.15, 0.3):
        arcs = ArcInjector(seed=11, **kw).arcs(4, pixscale=ps)
        r = np.array([arc_radius(a) for a in arcs])
        te_pix = 1.5 / ps
        assert np.all((0.75 * te_pix < r) & (r < 1.35 * te_pix)), (ps, r, te_pix)
        radii[ps] = np.median(r)
    assert radii[0.15] / radii[0.3] == pytest.approx(2.0, rel=0.15)


@needs_lenstronomy
def test_sie_configuration_mix():
    inj = ArcInjector(seed=5, size=SIZE)
    params = [inj.draw_parameters(pixscale=0.3) for _ in range(50)]
    seen = collections.Counter(p["config"] for p in params)
    assert set(seen) == set(CONFIGURATIONS), seen
    # The targeted configuration is usually obtained, and labels agree with the measurements.
    assert np.mean([p["config"] == p["target_config"] for p in params]) > 0.6
    for p in params:
        if p["config"] == "ring":
            assert p["is_ring"] and p["coverage"] >= 0.75
        elif p["config"] == "quad":
            assert p["n_images"] >= 4
        else:
            assert not p["is_ring"]
    # The mix is controllable.
    only = ArcInjector(seed=5, size=SIZE, mix={"single": 1.0})
    assert all(only.draw_parameters(pixscale=0.3)["target_config"] == "single" for _ in range(5))
    assert inj.draw_parameters(pixscale=0.3, config="quad")["target_config"] == "quad"


@needs_lenstronomy
def test_sie_round_unsheared_lens_is_handled():
    # A perfectly round SIS is degenerate for the analytic lens-equation solver.
    inj = ArcInjector(seed=0, size=32, lens_q=(1.0, 1.0), shear=(0.0, 0.0))
    assert inj.draw_parameters(pixscale=0.3, config="pair")["n_images"] == 2
    assert inj.draw_parameters(pixscale=0.3, config="ring")["config"] == "ring"


@needs_lenstronomy
def test_sie_arc_light_hugs_the_centre_at_realistic_sizes():
    arcs = ArcInjector(seed=2, size=64, theta_e=(1.0, 1.0)).arcs(8, pixscale=0.4)  # theta_E = 2.5 pixels
    r = radius_grid(64)
    for arc in arcs:
        light = arc.sum(-1)
        assert light[r < 0.5 * 32].sum() / light.sum() > 0.9


@needs_lenstronomy
def test_sie_arcs_are_mostly_blue():
    arcs = ArcInjector(seed=4, size=32).arcs(12, pixscale=0.3)
    red, blue = arcs[..., 0].sum(axis=(1, 2)), arcs[..., 2].sum(axis=(1, 2))
    assert np.mean(blue > red) >= 0.75


@needs_lenstronomy
def test_sie_inject_changes_only_pixels_near_the_arc(sie_arcs):
    inj, arcs, _ = sie_arcs
    host = red_host(SIZE)
    hosts = np.repeat(host[None], len(arcs), 0)
    out = inj.inject(hosts, arcs, rng=np.random.default_rng(0), brightness=0.6)
    assert out.dtype == np.uint8 and out.shape == hosts.shape
    np.testing.assert_array_equal(out[arcs.max(-1) == 0], hosts[arcs.max(-1) == 0])
    for img in out:
        diff = img.astype(int) - host.astype(int)
        assert (np.abs(diff).max(-1) >= 2).sum() > 10
    # A single image and a single arc for several images work too.
    one = inj.inject(host, arcs[0])
    assert one.shape == host.shape and one.dtype == np.uint8
    assert inj.inject(hosts[:3], arcs[0]).shape == (3, SIZE, SIZE, 3)


@needs_lenstronomy
def test_sie_faint_arcs():
    inj = ArcInjector(seed=0, size=32, faint_fraction=0.5)
    b = inj.draw_brightness(400)
    faint = b < 0.25
    assert 0.4 < faint.mean() < 0.6 and np.all((b[faint] >= 0.03) & (b[faint] <= 0.1))
    params = [inj.draw_parameters(pixscale=0.3) for _ in range(20)]
    assert {p["faint"] for p in params} == {True, False}
    assert all(0.03 <= p["brightness"] <= 0.1 for p in params if p["faint"])
    assert all(0.25 <= p["brightness"] <= 0.9 for p in params if not p["faint"])


def test_sie_bad_arguments_raise_the_package_errors():
    # Argument checks run before lenstronomy is imported.
    bad_init = [dict(theta_e=(3.0, 1.0)), dict(theta_e=(-1.0, 2.0)), dict(theta_e=(1.0, 20.0)),
                dict(fwhm=(0.0, 1.0)), dict(r90=(5.0, 2.0)), dict(size=8), dict(mix={"einstein cross": 1.0}),
                dict(mix={"ring": 0.0}), dict(colour_mix={"red": 1.0}), dict(faint_fraction=1.5),
                dict(lens_q=(0.5, 1.2)), dict(theta_e="big"), dict(colour_jitter=1.0)]
    for kw in bad_init:
        with pytest.raises(InvalidInputError):
            ArcInjector(**kw)
    inj = ArcInjector(seed=0, size=SIZE)
    with pytest.raises(InvalidInputError, match="pixscale"):
        inj.arcs(2, pixscale=-0.2)
    with pytest.raises(InvalidInputError, match="one value per arc"):
        inj.arcs(2, pixscale=[0.2, 0.3, 0.4])
    with pytest.raises(InvalidInputError, match="not both"):
        inj.arcs(1, pixscale=0.2, r90=3.0)
    with pytest.raises(InvalidInputError, match="r90"):
        inj.arcs(1, r90=0.0)
    with pytest.raises(InvalidInputError, match="non-negative integer"):
        inj.arcs(-1)
    with pytest.raises(InvalidInputError, match="config"):
        inj.draw_parameters(config="cross")
    arcs = np.zeros((2, SIZE, SIZE, 3), np.float32)
    with pytest.raises(InvalidTypeError):
        inj.inject(np.zeros((1, SIZE, SIZE, 3), dtype=np.float32), arcs[:1])
    with pytest.raises(InvalidInputError):
        inj.inject(np.zeros((1, SIZE + 2, SIZE + 2, 3), dtype=np.uint8), arcs[:1])
    with pytest.raises(InvalidInputError, match="arcs for"):
        inj.inject(np.zeros((4, SIZE, SIZE, 3), dtype=np.uint8), arcs[:2])
    with pytest.raises(InvalidInputError, match="brightness"):
        inj.inject(np.zeros((2, SIZE, SIZE, 3), dtype=np.uint8), arcs[:2], brightness=[0.5])
    with pytest.raises(InvalidInputError, match="non-negative"):
        inj.inject(np.zeros((1, SIZE, SIZE, 3), dtype=np.uint8), -arcs[:1] - 1)


# ------------------------------------- RayTracedLensSimulator (evaluation)
def test_sis_deflects_by_theta_e_radially():
    x, y = np.array([0.3, -2.0, 1.0]), np.array([0.4, 1.0, -3.0])
    ax, ay = epl_deflection(x, y, theta_e=1.3)
    np.testing.assert_allclose(np.hypot(ax, ay), 1.3)
    np.testing.assert_allclose(ax * y - ay * x, 0.0, atol=1e-12)


@pytest.mark.parametrize("q,slope,phi", [(0.6, 2.0, 0.3), (0.5, 1.8, 1.0), (0.8, 2.3, 2.0)])
def test_epl_deflection_is_the_gradient_of_its_convergence(q, slope, phi):
    # div(alpha) = 2 kappa and curl(alpha) = 0, by finite differences.
    te, h = 1.2, 1e-5
    x, y = np.array([0.7, -1.3, 0.2, 2.5]), np.array([0.4, 0.5, -1.1, 0.1])
    axp, ayp = epl_deflection(x + h, y, te, q, phi, slope)
    axm, aym = epl_deflection(x - h, y, te, q, phi, slope)
    bxp, byp = epl_deflection(x, y + h, te, q, phi, slope)
    bxm, bym = epl_deflection(x, y - h, te, q, phi, slope)
    div = (axp - axm + byp - bym) / (2 * h)
    curl = (ayp - aym - bxp + bxm) / (2 * h)
    t, b = slope - 1, te * np.sqrt(q)
    xr, yr = np.cos(phi) * x + np.sin(phi) * y, -np.sin(phi) * x + np.cos(phi) * y
    kappa = (2 - t) / 2 * (b / np.sqrt(q ** 2 * xr ** 2 + yr ** 2)) ** t
    np.testing.assert_allclose(div / 2, kappa, rtol=1e-5)
    np.testing.assert_allclose(curl, 0.0, atol=1e-5)


def test_epl_mean_convergence_is_one_inside_theta_e():
    # theta_E is the area-equivalent Einstein radius: the flux of alpha through
    # the critical ellipse R = b equals 2 x its area (Gauss), i.e. <kappa> = 1.
    te, q, slope = 1.0, 0.6, 2.15
    b = te * np.sqrt(q)
    s = np.linspace(0, 2 * np.pi, 4001)[:-1]
    x, y = b / q * np.cos(s), b * np.sin(s)  # the ellipse R = b
    ax, ay = epl_deflection(x, y, te, q, 0.0, slope)
    nx, ny = b * np.cos(s), b / q * np.sin(s)  # outward normal times dl/ds
    flux = np.sum(ax * nx + ay * ny) * (s[1] - s[0])
    assert flux / (2 * np.pi * te ** 2) == pytest.approx(1.0, rel=1e-4)


def test_moffat_kernel_and_fft_convolution():
    k = moffat_kernel(4.0, beta=3.0)
    assert k.sum() == pytest.approx(1.0) and k.shape == (33, 33)
    prof = moffat_kernel(4.0, beta=3.0, oversample=1)[16]
    # Half maximum near 2 pixels from the centre (FWHM 4).
    assert prof[16 + 2] / prof[16] == pytest.approx(0.5, abs=0.08)
    rng = np.random.default_rng(0)
    img, ker = rng.random((20, 24)), moffat_kernel(1.7, 2.5)
    np.testing.assert_allclose(convolve_fft(img, ker), convolve2d(img, ker, mode="same"), atol=1e-12)
    with pytest.raises(InvalidInputError):
        moffat_kernel(0.0)


def test_sed_colours():
    np.testing.assert_allclose(sed_band_fluxes(1.5, -2.0, 0.0, "grz"), 1.0)
    blue = sed_band_fluxes(1.5, -2.5, 0.0, "grz")
    assert blue[0] > 1 > blue[2]  # a bluer UV slope: brighter in g, fainter in z
    # At z = 1 the z band (4565 A rest) lies redward of the 4000 A break: r - z grows with it.
    assert sed_band_fluxes(1.0, -1.0, 1.0, "grz")[2] > 1.5 * sed_band_fluxes(1.0, -1.0, 0.0, "grz")[2]
    with pytest.raises(InvalidInputError):
        sed_band_fluxes(1.0, -1.0, 0.0, "gry")


def test_rt_arcs_shape_dtype_normalised(rt_arcs):
    _, arcs, params = rt_arcs
    assert arcs.shape == (5, 40, 40, 3) and arcs.dtype == np.float32
    assert np.all(arcs >= 0)
    np.testing.assert_allclose(arcs.max(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    for p in params:
        assert 0.8 <= p["theta_E"] <= 3.0 and p["theta_E_pix"] == pytest.approx(p["theta_E"] / 0.25)
        assert p["config"] in CONFIGURATIONS and 0.9 <= p["fwhm"] <= 1.6


def test_rt_legacy_survey_bands():
    arcs, params = RayTracedLensSimulator(seed=0, size=24, bands="grz").arcs(1, pixscale=0.3, return_params=True)
    assert arcs.shape == (1, 24, 24, 3) and "r_z" in params[0] and len(params[0]["disc"]["band_flux"]) == 3


def test_rt_reproducible_with_seed():
    a, pa = RayTracedLensSimulator(seed=7, size=32).arcs(2, return_params=True)
    b, pb = RayTracedLensSimulator(seed=7, size=32).arcs(2, return_params=True)
    c = RayTracedLensSimulator(seed=8, size=32).arcs(2)
    np.testing.assert_array_equal(a, b)
    assert [p["pixscale"] for p in pa] == [p["pixscale"] for p in pb]
    assert not np.allclose(a, c)
    sim, hosts = RayTracedLensSimulator(seed=0, size=32), np.full((2, 32, 32, 3), 40, np.uint8)
    np.testing.assert_array_equal(sim.inject(hosts, a, rng=np.random.default_rng(1)),
                                  sim.inject(hosts, a, rng=np.random.default_rng(1)))


def test_rt_pixel_scale_from_r90():
    sim = RayTracedLensSimulator(seed=0, size=40)
    params = [sim.draw_parameters() for _ in range(10)]
    assert all(6.4 * 2 / 40 <= p["pixscale"] <= 6.4 * 8 / 40 for p in params)
    assert all(p["pixscale"] == pytest.approx(6.4 * p["r90"] / 40) for p in params)
    _, params = sim.arcs(2, r90=[3.0, 6.0], return_params=True)
    assert [p["pixscale"] for p in params] == pytest.approx([0.48, 0.96])


def test_rt_einstein_radius_scales_as_one_over_pixscale():
    kw = dict(size=64, theta_e=(1.5, 1.5), central_fraction=1.0, perturber_probability=0.0, lens_q=(0.7, 1.0))
    radii = {}
    for ps in (0.15, 0.3):
        arcs = RayTracedLensSimulator(seed=11, **kw).arcs(4, pixscale=ps)
        r = np.array([arc_radius(a) for a in arcs])
        te_pix = 1.5 / ps
        assert np.all((0.75 * te_pix < r) & (r < 1.35 * te_pix)), (ps, r, te_pix)
        radii[ps] = np.median(r)
    assert radii[0.15] / radii[0.3] == pytest.approx(2.0, rel=0.15)


def test_rt_configuration_mix():
    sim = RayTracedLensSimulator(seed=5, size=40)
    params = [sim.draw_parameters(pixscale=0.3) for _ in range(30)]
    seen = collections.Counter(p["config"] for p in params)
    assert {"ring", "quad"} <= set(seen) and ({"pair", "single"} & set(seen)), seen
    assert all(p["n_images"] >= 4 for p in params if p["config"] == "quad")
    assert all(p["coverage"] >= 0.75 for p in params if p["config"] == "ring")
    assert any(p["perturber"] is not None for p in params)
    assert len({round(p["slope"], 3) for p in params}) > 10


def test_rt_arc_light_hugs_the_centre_at_realistic_sizes():
    arcs = RayTracedLensSimulator(seed=2, size=64, theta_e=(1.0, 1.0)).arcs(6, pixscale=0.4)
    r = radius_grid(64)
    for arc in arcs:
        light = arc.sum(-1)
        assert light[r < 0.5 * 32].sum() / light.sum() > 0.9


def test_rt_inject_poisson_noise_and_shapes(rt_arcs):
    sim, arcs, _ = rt_arcs
    host = red_host(40)
    hosts = np.repeat(host[None], len(arcs), 0)
    out = sim.inject(hosts, arcs, rng=np.random.default_rng(0), peak=150.0)
    assert out.dtype == np.uint8 and out.shape == hosts.shape
    # No read noise by default: without arc light the host is unchanged.
    blank = np.zeros_like(arcs[:1])
    np.testing.assert_array_equal(sim.inject(host, blank[0], peak=100.0), host)
    assert np.abs(out.astype(int) - hosts).max() > 20
    # Poisson counts: variance = mean / gain.
    flat = np.full((1, 40, 40, 3), 0.5, np.float32)
    g = RayTracedLensSimulator(seed=0, size=40, gain=(4.0, 4.0))
    added = g.inject(np.zeros((1, 40, 40, 3), np.uint8), flat, peak=100.0).astype(float)
    assert added.mean() == pytest.approx(50.0, abs=0.5)
    assert added.var() == pytest.approx(50.0 / 4.0 + 1 / 12, rel=0.15)
    noisy = RayTracedLensSimulator(seed=0, size=40, read_noise=3.0)
    assert np.any(noisy.inject(host, blank[0], peak=100.0) != host)
    assert sim.inject(host, arcs[0]).shape == host.shape


def test_rt_bad_input_raises_the_package_errors(rt_arcs):
    sim, arcs, _ = rt_arcs
    for kw in [dict(theta_e=(2.0, 1.0)), dict(theta_e=(0.0, 1.0)), dict(fwhm=(-1.0, 1.0)), dict(size=4),
               dict(slope=(1.5, 3.0)), dict(lens_q=(0.0, 1.0)), dict(bands="ugr"), dict(n_clumps=(3, 1)),
               dict(n_clumps=3), dict(central_fraction=2.0), dict(read_noise=-1.0), dict(magnification_bias=-1.0),
               dict(perturber_probability=1.5), dict(max_offset=0.1)]:
        with pytest.raises(InvalidInputError):
            RayTracedLensSimulator(**kw)
    with pytest.raises(InvalidInputError, match="pixscale"):
        sim.arcs(1, pixscale=0.0)
    with pytest.raises(InvalidInputError, match="not both"):
        sim.arcs(1, pixscale=0.2, r90=2.0)
    with pytest.raises(InvalidInputError, match="non-negative integer"):
        sim.arcs(2.5)
    with pytest.raises(InvalidTypeError):
        sim.inject(np.zeros((1, 40, 40, 3), np.float64), arcs[:1])
    with pytest.raises(InvalidInputError):
        sim.inject(np.zeros((1, 40, 40), np.uint8), arcs[:1])
    with pytest.raises(InvalidInputError, match="peak"):
        sim.inject(np.zeros((2, 40, 40, 3), np.uint8), arcs[:2], peak=[-1.0, 2.0])
    with pytest.raises(InvalidInputError):
        epl_deflection(np.zeros(2), np.zeros(2), theta_e=1.0, q=1.5)


# ------------------------------------------- the two simulators compared
@needs_lenstronomy
def test_the_simulators_agree_on_physics_and_differ_in_look():
    size, ps, te, n = 48, 0.25, 1.5, 12
    a, pa = ArcInjector(seed=1, size=size, theta_e=(te, te)).arcs(n, pixscale=ps, return_params=True)
    b, pb = RayTracedLensSimulator(seed=1, size=size, theta_e=(te, te)).arcs(n, pixscale=ps, return_params=True)
    for arcs, params in ((a, pa), (b, pb)):
        r = np.array([arc_radius(x) for x in arcs]) / (te / ps)
        # Images lie on the Einstein radius; that of an off-centre or large
        # source reaches out to about theta_E + offset + source radius.
        offset = np.array([p["source_offset"] for p in params])
        src = np.array([p.get("R_sersic") or p["disc"]["r_e"] for p in params]) / te
        assert np.all((0.75 < r) & (r < 1.2 + offset + src)), (r, offset, src)
        assert 0.9 < np.median(r) < 1.3

    def colour_scatter(arc):  # spread of the R/B colour over the arc's bright pixels
        light = arc.sum(-1)
        lit = light > 0.2 * light.max()
        return float(np.std(arc[..., 0][lit] / np.maximum(arc[..., 2][lit], 1e-6)))

    def wing_fraction(arc, p):  # share of the light beyond theta_E + 2 FWHM
        light = arc.sum(-1)
        return float(light[radius_grid(size) > p["theta_E_pix"] + 2 * p["fwhm_pix"]].sum() / light.sum())

    # The training arcs have one colour each; the clumpy SED sources vary along the arc.
    sa, sb = np.array([colour_scatter(x) for x in a]), np.array([colour_scatter(x) for x in b])
    assert np.all(sa < 1e-3) and np.mean(sb > 0.01) > 0.8
    # Moffat wings and exponential discs put more light far out than Gaussian PSFs and Sérsics.
    wa = np.array([wing_fraction(x, p) for x, p in zip(a, pa)])
    wb = np.array([wing_fraction(x, p) for x, p in zip(b, pb)])
    assert np.median(wb) > 2 * np.median(wa)
    assert stats.mannwhitneyu(wb, wa, alternative="greater").pvalue < 0.01


def test_lens_host_mask_agrees_with_is_lens_host_row_by_row():
    from astropy.table import MaskedColumn, Table

    from astro_semsearch.lensing import is_lens_host, lens_host_mask

    rng = np.random.default_rng(4)
    n = 200
    smooth = rng.uniform(0, 1, n)
    smooth[rng.uniform(size=n) < 0.3] = np.nan  # no votes: the coarse label decides
    labels = rng.choice(["completely round smooth", "smooth cigar-shaped", "spiral", "Smooth in-between", ""], n)
    t = Table({"Class1.1": MaskedColumn(smooth, mask=rng.uniform(size=n) < 0.1), "coarse_label": labels})
    expected = [is_lens_host({"Class1.1": np.nan if np.ma.is_masked(t["Class1.1"][i]) else t["Class1.1"][i],
                              "coarse_label": t["coarse_label"][i]}) for i in range(n)]
    assert lens_host_mask(t).tolist() == expected and 0 < sum(expected) < n
    assert lens_host_mask(Table({"coarse_label": ["smooth", "spiral"]})).tolist() == [True, False]
