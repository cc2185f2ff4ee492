"""Galaxy-safe image augmentations, applied to whole batches of tensors.

A galaxy has no preferred orientation or handedness on the sky, its apparent
size depends on distance, and the survey adds a point-spread function (PSF)
and noise. The augmentations therefore draw a random rotation (any angle),
flip, small shift, scale jitter (0.8-1.25), Gaussian PSF blur, noise and a
mild brightness change. They never change colours much (colour carries
physics: red ellipticals, blue arcs) and never crop the galaxy away.

All operations run batched on torch tensors (``affine_grid`` /
``grid_sample``), so the same code is fast on a CPU and on a GPU.

Examples
--------
>>> import torch
>>> from astro_semsearch.training.augment import Augment
>>> batch = torch.randint(0, 256, (4, 80, 80, 3), dtype=torch.uint8)
>>> out = Augment(out_size=64)(batch, generator=torch.Generator().manual_seed(0))
>>> tuple(out.shape), float(out.min()) >= 0.0, float(out.max()) <= 1.0
((4, 3, 64, 64), True, True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Augment", "center_crop", "sky_sample", "reframe"]


def _to_float(batch: torch.Tensor) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 or ``(N, 3, H, W)`` float -> ``(N, 3, H, W)`` float in [0, 1]."""
    if batch.dtype == torch.uint8:
        return batch.permute(0, 3, 1, 2).float().div_(255.0)
    return batch.float()


def center_crop(batch: torch.Tensor, out_size: int = 64, crop_fraction: float = 0.8) -> torch.Tensor:
    """Deterministic centre crop + resize (what inference does), ``(N, 3, S, S)`` in [0, 1]."""
    x = _to_float(batch)
    H = x.shape[-1]
    side = int(round(H * crop_fraction))
    o = (H - side) // 2
    x = x[..., o:o + side, o:o + side]
    if side != out_size:
        x = F.interpolate(x, size=(out_size, out_size), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp_(0, 1)


def _border_stats(x: torch.Tensor, width: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel median and robust spread of the pixels within ``width`` of the edge."""
    m = torch.zeros(x.shape[-2:], dtype=torch.bool, device=x.device)
    m[:width], m[-width:], m[:, :width], m[:, -width:] = True, True, True, True
    b = x[..., m]  # (N, 3, n_border)
    med = b.median(dim=-1).values
    mad = (b - med[..., None]).abs().median(dim=-1).values * 1.4826
    return med, mad


def sky_sample(x: torch.Tensor, grid: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``grid_sample`` that fills the area outside the input with the image's own sky background.

    Inside the field it is bilinear sampling; outside, the median of the
    border pixels plus Gaussian noise with the border's robust spread.
    """
    med, mad = _border_stats(x)
    inside = F.grid_sample(torch.ones_like(x[:, :1]), grid, mode="bilinear", padding_mode="zeros",
                           align_corners=False)
    y = F.grid_sample(x - med[..., None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    noise = torch.randn(y.shape, generator=generator).to(x.device) * mad[..., None, None]
    return y + med[..., None, None] + (1 - inside) * noise


def reframe(images, zoom: float, out_size: int | None = None, seed: int = 0):
    """Zoom a stack of ``(N, H, W, 3)`` uint8 images about their centre (``zoom`` > 1: the galaxy larger).

    A zoom-out reaches past the original field; that area is filled with the
    image's own sky (`sky_sample`). Used to test framing robustness.

    >>> import numpy as np
    >>> out = reframe(np.full((2, 40, 40, 3), 30, np.uint8), 0.5)
    >>> out.shape, out.dtype.name, int(np.median(out))
    ((2, 40, 40, 3), 'uint8', 30)
    """
    import numpy as np

    arr = torch.from_numpy(np.ascontiguousarray(images))
    x = _to_float(arr)
    n, size = x.shape[0], out_size or x.shape[-1]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / float(zoom)
    grid = F.affine_grid(theta, (n, 3, size, size), align_corners=False)
    y = sky_sample(x, grid, torch.Generator().manual_seed(seed)) if zoom < 1 else \
        F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return (y.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


@dataclass
class Augment:
    """Random galaxy-safe view of a batch.

    Parameters
    ----------
    out_size : int
        Output side in pixels (the model's ``image_size``).
    crop_fraction : float
        Fraction of the input field an un-jittered view covers (0.8, as in
        `astro_semsearch.images.preprocess`).
    scale : (float, float)
        Range of the zoom factor (log-uniform); > 1 zooms in.
    shift : float
        Largest shift, as a fraction of the output field.
    rotate, flip : bool
        Random rotation by any angle / random mirror image.
    blur_sigma : (float, float)
        Range of the Gaussian PSF sigma in output pixels.
    noise : float
        Largest standard deviation of added Gaussian noise (0-1 units).
    brightness : float
        Brightness multiplied by a factor in ``1 +- brightness``.
    pad : {"reflection", "sky"}
        What fills the view where it reaches past the input field (a zoom
        out beyond the field): ``"reflection"`` mirrors the image (fine for
        small jitters, but a strong zoom-out then shows mirrored copies of the
        galaxy), ``"sky"`` fills with each image's own background: the median
        of its border pixels plus Gaussian noise of the border's spread, as a
        larger cutout of empty sky would look.
    """

    out_size: int = 64
    crop_fraction: float = 0.8
    scale: tuple[float, float] = (0.8, 1.25)
    shift: float = 0.06
    rotate: bool = True
    flip: bool = True
    blur_sigma: tuple[float, float] = (0.0, 1.2)
    blur_prob: float = 0.5
    noise: float = 0.03
    brightness: float = 0.15
    pad: str = "reflection"

    def __post_init__(self) -> None:
        if self.pad not in ("reflection", "sky"):
            raise ValueError(f"pad must be 'reflection' or 'sky', got {self.pad!r}")

    def __call__(self, batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return ``(N, 3, out_size, out_size)`` float32 in [0, 1]."""
        x = _to_float(batch)
        n, dev = x.shape[0], x.device

        def rand(*shape):
            return torch.rand(*shape, generator=generator).to(dev)

        # --- geometry: one affine map per image (rotation, flip, zoom, shift)
        angle = rand(n) * 2 * math.pi if self.rotate else torch.zeros(n, device=dev)
        lo, hi = math.log(self.scale[0]), math.log(self.scale[1])
        zoom = torch.exp(lo + (hi - lo) * rand(n))
        mirror = torch.where(rand(n) < 0.5, -1.0, 1.0) if self.flip else torch.ones(n, device=dev)
        s = self.crop_fraction / zoom  # output field as a fraction of the input field
        cos, sin = torch.cos(angle) * s, torch.sin(angle) * s
        theta = torch.zeros(n, 2, 3, device=dev)
        theta[:, 0, 0] = cos * mirror
        theta[:, 0, 1] = -sin
        theta[:, 1, 0] = sin * mirror
        theta[:, 1, 1] = cos
        theta[:, :, 2] = (rand(n, 2) * 2 - 1) * self.shift * 2 * self.crop_fraction
        grid = F.affine_grid(theta, (n, 3, self.out_size, self.out_size), align_corners=False)
        # Shrinking 80 -> 64 px (or more) without antialiasing would alias; the
        # source images are already smooth at this scale, bilinear is enough.
        if self.pad == "sky":
            x = sky_sample(x, grid, generator)
        else:
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

        # --- PSF: Gaussian blur with a per-image sigma (grouped convolution)
        if self.blur_sigma[1] > 0 and self.blur_prob > 0:
            sig = self.blur_sigma[0] + (self.blur_sigma[1] - self.blur_sigma[0]) * rand(n)
            sig = torch.where(rand(n) < self.blur_prob, sig, torch.zeros_like(sig)).clamp(min=1e-3)
            r = 3
            t = torch.arange(-r, r + 1, device=dev, dtype=x.dtype)
            k1 = torch.exp(-0.5 * (t[None] / sig[:, None]) ** 2)
            k1 = k1 / k1.sum(1, keepdim=True)  # (n, 2r+1); sigma~0 gives a delta
            k2 = (k1[:, :, None] * k1[:, None, :]).repeat_interleave(3, 0)[:, None]  # (3n,1,k,k)
            x = F.conv2d(F.pad(x.reshape(1, 3 * n, *x.shape[-2:]), (r, r, r, r), mode="reflect"), k2, groups=3 * n)
            x = x.reshape(n, 3, self.out_size, self.out_size)

        # --- photometry: brightness and noise
        if self.brightness > 0:
            x = x * (1 + (rand(n, 1, 1, 1) * 2 - 1) * self.brightness)
        if self.noise > 0:
            sd = rand(n, 1, 1, 1) * self.noise
            x = x + torch.randn(x.shape, generator=generator).to(dev) * sd
        return x.clamp_(0, 1)
