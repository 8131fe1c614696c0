"""Training data: standardization statistics, float32 rows, and row sources.

A row source is where training batches come from, behind one protocol:
``n_rows``, ``index_device`` (where row indices live), ``take(rows)`` and
``slice(start, stop)``, both returning rows on the training device.
:class:`OnDevice` holds the data on the training device; :class:`Streamed`
keeps it in host memory and sends it batch by batch; :class:`SparseRows`
keeps a scipy sparse (CSR) matrix and densifies one batch at a time;
:class:`skae._blocks.BlockRows` reads an out-of-core array a block at a time.
A source may also have ``order(index, generator, shuffle)``, the order in
which an epoch visits the rows (see :func:`skae._training.run_epoch`).
"""

import numpy as np
import scipy.sparse as sp
import torch

from ._blocks import BlockReader, BlockRows
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


def dense_rows(X, start, stop):
    """Rows ``start:stop`` of ``X`` as an ndarray; a sparse ``X`` densifies those rows only."""
    chunk = X[start:stop]
    return chunk.toarray() if sp.issparse(chunk) else chunk


def as_csr(X, canonical=False):
    """A validated sparse ``X`` as CSR (CSC is converted once: a copy as large as ``X``).

    Parameters
    ----------
    X : sparse matrix or array, CSR or CSC
    canonical : bool, default=False
        Also sum duplicate entries (on a copy; ``X`` is never modified), as
        the column statistics need.
    """
    if X.format != "csr":
        X = X.tocsr()  # a new matrix, with its duplicates summed
    elif canonical and not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X


def _entry_ranges(nnz):
    """``(start, stop)`` ranges of at most ``CHUNK_ELEMENTS`` stored entries."""
    for start in range(0, nnz, CHUNK_ELEMENTS):
        yield start, min(start + CHUNK_ELEMENTS, nnz)


def _column_extremes(X):
    """Per-column ``(min, max)`` of a canonical CSR ``X``, implicit zeros included, float64."""
    n, d = X.shape
    low, high = np.full(d, np.inf), np.full(d, -np.inf)
    for a, b in _entry_ranges(X.nnz):
        values = X.data[a:b].astype(np.float64)
        np.minimum.at(low, X.indices[a:b], values)
        np.maximum.at(high, X.indices[a:b], values)
    has_zeros = np.bincount(X.indices, minlength=d) < n  # some row stores nothing there
    low[has_zeros] = np.minimum(low[has_zeros], 0.0)
    high[has_zeros] = np.maximum(high[has_zeros], 0.0)
    return low, high


def _local(values, op):
    """The reduction of a single process: the values themselves."""
    return values


def _column_bounds(X, reduce=_local):
    """Each column's ``(min, max)`` over every rank's rows, float64.

    From the column extremes a sparse matrix or a checked
    :class:`skae._blocks.BlockReader` already gives (no pass over the rows),
    else from a pass over the rows, chunk by chunk; one reduction over the
    ranks.
    """
    if sp.issparse(X) or isinstance(X, BlockReader):
        low, high = _column_extremes(X) if sp.issparse(X) else X.column_extremes()
    else:
        low, high = np.full(X.shape[1], np.inf), np.full(X.shape[1], -np.inf)
        for a, b in iter_chunks(*X.shape):
            chunk = np.asarray(X[a:b], dtype=np.float64)
            low, high = np.minimum(low, chunk.min(0)), np.maximum(high, chunk.max(0))
    high, low = np.split(reduce(np.concatenate([high, -low]), "max"), 2)
    return -low, high


def _sparse_standardization(X, peak, weights=None, reduce=_local):
    """:func:`standardization` of a canonical CSR matrix, from its stored entries only.

    The same computation as for dense data, with each column's implicit zeros
    counted in closed form: the mean is the sum of the stored entries over
    ``n``, and the squared deviations add ``(n - stored) * mean ** 2``. With
    sample ``weights``, every count is a sum of weights.

    Returns
    -------
    mean, var : ndarray of shape (n_features,)
        Of the columns divided by ``peak``.
    n : float
        The number of rows (over every rank, with ``reduce``).
    """
    n, d = X.shape

    def entry_weights(a, b):  # the weight of the row of each stored entry a..b
        return weights[np.searchsorted(X.indptr, np.arange(a, b), side="right") - 1]

    chunks = [(a, b, None if weights is None else entry_weights(a, b))
              for a, b in _entry_ranges(X.nnz)]
    total, stored = np.zeros(d), np.zeros(d)
    for a, b, w in chunks:
        cols = X.indices[a:b]
        values = X.data[a:b].astype(np.float64) / peak[cols]
        total += np.bincount(cols, values if w is None else values * w, minlength=d)
        stored += np.bincount(cols, w, minlength=d)  # the weight (or count) of stored entries
    total_weight = n if weights is None else weights.sum()
    implicit = total_weight - stored  # the weight (or count) of each column's implicit zeros
    sums = reduce(np.concatenate([total, [total_weight, n]]), "sum")
    total, (total_weight, n) = sums[:d], sums[d:]
    mean = total / total_weight
    squares = implicit * np.square(mean)
    for a, b, w in chunks:
        cols = X.indices[a:b]
        deviation = np.square(X.data[a:b].astype(np.float64) / peak[cols] - mean[cols])
        squares += np.bincount(cols, deviation if w is None else deviation * w, minlength=d)
    return mean, reduce(squares, "sum") / total_weight, n


def _offset_scales(std, constant, peak, offset, spread):
    """``peak * (std + offset * rho * spread)``, ``rho`` the median ``std / spread``.

    ``std`` and ``spread`` in units of ``peak`` (see :func:`standardization`).
    """
    if offset == 0 or constant.all():
        return np.where(constant, 1.0, std * peak)
    live = ~constant
    rho = np.median(std[live] / spread[live])
    return np.where(constant, 1.0, (std + offset * rho * spread) * peak)


def standardization(X, owner, weights=None, reduce=None, offset=0.0):
    """Per-feature mean and scale of ``X``, in float64, without overflow.

    Each column is divided by its largest magnitude before the two-pass
    mean and variance, so any finite column gives finite statistics. A
    feature is constant (scale 1) when its variance is within the rounding
    error bound of its computation, ``var <= n eps var + (n |mean| eps)^2``
    (the bound scikit-learn's StandardScaler uses): a relative threshold, so
    a tiny but real spread (std 1e-13 around 0) is kept.

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (n_samples, n_features)
        Finite training data (float32 or float64). A sparse matrix is never
        densified: its statistics come from its stored entries (canonical
        CSR, see :func:`as_csr`).
    owner : str
        Estimator name for error messages.
    weights : ndarray of shape (n_samples,) or None, default=None
        Sample weights (frequencies): the weighted mean and variance.
    reduce : callable or None, default=None
        ``reduce(values, op) -> ndarray``, ``op`` "sum" or "max": the
        elementwise sum or maximum of float64 ``values`` over the shards of
        a distributed fit, each holding part of the rows. The statistics are
        then those of the union of the shards (three reductions: the
        columns' extremes, the sums and weights for the mean, the squared
        deviations). None for the rows of ``X`` alone.
    offset : float, default=0.0
        With ``offset > 0``, the scale of a non-constant feature ``j`` is
        ``std_j + offset * rho * range_j``: its standard deviation plus a
        share of its range (``max - min`` over the rows), ``rho`` being the
        median ratio ``std_k / range_k`` over the non-constant features.
        Every scale stays proportional to its
        feature's units, and a feature whose spread is small for its range
        (near-constant but for a few extreme values) is not magnified far
        beyond the others. 0 gives the standard deviations. Constant
        features keep scale 1 either way.

    Returns
    -------
    shift, scale : ndarray of shape (n_features,), float64
    """
    reduce = _local if reduce is None else reduce
    low, high = _column_bounds(X, reduce)
    peak = np.maximum(np.abs(low), np.abs(high))
    peak[peak == 0] = 1.0
    spread = high / peak - low / peak  # the range in units of peak: no overflow
    if sp.issparse(X):
        mean, var, n = _sparse_standardization(X, peak, weights, reduce)
        constant = var <= n * _EPS * var + np.square(n * mean * _EPS)
        return mean * peak, _offset_scales(np.sqrt(var), constant, peak, offset, spread)
    n, d = X.shape
    total = np.zeros(d)
    w = None if weights is None else weights[:, None]
    total_weight = n if weights is None else weights.sum()
    for a, b in iter_chunks(n, d):
        chunk = np.asarray(X[a:b], dtype=np.float64) / peak
        total += chunk.sum(0) if w is None else (chunk * w[a:b]).sum(0)
    sums = reduce(np.concatenate([total, [total_weight, n]]), "sum")
    total, (total_weight, n) = sums[:d], sums[d:]
    mean = total / total_weight
    squares = np.zeros(d)
    for a, b in iter_chunks(X.shape[0], d):
        chunk = np.square(np.asarray(X[a:b], dtype=np.float64) / peak - mean)
        squares += chunk.sum(0) if w is None else (chunk * w[a:b]).sum(0)
    var = reduce(squares, "sum") / total_weight
    constant = var <= n * _EPS * var + np.square(n * mean * _EPS)
    return mean * peak, _offset_scales(np.sqrt(var), constant, peak, offset, spread)


def _check_float32_range(peak, owner):
    """Raise ValueError when a feature's largest magnitude ``peak`` exceeds float32's range."""
    if peak.max() > _FLOAT32_MAX:
        col = int(np.argmax(peak))
        raise ValueError(
            f"Input X has values beyond float32's range (feature {col}: "
            f"{peak[col]:.4g}); {owner} trains in float32. Rescale X, or use "
            "standardize=True (features are then centred and scaled in float64 first)."
        )


def training_rows(X, shift=None, scale=None, *, owner):
    """The float32 rows the network trains on: ``X``, or ``(X - shift) / scale``.

    Standardizing happens in float64, before the cast to float32. Float32
    input without standardization is wrapped without a copy.

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (n_samples, n_features)
        Validated, finite data.
    shift, scale : ndarray of shape (n_features,) or None
        float64 statistics, or None for no standardization.
    owner : str
        Estimator name for error messages.

    Returns
    -------
    rows : torch.Tensor of shape (n_samples, n_features), float32, on the CPU, or SparseRows
        A sparse ``X`` gives a :class:`SparseRows` (densified batch by batch);
        its values are checked here all the same.

    Raises
    ------
    ValueError
        When a value does not fit in float32 (only possible without
        standardization, for float64 input).
    """
    if sp.issparse(X):
        _check_extremes(*_column_extremes(X), X.dtype, shift, scale, owner)
        return SparseRows(X, shift, scale)
    if isinstance(X, BlockReader):
        _check_extremes(*X.column_extremes(), X.dtype, shift, scale, owner)
        return BlockRows(X, shift, scale)
    if scale is None:
        for a, b in iter_chunks(*X.shape) if X.dtype == np.float64 else ():
            _check_float32_range(np.abs(X[a:b]).max(0), owner)
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


def with_weights(rows, column):
    """Training rows (a tensor or :class:`SparseRows`) with a sample-weight column appended.

    The weights then travel with the rows: batches, shuffling, streaming
    and validation carry them (see :mod:`skae._weights`).
    """
    if isinstance(rows, SparseRows):
        return rows.with_weights(column)
    return torch.cat([rows, column.to(rows.device)], 1)


def without_weights(rows):
    """``(rows, column)``: the inverse of :func:`with_weights`."""
    if isinstance(rows, SparseRows):
        return rows.with_weights(None), rows.weights
    return rows[:, :-1], rows[:, -1:]


def row_source(X, device, batch_size):
    """The row source for CPU rows ``X``: on the device if they fit, else streamed.

    :class:`SparseRows` and :class:`skae._blocks.BlockRows` are their own
    source, sending batches to ``device``.
    """
    if isinstance(X, (SparseRows, BlockRows)):
        return X.on(device)
    if stage_on_device(X.numel() * X.element_size(), device):
        return OnDevice(X.to(device))
    return Streamed(X, device, batch_size)


def _check_extremes(low, high, dtype, shift, scale, owner):
    """The errors of :func:`training_rows` for data known by its column extremes.

    For a CSR matrix or an out-of-core array. Centring and scaling are
    monotone in each column, and so is the cast to float32: a column's
    extremes reach beyond float32 exactly when one of its values does.
    """
    if scale is None and dtype != np.float64:
        return
    if scale is None:
        _check_float32_range(np.maximum(np.abs(low), np.abs(high)), owner)
        return
    with np.errstate(over="ignore"):
        bounds = np.stack([(low - shift) / scale, (high - shift) / scale]).astype(np.float32)
    finite = np.isfinite(bounds).all(0)
    if not finite.all():
        col = int(np.argmin(finite))
        raise ValueError(
            f"Input X: feature {col} lies beyond float32's range after centring and scaling "
            f"with the fitted statistics of {owner}; it cannot be trained on. Refit "
            "(warm_start=False) on data that includes such values, or rescale X."
        )


_SAME = object()  # "keep this attribute" in SparseRows._like


class SparseRows:
    """Training rows of a CSR matrix, densified and standardized a batch at a time.

    A row source (see the module's docstring) and the training rows at once:
    each ``take`` or ``slice`` densifies the rows it returns, centres and
    scales them in float64 (as :func:`training_rows` does for dense data),
    casts them to float32 and sends them to the device. The matrix itself
    is never densified; its float32 rows exist one batch at a time.

    Parameters
    ----------
    X : CSR matrix or array of shape (n_samples, n_features)
        Validated, finite data (float32 or float64).
    shift, scale : ndarray of shape (n_features,) or None
        float64 statistics, or None for no standardization.
    device : torch.device or str, default="cpu"
        Where batches are sent.
    n_cols : int or None, default=None
        Leading columns :meth:`aminmax` covers (a paired row's inputs); None
        for all.
    weights : torch.Tensor of shape (n_samples, 1) or None, default=None
        A sample-weight column appended to every batch (see
        :func:`with_weights`).
    """

    dtype = torch.float32
    index_device = torch.device("cpu")

    def __init__(self, X, shift=None, scale=None, device="cpu", n_cols=None, weights=None):
        self.X, self.shift, self.scale = X, shift, scale
        self.device = torch.device(device)
        self.n_cols, self.weights = n_cols, weights
        self.n_rows = X.shape[0]
        self.shape = X.shape

    def _rows(self, part, weights):
        x = part.toarray()  # a new array: standardized in place
        if self.scale is not None:  # finite in float32: checked by training_rows
            x = x.astype(np.float64, copy=False)
            x -= self.shift
            x /= self.scale
        rows = torch.from_numpy(x.astype(np.float32, copy=False))
        return (rows if weights is None else torch.cat([rows, weights], 1)).to(self.device)

    def take(self, rows):
        """Rows ``X[rows]``, dense and standardized, on the device; ``rows`` on the CPU."""
        weights = None if self.weights is None else self.weights.index_select(0, rows)
        return self._rows(self.X[rows.numpy()], weights)

    def slice(self, start, stop):
        """Rows ``X[start:stop]``, dense and standardized, on the device."""
        weights = None if self.weights is None else self.weights[start:stop]
        return self._rows(self.X[start:stop], weights)

    def _like(self, X=None, device=None, n_cols=_SAME, weights=_SAME):
        return SparseRows(self.X if X is None else X, self.shift, self.scale,
                          self.device if device is None else device,
                          self.n_cols if n_cols is _SAME else n_cols,
                          self.weights if weights is _SAME else weights)

    def on(self, device):
        """The same rows, sent to ``device`` (the matrix is shared, not copied)."""
        return self._like(device=device)

    def subset(self, index):
        """The rows ``index`` (a CPU tensor) as a new source: a copy of those rows only."""
        weights = None if self.weights is None else self.weights.index_select(0, index)
        return self._like(X=self.X[index.numpy()], weights=weights)

    def inputs(self, n_inputs):
        """The same rows, with :meth:`aminmax` over the first ``n_inputs`` columns."""
        return self._like(n_cols=n_inputs)

    def with_weights(self, column):
        """The same rows with the weight column ``column`` appended (None: without)."""
        return self._like(weights=column)

    def aminmax(self):
        """Per-column ``(min, max)`` of the float32 training rows, as ``torch.aminmax(rows, dim=0)``.

        From the matrix's column extremes: standardizing and the float32
        cast are monotone, so they map extremes to extremes exactly.
        """
        cols = slice(None, self.n_cols)
        low, high = (v[cols] for v in _column_extremes(self.X))
        if self.scale is not None:
            shift, scale = self.shift[cols], self.scale[cols]
            low, high = (low - shift) / scale, (high - shift) / scale
        return tuple(torch.from_numpy(v.astype(np.float32)) for v in (low, high))


def column_range(rows):
    """Per-column ``(min, max)`` of training rows: a tensor, :class:`SparseRows` or ``BlockRows``."""
    if isinstance(rows, (SparseRows, BlockRows)):
        return rows.aminmax()
    return torch.aminmax(rows, dim=0)


def join_pairs(X, Y):
    """Paired training rows: each row's inputs ``X`` followed by its targets ``Y`` (dense).

    A sparse ``X`` gives a CSR matrix (``Y``'s nonzeros become stored entries).
    """
    if sp.issparse(X):
        return sp.hstack([X, sp.csr_matrix(Y)], format="csr")
    return np.hstack([X, Y])
