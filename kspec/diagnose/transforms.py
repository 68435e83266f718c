"""Fixed input transforms for robustness evaluation (``kspec evaluate --under ...``).

The vocabulary is augmentation's (``flip``, ``rotate``, ``translate``, ``zoom``,
``noise``, ``brightness``, ``contrast``) plus ``grayscale``, ``blur``, ``outline``,
``border``, ``distort`` and ``invert``. Unlike augmentation each transform is applied the
same way to every example (no randomness; ``noise`` draws from a seeded generator), on the
raw inputs the model takes. Amounts that are intensities are fractions of the inputs'
value range (``lo .. hi``, the split's minimum and maximum), so ``noise=0.1`` means the same
on pixels in 0-255 and in 0-1:

========================  ==============================================================
``flip[=horizontal]``     mirror (``horizontal``, ``vertical`` or ``both``)
``rotate=DEG``            rotate by DEG degrees about the centre (default 15)
``translate=F``           shift right and down by F of the width/height (default 0.1)
``zoom=F``                zoom in by F about the centre (default 0.1)
``noise=S``               add Gaussian noise, std S x range (default 0.1); any float input
``brightness=B``          add B x range (default 0.3; negative darkens)
``contrast=C``            scale each image's deviation from its mean by 1 - C (default 0.5)
``grayscale``             RGB to luma in every channel (no change on one channel)
``blur=SIGMA``            Gaussian blur of SIGMA pixels (default 1)
``outline``               edges only: the Sobel gradient magnitude, scaled into the range
``border=W``              a frame W pixels wide at the maximum value (default 1)
``distort=A``             a fixed smooth (sinusoidal) warp of amplitude A pixels (default 1)
``invert``                lo + hi - x
========================  ==============================================================

Geometric transforms fill uncovered pixels with the minimum (the background of most
images). Images are ``(batch, height, width, channels)``.

Example:
    >>> import numpy as np
    >>> t, = parse_transforms("flip")
    >>> t.apply(np.arange(4.0).reshape(1, 1, 4, 1), 0.0, 3.0, np.random.default_rng(0)).ravel()
    array([3., 2., 1., 0.])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from kspec.errors import SpecError

# name -> (default amount, kind of amount, applies to any float input (not only images))
KINDS: dict[str, tuple[Any, type | None, bool]] = {
    "flip": ("horizontal", str, False), "rotate": (15.0, float, False),
    "translate": (0.1, float, False), "zoom": (0.1, float, False),
    "noise": (0.1, float, True), "brightness": (0.3, float, False),
    "contrast": (0.5, float, False), "grayscale": (None, None, False),
    "blur": (1.0, float, False), "outline": (None, None, False),
    "border": (1, int, False), "distort": (1.0, float, False), "invert": (None, None, False),
}
ALIASES = {"greyscale": "grayscale", "gray": "grayscale", "grey": "grayscale",
           "outlines": "outline", "edges": "outline", "borders": "border",
           "distortion": "distort", "distortions": "distort", "shift": "translate",
           "gaussian_noise": "noise", "mirror": "flip"}
FLIPS = ("horizontal", "vertical", "both")


@dataclass(frozen=True)
class Transform:
    """One transform: its ``kind``, its ``amount`` and its ``label`` as written."""

    kind: str
    amount: Any
    label: str

    @property
    def images_only(self) -> bool:
        return not KINDS[self.kind][2]

    def apply(self, x: np.ndarray, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
        """The transformed copy of ``x`` (images: ``(n, h, w, c)``)."""
        x = np.asarray(x, dtype="float32")
        out = _APPLY[self.kind](x, self.amount, float(lo), float(hi), rng)
        return np.asarray(out, dtype="float32")


def parse_transforms(items: str | Iterable[str]) -> list[Transform]:
    """``"flip,rotate=15"`` or ``["flip", "rotate=15"]`` -> transforms.

    Raises:
        SpecError: an unknown name or an amount of the wrong kind (path ``--under``).
    """
    if isinstance(items, str):
        items = [items]
    out = []
    for item in [p.strip() for text in items for p in str(text).split(",") if p.strip()]:
        name, _, value = item.partition("=")
        name = ALIASES.get(name.strip().lower(), name.strip().lower())
        if name not in KINDS:
            from kspec.errors import suggest

            raise SpecError("--under", f"unknown transform {name!r}", value=item,
                            valid=sorted(KINDS), hint=suggest(name, list(KINDS)))
        default, kind, _ = KINDS[name]
        if not value.strip():
            amount = default
        elif kind is None:
            raise SpecError("--under", f"{name} takes no amount", value=item, valid=name)
        elif kind is str:
            amount = value.strip().lower()
            if amount not in FLIPS:
                raise SpecError("--under", f"flip is {', '.join(FLIPS)}", value=item)
        else:
            try:
                amount = kind(value)
            except ValueError:
                what = "an integer" if kind is int else "a number"
                raise SpecError("--under", f"{name} takes {what}", value=item,
                                valid=f"{name}={default}") from None
            if name in ("border", "blur", "zoom", "distort") and amount < 0:
                raise SpecError("--under", f"{name} must be 0 or more", value=item)
        out.append(Transform(name, amount, item))
    if not out:
        raise SpecError("--under", "no transforms given", valid=sorted(KINDS))
    return out


# -- the transforms themselves (numpy / scipy.ndimage, deterministic) -----------------------
def _ndimage():
    from scipy import ndimage

    return ndimage


def _flip(x, mode, lo, hi, rng):
    axes = {"horizontal": (2,), "vertical": (1,), "both": (1, 2)}[mode]
    return np.flip(x, axis=axes)


def _rotate(x, deg, lo, hi, rng):
    return _ndimage().rotate(x, deg, axes=(2, 1), reshape=False, order=1, mode="constant",
                             cval=lo)


def _translate(x, f, lo, hi, rng):
    return _ndimage().shift(x, (0, f * x.shape[1], f * x.shape[2], 0), order=1,
                            mode="constant", cval=lo)


def _zoom(x, f, lo, hi, rng):
    h, w = x.shape[1:3]
    scale = 1.0 + f
    # Sample the centre (h/scale x w/scale) window back onto h x w pixels.
    rows, cols = np.meshgrid((np.arange(h) - (h - 1) / 2) / scale + (h - 1) / 2,
                             (np.arange(w) - (w - 1) / 2) / scale + (w - 1) / 2, indexing="ij")
    return _resample(x, rows, cols, lo)


def _resample(x, rows, cols, fill):
    """Each image sampled at (rows, cols) (both (h, w)), bilinear, ``fill`` outside."""
    nd = _ndimage()
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        for c in range(x.shape[3]):
            out[i, :, :, c] = nd.map_coordinates(x[i, :, :, c], [rows, cols], order=1,
                                                 mode="constant", cval=fill)
    return out


def _noise(x, s, lo, hi, rng):
    return x + rng.normal(0.0, s * (hi - lo), size=x.shape)


def _brightness(x, b, lo, hi, rng):
    return x + b * (hi - lo)


def _contrast(x, c, lo, hi, rng):
    mean = x.mean(axis=(1, 2), keepdims=True)
    return (x - mean) * (1.0 - c) + mean


def _grayscale(x, _, lo, hi, rng):
    if x.shape[-1] != 3:
        return x.copy()
    luma = x @ np.array([0.299, 0.587, 0.114], dtype="float32")
    return np.repeat(luma[..., None], 3, axis=-1)


def _blur(x, sigma, lo, hi, rng):
    return _ndimage().gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest")


def _outline(x, _, lo, hi, rng):
    nd = _ndimage()
    gy = nd.sobel(x, axis=1, mode="nearest")
    gx = nd.sobel(x, axis=2, mode="nearest")
    mag = np.hypot(gx, gy)
    top = mag.max(axis=(1, 2, 3), keepdims=True)
    return lo + (hi - lo) * np.divide(mag, top, out=np.zeros_like(mag), where=top > 0)


def _border(x, width, lo, hi, rng):
    out = x.copy()
    if width > 0:
        out[:, :width], out[:, -width:] = hi, hi
        out[:, :, :width], out[:, :, -width:] = hi, hi
    return out


def _distort(x, a, lo, hi, rng):
    h, w = x.shape[1:3]
    r, c = np.meshgrid(np.arange(h, dtype="float64"), np.arange(w, dtype="float64"),
                       indexing="ij")
    rows = r + a * np.sin(2 * np.pi * c / max(w, 2))
    cols = c + a * np.sin(2 * np.pi * r / max(h, 2))
    return _resample(x, rows, cols, lo)


def _invert(x, _, lo, hi, rng):
    return lo + hi - x


_APPLY = {"flip": _flip, "rotate": _rotate, "translate": _translate, "zoom": _zoom,
          "noise": _noise, "brightness": _brightness, "contrast": _contrast,
          "grayscale": _grayscale, "blur": _blur, "outline": _outline, "border": _border,
          "distort": _distort, "invert": _invert}
