"""Chunked inference: numpy in, numpy out, in the input's dtype.

Float64 input is computed in float64 (weights cast once per call, the
module is never copied), float32 input in float32; standardization is
always computed in float64. Buffers are reused from chunk to chunk and, on
the CPU, results are written straight into the output array. Finiteness is
checked chunk by chunk while the chunk is in cache.
"""

import numpy as np
import torch

from ._data import iter_chunks
from ._device import as_tensor, device_of
from ._objective import check_bce_range, elementwise_error


def _finite(x):
    """Whether every element of ``x`` is finite: one fast reduction when they are."""
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


def _check_finite_input(x):
    """Raise scikit-learn's errors when ``x`` holds NaN or infinity."""
    if _finite(x):
        return
    if torch.isnan(x).any():
        raise ValueError("Input X contains NaN.")
    raise ValueError(
        f"Input X contains infinity or a value too large for dtype('{str(x.dtype)[6:]}')."
    )


class Forward:
    """An inference pass through a network's steps, in one dtype.

    Parameters
    ----------
    steps : list of tuple
        As returned by the network's ``inference_steps``.
    dtype : torch.dtype
        Arithmetic of the dense layers.
    """

    def __init__(self, steps, dtype):
        self.steps = []
        for kind, part in steps:
            if kind == "dense":
                w = part.linear.weight.detach().to(dtype)
                b = part.linear.bias.detach().to(dtype)
                self.steps.append((kind, part, w, b))
            else:
                self.steps.append((kind, part, None, None))
        self._buffers = {}

    def _buffer(self, i, rows, width, like):
        buf = self._buffers.get(i)
        if buf is None or buf.shape[0] < rows:
            buf = torch.empty(rows, width, dtype=like.dtype, device=like.device)
            self._buffers[i] = buf
        return buf[:rows]

    def __call__(self, x, out=None):
        """Apply the steps to ``x``; write the result into ``out`` when given."""
        m, last, h = x.shape[0], len(self.steps) - 1, x
        for i, (kind, part, w, b) in enumerate(self.steps):
            width = w.shape[0] if kind == "dense" else h.shape[1]
            target = out if i == last and out is not None else self._buffer(i, m, width, x)
            if kind == "standardize":  # float64 arithmetic, written in x's dtype
                h = torch.sub(h, part.shift, out=target).div_(part.scale)
            elif kind == "destandardize":
                h = torch.addcmul(part.shift, h, part.scale, out=target)
            elif part.activation.apply_ is not None:
                h = torch.addmm(b, h, w.t(), out=target)
                part.activation.apply_(h)
            else:
                h = target.copy_(part.module(torch.addmm(b, h, w.t())))
        if out is not None and not self.steps:
            out.copy_(h)
        return h


def _dtype(X):
    return torch.float64 if X.dtype == np.float64 else torch.float32


def transform(net, X, parts, n_out, width, owner):
    """Run the network's ``parts`` over ``X`` in chunks.

    Parameters
    ----------
    net : torch.nn.Module
    X : ndarray of shape (n_samples, n_in)
        Validated input (finiteness is checked here).
    parts : tuple of str
        See the network's ``inference_steps``.
    n_out : int
        Output width.
    width : int
        Widest layer, to size the chunks.
    owner : str
        Estimator name for error messages.

    Returns
    -------
    out : ndarray of shape (n_samples, n_out), in X's dtype

    Raises
    ------
    ValueError
        When the input is not finite, or a result overflows X's dtype.
    """
    device, dtype = device_of(net), _dtype(X)
    forward = Forward(net.inference_steps(parts), dtype)
    out = np.empty((X.shape[0], n_out), dtype=X.dtype)
    in_place = device.type == "cpu"
    with torch.inference_mode():
        for a, b in iter_chunks(X.shape[0], width):
            xb = as_tensor(X[a:b], device, dtype)
            _check_finite_input(xb)
            if in_place:
                y = forward(xb, out=torch.from_numpy(out[a:b]))
            else:
                y = forward(xb)
            if not _finite(y):
                raise ValueError(
                    f"{owner}: the result for some of the samples {a}..{b - 1} overflows "
                    f"{X.dtype}: their values are too large for the network in this dtype. "
                    "Pass float64 input, or rescale X."
                )
            if not in_place:
                out[a:b] = y.cpu().numpy()
    return out


def reconstruction_errors(net, X, loss, width, per_feature):
    """Reconstruction error of every sample (or element) of ``X``, in chunks.

    Errors are measured in the units the network trains in (standard
    deviations when standardizing), in X's dtype. An error that
    overflows (or is NaN because an intermediate overflowed) is +inf: such a
    sample is the most anomalous there is; no NaN is returned.

    Parameters
    ----------
    net : torch.nn.Module
    X : ndarray of shape (n_samples, n_features)
        Validated input (finiteness is checked here).
    loss : {"mse", "bce"}
    width : int
        Widest layer, to size the chunks.
    per_feature : bool
        Return elementwise errors instead of their mean over features.

    Returns
    -------
    errors : ndarray of shape (n_samples,) or (n_samples, n_features), in X's dtype
    """
    device, dtype = device_of(net), _dtype(X)
    standardize = Forward(net.inference_steps(("standardize",)), dtype)
    core = Forward(net.inference_steps(("core",)), dtype)
    shape = X.shape if per_feature else X.shape[:1]
    out = np.empty(shape, dtype=X.dtype)
    with torch.inference_mode():
        for a, b in iter_chunks(X.shape[0], width):
            xb = as_tensor(X[a:b], device, dtype)
            _check_finite_input(xb)
            if loss == "bce" and xb.numel():
                low, high = torch.aminmax(xb)
                check_bce_range(float(low), float(high), "Scale X as for fit.")
            xs = standardize(xb)
            # in X's dtype: an error beyond it is inf, which the rule below keeps
            errors = elementwise_error(core(xs), xs, loss)
            if not per_feature:
                errors = errors.mean(1)
            errors = errors.nan_to_num(nan=torch.inf, posinf=torch.inf).to(dtype)
            out[a:b] = errors.cpu().numpy()
    return out
