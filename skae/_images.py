"""Image helpers: corruptions on raw rows, and code quantization for compression."""

import math
from numbers import Integral

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from ._objective import NOISES, make_corruption
from ._params import _image_shape, _invalid

_INT32_MAX = np.iinfo(np.int32).max


def corrupt(X, noise, noise_level=0.1, *, image_shape=None, random_state=None):
    """Corrupt rows of X as ``noise=`` corrupts training inputs, in X's own units.

    The corruptions are those of the estimators' ``noise`` parameter:
    ``"gaussian"`` adds ``noise_level * N(0, 1)``; ``"masking"`` sets a
    fraction ``noise_level`` of the entries to 0; ``"salt_and_pepper"`` sets a
    fraction ``noise_level`` to their column's minimum or maximum over X;
    ``"block"`` sets one random rectangle covering the fraction
    ``noise_level`` of each image to 0; ``"watermark"`` blends a text overlay
    at a random position per image towards X's largest value, with opacity
    ``noise_level``. Useful to build paired data (corrupted input, clean
    target) for :class:`~skae.AutoencoderRegressor` and to evaluate
    denoising.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Rows to corrupt (images laid out as ``images.reshape(n_samples, -1)``).
    noise : {"gaussian", "masking", "salt_and_pepper", "block", "watermark"}
        The corruption.
    noise_level : float, default=0.1
        Its strength (see above); in [0, 1] except for ``"gaussian"``.
    image_shape : tuple of int or None, default=None
        ``(height, width, channels)`` of each row; needed by ``"block"`` and
        ``"watermark"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the corruption.

    Returns
    -------
    X_corrupted : ndarray of shape (n_samples, n_features)
        A corrupted copy, in X's dtype (float64 or float32).
    """
    X = check_array(X, dtype=[np.float64, np.float32])
    if noise not in NOISES:
        raise _invalid("corrupt", "noise", f"one of {NOISES}", noise)
    level = float(noise_level)
    if not (level >= 0 and (noise == "gaussian" or level <= 1)):
        raise _invalid("corrupt", "noise_level", "a float >= 0 (at most 1 unless "
                       "noise='gaussian')", noise_level)
    shape = _image_shape(image_shape, "corrupt", X.shape[1])
    if noise in ("block", "watermark") and shape is None:
        raise ValueError(f"corrupt with noise={noise!r} needs image_shape=(height, width, channels).")
    seed = check_random_state(random_state).randint(_INT32_MAX)
    rows = torch.from_numpy(X)
    corruption = make_corruption(noise, level, rows, torch.Generator().manual_seed(int(seed)), shape)
    return X.copy() if corruption is None else corruption(rows).numpy()


def check_n_bits(n_bits):
    """``n_bits`` as an int in [1, 16], or InvalidParameterError naming it."""
    if not isinstance(n_bits, Integral) or isinstance(n_bits, bool) or not 1 <= n_bits <= 16:
        raise _invalid("compress", "n_bits", "an int in [1, 16]", n_bits)
    return int(n_bits)


def quantize(Z, low, high, n_bits):
    """Uniform quantization of codes to ``2 ** n_bits`` levels per component.

    Component ``k`` maps ``[low[k], high[k]]`` onto the integers ``0 .. 2 **
    n_bits - 1`` (rounding to the nearest; values outside are clipped).

    Returns
    -------
    levels : ndarray of shape Z.shape, uint16
    """
    top = 2 ** n_bits - 1
    span = np.where(high > low, high - low, 1.0)
    q = np.rint((np.asarray(Z, dtype=np.float64) - low) / span * top)
    return np.clip(q, 0, top).astype(np.uint16)


def dequantize(levels, low, high, n_bits):
    """Codes from quantization levels: the inverse of :func:`quantize` (up to rounding)."""
    top = 2 ** n_bits - 1
    return low + levels.astype(np.float64) / top * (high - low)


def pack(levels, n_bits):
    """Each row of levels as ``ceil(n_components * n_bits / 8)`` bytes (big-endian bits).

    Returns
    -------
    data : ndarray of shape (n_samples, n_bytes), uint8
    """
    shifts = np.arange(n_bits - 1, -1, -1, dtype=np.uint16)
    bits = ((levels[:, :, None] >> shifts) & 1).astype(np.uint8)
    return np.packbits(bits.reshape(levels.shape[0], -1), axis=1)


def unpack(data, n_components, n_bits):
    """Levels from packed bytes: the inverse of :func:`pack`."""
    bits = np.unpackbits(data, axis=1, count=n_components * n_bits)
    weights = (1 << np.arange(n_bits - 1, -1, -1)).astype(np.uint16)
    return (bits.reshape(data.shape[0], n_components, n_bits).astype(np.uint16) * weights).sum(
        2, dtype=np.uint16)


def n_bytes(n_components, n_bits):
    """Bytes per compressed row."""
    return math.ceil(n_components * n_bits / 8)
