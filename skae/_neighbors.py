"""Nearest-neighbour distances in the detector's whitened space (``n_neighbors``).

With ``code_distance="add"`` the detector's anomaly score is the squared
length of one vector per sample, its *embedding*: the whitened residual
(``(e - residual_mean_) @ residual_whitening_``, or with the spherical
residual ``e`` over the square root of its usual size) next to the
whitened code times ``sqrt(code_weight)``. That score is the squared
distance of the embedding to the origin, where the Gaussian model puts
the training samples' centre. With ``n_neighbors=k`` the detector scores
by the squared distance to the ``k``-th nearest training embedding
instead: a density estimate without the Gaussian's single centre.

Sample weights count as frequencies: the ``k``-th nearest neighbour is the
nearest reference row at which the cumulated weight of the rows nearest
first reaches ``k``.
"""

import numpy as np

#: Entries of the distance matrix between query and reference rows held at
#: once (32 MiB in float64); the query rows are taken in blocks to match.
BLOCK_ELEMENTS = 1 << 22

#: Relative slack with which a cumulated weight "reaches" ``k`` (sums of
#: fractional weights are rounded).
WEIGHT_SLACK = 1e-12


def block_rows(n_reference, width):
    """Query rows per block: a block's distances (or embeddings) fit ``BLOCK_ELEMENTS``."""
    return max(1, BLOCK_ELEMENTS // max(1, n_reference, width))


def candidates(weights, n_neighbors, leave_out=True):
    """How many nearest rows are sure to hold the ``n_neighbors``-th nearest.

    The smallest ``m`` whose ``m`` lightest reference weights sum to
    ``n_neighbors`` (``n_neighbors + 1`` with ``leave_out``) at least, all
    the rows when they never do: the ``m`` nearest rows of any query then
    weigh ``n_neighbors``, with ``leave_out`` even after the query's own
    row gives up one unit of its weight.
    """
    lightest = np.cumsum(np.sort(weights))
    need = (n_neighbors + leave_out) * (1.0 - WEIGHT_SLACK)
    return int(min(np.searchsorted(lightest, need) + 1, len(weights)))


def kth_distances(queries, reference, weights, n_neighbors, own=None):
    """Squared distance of every query row to its ``n_neighbors``-th nearest reference row.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, width), float64
    reference : ndarray of shape (n_reference, width), float64
        Finite rows.
    weights : ndarray of shape (n_reference,) or None
        Positive weights of the reference rows, as frequencies; None: all 1.
    n_neighbors : int
    own : ndarray of shape (n_queries,) of int or None, default=None
        For each query, the index of its own row in ``reference`` (-1 for
        none), which gives up one unit of its weight (all of it when it
        weighs less): leave-one-out distances of the training rows.

    Returns
    -------
    distances : ndarray of shape (n_queries,), float64
        +inf for a query that is not finite (or whose distance overflows),
        and where the reference, less the left-out unit, weighs less than
        ``n_neighbors``.
    """
    n_reference = reference.shape[0]
    if weights is not None:
        m = candidates(weights, n_neighbors, own is not None)
    ref_norms = np.square(reference).sum(1)
    out = np.empty(queries.shape[0])
    step = block_rows(n_reference, queries.shape[1])
    for a in range(0, queries.shape[0], step):
        q = queries[a:a + step]
        with np.errstate(over="ignore", invalid="ignore"):
            d = np.square(q).sum(1)[:, None] + ref_norms[None, :] - 2.0 * (q @ reference.T)
            d = np.maximum(d, 0.0)  # rounding below 0 for (near) duplicates
        bad = ~np.isfinite(d).all(1)
        d[bad] = np.inf
        if weights is None:  # every row weighs 1: a query's own row is left out entirely
            if own is not None:
                mine = own[a:a + step]
                has = np.flatnonzero(mine >= 0)
                d[has, mine[has]] = np.inf
            if n_neighbors > n_reference - (own is not None):
                out[a:a + step] = np.inf
            elif n_neighbors == 1:
                out[a:a + step] = d.min(1)
            else:
                out[a:a + step] = np.partition(d, n_neighbors - 1, axis=1)[:, n_neighbors - 1]
            continue
        rows = np.arange(d.shape[0])[:, None]
        nearest = np.argpartition(d, m - 1, axis=1)[:, :m] if m < n_reference else (
            np.broadcast_to(np.arange(n_reference), d.shape))
        near = d[rows, nearest]
        order = np.argsort(near, axis=1, kind="stable")
        nearest, near = nearest[rows, order], near[rows, order]
        w = weights[nearest]
        if own is not None:
            mine = own[a:a + step]
            is_own = nearest == mine[:, None]
            w = np.where(is_own, np.maximum(w - 1.0, 0.0), w)
        reached = np.cumsum(w, axis=1) >= n_neighbors * (1.0 - WEIGHT_SLACK)
        first = reached.argmax(1)
        out[a:a + step] = np.where(reached[np.arange(len(first)), first],
                                   near[np.arange(len(first)), first], np.inf)
    return out
