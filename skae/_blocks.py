"""Out-of-core input: Dask arrays and memory-mapped arrays, read a block of rows at a time.

A fit on such an array never holds the whole of it in memory: a
:class:`BlockReader` reads blocks of rows (a Dask array's row chunks, or
fixed-size slices of a memory-mapped file) and serves row ranges from the
last few blocks it read; :class:`BlockRows` is the training row source over
it (see :mod:`skae._data`), which standardizes a block when it is first read
and shuffles within windows of blocks (see :meth:`BlockRows.order`).

Dask is never imported here: an array is recognized as a Dask array only
when ``dask.array`` has already been imported (as it must have been, for
the array to exist).
"""

import mmap
import sys
from collections import OrderedDict

import numpy as np
import torch

#: Bytes per block of a memory-mapped array.
MEMMAP_BLOCK_BYTES = 32 << 20

#: Bytes of float32 training rows a shuffle window holds (see BlockRows.order).
WINDOW_BYTES = 256 << 20


def is_dask_array(X):
    """Whether ``X`` is a ``dask.array.Array`` (without importing Dask)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(X, module.Array)


def is_out_of_core(X):
    """Whether ``fit`` reads ``X`` block by block: a Dask array, or a 2-D ``numpy.memmap``."""
    if is_dask_array(X):
        return True
    return isinstance(X, np.memmap) and X.ndim == 2 and getattr(X, "_mmap", None) is not None


def _float_dtype(dtype, owner):
    """The dtype rows are read in: float32 stays, other numbers become float64."""
    dtype = np.dtype(dtype)
    if dtype == np.float32 or dtype == np.float64:
        return dtype
    if dtype.kind in "biuf":
        return np.dtype(np.float64)
    raise ValueError(f"{owner} needs numeric input; got a Dask or memory-mapped array of dtype "
                     f"{dtype}.")


class BlockReader:
    """Rows of an out-of-core 2-D array, read one block at a time.

    Quacks like the validated arrays the rest of skae reads row ranges
    from: ``shape``, ``ndim``, ``dtype``, ``size`` and ``X[start:stop]``
    (an ndarray). A row range is served from the blocks it overlaps; the
    last ``cache_blocks`` blocks read are kept, so passes over the rows in
    order read each block once.

    Parameters
    ----------
    X : dask.array.Array or numpy.memmap of shape (n_samples, n_features)
    owner : str
        Estimator name for error messages.
    cache_blocks : int, default=2
    """

    ndim = 2

    def __init__(self, X, owner, cache_blocks=2):
        if X.ndim != 2:
            raise ValueError(f"Expected a 2D array, got a {X.ndim}D array instead "
                             f"({owner} reads Dask and memory-mapped arrays as rows).")
        self.owner = owner
        self.dtype = _float_dtype(X.dtype, owner)
        self.dask = is_dask_array(X)
        if self.dask:
            if any(np.isnan(c) for c in X.chunks[0]) or np.isnan(X.shape[1]):
                raise ValueError(
                    f"{owner} needs the Dask array's chunk sizes; call "
                    "X.compute_chunk_sizes() (or build X with known chunks) first."
                )
            if X.numblocks[1] > 1:  # one block spans all columns
                X = X.rechunk({1: -1})
            sizes = X.chunks[0]
        else:
            rows = max(1, MEMMAP_BLOCK_BYTES // max(1, X.shape[1] * X.dtype.itemsize))
            sizes = [rows] * (X.shape[0] // rows) + ([X.shape[0] % rows] if X.shape[0] % rows else [])
        self.X = X
        self.shape = (int(X.shape[0]), int(X.shape[1]))
        self.size = self.shape[0] * self.shape[1]
        self.bounds = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self.n_blocks = len(sizes)
        self._cache, self._cache_blocks = OrderedDict(), cache_blocks
        self._low = self._high = None

    def block_range(self, i):
        """Rows ``(start, stop)`` of block ``i``."""
        return int(self.bounds[i]), int(self.bounds[i + 1])

    def read_block(self, i):
        """Block ``i`` as a new ndarray in ``self.dtype`` (not cached)."""
        start, stop = self.block_range(i)
        if self.dask:
            block = np.asarray(self.X.blocks[i, 0].compute())
        else:
            block = np.array(self.X[start:stop])  # a copy; then release the mapped pages
            self.X._mmap.madvise(mmap.MADV_DONTNEED)
        return block.astype(self.dtype, copy=False)

    def block(self, i):
        """Block ``i``, from the cache when it was read recently."""
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        block = self.read_block(i)
        self._cache[i] = block
        while len(self._cache) > self._cache_blocks:
            self._cache.popitem(last=False)
        return block

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("BlockReader only serves contiguous row ranges X[start:stop].")
        start, stop, _ = key.indices(self.shape[0])
        stop = max(start, stop)
        first = int(np.searchsorted(self.bounds, start, side="right")) - 1
        parts = []
        i = first
        while i < self.n_blocks and self.bounds[i] < stop:
            a, b = self.block_range(i)
            parts.append(self.block(i)[max(start, a) - a:min(stop, b) - a])
            i += 1
        if not parts:
            return np.empty((0, self.shape[1]), dtype=self.dtype)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def check(self):
        """Read every block once: raise ValueError naming the first non-finite one.

        Also records each column's minimum and maximum (see :meth:`min`,
        :meth:`max`, :meth:`column_extremes`).
        """
        low = np.full(self.shape[1], np.inf)
        high = np.full(self.shape[1], -np.inf)
        for i in range(self.n_blocks):
            block = self.block(i)
            if not np.isfinite(block).all():
                a, b = self.block_range(i)
                what = "NaN" if np.isnan(block).any() else (
                    f"infinity or a value too large for dtype('{block.dtype}')")
                raise ValueError(
                    f"Input X contains {what} in block {i} of {self.n_blocks} (rows {a} to "
                    f"{b - 1}); {self.owner} needs finite values."
                )
            if block.shape[0]:
                low = np.minimum(low, block.min(0))
                high = np.maximum(high, block.max(0))
        self._low, self._high = low, high
        return self

    def column_extremes(self):
        """Per-column ``(min, max)`` in float64, from :meth:`check`."""
        return self._low, self._high

    def min(self):
        """Smallest value (after :meth:`check`)."""
        return float(self._low.min())

    def max(self):
        """Largest value (after :meth:`check`)."""
        return float(self._high.max())


class BlockRows:
    """Training rows of a :class:`BlockReader`, float32 and standardized a block at a time.

    A row source (see :mod:`skae._data`). Each block is read, centred and
    scaled in float64, cast to float32 and kept while it is among the
    ``window`` + 1 most recently used blocks, so memory holds about one
    shuffle window of rows, whatever the size of the array.

    Parameters
    ----------
    reader : BlockReader
        Checked (see :meth:`BlockReader.check`).
    shift, scale : ndarray of shape (n_features,) or None
        float64 statistics, or None for no standardization.
    device : torch.device or str, default="cpu"
        Where batches are sent.
    n_cols : int or None, default=None
        Leading columns :meth:`aminmax` covers; None for all.
    """

    dtype = torch.float32
    index_device = torch.device("cpu")

    def __init__(self, reader, shift=None, scale=None, device="cpu", n_cols=None):
        self.reader, self.shift, self.scale = reader, shift, scale
        self.device = torch.device(device)
        self.n_cols = n_cols
        self.n_rows = reader.shape[0]
        self.shape = reader.shape
        block_bytes = 4 * reader.shape[1] * max(1, int(np.diff(reader.bounds).max(initial=1)))
        self.window = max(1, WINDOW_BYTES // block_bytes)  # blocks per shuffle window
        self._cache = OrderedDict()

    @property
    def n_windows(self):
        """Number of shuffle windows an epoch is split into."""
        return -(-self.reader.n_blocks // self.window)

    @property
    def sequential(self):
        """Whether row lookups should come in order (the rows span several windows)."""
        return self.n_windows > 1

    def _block(self, i):
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        x = self.reader.read_block(i)
        if self.scale is not None:  # finite in float32: checked when the statistics were made
            x = (x.astype(np.float64, copy=False) - self.shift) / self.scale
        rows = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        self._cache[i] = rows
        while len(self._cache) > self.window + 1:
            self._cache.popitem(last=False)
        return rows

    def take(self, rows):
        """Rows ``rows`` (a CPU index tensor), on the device."""
        rows = rows.numpy() if torch.is_tensor(rows) else np.asarray(rows)
        blocks = np.searchsorted(self.reader.bounds, rows, side="right") - 1
        out = torch.empty(len(rows), self.shape[1], dtype=torch.float32)
        needed = np.unique(blocks)
        # blocks held first: a batch that starts the next window evicts only
        # blocks of the window it ends, once they have served it
        needed = sorted(needed, key=lambda i: int(i) not in self._cache)
        for i in needed:
            where = np.flatnonzero(blocks == i)
            local = torch.from_numpy(rows[where] - self.reader.bounds[i])
            out[torch.from_numpy(where)] = self._block(int(i)).index_select(0, local)
        return out.to(self.device)

    def slice(self, start, stop):
        """Rows ``start:stop``, on the device."""
        return self.take(torch.arange(start, stop))

    def order(self, index, generator, shuffle):
        """This epoch's order of the training rows ``index`` (None: all), or None for ``0..n``.

        When the rows fit in one window, the order is a uniform random
        permutation, drawn exactly as for in-memory data, so a fit equals
        one on the same rows in memory. Otherwise the blocks are shuffled,
        grouped into windows of ``window`` blocks, and the rows of each
        window shuffled: every row is visited once per epoch, and only one
        window of rows is held at a time. Without shuffling, rows come in
        order.
        """
        if not shuffle:
            return index
        if self.n_windows == 1:
            n = self.n_rows if index is None else index.shape[0]
            perm = torch.randperm(n, generator=generator)
            return perm if index is None else index[perm]
        keep = None
        if index is not None:
            keep = torch.zeros(self.n_rows, dtype=torch.bool)
            keep[index] = True
        blocks = torch.randperm(self.reader.n_blocks, generator=generator)
        bounds = torch.from_numpy(self.reader.bounds)
        parts = []
        for w in range(0, len(blocks), self.window):
            rows = torch.cat([torch.arange(int(bounds[b]), int(bounds[b + 1]))
                              for b in blocks[w:w + self.window]])
            if keep is not None:
                rows = rows[keep[rows]]
            parts.append(rows[torch.randperm(rows.shape[0], generator=generator)])
        return torch.cat(parts)

    def on(self, device):
        """The same rows, sent to ``device``."""
        return BlockRows(self.reader, self.shift, self.scale, device, self.n_cols)

    def inputs(self, n_inputs):
        """The same rows, with :meth:`aminmax` over the first ``n_inputs`` columns."""
        return BlockRows(self.reader, self.shift, self.scale, self.device, n_inputs)

    def aminmax(self):
        """Per-column ``(min, max)`` of the float32 training rows (as ``torch.aminmax(dim=0)``).

        From the reader's column extremes: standardizing and the cast to
        float32 are monotone, so they map extremes to extremes exactly.
        """
        cols = slice(None, self.n_cols)
        low, high = (v[cols] for v in self.reader.column_extremes())
        if self.scale is not None:
            shift, scale = self.shift[cols], self.scale[cols]
            low, high = (low - shift) / scale, (high - shift) / scale
        return tuple(torch.from_numpy(v.astype(np.float32)) for v in (low, high))


def _apply_to_block(block, model, method, block_info=None):
    """``model.method(block)``; a ValueError names the block it comes from."""
    try:
        return getattr(model, method)(block)
    except ValueError as error:
        where = block_info[0] if block_info else None
        if where is None:
            raise
        i, (a, b) = where["chunk-location"][0], where["array-location"][0]
        raise ValueError(
            f"{str(error).rstrip('.')}: in block {i} of {where['num-chunks'][0]} of the Dask "
            f"array X (rows {a} to {b - 1})."
        ) from error


class LazyRowsMixin:
    """``_lazy``: an estimator's method over a Dask array, for its inference methods."""

    def _lazy(self, method, X, n_out=None, n_in=None, dtype=None):
        """``method`` over a Dask array ``X``: a lazy Dask array computed block by block.

        See :func:`map_row_blocks`. ``n_in`` defaults to ``n_features_in_``;
        ``dtype`` to float32 for float32 ``X``, else float64.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        if dtype is None:
            dtype = np.float32 if X.dtype == np.float32 else np.float64
        n_in = self.n_features_in_ if n_in is None else n_in
        return map_row_blocks(self, method, X, n_in, n_out, dtype)


def map_row_blocks(estimator, method, X, n_in, n_out, dtype):
    """``estimator.method`` over a Dask array ``X``, as a lazy Dask array computed blockwise.

    The estimator is copied now (later changes to it do not affect the
    result) and enters the graph as ONE task that every block's task
    depends on: a worker receives the model once, however many blocks it
    computes.

    Parameters
    ----------
    estimator : fitted skae estimator
    method : str
        Name of the method applied to each block of rows; it returns an
        ndarray.
    X : dask.array.Array of shape (n_samples, n_in)
    n_in : int
        Columns ``X`` must have.
    n_out : int or None
        Columns of the result; None for one value per row.
    dtype : numpy dtype
        The result's dtype.

    Returns
    -------
    result : dask.array.Array of shape (n_samples, n_out) or (n_samples,)
    """
    import copy
    import uuid

    import dask

    owner = type(estimator).__name__
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D array, got a {X.ndim}D Dask array instead.")
    if X.shape[1] != n_in:
        raise ValueError(
            f"X has {X.shape[1]} features, but {owner}.{method.lstrip('_')} is expecting "
            f"{n_in} features as input."
        )
    if X.numblocks[1] > 1:  # each block of rows whole
        X = X.rechunk({1: -1})
    model = dask.delayed(copy.deepcopy(estimator), name=f"{owner}-model-{uuid.uuid4().hex}")
    dtype, token = np.dtype(dtype), f"{owner}.{method.lstrip('_')}"
    if n_out is None:
        return X.map_blocks(_apply_to_block, model, method, drop_axis=1, dtype=dtype,
                            meta=np.empty((0,), dtype), token=token)
    return X.map_blocks(_apply_to_block, model, method, chunks=(X.chunks[0], (n_out,)),
                        dtype=dtype, meta=np.empty((0, 0), dtype), token=token)
