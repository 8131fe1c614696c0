"""Sample weights: validation, the training rows' canonical form, weighted quantiles.

A sample weight is a frequency: a row of weight ``k`` trains exactly as
``k`` copies of it would, and a row of weight 0 as if it were absent. To make
that hold exactly, not only on average, the training rows are brought into a
canonical form before anything else sees them (:func:`canonical_rows`):
rows of weight 0 are dropped and equal rows are merged into one row whose
weight is the sum of theirs. When the weights that result are all equal they
are dropped (a constant weight changes nothing) and the rows keep their
order; otherwise the distinct rows are ordered by their content. Two
training sets that describe the same weighted rows -- repeated or weighted,
and then in any order -- give the same float32 rows and weights, and the
same fit. With ``shuffle=False`` the rows keep their order (batches follow
it): zero-weight rows are dropped and nothing is merged.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import _check_sample_weight

from ._data import iter_chunks

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def check_sample_weight(sample_weight, X, owner):
    """Validated ``sample_weight`` as float64, or None when it is None.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,), float or None
        A scalar gives every sample that weight.
    X : array-like of shape (n_samples, n_features)
        The validated training data.
    owner : str
        Estimator name for error messages.

    Returns
    -------
    weights : ndarray of shape (n_samples,) or None

    Raises
    ------
    ValueError
        For a weight that is negative or not finite, a wrong shape, or
        weights that are all zero (scikit-learn's messages).
    """
    if sample_weight is None:
        return None
    weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if not np.isfinite(weights).all():
        raise ValueError(f"sample_weight must be finite; {owner} got NaN or infinite weights.")
    return weights


def _mix(bits):
    """splitmix64's finalizer, in place on a uint64 array (wrapping arithmetic)."""
    bits ^= bits >> _S30
    bits *= _MIX1
    bits ^= bits >> _S27
    bits *= _MIX2
    bits ^= bits >> _S31
    return bits


def _column_keys(n_columns):
    return np.random.default_rng(0x5EED).integers(0, np.iinfo(np.int64).max, n_columns,
                                                   dtype=np.uint64)


def _element_hashes(values, keys):
    """Hash of each element: 0 for a zero, else a mix of its float64 bits and its column key."""
    values = np.ascontiguousarray(values, dtype=np.float64) + 0.0  # -0.0 -> 0.0
    hashes = _mix(values.view(np.uint64) ^ keys)
    hashes[values == 0] = 0
    return hashes


def row_hashes(blocks):
    """A 64-bit hash of each row of the column blocks ``blocks`` (dense or CSR).

    Zeros contribute nothing, so a sparse row and its dense form hash alike.
    Equal rows have equal hashes; unequal rows almost never do (and are
    compared before being merged).
    """
    n = blocks[0].shape[0]
    keys = _column_keys(sum(b.shape[1] for b in blocks))
    total = np.zeros(n, dtype=np.uint64)
    start = 0
    for block in blocks:
        d = block.shape[1]
        cols = keys[start:start + d]
        start += d
        if sp.issparse(block):
            block = block.tocsr()
            h = _element_hashes(block.data, cols[block.indices])
            sums = np.zeros(h.shape[0] + 1, dtype=np.uint64)
            np.cumsum(h, dtype=np.uint64, out=sums[1:])
            total += sums[block.indptr[1:]] - sums[block.indptr[:-1]]
            continue
        for a, b in iter_chunks(n, d):
            total[a:b] += _element_hashes(block[a:b], cols).sum(1, dtype=np.uint64)
    return total


def _rows(block, index):
    """Rows ``index`` of ``block``, dense float64."""
    rows = block[index]
    return np.asarray(rows.toarray() if sp.issparse(rows) else rows, dtype=np.float64) + 0.0


def _equal_rows(blocks, first, other):
    """Whether rows ``first[i]`` and ``other[i]`` are equal in every block."""
    equal = np.ones(first.shape[0], dtype=bool)
    for a, b in iter_chunks(first.shape[0], sum(block.shape[1] for block in blocks)):
        for block in blocks:
            equal[a:b] &= (_rows(block, first[a:b]) == _rows(block, other[a:b])).all(1)
    return equal


def _split_collisions(blocks, members):
    """Split one group of rows with equal hashes into groups of equal rows (ordered by content)."""
    groups = {}
    for i in members:
        key = b"".join(_rows(block, [i]).tobytes() for block in blocks)
        groups.setdefault(key, []).append(i)
    return [np.asarray(groups[k]) for k in sorted(groups)]


def canonical_rows(blocks, weights, shuffle=True):
    """Which rows to train on, and their weights: the canonical form of weighted rows.

    Parameters
    ----------
    blocks : list of array-like of shape (n_samples, n_i)
        The columns of the training rows (inputs, and targets for paired
        data), dense or sparse.
    weights : ndarray of shape (n_samples,) or None
        Validated sample weights; None for unit weights.
    shuffle : bool, default=True
        False keeps the rows' order: zero-weight rows are dropped, nothing
        else changes.

    Returns
    -------
    index : ndarray of int or None
        Rows to train on, in training order (ascending when the weights are
        equal, else by content); None for all rows as they are.
    weights : ndarray of float64 or None
        Their weights; None when all are equal (a constant weight changes
        nothing, so uniform weights train exactly as no weights).
    """
    n = blocks[0].shape[0]
    if not shuffle:
        index = None if weights is None or weights.all() else np.flatnonzero(weights)
        kept = weights if index is None or weights is None else weights[index]
        return index, _unless_uniform(kept)
    hashes = row_hashes(blocks)
    order = np.argsort(hashes, kind="stable")
    sorted_hashes = hashes[order]
    starts = np.flatnonzero(np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]])
    sizes = np.diff(np.r_[starts, n])
    groups = np.repeat(np.arange(starts.shape[0]), sizes)  # group of each position in `order`
    shared = sizes[groups] > 1
    first = order[starts][groups]
    if shared.any() and not _equal_rows(blocks, first[shared], order[shared]).all():
        members = [order[s:s + k] for s, k in zip(starts, sizes)]
        members = [part for m in members
                   for part in (_split_collisions(blocks, m) if m.shape[0] > 1 else [m])]
    else:
        members = None
    w = np.ones(n) if weights is None else weights
    if members is None:
        index = order[starts]
        totals = np.add.reduceat(w[order], starts)
    else:
        index = np.array([m[0] for m in members])
        totals = np.array([w[m].sum() for m in members])
    kept = totals > 0
    index, totals = index[kept], totals[kept]
    if _unless_uniform(totals) is None:  # equal weights: the rows keep their order
        return (None if index.shape[0] == n else np.sort(index)), None
    return index, totals


def _unless_uniform(weights):
    if weights is None or weights.shape[0] == 0 or (weights == weights[0]).all():
        return None
    return weights


def weighted_quantile(values, weights, q):
    """Quantile ``q`` of ``values`` with frequency ``weights``, interpolated linearly.

    With integer weights this is ``numpy.quantile`` of the values repeated
    that many times (the default, linear method); with no weights, it is
    ``numpy.quantile`` itself.

    Parameters
    ----------
    values : ndarray of shape (n,)
    weights : ndarray of shape (n,) or None
    q : float
        In [0, 1].

    Returns
    -------
    quantile : float
    """
    if weights is None:
        return float(np.quantile(values, q))
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    ends = np.cumsum(weights)  # the values occupy positions [ends - w, ends) of the expanded data
    position = q * max(ends[-1] - 1.0, 0.0)
    below = np.floor(position)
    i = min(int(np.searchsorted(ends, below, side="right")), values.shape[0] - 1)
    j = min(int(np.searchsorted(ends, below + 1.0, side="right")), values.shape[0] - 1)
    low, high = values[i], values[j]
    return float(low + (position - below) * (high - low))
