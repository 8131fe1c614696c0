"""scipy sparse input: the same results as dense input, without densifying the matrix.

Tolerance of the comparisons: the standardization statistics of a sparse
matrix are summed over its stored entries in another order than the dense
computation, so they agree to a few float64 ulps (about 1e-15 relative),
not bit for bit. The float32 training rows, rounded from those statistics,
are then equal except for rare one-ulp differences, which a few epochs of
training amplify far less than 1e-6. Outputs are compared with
``rtol=1e-6, atol=1e-9``, a thousand times tighter than any difference
training on other data would make.
"""

import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderAnomalyDetector, AutoencoderRegressor, AutoencoderTransformer
from skae._data import standardization

TOL = dict(rtol=1e-6, atol=1e-9)

FORMATS = {
    "csr_matrix": sp.csr_matrix,
    "csr_array": sp.csr_array,
    "csc_matrix": sp.csc_matrix,
    "csc_array": sp.csc_array,
    "coo_matrix": sp.coo_matrix,  # converted to CSR by validation
}


def sparse_data(n=100, d=36, density=0.2, seed=0):
    """Nonnegative sparse rows with a few informative directions, as dense float64."""
    rng = np.random.RandomState(seed)
    mask = rng.uniform(size=(n, d)) < density
    values = rng.exponential(size=(n, 2)) @ rng.uniform(size=(2, d)) + 0.1 * rng.uniform(size=(n, d))
    return np.where(mask, values, 0.0)


def random_csr(n, d, nnz, seed=0):
    """A float32 CSR matrix with about ``nnz`` uniform entries at random places."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(size=nnz).astype(np.float32)
    return sp.csr_matrix((values, (rng.integers(n, size=nnz), rng.integers(d, size=nnz))),
                         shape=(n, d))


def fit_quietly(est, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args)


def outputs(est, X, y=None):
    """Every inference output of ``est`` on ``X`` (and its fitted state worth comparing)."""
    out = {"loss_curve_": np.array(est.loss_curve_)}
    if isinstance(est, AutoencoderRegressor):
        out["predict"] = est.predict(X)
        out["score"] = est.score(X, y)
        return out
    out["reconstruct"] = est.reconstruct(X)
    out["score_samples"] = est.score_samples(X)
    if isinstance(est, AutoencoderTransformer):
        Z = est.transform(X)
        out.update(transform=Z, inverse_transform=est.inverse_transform(Z),
                   score=est.score(X), code_range_=est.code_range_)
    else:
        out.update(decision_function=est.decision_function(X), predict=est.predict(X),
                   feature_errors=est.feature_errors(X), offset_=est.offset_)
    return out


def assert_same_outputs(dense, sparse):
    assert dense.keys() == sparse.keys()
    for name, value in dense.items():
        assert isinstance(sparse[name], (np.ndarray, float)), name
        np.testing.assert_allclose(sparse[name], value, **TOL, err_msg=name)


CONV = dict(architecture="conv", image_shape=(6, 6, 1), conv_channels=(4,), kernel_size=3)

CASES = {
    "mlp_detector": (AutoencoderAnomalyDetector, dict(n_components=3, hidden_layer_sizes=(12,))),
    "mlp_transformer_salt_and_pepper": (
        AutoencoderTransformer, dict(n_components=3, noise="salt_and_pepper", noise_level=0.2)),
    "variational_transformer": (AutoencoderTransformer, dict(n_components=2, variational=True)),
    "variational_detector": (AutoencoderAnomalyDetector, dict(n_components=2, variational=True)),
    "conv_detector": (AutoencoderAnomalyDetector, dict(n_components=3, **CONV)),
    "conv_spatial_code": (AutoencoderTransformer, dict(
        n_components=None, hidden_layer_sizes=(), **{**CONV, "conv_channels": (2,)})),
    "greedy_early_stopping": (AutoencoderTransformer, dict(
        n_components=3, hidden_layer_sizes=(12,), pretraining="greedy", pretraining_max_iter=3,
        early_stopping=True, n_iter_no_change=50)),
    "unstandardized_bce": (AutoencoderTransformer, dict(
        n_components=3, standardize=False, loss="bce", output_activation="sigmoid")),
    "regressor": (AutoencoderRegressor, dict(hidden_layer_sizes=(12,))),
    "regressor_salt_and_pepper": (AutoencoderRegressor, dict(
        hidden_layer_sizes=(12,), noise="salt_and_pepper", noise_level=0.2)),
}


def case_data(name):
    X = sparse_data()
    if name == "unstandardized_bce":
        X = X / X.max()
    y = None
    if name.startswith("regressor"):
        y = np.column_stack([X[:, :5].sum(1), X[:, 5:].max(1)])
    return X, y


@pytest.mark.parametrize("name", CASES)
def test_sparse_fit_and_inference_equal_dense(name):
    cls, params = CASES[name]
    params = {"standardize": True, **params}
    X, y = case_data(name)
    args = () if y is None else (y,)
    fmt = list(FORMATS)[list(CASES).index(name) % len(FORMATS)]  # each case, another format
    dense = fit_quietly(cls(max_iter=3, random_state=0, **params), X, *args)
    Xs = FORMATS[fmt](X)
    sparse = fit_quietly(cls(max_iter=3, random_state=0, **params), Xs, *args)
    expected = outputs(dense, X, y)
    assert_same_outputs(expected, outputs(sparse, Xs, y))
    # a model fitted on dense data answers sparse queries as dense ones
    assert_same_outputs(expected, outputs(dense, Xs, y))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_sparse_format_and_dtype(dtype):
    X = sparse_data(n=80).astype(dtype)
    params = dict(n_components=3, max_iter=2, standardize=True, random_state=0)
    dense = fit_quietly(AutoencoderAnomalyDetector(**params), X)
    # float32 inference rounds at 1e-7: compare at float32's resolution
    tol = TOL if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for fmt, make in FORMATS.items():
        Xs = make(X)
        sparse = fit_quietly(AutoencoderAnomalyDetector(**params), Xs)
        for method in ("score_samples", "feature_errors", "reconstruct"):
            a, b = getattr(dense, method)(X), getattr(sparse, method)(Xs)
            assert b.dtype == dtype and isinstance(b, np.ndarray)
            np.testing.assert_allclose(b, a, **tol, err_msg=f"{fmt} {method}")
        np.testing.assert_array_equal(sparse.predict(Xs), dense.predict(X))


@pytest.mark.parametrize("cls", [AutoencoderTransformer, AutoencoderAnomalyDetector])
def test_partial_fit_equals_dense(cls):
    X = sparse_data(n=200)
    dense = cls(n_components=3, standardize=True, random_state=0)
    sparse = cls(n_components=3, standardize=True, random_state=0)
    for part in (slice(0, 100), slice(100, 200), slice(0, 200)):
        dense.partial_fit(X[part])
        sparse.partial_fit(sp.csr_array(X[part]))
    assert_same_outputs(outputs(dense, X), outputs(sparse, sp.csr_matrix(X)))


def test_regressor_partial_fit_and_sparse_targets():
    X, y = case_data("regressor")
    dense, sparse = (AutoencoderRegressor(standardize=True, random_state=0) for _ in range(2))
    for _ in range(2):
        dense.partial_fit(X, y)
        sparse.partial_fit(sp.csc_matrix(X), sp.csr_matrix(y))  # sparse targets are densified
    np.testing.assert_allclose(sparse.predict(sp.csr_matrix(X)), dense.predict(X), **TOL)


def test_statistics_from_sparse_entries():
    rng = np.random.RandomState(0)
    X = sparse_data(n=300, d=20) * np.logspace(-150, 150, 20)  # scales far apart
    X[:, 3] = 0.0  # an all-zero column: constant
    X[:, 4] = np.where(X[:, 4] != 0, 2.5, 0.0)
    X[:, 5] = 7.0  # a column of stored, constant values
    X[rng.permutation(300)[:5], 6] = 1e308  # overflow-free
    for dense, sparse in zip(standardization(X, "E"), standardization(sp.csr_matrix(X), "E")):
        np.testing.assert_allclose(sparse, dense, rtol=1e-13, atol=0)
    assert standardization(sp.csr_matrix(X), "E")[1][3] == 1.0
    assert standardization(sp.csr_matrix(X), "E")[1][5] == 1.0


def test_duplicate_entries_are_summed_and_input_untouched():
    X = sparse_data()
    csr = sp.csr_matrix(X)
    # every entry stored twice, as two halves: non-canonical CSR
    dup = sp.csr_matrix((np.repeat(csr.data / 2, 2), np.repeat(csr.indices, 2), 2 * csr.indptr),
                        shape=X.shape)
    assert not dup.has_canonical_format
    nnz = dup.nnz
    params = dict(n_components=3, max_iter=2, standardize=True, random_state=0)
    dense = fit_quietly(AutoencoderAnomalyDetector(**params), X)
    sparse = fit_quietly(AutoencoderAnomalyDetector(**params), dup)
    assert dup.nnz == nnz  # the caller's matrix is not modified
    assert_same_outputs(outputs(dense, X), outputs(sparse, dup))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("cls", [AutoencoderTransformer, AutoencoderAnomalyDetector])
def test_non_finite_sparse_values_raise_as_dense(bad, cls):
    X = sparse_data()
    X_bad = X.copy()
    X_bad[3, 7] = bad
    with pytest.raises(ValueError) as dense_error:
        cls(max_iter=2).fit(X_bad)
    with pytest.raises(ValueError) as sparse_error:
        cls(max_iter=2).fit(sp.csr_matrix(X_bad))
    assert str(sparse_error.value) == str(dense_error.value)
    assert ("NaN" if np.isnan(bad) else "infinity") in str(sparse_error.value)
    est = fit_quietly(cls(n_components=3, max_iter=2, random_state=0), sp.csr_matrix(X))
    for fmt in ("csr_array", "csc_matrix"):
        with pytest.raises(ValueError, match="NaN" if np.isnan(bad) else "infinity"):
            est.score_samples(FORMATS[fmt](X_bad))


def test_float32_range_errors_as_dense():
    X = sparse_data()
    wild = X.copy()
    wild[0, 2] = 1e300
    with pytest.raises(ValueError, match="beyond float32's range \\(feature 2") as dense_error:
        AutoencoderTransformer(standardize=False, max_iter=2).fit(wild)
    with pytest.raises(ValueError) as sparse_error:
        AutoencoderTransformer(standardize=False, max_iter=2).fit(sp.csr_matrix(wild))
    assert str(sparse_error.value) == str(dense_error.value)
    # a warm start on new data that the fitted statistics cannot bring into float32
    messages = []
    for data, new in ((X, wild), (sp.csr_matrix(X), sp.csr_matrix(wild))):
        est = fit_quietly(AutoencoderTransformer(n_components=3, max_iter=2, standardize=True,
                                                 random_state=0), data)
        with pytest.raises(ValueError, match="feature 2 lies beyond float32's range after") as e:
            est.partial_fit(new)
        messages.append(str(e.value))
    assert messages[0] == messages[1]


def test_wrong_sparse_input():
    X = sparse_data()
    est = fit_quietly(AutoencoderTransformer(n_components=3, max_iter=2, random_state=0),
                      sp.csr_matrix(X))
    with pytest.raises(ValueError, match="X has 35 features, but AutoencoderTransformer is "
                                         "expecting 36 features"):
        est.transform(sp.csr_matrix(X[:, 1:]))
    with pytest.raises(TypeError, match="Sparse data was passed"):
        est.inverse_transform(sp.csr_matrix(est.transform(X)))  # codes are dense
    Z = est.transform(sp.lil_matrix(X))  # other formats are converted to CSR
    np.testing.assert_array_equal(Z, est.transform(X))


def test_sparse_tag():
    for cls in (AutoencoderTransformer, AutoencoderAnomalyDetector, AutoencoderRegressor):
        assert cls().__sklearn_tags__().input_tags.sparse


def test_training_never_densifies_the_matrix():
    """Fit and score a matrix whose dense float32 form is 80 MB: numpy allocations stay small.

    A batch (20 rows) and an inference chunk (2**21 elements) are densified
    at a time, whatever the number of rows; the whole matrix never is.
    """
    n, d = 1000, 20000
    X = random_csr(n, d, nnz=6000)
    dense_bytes = n * d * 4
    est = AutoencoderAnomalyDetector(n_components=2, hidden_layer_sizes=(), max_iter=1,
                                     batch_size=20, standardize=True, random_state=0)
    fit_quietly(clone(est), X[:40])  # modules imported on first use are not counted
    tracemalloc.start()
    try:
        fit_quietly(est, X)
        scores = est.score_samples(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert scores.shape == (n,) and np.isfinite(scores).all()
    assert peak < 0.3 * dense_bytes, f"peak {peak / 2**20:.0f} MiB"


@pytest.mark.slow
def test_fit_far_beyond_dense_memory():
    """A matrix whose dense float32 form needs 4.8 GB fits with a peak RSS under 1.5 GB."""
    script = textwrap.dedent("""
        import resource, warnings
        import numpy as np, scipy.sparse as sp
        from skae import AutoencoderAnomalyDetector
        warnings.simplefilter("ignore")
        n, d, nnz = 40000, 30000, 120000
        rng = np.random.default_rng(0)
        X = sp.csr_matrix((rng.uniform(size=nnz).astype(np.float32),
                           (rng.integers(n, size=nnz), rng.integers(d, size=nnz))), shape=(n, d))
        est = AutoencoderAnomalyDetector(n_components=4, hidden_layer_sizes=(), max_iter=1,
                                         standardize=True, random_state=0).fit(X)
        assert np.isfinite(est.decision_function(X[:1000])).all()
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    peak = int(out.stdout.split()[-1])
    assert peak < 1.5e9, f"peak RSS {peak / 1e9:.2f} GB against 4.8 GB dense"
