"""Training data: standardization statistics, float32 rows, and row sources.

A row source is where training batches come from, behind one protocol:
``n_rows``, ``index_device`` (where row indices live), ``take(rows)`` and
``slice(start, stop)``, both returning rows on the training device.
:class:`OnDevice` holds the data on the training device; :class:`Streamed`
keeps it in host memory and sends it batch by batch.
"""

import numpy as np
import torch

from ._device import as_tensor, stage_on_device

#: Elements per chunk in inference, validation and data preparation.
CHUNK_ELEMENTS = 1 << 21

_EPS = np.finfo(np.float64).eps
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def iter_chunks(n_rows, n_cols):
    """Yield ``(start, stop)`` row ranges of at most ``CHUNK_ELEMENTS`` elements.

    Parameters
    ----------
    n_rows : int
        Rows to cover.
    n_cols : int
        Widest row (in elements) a chunk will materialize.
    """
    step = max(1, CHUNK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


def standardization(X, owner, weights=None):
    """Per-feature mean and scale of ``X``, in float64, without overflow.

    Each column is divided by its largest magnitude before the two-pass
    mean and variance, so any finite column gives finite statistics. A
    feature is constant (scale 1) when its variance is within the rounding
    error bound of its computation, ``var <= n eps var + (n |mean| eps)^2``
    (the bound scikit-learn's StandardScaler uses): a relative threshold, so
    a tiny but real spread (std 1e-13 around 0) is kept.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Finite training data (float32 or float64).
    owner : str
        Estimator name for error messages.
    weights : ndarray of shape (n_samples,) or None, default=None
        Sample weights (frequencies): the weighted mean and variance.

    Returns
    -------
    shift, scale : ndarray of shape (n_features,), float64
    """
    n, d = X.shape
    peak = np.zeros(d)
    total = np.zeros(d)
    for a, b in iter_chunks(n, d):
        chunk = np.asarray(X[a:b], dtype=np.float64)
        peak = np.maximum(peak, np.abs(chunk).max(0))
    peak[peak == 0] = 1.0
    w = None if weights is None else weights[:, None]
    total_weight = n if weights is None else weights.sum()
    for a, b in iter_chunks(n, d):
        chunk = np.asarray(X[a:b], dtype=np.float64) / peak
        total += chunk.sum(0) if w is None else (chunk * w[a:b]).sum(0)
    mean = total / total_weight
    squares = np.zeros(d)
    for a, b in iter_chunks(n, d):
        chunk = np.square(np.asarray(X[a:b], dtype=np.float64) / peak - mean)
        squares += chunk.sum(0) if w is None else (chunk * w[a:b]).sum(0)
    var = squares / total_weight
    constant = var <= n * _EPS * var + np.square(n * mean * _EPS)
    scale = np.where(constant, 1.0, np.sqrt(var) * peak)
    return mean * peak, scale


def training_rows(X, shift=None, scale=None, *, owner):
    """The float32 rows the network trains on: ``X``, or ``(X - shift) / scale``.

    Standardizing happens in float64, before the cast to float32. Float32
    input without standardization is wrapped without a copy.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Validated, finite data.
    shift, scale : ndarray of shape (n_features,) or None
        float64 statistics, or None for no standardization.
    owner : str
        Estimator name for error messages.

    Returns
    -------
    rows : torch.Tensor of shape (n_samples, n_features), float32, on the CPU

    Raises
    ------
    ValueError
        When a value does not fit in float32 (only possible without
        standardization, for float64 input).
    """
    if scale is None:
        for a, b in iter_chunks(*X.shape) if X.dtype == np.float64 else ():
            peak = np.abs(X[a:b]).max(0)
            if peak.max() > _FLOAT32_MAX:
                col = int(np.argmax(peak))
                raise ValueError(
                    f"Input X has values beyond float32's range (feature {col}: "
                    f"{peak[col]:.4g}); {owner} trains in float32. Rescale X, or use "
                    "standardize=True (features are then centred and scaled in float64 first)."
                )
        return as_tensor(X, "cpu", torch.float32)
    out = np.empty(X.shape, dtype=np.float32)
    with np.errstate(over="ignore"):  # overflow to inf is detected just below
        for a, b in iter_chunks(*X.shape):
            out[a:b] = (np.asarray(X[a:b], dtype=np.float64) - shift) / scale
    if not np.isfinite(out).all():  # beyond float32 after centring: only if new data is wild
        col = int(np.argmin(np.isfinite(out).all(0)))
        raise ValueError(
            f"Input X: feature {col} lies beyond float32's range after centring and scaling "
            f"with the fitted statistics of {owner}; it cannot be trained on. Refit "
            "(warm_start=False) on data that includes such values, or rescale X."
        )
    return torch.from_numpy(out)


class OnDevice:
    """Training rows held as one tensor on the training device.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
    """

    def __init__(self, X):
        self.X = X
        self.n_rows = X.shape[0]
        self.index_device = X.device

    def take(self, rows):
        """Rows ``X[rows]``."""
        return self.X.index_select(0, rows)

    def slice(self, start, stop):
        """Rows ``X[start:stop]``."""
        return self.X[start:stop]


class Streamed:
    """Training rows kept in host memory and sent to the device batch by batch.

    For data larger than the accelerator's memory. Each batch is gathered on
    the host into one of ``n_slots`` page-locked (pinned) staging buffers
    and copied to the device without blocking, so gathering the next batch
    overlaps the device's work on the current one. A staging buffer is only
    refilled once its previous copy has completed (a CUDA event), the one
    wait on the host in this path.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        The data, on the CPU; never copied as a whole.
    device : torch.device
        Where batches are sent.
    batch_size : int
        Largest batch.
    n_slots : int, default=2
        Number of staging buffers.
    """

    def __init__(self, X, device, batch_size, n_slots=2):
        self.X = X
        self.device = torch.device(device)
        self.n_rows = X.shape[0]
        self.index_device = X.device
        cuda = self.device.type == "cuda"
        self._staging = [
            torch.empty(batch_size, X.shape[1], dtype=X.dtype, pin_memory=cuda)
            for _ in range(n_slots)
        ]
        self._copied = [None] * n_slots
        self._next = 0

    def take(self, rows):
        """Rows ``X[rows]`` on the device; ``rows`` is a CPU index tensor."""
        slot = self._next
        self._next = (slot + 1) % len(self._staging)
        if self._copied[slot] is not None:
            self._copied[slot].synchronize()
        if rows.shape[0] > self._staging[slot].shape[0]:  # a validation chunk: no staging
            return self.X.index_select(0, rows).to(self.device)
        staging = torch.index_select(self.X, 0, rows, out=self._staging[slot][: rows.shape[0]])
        if self.device.type != "cuda":
            return staging.to(self.device, copy=True)
        batch = staging.to(self.device, non_blocking=True)
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))  # the copy's stream
        self._copied[slot] = event
        return batch

    def slice(self, start, stop):
        """Rows ``X[start:stop]`` on the device."""
        return self.take(torch.arange(start, stop))


def row_source(X, device, batch_size):
    """The row source for CPU rows ``X``: on the device if they fit, else streamed."""
    if stage_on_device(X.numel() * X.element_size(), device):
        return OnDevice(X.to(device))
    return Streamed(X, device, batch_size)
