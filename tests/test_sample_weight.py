"""Sample weights: a weight is a frequency, exactly.

A row of weight k trains as k copies of it; weight 0 as if it were absent;
the row order does not matter. These hold bit for bit, for every network
kind, with minibatches (see skae/_weights.py for how).
"""

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning

import skae._weights as weights_module
from skae import AutoencoderAnomalyDetector, AutoencoderRegressor, AutoencoderTransformer
from skae._params import AUTO_STD_OFFSET
from skae._objective import reconstruction_loss, trimmed_weights
from skae._weights import canonical_rows, row_hashes, weighted_quantile

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

CONV = dict(architecture="conv", image_shape=(4, 4, 1), conv_channels=(4,))

KINDS = {
    "mlp": lambda: AutoencoderTransformer(n_components=2, hidden_layer_sizes=(8,), batch_size=8,
                                          max_iter=4, random_state=0),
    "variational": lambda: AutoencoderTransformer(n_components=2, variational=True, batch_size=8,
                                                  max_iter=4, random_state=0),
    "conv": lambda: AutoencoderTransformer(n_components=2, batch_size=8, max_iter=4,
                                           random_state=0, **CONV),
    "denoising-sparse": lambda: AutoencoderTransformer(
        n_components=3, hidden_layer_sizes=(8,), noise="gaussian", noise_level=0.2,
        sparsity="kl", sparsity_weight=0.1, sparsity_layers=(0,), activation="sigmoid",
        batch_size=8, max_iter=4, random_state=0),
    "contractive": lambda: AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(6,), contractive_weight=0.1, batch_size=8,
        max_iter=4, random_state=0),
    "greedy": lambda: AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(8,), pretraining="greedy", batch_size=8,
        max_iter=3, random_state=0),
    "early-stopping": lambda: AutoencoderTransformer(
        n_components=2, early_stopping=True, validation_fraction=0.2, batch_size=8,
        max_iter=4, random_state=0),
    "detector": lambda: AutoencoderAnomalyDetector(
        n_components=2, contamination=0.1, trim_fraction=0.2, batch_size=8, max_iter=4,
        random_state=0),
    "relative-errors-detector": lambda: AutoencoderAnomalyDetector(
        n_components=2, contamination=0.1, trim_fraction=0.2, relative_errors=True,
        batch_size=8, max_iter=4, random_state=0),
    "code-distance-detector": lambda: AutoencoderAnomalyDetector(
        n_components=2, contamination=0.1, trim_fraction=0.2, code_distance="add",
        batch_size=8, max_iter=4, random_state=0),
    "neighbors-detector": lambda: AutoencoderAnomalyDetector(
        n_components=2, contamination=0.1, trim_fraction=0.2, n_neighbors=2,
        batch_size=8, max_iter=4, random_state=0),
    "variational-detector": lambda: AutoencoderAnomalyDetector(
        n_components=2, variational=True, trim_fraction=0.2, batch_size=8, max_iter=4,
        random_state=0),
}


def _data(n=30, d=16, seed=0):
    return np.random.RandomState(seed).rand(n, d)


def _outputs(est, X):
    if isinstance(est, AutoencoderRegressor):
        return [est.predict(X)]
    out = [est.reconstruct(X)]
    if isinstance(est, AutoencoderAnomalyDetector):
        out += [est.score_samples(X), est.decision_function(X), np.array([est.offset_])]
    else:
        out.append(est.transform(X))
    return out


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_weight_k_trains_as_k_copies(kind):
    X = _data()
    counts = np.random.RandomState(1).randint(0, 4, size=X.shape[0])
    perm = np.random.RandomState(2).permutation(X.shape[0])
    weighted = KINDS[kind]().fit(X[perm], sample_weight=counts[perm])
    repeated = KINDS[kind]().fit(np.repeat(X, counts, axis=0))
    for a, b in zip(_outputs(weighted, X), _outputs(repeated, X)):
        assert_array_equal(a, b)
    assert weighted.loss_curve_ == repeated.loss_curve_
    assert weighted.n_iter_ == repeated.n_iter_


def test_regressor_weights_and_copies():
    rng = np.random.RandomState(0)
    X = rng.rand(30, 6)
    y = np.c_[X.sum(1), X[:, 0] - X[:, 1]]
    counts = rng.randint(0, 4, size=30)
    make = lambda: AutoencoderRegressor(hidden_layer_sizes=(8,), batch_size=8, max_iter=4,  # noqa
                                        skip_connections=True, random_state=0)
    weighted = make().fit(X, y, sample_weight=counts)
    repeated = make().fit(np.repeat(X, counts, axis=0), np.repeat(y, counts, axis=0))
    assert_array_equal(weighted.predict(X), repeated.predict(X))


def test_weighted_rows_train_alike_in_any_order():
    X = _data()
    w = np.random.RandomState(3).rand(X.shape[0]) + 0.5
    perm = np.random.RandomState(3).permutation(X.shape[0])
    a = KINDS["mlp"]().fit(X, sample_weight=w)
    b = KINDS["mlp"]().fit(X[perm], sample_weight=w[perm])
    assert_array_equal(a.transform(X), b.transform(X))


def test_equal_weights_keep_the_row_order():
    """Rows repeated equally often train as the rows once, in their order."""
    X = _data()
    once = KINDS["mlp"]().fit(X)
    twice = KINDS["mlp"]().fit(np.vstack([X, X]))
    weighted = KINDS["mlp"]().fit(X, sample_weight=np.full(X.shape[0], 2.0))
    assert_array_equal(once.transform(X), twice.transform(X))
    assert_array_equal(once.transform(X), weighted.transform(X))
    index, w = canonical_rows([np.vstack([X, X])], None)
    assert_array_equal(index, np.arange(X.shape[0])) and w is None


def test_uniform_weights_are_no_weights():
    X = _data()
    a = KINDS["detector"]().fit(X)
    b = KINDS["detector"]().fit(X, sample_weight=np.full(X.shape[0], 2.5))
    assert_array_equal(a.score_samples(X), b.score_samples(X))
    assert a.offset_ == b.offset_


def test_weights_change_the_fit():
    """Weighting one cluster up makes it the better reconstructed one."""
    rng = np.random.RandomState(0)
    A = rng.normal(size=(40, 8)) @ rng.normal(size=(8, 8))
    B = rng.normal(size=(40, 8)) @ rng.normal(size=(8, 8)) + 3
    X = np.vstack([A, B])
    w = np.r_[np.full(40, 20.0), np.ones(40)]
    est = AutoencoderTransformer(n_components=2, max_iter=60, random_state=0)
    up = est.fit(X, sample_weight=w)
    err_up = ((up.reconstruct(A) - A) ** 2).mean() / ((up.reconstruct(B) - B) ** 2).mean()
    down = AutoencoderTransformer(n_components=2, max_iter=60, random_state=0).fit(
        X, sample_weight=w[::-1].copy())
    err_down = ((down.reconstruct(A) - A) ** 2).mean() / ((down.reconstruct(B) - B) ** 2).mean()
    assert err_up < err_down


def test_weighted_standardization_statistics():
    X = _data()
    w = np.random.RandomState(4).rand(X.shape[0]) * 3 + 0.1
    est = AutoencoderTransformer(n_components=2, max_iter=1, standardize=True,
                                 random_state=0).fit(X, sample_weight=w)
    shift, scale = est.module_.training_statistics()
    mean = np.average(X, axis=0, weights=w)
    np.testing.assert_allclose(shift, mean, rtol=1e-12)
    np.testing.assert_allclose(scale, np.sqrt(np.average((X - mean) ** 2, axis=0, weights=w)),
                               rtol=1e-12)


def test_detector_threshold_is_the_weighted_quantile():
    X = _data(n=60)
    w = np.random.RandomState(5).randint(1, 5, size=60)
    det = AutoencoderAnomalyDetector(n_components=2, contamination=0.15, max_iter=3,
                                     random_state=0).fit(X, sample_weight=w)
    scores = np.repeat(det.score_samples(X), w)
    assert det.offset_ == pytest.approx(np.quantile(scores, 0.15), rel=1e-12)
    auto = AutoencoderAnomalyDetector(n_components=2, contamination="auto", max_iter=3,
                                      random_state=0).fit(X, sample_weight=w)
    log_err = np.log(-np.repeat(auto.score_samples(X), w))
    med = np.median(log_err)
    expected = -np.exp(med + 3 * 1.4826 * np.median(np.abs(log_err - med)))
    assert auto.offset_ == pytest.approx(expected, rel=1e-9)


def test_partial_fit_takes_weights():
    X = _data()
    counts = np.random.RandomState(6).randint(0, 3, size=X.shape[0])
    a = AutoencoderTransformer(n_components=2, random_state=0)
    b = AutoencoderTransformer(n_components=2, random_state=0)
    for _ in range(2):
        a.partial_fit(X, sample_weight=counts)
        b.partial_fit(np.repeat(X, counts, axis=0))
    assert_array_equal(a.transform(X), b.transform(X))


def test_shuffle_false_keeps_order_and_drops_zero_weights():
    X = _data(n=6, d=2)
    index, w = canonical_rows([X], np.array([1.0, 0, 2, 1, 0, 3]), shuffle=False)
    assert_array_equal(index, [0, 2, 3, 5])
    assert_array_equal(w, [1, 2, 1, 3])
    assert canonical_rows([X], None, shuffle=False) == (None, None)


def test_canonical_rows_merge_duplicates_and_order_by_content():
    X = np.array([[1.0, 0], [2, 2], [1, 0], [-0.0, 3], [0, 3]])
    index, w = canonical_rows([X], None)
    assert sorted(map(tuple, X[index])) == [(0, 3), (1, 0), (2, 2)]
    assert_array_equal(w, [{(1.0, 0.0): 2, (2.0, 2.0): 1, (0.0, 3.0): 2}[tuple(r)]
                           for r in X[index] + 0.0])
    other, w2 = canonical_rows([X[::-1]], None)
    assert_array_equal(X[::-1][other], X[index])
    assert_array_equal(w2, w)
    # paired data: rows equal in X but not in Y stay apart
    index, w = canonical_rows([X, np.arange(5.0)[:, None]], None)
    assert index is None and w is None


def test_hash_collisions_are_told_apart(monkeypatch):
    """Rows that share a hash but differ are not merged (the hash is only a shortcut)."""
    monkeypatch.setattr(weights_module, "row_hashes", lambda blocks: np.zeros(blocks[0].shape[0],
                                                                               dtype=np.uint64))
    X = np.array([[3.0, 1], [1, 2], [3, 1], [0, 5]])
    index, w = canonical_rows([X], np.array([1.0, 1, 2, 1]))
    assert sorted(map(tuple, X[index])) == [(0, 5), (1, 2), (3, 1)]
    assert dict(zip(map(tuple, X[index]), w)) == {(0.0, 5.0): 1, (1.0, 2.0): 1, (3.0, 1.0): 3}


def test_row_hashes_of_sparse_rows_equal_dense():
    sp = pytest.importorskip("scipy.sparse")
    X = _data(n=20, d=7)
    X[X < 0.6] = 0
    assert_array_equal(row_hashes([X]), row_hashes([sp.csr_matrix(X)]))
    assert_array_equal(row_hashes([X]), row_hashes([sp.csc_matrix(X)]))
    assert len(set(row_hashes([X]).tolist())) == len({tuple(r) for r in X})


@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.93, 1.0])
def test_weighted_quantile_equals_the_repeated_quantile(q):
    rng = np.random.RandomState(7)
    values, w = rng.normal(size=25), rng.randint(1, 6, size=25)
    assert weighted_quantile(values, w.astype(float), q) == pytest.approx(
        np.quantile(np.repeat(values, w), q), rel=1e-12, abs=1e-12)
    assert weighted_quantile(values, None, q) == np.quantile(values, q)


def test_weighted_trimming_leaves_out_weight_not_rows():
    errors = torch.tensor([5.0, 1.0, 3.0, 9.0])
    w = torch.tensor([1.0, 2.0, 1.0, 3.0])
    # expanded: 1 1 3 5 9 9 9 (7 samples); trim 0.4 leaves out ceil(2.8) = 3: the three 9s
    kept = trimmed_weights(errors, 0.4, w)
    assert kept.tolist() == [1.0, 2.0, 1.0, 0.0]
    x = torch.zeros(4, 1)
    loss = reconstruction_loss(errors.sqrt().unsqueeze(1), x, "mse", trim=0.4, weights=w)
    assert float(loss) == pytest.approx((1 * 2 + 3 + 5) / 4)
    # unit weights: the unweighted trimmed mean
    unit = reconstruction_loss(errors.sqrt().unsqueeze(1), x, "mse", trim=0.4,
                               weights=torch.ones(4))
    assert float(unit) == pytest.approx(float(reconstruction_loss(
        errors.sqrt().unsqueeze(1), x, "mse", trim=0.4)))


@pytest.mark.parametrize("sample_weight, match", [
    (-np.ones(10), "Negative values in data passed to `sample_weight`"),
    (np.r_[np.nan, np.ones(9)], "sample_weight|NaN"),
    (np.ones(9), r"sample_weight.shape == \(9,\), expected \(10,\)"),
    (np.zeros(10), "Sample weights must contain at least one non-zero number"),
])
def test_bad_weights_raise_and_leave_the_estimator_as_it_was(sample_weight, match):
    X = _data(n=10, d=4)
    est = AutoencoderTransformer(n_components=2, max_iter=2, random_state=0).fit(X)
    before = est.transform(X)
    with pytest.raises(ValueError, match=match):
        est.fit(X, sample_weight=sample_weight)
    assert_array_equal(est.transform(X), before)


def test_fast_path_is_left_for_weighted_fits(monkeypatch):
    """Weighted losses train with autograd (the direct gradients are unweighted)."""
    import skae._fastpath as fastpath

    seen = []
    real = fastpath.covers
    monkeypatch.setattr(fastpath, "covers", lambda o, n, p: seen.append(o.weighted) or real(o, n, p))
    X = _data()
    with pytest.warns(ConvergenceWarning):
        AutoencoderTransformer(n_components=2, max_iter=1, random_state=0).fit(
            X, sample_weight=np.arange(30.0) + 1)
    assert seen == [True]
    assert not real(type("O", (), {"weighted": True})(), None, "float32")


@pytest.mark.parametrize("kind", ["detector", "greedy"])
def test_sparse_weighted_fits_equal_dense_ones(kind):
    """Weights reach the statistics and the batches of sparse rows too."""
    sp = pytest.importorskip("scipy.sparse")
    X = _data()
    X[X < 0.5] = 0
    w = np.random.RandomState(8).randint(0, 4, size=X.shape[0]).astype(float)
    dense = KINDS[kind]().set_params(standardize=True).fit(X, sample_weight=w)
    sparse = KINDS[kind]().set_params(standardize=True).fit(sp.csr_matrix(X), sample_weight=w)
    for a, b in zip(_outputs(dense, X), _outputs(sparse, X)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    shift, scale = sparse.module_.training_statistics()
    mean = np.average(X, axis=0, weights=w)
    np.testing.assert_allclose(shift, mean, rtol=1e-12)
    std = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=w))
    if kind == "detector":  # std_offset="auto": plus a share of the range of rows that count
        spread = np.ptp(X[w > 0], axis=0)
        std = std + AUTO_STD_OFFSET * np.median(std / spread) * spread
    np.testing.assert_allclose(scale, std, rtol=1e-12)


def test_validation_score_is_the_weighted_mean_error():
    """Early stopping scores held-out rows by their weighted mean error."""
    X = _data(n=40, d=6)
    w = np.random.RandomState(9).rand(40) * 4 + 0.2
    est = AutoencoderTransformer(n_components=2, early_stopping=True, validation_fraction=0.25,
                                 batch_size=8, max_iter=5, random_state=0).fit(X, sample_weight=w)
    index, weights = canonical_rows([X], w)
    rows = X[index]
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(
        est._train_state.split_seed)).numpy()
    val = perm[:10]
    errors = (est.reconstruct(rows[val]) - rows[val]) ** 2
    expected = -(weights[val, None] * errors).sum() / (weights[val].sum() * X.shape[1])
    assert est.best_validation_score_ == pytest.approx(expected, rel=1e-5)
    unweighted = -errors.mean()
    assert abs(unweighted - expected) > 1e-4 * abs(expected)  # the weights matter here


def test_weighted_batch_means_equal_means_over_repeated_rows():
    """Every batch mean of the loss counts a row of weight k as k rows (no merging involved)."""
    from skae._objective import batch_mean, contractive_penalty, kl_divergence_sparsity

    g = torch.Generator().manual_seed(0)
    k = torch.tensor([1, 3, 2, 1, 4])
    w = k.to(torch.float32)
    rep = lambda t: t.repeat_interleave(k, dim=0)  # noqa: E731
    values = torch.rand(5, generator=g)
    assert float(batch_mean(values, w)) == pytest.approx(float(rep(values).mean()))
    acts = torch.rand(5, 3, generator=g)
    assert float(kl_divergence_sparsity(acts, 0.1, weights=w)) == pytest.approx(
        float(kl_divergence_sparsity(rep(acts), 0.1)))
    weights = [torch.randn(4, 6, generator=g), torch.randn(2, 4, generator=g)]
    derivs = [torch.rand(5, 4, generator=g), torch.rand(5, 2, generator=g)]
    assert float(contractive_penalty(weights, derivs, w)) == pytest.approx(
        float(contractive_penalty(weights, [rep(d) for d in derivs])))
    x_hat, x = torch.rand(5, 3, generator=g), torch.rand(5, 3, generator=g)
    assert float(reconstruction_loss(x_hat, x, "mse", weights=w)) == pytest.approx(
        float(reconstruction_loss(rep(x_hat), rep(x), "mse")))
