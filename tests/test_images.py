"""Tests of astro_semsearch.images: loading, RGB mapping, blank detection, preprocessing."""
import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from astro_semsearch.images import is_blank, load_image, preprocess, to_rgb


@pytest.fixture
def rgb_uint8():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)


def test_load_jpeg_png_roundtrip(tmp_path, rgb_uint8):
    Image.fromarray(rgb_uint8).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (40, 50, 3)
    np.testing.assert_array_equal(out, rgb_uint8)  # PNG is lossless
    Image.fromarray(rgb_uint8).save(tmp_path / "a.jpg", quality=95)
    assert load_image(str(tmp_path / "a.jpg")).shape == (40, 50, 3)


def test_load_fits_file_and_hdus(tmp_path):
    data = np.random.default_rng(1).normal(size=(3, 20, 20)).astype(np.float32)
    path = tmp_path / "cut.fits.gz"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data)]).writeto(path)
    np.testing.assert_allclose(load_image(path), data)
    np.testing.assert_allclose(load_image(fits.ImageHDU(data)), data)
    with fits.open(path) as hdul:
        np.testing.assert_allclose(load_image(hdul), data)
    assert load_image(fits.PrimaryHDU(data[0])).shape == (1, 20, 20)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_image(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(ValueError, match="cannot decode"):
        load_image(bad)
    with pytest.raises(TypeError):
        load_image(12345)
    with pytest.raises(ValueError, match="no 2-D or 3-D"):
        load_image(fits.HDUList([fits.PrimaryHDU()]))


def test_to_rgb_uint8_and_float(rgb_uint8):
    out = to_rgb(rgb_uint8)
    assert out.dtype == np.float32 and out.shape == rgb_uint8.shape
    np.testing.assert_allclose(out, rgb_uint8 / 255.0, atol=1e-6)
    # Float RGB in 0-255 is recognised; 0-1 is kept (clipped).
    np.testing.assert_allclose(to_rgb(rgb_uint8.astype(np.float64)), out, atol=1e-6)
    f = np.full((4, 4, 3), 1.2)
    assert to_rgb(f).max() == 1.0


def test_to_rgb_bands_legacy_mapping():
    # A galaxy that is brighter in z than in g must come out red (plane 0 = z).
    img = np.zeros((3, 16, 16), np.float32)
    img[0, 8, 8], img[1, 8, 8], img[2, 8, 8] = 0.1, 0.5, 2.0  # g, r, z nanomaggies
    rgb = to_rgb(img, bands="grz")
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.float32
    assert 0.0 <= rgb.min() and rgb.max() <= 1.0
    r, g, b = rgb[8, 8]
    assert r > g > b
    # Sky (zero flux) maps to the dark softening level, not to NaN.
    assert np.isfinite(rgb).all() and rgb[0, 0].max() < 0.2
    # NaNs (masked pixels) are treated as zero flux.
    img[:, 0, 0] = np.nan
    assert np.isfinite(to_rgb(img)).all()


def test_to_rgb_errors():
    with pytest.raises(ValueError, match="planes"):
        to_rgb(np.zeros((4, 10, 10), np.float32), bands="grz")
    with pytest.raises(ValueError, match="no RGB mapping"):
        to_rgb(np.zeros((2, 10, 10), np.float32), bands="gy")
    with pytest.raises(ValueError, match="expected"):
        to_rgb(np.zeros((2, 10, 10, 2)))


@pytest.mark.parametrize(
    "image, blank",
    [
        (np.zeros((3, 10, 10)), True),
        (np.full((10, 10, 3), 7, np.uint8), True),
        (np.full((3, 10, 10), np.nan), True),
        (np.random.default_rng(0).random((3, 10, 10)), False),
    ],
)
def test_is_blank(image, blank):
    assert is_blank(image) is blank


def test_is_blank_ignores_nan_but_sees_signal():
    img = np.full((3, 10, 10), np.nan)
    img[0, 5, 5] = 1.0
    img[0, 5, 6] = 2.0
    assert not is_blank(img)


def test_preprocess_crop_and_resize():
    # A bright square that covers the central 80% exactly fills the output.
    img = np.zeros((100, 100, 3), np.uint8)
    img[10:90, 10:90] = 255
    out = preprocess(img, size=64, crop_fraction=0.8)
    assert out.shape == (64, 64, 3) and out.dtype == np.float32
    assert out.min() > 0.99
    # Full field: the border is dark again.
    full = preprocess(img, size=64, crop_fraction=1.0)
    assert full[0, 0].max() < 0.01 and full[32, 32].min() > 0.99
    # Non-square input is cropped to a centred square.
    assert preprocess(np.zeros((30, 90, 3), np.uint8), size=16).shape == (16, 16, 3)


# --------------------------------------------------------------------------- one rule for images without signal
_rng = np.random.default_rng(7)
_nan_majority = _rng.random((3, 32, 32))
_nan_majority[:, :20] = np.nan  # 62% masked
_one_inf = _rng.random((3, 32, 32))
_one_inf[1, 3, 4] = np.inf
_flat_colour = np.zeros((32, 32, 3), np.uint8)
_flat_colour[..., 0], _flat_colour[..., 1], _flat_colour[..., 2] = 200, 40, 90


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((32, 32, 3), np.uint8), "is blank: every pixel is 0"),
        (np.full((32, 32, 3), 128, np.uint8), "is blank: every pixel is 128"),
        (np.full((3, 32, 32), 0.25, np.float32), "is blank"),
        (_flat_colour, "no structure"),
        (np.full((3, 32, 32), np.nan), "all NaN"),
        (_one_inf, "1 infinite"),
        (_nan_majority, "mostly masked: 62%"),
        (_rng.random((3, 4, 40)), "4x40 pixels, too small"),
        (np.zeros((0, 0, 3)), "empty"),
        (np.array([["a"]]), "not a numeric image"),
        (np.zeros((2, 3, 4, 5)), "not an image"),
    ],
)
def test_image_problem_names_why(image, match):
    from astro_semsearch.images import image_problem

    assert match in image_problem(image)


@pytest.mark.parametrize(
    "image",
    [
        _rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
        _rng.random((3, 16, 16)).astype(np.float32),
        _rng.random((20, 30)),  # a single plane
        np.where(_rng.random((3, 32, 32)) < 0.3, np.nan, _rng.random((3, 32, 32))),  # some NaN is fine
    ],
)
def test_image_problem_accepts_images_with_signal(image):
    from astro_semsearch.images import image_problem

    assert image_problem(image) is None


def test_single_plane_is_the_band_stretch_in_grey():
    """A 2-D array or a one-plane FITS: stretched like the r band of the three-band mapping, copied to R, G, B."""
    plane = np.random.default_rng(1).gamma(2.0, 0.05, (24, 24)).astype(np.float32)
    grey = to_rgb(plane)
    assert grey.shape == (24, 24, 3) and grey.dtype == np.float32
    np.testing.assert_allclose(grey[..., 0], grey[..., 1], atol=0)
    np.testing.assert_allclose(grey[..., 1], grey[..., 2], atol=0)
    expected = np.clip(np.arcsinh(20.0 * np.maximum(0.0, plane * 3.4 + 0.03)) / np.sqrt(20.0), 0, 1)
    np.testing.assert_allclose(grey[..., 0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_rgb(plane[None]), grey, atol=1e-7)  # 1xHxW, as load_image gives a 2-D FITS
    z = to_rgb(plane, bands="z")  # a single named band uses its own scale
    np.testing.assert_allclose(z[..., 0], np.clip(np.arcsinh(20.0 * np.maximum(0.0, plane * 2.2 + 0.03))
                                                  / np.sqrt(20.0), 0, 1), rtol=1e-5, atol=1e-6)
    u8 = np.arange(64, dtype=np.uint8).reshape(8, 8)
    np.testing.assert_allclose(to_rgb(u8)[..., 2], u8 / 255.0, atol=1e-7)
