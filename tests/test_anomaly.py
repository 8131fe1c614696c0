"""Behaviour of AutoencoderAnomalyDetector."""

import pickle
import re

import numpy as np
import pytest
from sklearn.covariance import ledoit_wolf
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

import skae._inference
from skae import _neighbors
from skae import AutoencoderAnomalyDetector
from skae._compat import InvalidParameterError

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def blobs():
    """Normal data on a 2-D plane in 8-D, and 20 outliers off the plane."""
    rng = np.random.RandomState(0)
    basis = rng.normal(size=(2, 8))
    inliers = rng.normal(size=(400, 2)) @ basis + 0.05 * rng.normal(size=(400, 8))
    outliers = rng.normal(size=(20, 8)) * 3
    X = np.vstack([inliers, outliers])
    y = np.r_[np.zeros(400), np.ones(20)]
    return X, y


def test_outlier_conventions(blobs):
    X, y = blobs
    det = AutoencoderAnomalyDetector(n_components=2, contamination=0.05, max_iter=60,
                                     random_state=0).fit(X)
    scores = det.score_samples(X)
    assert roc_auc_score(y, -scores) > 0.95  # lower score = more abnormal
    np.testing.assert_allclose(det.decision_function(X), scores - det.offset_)
    labels = det.predict(X)
    assert set(np.unique(labels)) == {-1, 1}
    np.testing.assert_array_equal(labels == -1, det.decision_function(X) < 0)
    assert np.mean(labels == -1) == pytest.approx(0.05, abs=0.01)
    assert det.offset_ == pytest.approx(np.percentile(scores, 5))
    np.testing.assert_array_equal(det.fit(X).predict(X), det.fit_predict(X))


def test_auto_contamination_is_a_robust_threshold(blobs):
    X, y = blobs
    # the outliers lie off the plane: the probabilistic PCA weighting of the code
    det = AutoencoderAnomalyDetector(n_components=2, contamination="auto", max_iter=60,
                                     trim_fraction=0.0, code_weight=1.0, random_state=0).fit(X)
    log_errors = np.log(-det.score_samples(X))
    median = np.median(log_errors)
    mad = 1.4826 * np.median(np.abs(log_errors - median))
    assert det.offset_ == pytest.approx(-np.exp(median + 3 * mad))
    flagged = det.predict(X) == -1
    assert flagged[y == 1].mean() > 0.7 and flagged[y == 0].mean() < 0.03


def test_feature_errors_explain_the_score(blobs):
    X, _ = blobs
    det = AutoencoderAnomalyDetector(n_components=2, max_iter=30, code_distance=None,
                                     random_state=0).fit(X)
    errors = det.feature_errors(X)
    assert errors.shape == X.shape and np.all(errors >= 0)
    np.testing.assert_allclose(errors.mean(axis=1), -det.score_samples(X), rtol=1e-10)
    # corrupt one feature of one sample: that feature carries the blame
    x = X[:1].copy()
    x[0, 5] += 10 * X[:, 5].std()
    assert np.argmax(det.feature_errors(x)[0]) == 5


def test_scores_do_not_depend_on_feature_scale(blobs):
    X, _ = blobs
    scaled = X * np.logspace(-3, 4, X.shape[1])
    a = AutoencoderAnomalyDetector(n_components=2, max_iter=10, random_state=0).fit(X)
    b = AutoencoderAnomalyDetector(n_components=2, max_iter=10, random_state=0).fit(scaled)
    np.testing.assert_allclose(a.score_samples(X), b.score_samples(scaled), rtol=1e-3)
    raw = AutoencoderAnomalyDetector(n_components=2, max_iter=10, standardize=False,
                                     random_state=0).fit(scaled)
    # without standardization the largest feature dominates the error
    errors = raw.feature_errors(scaled)
    assert errors[:, -1].sum() > 0.9 * errors.sum()


def test_grid_search_with_labelled_scorer(blobs):
    X, y = blobs
    y = np.where(y == 1, -1, 1)  # labels in predict's convention: +1 inlier, -1 outlier
    rng = np.random.RandomState(1)
    fold = np.where(rng.rand(len(X)) < 0.5, 0, -1)  # half for validation, half train-only
    pipe = make_pipeline(MinMaxScaler(), AutoencoderAnomalyDetector(max_iter=30, random_state=0))
    search = GridSearchCV(
        pipe, {"autoencoderanomalydetector__n_components": [2, 6]},
        scoring="roc_auc", cv=PredefinedSplit(fold),
    ).fit(X, y)
    assert search.best_score_ > 0.9
    assert roc_auc_score(y, search.decision_function(X)) > 0.9


def test_partial_fit_updates_threshold(blobs):
    X, _ = blobs
    det = AutoencoderAnomalyDetector(n_components=2, contamination=0.1, random_state=0)
    det.partial_fit(X)
    first = det.offset_
    for _ in range(5):
        det.partial_fit(X)
    assert det.n_iter_ == 6 and det.offset_ != first
    assert det.offset_ == pytest.approx(np.percentile(det.score_samples(X), 10))


def test_pickle_round_trip(blobs):
    X, _ = blobs
    det = AutoencoderAnomalyDetector(n_components=2, max_iter=3, random_state=0).fit(X)
    restored = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(restored.decision_function(X), det.decision_function(X))


@pytest.mark.parametrize("contamination", [0.0, 0.6, "high"])
def test_invalid_contamination(blobs, contamination):
    with pytest.raises(InvalidParameterError, match="'contamination' parameter"):
        AutoencoderAnomalyDetector(contamination=contamination).fit(blobs[0])


def test_bad_input(blobs):
    X, _ = blobs
    det = AutoencoderAnomalyDetector(2, max_iter=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 3 features"):
        det.predict(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        det.score_samples(np.full((2, 8), np.nan))


def test_trimmed_loss_keeps_a_cluster_of_training_anomalies_anomalous():
    rng = np.random.RandomState(0)
    basis = rng.normal(size=(2, 10))
    inliers = rng.normal(size=(950, 2)) @ basis + 0.1 * rng.normal(size=(950, 10))
    cluster = 4 * rng.normal(size=(1, 10)) + 0.05 * rng.normal(size=(50, 10))  # 5%, repeated
    X = np.vstack([inliers, cluster])
    y = np.r_[np.zeros(950), np.ones(50)]

    def auroc(trim):  # by the reconstruction error: what the network learned
        det = AutoencoderAnomalyDetector(n_components=3, trim_fraction=trim, max_iter=60,
                                         code_distance=None, random_state=0).fit(X)
        return roc_auc_score(y, -det.score_samples(X))

    plain, trimmed = auroc(0.0), auroc(0.3)
    assert trimmed > 0.95 and trimmed > plain + 0.05, (plain, trimmed)


def test_predict_never_calls_a_nan_score_an_inlier(blobs, monkeypatch):
    # scores are never NaN by construction; should one slip through, it is an outlier
    X, _ = blobs
    det = AutoencoderAnomalyDetector(2, max_iter=1, random_state=0).fit(X)
    scores = np.array([np.nan, det.offset_ - 1.0, det.offset_ + 1.0, -np.inf])
    monkeypatch.setattr(det, "score_samples", lambda X: scores)
    np.testing.assert_array_equal(det.predict(X[:4]), [-1, -1, 1, -1])


@pytest.mark.parametrize("n_features, expected", [(1, 1), (2, 1), (5, 4), (8, 7), (9, 8), (40, 8)])
def test_auto_code_is_narrower_than_the_input(n_features, expected):
    """``n_components="auto"`` (the default) resolves to min(8, n_features - 1), at least 1."""
    import warnings

    X = np.random.RandomState(0).rand(60, n_features)
    det = AutoencoderAnomalyDetector(max_iter=1, random_state=0)
    assert det.n_components == "auto"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        det.fit(X)
    assert det._spec.n_components == expected
    assert det.module_.encoder[-2].out_features == expected
    assert det.get_params()["n_components"] == "auto"
    # a bottleneck narrower than the input emits no warning; one feature cannot have one
    assert [str(w.message) for w in caught if "identity" in str(w.message)] == (
        [] if n_features > 1 else [str(caught[0].message)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explicit = AutoencoderAnomalyDetector(expected, max_iter=1, random_state=0).fit(X)
    np.testing.assert_array_equal(det.score_samples(X), explicit.score_samples(X))


def test_auto_code_is_the_detectors_only():
    from skae import AutoencoderTransformer

    with pytest.raises(InvalidParameterError, match="n_components"):
        AutoencoderTransformer(n_components="auto").fit(np.zeros((10, 3)))
    with pytest.raises(InvalidParameterError, match="n_components"):
        AutoencoderAnomalyDetector(n_components="wide").fit(np.zeros((10, 3)))


# ----------------------------------------------------------- relative errors
def _plane_and_noise(n=300, seed=0):
    """Five features on a 2-D plane (well reconstructed) and one of pure noise."""
    basis = np.random.RandomState(42).normal(size=(2, 5))
    rng = np.random.RandomState(seed)
    plane = rng.normal(size=(n, 2)) @ basis + 0.05 * rng.normal(size=(n, 5))
    return np.c_[plane, rng.normal(size=(n, 1))]


RELATIVE = dict(n_components=2, max_iter=20, batch_size=256, trim_fraction=0.0,
                code_distance=None, random_state=0)


def test_relative_errors_are_errors_over_each_features_training_mean():
    X = _plane_and_noise()
    plain = AutoencoderAnomalyDetector(**RELATIVE).fit(X)
    relative = AutoencoderAnomalyDetector(relative_errors=True, **RELATIVE).fit(X)
    assert plain.feature_error_scale_ is None
    # the same training; the scale is each feature's mean training error
    np.testing.assert_array_equal(relative.reconstruct(X), plain.reconstruct(X))
    raw = plain.feature_errors(X)
    np.testing.assert_allclose(relative.feature_error_scale_, raw.mean(0), rtol=1e-12)
    assert relative.feature_error_scale_[-1] > 10 * relative.feature_error_scale_[:5].max()
    errors = relative.feature_errors(X)
    np.testing.assert_allclose(errors, raw / raw.mean(0), rtol=1e-12)
    np.testing.assert_allclose(errors.mean(1), -relative.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(relative.decision_function(X),
                               relative.score_samples(X) - relative.offset_)
    assert relative.offset_ == pytest.approx(np.percentile(relative.score_samples(X), 10))


def test_relative_errors_find_a_shift_in_a_well_reconstructed_feature():
    """The noisy feature dominates the plain error and hides a shift elsewhere."""
    X = _plane_and_noise()
    test = _plane_and_noise(200, seed=1)
    test[:100, 0] += 0.5  # off the plane in one feature
    y = np.r_[np.ones(100), np.zeros(100)]
    plain = AutoencoderAnomalyDetector(**RELATIVE).fit(X)
    relative = AutoencoderAnomalyDetector(relative_errors=True, **RELATIVE).fit(X)
    assert roc_auc_score(y, -plain.score_samples(test)) < 0.75  # 0.70
    assert roc_auc_score(y, -relative.score_samples(test)) > 0.85  # 0.90


def test_relative_errors_are_finite_for_a_perfectly_reconstructed_feature(monkeypatch):
    """A feature without training error is divided by the floor, not by 0."""
    X = _plane_and_noise(200)
    sums = skae._inference.feature_error_sums

    def exact_in_feature_2(*args, **kwargs):  # as if feature 2 were reconstructed exactly
        return sums(*args, **kwargs) * (np.arange(X.shape[1]) != 2)

    monkeypatch.setattr(skae._inference, "feature_error_sums", exact_in_feature_2)
    det = AutoencoderAnomalyDetector(relative_errors=True, **RELATIVE).fit(X)
    scale = det.feature_error_scale_
    assert scale[2] == 1e-6 * np.mean(np.where(np.arange(X.shape[1]) == 2, 0, scale))
    errors = det.feature_errors(X)
    assert np.isfinite(errors).all() and errors[:, 2].mean() > 1e3
    assert np.isfinite(det.score_samples(X)).all() and np.isfinite(det.offset_)


def test_relative_errors_follow_the_last_training_call():
    X = _plane_and_noise()
    det = AutoencoderAnomalyDetector(relative_errors=True, **RELATIVE).fit(X)
    det.partial_fit(2 * X[:300])
    np.testing.assert_allclose(
        det.feature_errors(2 * X[:300]).mean(0), np.ones(X.shape[1]), rtol=1e-10)
    det.set_params(relative_errors=False).fit(X)
    assert det.feature_error_scale_ is None


def test_relative_errors_need_a_non_variational_model():
    X = _plane_and_noise(100)
    det = AutoencoderAnomalyDetector(relative_errors=True, **RELATIVE).fit(X)
    before = pickle.dumps(det)
    det.set_params(variational=True)
    with pytest.raises(ValueError, match="relative_errors=True needs variational=False"):
        det.fit(X)
    assert pickle.dumps(det.set_params(variational=False)) == before  # left as it was


def test_relative_errors_scale_is_the_weighted_mean_training_error():
    X = _plane_and_noise(100)
    w = np.random.RandomState(0).rand(100) * 3
    plain = AutoencoderAnomalyDetector(**RELATIVE).fit(X, sample_weight=w)
    relative = AutoencoderAnomalyDetector(relative_errors=True, **RELATIVE).fit(
        X, sample_weight=w)
    raw = plain.feature_errors(X)
    np.testing.assert_allclose(relative.feature_error_scale_, np.average(raw, axis=0, weights=w),
                               rtol=1e-12)
    assert not np.allclose(relative.feature_error_scale_, raw.mean(0), rtol=1e-3)


# ------------------------------------------------------------ code distance
CODE = dict(n_components=2, max_iter=20, random_state=0)


def _kept(errors, trim_fraction):
    """The training rows the code statistics keep (no weights)."""
    return errors <= np.quantile(errors, 1.0 - trim_fraction)


def _residuals(det, X):
    """Reconstruction minus input, in standardized units, from public methods."""
    return np.sign(det.reconstruct(X) - X) * np.sqrt(det.feature_errors(X))


def _residual_distances(det, X, kept):
    """The documented squared Mahalanobis distances of the residuals (scikit-learn's LW)."""
    residuals = _residuals(det, X)
    mean = residuals[kept].mean(0)
    covariance, shrinkage = ledoit_wolf(residuals[kept])
    d = X.shape[1]
    covariance += max(1e-6 * np.trace(covariance) / d, 1e-12) * np.eye(d)
    centered = residuals - mean
    return np.einsum("ij,jk,ik->i", centered, np.linalg.inv(covariance), centered), mean, shrinkage


@pytest.mark.parametrize("residual", ["spherical", "full"])
@pytest.mark.parametrize("combination", ["add", "multiply"])
@pytest.mark.parametrize("trim_fraction", [0.0, 0.3])
def test_code_distance_scores_are_the_documented_combination(blobs, combination,
                                                             trim_fraction, residual):
    X, _ = blobs
    params = dict(CODE, trim_fraction=trim_fraction)
    plain = AutoencoderAnomalyDetector(code_distance=None, **params).fit(X)
    det = AutoencoderAnomalyDetector(code_distance=combination, residual_covariance=residual,
                                     **params).fit(X)
    assert plain.code_mean_ is None and plain.error_scale_ is None
    assert plain.residual_whitening_ is None
    # the same training: only the score differs
    np.testing.assert_array_equal(det.reconstruct(X), plain.reconstruct(X))
    np.testing.assert_array_equal(det.feature_errors(X), plain.feature_errors(X))
    errors = plain.feature_errors(X).mean(1)
    codes = det._encode(X)
    kept = _kept(errors, trim_fraction)
    assert kept.sum() == (len(X) if trim_fraction == 0 else pytest.approx(0.7 * len(X), abs=1))
    mean, covariance = codes[kept].mean(0), np.cov(codes[kept].T, bias=True)
    np.testing.assert_allclose(det.code_mean_, mean, rtol=1e-10, atol=1e-12)
    assert det.error_scale_ == pytest.approx(errors[kept].mean(), rel=1e-10)
    centered = codes - mean
    distance = np.einsum("ij,jk,ik->i", centered, np.linalg.inv(covariance), centered)
    assert distance[kept].mean() == pytest.approx(2.0, rel=1e-8)  # n_components, on average
    if residual == "spherical":
        assert det.residual_whitening_ is None and det.residual_shrinkage_ is None
        residual_term = X.shape[1] * errors / errors[kept].mean()
    else:
        residual_term, mean, shrinkage = _residual_distances(det, X, kept)
        np.testing.assert_allclose(det.residual_mean_, mean, rtol=1e-7, atol=1e-12)
        assert det.residual_shrinkage_ == pytest.approx(shrinkage, rel=1e-7, abs=1e-12)
        assert 0 < det.residual_shrinkage_ < 1
    expected = (residual_term + det.code_weight * distance if combination == "add"
                else residual_term / X.shape[1] * distance)
    np.testing.assert_allclose(det.score_samples(X), -expected, rtol=1e-7)
    assert det.offset_ == pytest.approx(np.percentile(det.score_samples(X), 10))
    np.testing.assert_allclose(det.decision_function(X), det.score_samples(X) - det.offset_)


def test_code_distance_flags_points_far_out_on_the_learned_plane():
    """A linear autoencoder reconstructs the whole plane; the code distance sees how far.

    Normal points lie near a plane in 8-D; the anomalies lie exactly on it, 4
    standard deviations out: reconstructed better than the normal points,
    they stand out by their codes only.
    """
    rng = np.random.RandomState(0)
    basis = rng.normal(size=(2, 8))
    X = rng.normal(size=(400, 2)) @ basis + 0.05 * rng.normal(size=(400, 8))
    rng = np.random.RandomState(1)
    normal = rng.normal(size=(100, 2)) @ basis + 0.05 * rng.normal(size=(100, 8))
    directions = rng.normal(size=(100, 2))
    far = 4 * directions / np.linalg.norm(directions, axis=1, keepdims=True) @ basis
    test, y = np.vstack([normal, far]), np.r_[np.zeros(100), np.ones(100)]
    params = dict(n_components=2, hidden_layer_sizes=(), activation="identity",
                  trim_fraction=0.0, max_iter=30, batch_size=16, learning_rate_init=1e-2,
                  std_offset=0.0, random_state=0)  # the plane in standard deviations
    plain = AutoencoderAnomalyDetector(code_distance=None, **params).fit(X)
    assert roc_auc_score(y, -plain.score_samples(test)) < 0.5  # 0.20
    add = AutoencoderAnomalyDetector(code_distance="add", **params).fit(X)
    assert roc_auc_score(y, -add.score_samples(test)) > 0.9  # 0.94
    multiply = AutoencoderAnomalyDetector(code_distance="multiply", **params).fit(X)
    assert roc_auc_score(y, -multiply.score_samples(test)) > 0.8  # 0.89


def test_code_distance_statistics_are_weighted_as_repeated_rows(blobs):
    X, _ = blobs
    w = np.random.RandomState(0).randint(0, 4, size=len(X)).astype(float)
    det = AutoencoderAnomalyDetector(code_distance="add", **CODE).fit(X, sample_weight=w)
    repeated = np.repeat(X, w.astype(int), axis=0)
    errors = det._errors(repeated, per_feature=False)
    kept = _kept(errors, 0.3)
    codes = det._encode(repeated)[kept]
    np.testing.assert_allclose(det.code_mean_, codes.mean(0), rtol=1e-10, atol=1e-12)
    assert det.error_scale_ == pytest.approx(errors[kept].mean(), rel=1e-10)
    inverse_sqrt = det.code_whitening_
    np.testing.assert_allclose(np.linalg.inv(inverse_sqrt @ inverse_sqrt.T),
                               np.cov(codes.T, bias=True), rtol=1e-8)


def test_code_distance_is_finite_for_a_code_unit_that_never_varies(monkeypatch, blobs):
    X, _ = blobs
    errors = skae._inference.reconstruction_errors

    def constant_unit_1(*args, codes=None, **kwargs):  # as if the second code unit were dead
        out = errors(*args, codes=codes, **kwargs)
        if codes is not None:
            codes[:, 1] = 0.5
        return out

    monkeypatch.setattr(skae._inference, "reconstruction_errors", constant_unit_1)
    det = AutoencoderAnomalyDetector(code_distance="add", **CODE).fit(X)
    scores = det.score_samples(X)
    assert np.isfinite(scores).all() and np.isfinite(det.offset_)
    # the dead unit's eigenvalue is floored at 1e-6 times the mean eigenvalue
    eigenvalues = np.linalg.eigvalsh(np.linalg.inv(det.code_whitening_ @ det.code_whitening_))
    assert eigenvalues.min() == pytest.approx(1e-6 * eigenvalues.mean(), rel=1e-3)


def test_code_distance_overflow_is_the_most_anomalous_score(monkeypatch, blobs):
    X, _ = blobs
    det = AutoencoderAnomalyDetector(code_distance="multiply", **CODE).fit(X)
    errors = skae._inference.reconstruction_errors

    def overflowing(*args, codes=None, **kwargs):  # a code beyond float64, and a NaN one
        out = errors(*args, codes=codes, **kwargs)
        if codes is not None:
            codes[0], codes[1] = np.inf, np.nan
        return out

    monkeypatch.setattr(skae._inference, "reconstruction_errors", overflowing)
    scores = det.score_samples(X[:5])
    assert scores[0] == scores[1] == -np.inf
    assert np.isfinite(scores[2:]).all()
    np.testing.assert_array_equal(det.predict(X[:2]), [-1, -1])


def test_code_distance_follows_the_last_training_call(blobs):
    X, _ = blobs
    det = AutoencoderAnomalyDetector(code_distance="add", **CODE).fit(X)
    det.partial_fit(X[:200] + 5.0)
    np.testing.assert_allclose(det.code_mean_, det._encode(X[:200] + 5.0)[
        _kept(det._errors(X[:200] + 5.0, False), 0.3)].mean(0), rtol=1e-10)
    scores = det.score_samples(X)
    det.set_params(code_distance="multiply")  # no effect before the next fit
    np.testing.assert_array_equal(det.score_samples(X), scores)
    det.set_params(code_distance=None).fit(X)
    assert det.code_mean_ is None and det.code_whitening_ is None and det.error_scale_ is None
    np.testing.assert_allclose(det.score_samples(X), -det.feature_errors(X).mean(1))
    assert not np.allclose(scores, det.score_samples(X))


def test_code_distance_needs_a_non_variational_model(blobs):
    X, _ = blobs
    det = AutoencoderAnomalyDetector(code_distance="add", **CODE).fit(X)
    before = pickle.dumps(det)
    det.set_params(variational=True)
    with pytest.raises(ValueError, match="code_distance='add' needs variational=False"):
        det.fit(X)
    assert pickle.dumps(det.set_params(variational=False)) == before  # left as it was


def test_code_distance_auto_is_add_for_the_mlp_network_only(blobs):
    X, _ = blobs
    auto = AutoencoderAnomalyDetector(**CODE).fit(X)
    add = AutoencoderAnomalyDetector(code_distance="add", **CODE).fit(X)
    assert auto.code_distance == "auto"
    np.testing.assert_array_equal(auto.score_samples(X), add.score_samples(X))
    variational = AutoencoderAnomalyDetector(variational=True, **CODE).fit(X)
    assert variational.code_mean_ is None and variational.error_scale_ is None
    np.testing.assert_array_equal(variational.score_samples(X),
                                  variational._log_likelihood(X))
    conv = AutoencoderAnomalyDetector(architecture="conv", image_shape=(1, -1, 1),
                                      conv_channels=(4,), **CODE).fit(X)
    assert conv.code_mean_ is None
    np.testing.assert_allclose(conv.score_samples(X), -conv.feature_errors(X).mean(1),
                               rtol=1e-10)


def test_code_distance_is_validated(blobs):
    X, _ = blobs
    with pytest.raises(InvalidParameterError, match="'code_distance' parameter"):
        AutoencoderAnomalyDetector(code_distance="sum").fit(X)


# ------------------------------------------------------------------ std_offset
def _spiky(seed=0, n=2000):
    """Three features on a line, and a fourth near 0 but for rare values of 1."""
    rng = np.random.RandomState(seed)
    t = rng.normal(size=(n, 1))
    X = np.hstack([t, -t, 2 * t, 0.01 * rng.normal(size=(n, 1))])
    X[:, :3] += 0.1 * rng.normal(size=(n, 3))
    X[rng.rand(n) < 0.005, 3] = 1.0
    return X


def _scales(det):
    return det.module_.training_statistics()[1]


def test_std_offset_adds_a_share_of_each_features_range():
    X = _spiky()
    X[:, 1] *= 1000.0  # units: the scales follow each feature's own
    X = np.hstack([X, np.full((len(X), 1), 5.0)])  # a constant feature
    std, spread = X.std(axis=0), np.ptp(X, axis=0)
    rho = np.median(std[:4] / spread[:4])
    for offset in (0.0, 0.5, 3.0):
        det = AutoencoderAnomalyDetector(std_offset=offset, max_iter=1, random_state=0).fit(X)
        want = np.r_[std[:4] + offset * rho * spread[:4], 1.0]
        np.testing.assert_allclose(_scales(det), want, rtol=1e-10)
    auto = AutoencoderAnomalyDetector(max_iter=1, random_state=0).fit(X)
    np.testing.assert_allclose(_scales(auto), np.r_[std[:4] + 2.0 * rho * spread[:4], 1.0],
                               rtol=1e-10)


def test_std_offset_auto_is_plain_standardization_where_not_measured():
    X = _spiky()
    det = AutoencoderAnomalyDetector(variational=True, max_iter=1, random_state=0).fit(X)
    np.testing.assert_allclose(_scales(det), X.std(axis=0), rtol=1e-10)
    images = np.random.RandomState(0).rand(64, 36)
    conv = AutoencoderAnomalyDetector(architecture="conv", image_shape=(1, 6, 6),
                                      conv_channels=(2,), max_iter=1, random_state=0).fit(images)
    np.testing.assert_allclose(_scales(conv), images.std(axis=0), rtol=1e-10)


def test_std_offset_keeps_scores_independent_of_each_features_units():
    X = _spiky()
    scaled = X * np.array([1.0, 1e3, 1e-3, 50.0])
    a = AutoencoderAnomalyDetector(max_iter=3, random_state=0).fit(X)
    b = AutoencoderAnomalyDetector(max_iter=3, random_state=0).fit(scaled)
    np.testing.assert_allclose(a.score_samples(X), b.score_samples(scaled), rtol=1e-5)


def test_std_offset_weighs_a_near_constant_feature_less():
    # a sample off the line, against one whose near-constant fourth feature sits
    # at 0.3 (4 standard deviations, inside its training range): the larger the
    # offset, the less that feature's deviation weighs against the structure's
    # (in the spherical residual term, where every feature's error weighs alike)
    X = _spiky()
    off_line = np.array([[1.0, 1.0, 2.0, 0.0]])
    in_range = np.array([[1.0, -1.0, 2.0, 0.3]])
    ratios = []
    for offset in (0.0, 1.0, "auto"):
        det = AutoencoderAnomalyDetector(n_components=1, std_offset=offset,
                                         residual_covariance="spherical",
                                         random_state=0).fit(X)
        ratios.append(det.score_samples(in_range)[0] / det.score_samples(off_line)[0])
    assert ratios[0] > ratios[1] > ratios[2]
    assert ratios[0] > 2 * ratios[2]


@pytest.mark.parametrize("value", [-1.0, "big", True])
def test_std_offset_must_be_a_non_negative_float_or_auto(value):
    with pytest.raises(InvalidParameterError, match="'std_offset' parameter"):
        AutoencoderAnomalyDetector(std_offset=value).fit(_spiky(n=50))


def test_warm_start_may_not_change_std_offset():
    X = _spiky(n=200)
    det = AutoencoderAnomalyDetector(max_iter=1, warm_start=True, random_state=0).fit(X)
    with pytest.raises(ValueError, match="'std_offset' changed from 2.0 to 1.0"):
        det.set_params(std_offset=1.0).fit(X)


# ----------------------------------------------------------------- code_weight
def test_code_weight_weighs_the_code_distance_in_add_only(blobs):
    X, _ = blobs
    for residual in ("spherical", "full"):
        one = AutoencoderAnomalyDetector(code_distance="add", code_weight=1.0,
                                         residual_covariance=residual, **CODE).fit(X)
        three = AutoencoderAnomalyDetector(code_distance="add", code_weight=3.0,
                                           residual_covariance=residual, **CODE).fit(X)
        distance = np.square((one._encode(X) - one.code_mean_) @ one.code_whitening_).sum(1)
        # the residual term is the same for both: the weight multiplies the distance alone
        np.testing.assert_allclose(three.score_samples(X) - one.score_samples(X),
                                   -2 * distance, rtol=1e-8, atol=1e-9)
    one = AutoencoderAnomalyDetector(code_distance="add", code_weight=1.0,
                                     residual_covariance="spherical", **CODE).fit(X)
    three = AutoencoderAnomalyDetector(code_distance="add", code_weight=3.0,
                                       residual_covariance="spherical", **CODE).fit(X)
    relative = one.feature_errors(X).mean(1) / one.error_scale_
    distance = np.square((one._encode(X) - one.code_mean_) @ one.code_whitening_).sum(1)
    np.testing.assert_allclose(one.score_samples(X), -(X.shape[1] * relative + distance),
                               rtol=1e-10)
    np.testing.assert_allclose(three.score_samples(X), -(X.shape[1] * relative + 3 * distance),
                               rtol=1e-10)
    assert three.offset_ == pytest.approx(np.percentile(three.score_samples(X), 10))
    # "multiply" and no code distance do not use it
    for code_distance in ("multiply", None):
        a = AutoencoderAnomalyDetector(code_distance=code_distance, **CODE).fit(X)
        b = AutoencoderAnomalyDetector(code_distance=code_distance, code_weight=3.0,
                                       **CODE).fit(X)
        np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))


@pytest.mark.parametrize("value", [0.0, -1.0, "auto"])
def test_code_weight_must_be_a_positive_float(value, blobs):
    with pytest.raises(InvalidParameterError, match="'code_weight' parameter"):
        AutoencoderAnomalyDetector(code_weight=value).fit(blobs[0])


# ----------------------------------------------------- residual covariance
def test_residual_covariance_auto_is_full_where_it_may_be_used(blobs, monkeypatch):
    X, _ = blobs
    params = dict(CODE, max_iter=2)
    det = AutoencoderAnomalyDetector(**params).fit(X)
    assert det._residual_covariance == "full"
    assert det.residual_whitening_.shape == (8, 8) and det.residual_mean_.shape == (8,)
    # spherical without the code distance, with relative errors, or on wider data
    for extra in (dict(code_distance=None), dict(relative_errors=True)):
        other = AutoencoderAnomalyDetector(**params, **extra).fit(X)
        assert other._residual_covariance == "spherical" and other.residual_whitening_ is None
    monkeypatch.setattr(skae.anomaly, "AUTO_FULL_RESIDUAL_MAX_FEATURES", 8)
    assert AutoencoderAnomalyDetector(**params).fit(X)._residual_covariance == "full"
    monkeypatch.setattr(skae.anomaly, "AUTO_FULL_RESIDUAL_MAX_FEATURES", 7)
    wide = AutoencoderAnomalyDetector(**params).fit(X)
    assert wide._residual_covariance == "spherical" and wide.residual_whitening_ is None
    spherical = AutoencoderAnomalyDetector(residual_covariance="spherical", **params).fit(X)
    np.testing.assert_array_equal(wide.score_samples(X), spherical.score_samples(X))


def test_residual_covariance_auto_is_spherical_for_cross_entropy():
    X = np.random.RandomState(0).uniform(size=(200, 6))
    det = AutoencoderAnomalyDetector(loss="bce", output_activation="sigmoid", max_iter=2,
                                     standardize=False, random_state=0).fit(X)
    assert det._residual_covariance == "spherical" and det.residual_whitening_ is None


def test_full_residual_covariance_flags_residuals_normal_data_does_not_show():
    # a plane in 6-D, plus noise that moves features 4 and 5 together: the code
    # keeps the plane, so the residuals of normal data lie along (e4 + e5)
    rng = np.random.RandomState(0)
    basis = np.array([[1.0, 1, 0, 0, 0, 0], [0, 0, 1, -1, 0, 0]])
    X = 3 * rng.normal(size=(1000, 2)) @ basis + 0.05 * rng.normal(size=(1000, 6))
    X[:, [4, 5]] += 0.5 * rng.normal(size=(1000, 1))
    on_plane = rng.normal(size=(2, 2)) @ basis
    along, across = on_plane.copy(), on_plane.copy()
    along[:, [4, 5]] += [1.0, 1.0]  # as the normal residuals go
    across[:, [4, 5]] += [1.0, -1.0]  # as no normal residual goes
    params = dict(n_components=2, hidden_layer_sizes=(), activation="identity",
                  trim_fraction=0.0, max_iter=200, random_state=0)
    ratios = {}
    for residual in ("spherical", "full"):
        det = AutoencoderAnomalyDetector(residual_covariance=residual, **params).fit(X)
        # the smaller squared error...
        assert (det.feature_errors(across).sum(1) < det.feature_errors(along).sum(1)).all()
        ratios[residual] = (det.score_samples(across) / det.score_samples(along)).min()
    # ...is the far more anomalous residual once its direction counts
    np.testing.assert_array_equal(det.predict(np.vstack([along, across])), [1, 1, -1, -1])
    assert ratios["full"] > 20 and ratios["full"] > 5 * ratios["spherical"]


@pytest.mark.parametrize("params, needs", [
    (dict(code_distance=None), "a code distance"),
    (dict(architecture="conv", image_shape=(1, 4, 4)), "a code distance"),
    (dict(relative_errors=True), "relative_errors=False"),
    (dict(loss="bce", output_activation="sigmoid", standardize=False), "loss='mse'"),
])
def test_full_residual_covariance_states_what_it_needs(params, needs):
    X = np.random.RandomState(0).uniform(size=(50, 16))
    det = AutoencoderAnomalyDetector(residual_covariance="full", max_iter=1, **params)
    with pytest.raises(ValueError, match=f"residual_covariance='full' needs {re.escape(needs)}"):
        det.fit(X)
    assert not hasattr(det, "module_")


@pytest.mark.parametrize("value", ["diag", None, 1])
def test_residual_covariance_must_be_an_option(value, blobs):
    with pytest.raises(InvalidParameterError, match="'residual_covariance' parameter"):
        AutoencoderAnomalyDetector(residual_covariance=value).fit(blobs[0])


def test_full_residual_statistics_count_sample_weights_as_frequencies(blobs):
    X, _ = blobs
    counts = np.random.RandomState(1).randint(0, 4, size=len(X))
    det = AutoencoderAnomalyDetector(n_components=2, trim_fraction=0.0, max_iter=5,
                                     random_state=0).fit(X, sample_weight=counts)
    repeated = np.repeat(_residuals(det, X), counts, axis=0)
    covariance, shrinkage = ledoit_wolf(repeated)
    d = X.shape[1]
    covariance += max(1e-6 * np.trace(covariance) / d, 1e-12) * np.eye(d)
    np.testing.assert_allclose(det.residual_mean_, repeated.mean(0), rtol=1e-7, atol=1e-12)
    assert det.residual_shrinkage_ == pytest.approx(shrinkage, rel=1e-7)
    whitening = det.residual_whitening_
    assert np.allclose(np.tril(whitening, -1), 0)  # upper triangular
    np.testing.assert_allclose(whitening @ whitening.T, np.linalg.inv(covariance), rtol=1e-6,
                               atol=1e-9 * np.abs(np.linalg.inv(covariance)).max())


def test_full_residual_covariance_keeps_in_memory_residuals_within_its_budget(blobs,
                                                                              monkeypatch,
                                                                              tmp_path):
    X, _ = blobs
    calls = []
    errors, moments = skae._inference.reconstruction_errors, skae._inference.residual_moments

    def counting_errors(*args, **kwargs):
        calls.append("errors")
        return errors(*args, **kwargs)

    def counting_moments(*args, **kwargs):
        kept = len(args) > 4 and args[4] is not None
        calls.append("moments (kept)" if kept else "moments (network)")
        return moments(*args, **kwargs)

    monkeypatch.setattr(skae._inference, "reconstruction_errors", counting_errors)
    monkeypatch.setattr(skae._inference, "residual_moments", counting_moments)
    cached = AutoencoderAnomalyDetector(**CODE).fit(X)
    # one pass of the network for errors, codes and residuals; moments and
    # distances from the residuals kept in memory
    assert calls == ["errors", "moments (kept)"]
    calls.clear()
    monkeypatch.setattr(skae.anomaly, "RESIDUAL_CACHE_BYTES", X.size * 8 - 1)  # too small
    again = AutoencoderAnomalyDetector(**CODE).fit(X)
    assert calls == ["errors", "moments (network)", "errors"]
    np.testing.assert_allclose(again.score_samples(X), cached.score_samples(X), rtol=1e-12)
    assert again.offset_ == pytest.approx(cached.offset_, rel=1e-12)
    calls.clear()
    monkeypatch.setattr(skae.anomaly, "RESIDUAL_CACHE_BYTES", 2**40)
    path = tmp_path / "X.npy"
    np.save(path, X)
    AutoencoderAnomalyDetector(**CODE).fit(np.load(path, mmap_mode="r"))
    assert calls == ["errors", "moments (network)", "errors"]  # out of core: never kept


# ------------------------------------------------------- nearest neighbours
NEIGHBORS = dict(n_components=2, max_iter=10, random_state=0)


def _embedding(det, X):
    """The documented embedding (see ``n_neighbors``), from the fitted statistics."""
    residuals = _residuals(det, X)  # with relative errors, over sqrt(feature_error_scale_)
    if det.residual_whitening_ is not None:
        white = (residuals - det.residual_mean_) @ det.residual_whitening_
    else:
        white = residuals / np.sqrt(det.error_scale_)
    codes = det._errors_and_codes(X)[1]
    code = (codes - det.code_mean_) @ det.code_whitening_ * np.sqrt(det.code_weight)
    return np.hstack([white, code])


def _kth_squared_distances(reference, X, k, leave_self_out=False):
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(reference)
    distances, _ = nn.kneighbors(None if leave_self_out else X)
    return distances[:, -1] ** 2


@pytest.mark.parametrize("params", [dict(), dict(residual_covariance="spherical"),
                                    dict(relative_errors=True), dict(code_weight=2.5)])
def test_neighbor_embedding_is_the_vector_whose_length_is_the_gaussian_score(blobs, params):
    X, _ = blobs
    gaussian = AutoencoderAnomalyDetector(trim_fraction=0.2, **NEIGHBORS, **params).fit(X)
    det = AutoencoderAnomalyDetector(trim_fraction=0.2, n_neighbors=1, **NEIGHBORS,
                                     **params).fit(X)
    np.testing.assert_array_equal(det.reconstruct(X), gaussian.reconstruct(X))
    z = _embedding(det, X)
    np.testing.assert_allclose(np.square(z).sum(1), -gaussian.score_samples(X), rtol=1e-4)
    kept = _kept(det.feature_errors(X).mean(1), 0.2)
    assert det.n_neighbors_ == 1 and det.reference_weights_ is None
    assert det.reference_embedding_.shape == (kept.sum(), 8 + 2)
    np.testing.assert_allclose(det.reference_embedding_, z[kept], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k", [1, 3])
def test_neighbor_scores_are_kth_distances_with_training_samples_left_out(blobs, k):
    X, _ = blobs
    det = AutoencoderAnomalyDetector(trim_fraction=0.0, n_neighbors=k, contamination=0.1,
                                     **NEIGHBORS).fit(X)
    reference = det.reference_embedding_
    new = np.random.RandomState(1).normal(size=(30, 8))
    expected = _kth_squared_distances(reference, _embedding(det, new), k)
    np.testing.assert_allclose(-det.score_samples(new), expected, rtol=1e-6)
    # a training sample is its own nearest neighbour in score_samples (a
    # distance that rounding takes below 0 is 0)...
    if k == 1:
        scores = det.score_samples(X)
        assert (scores <= 0).all() and scores.min() > -1e-9
    # ...but not in the training scores that set the threshold
    training = _kth_squared_distances(reference, None, k, leave_self_out=True)
    assert det.offset_ == pytest.approx(np.quantile(-training, 0.1), rel=1e-6)
    assert (-training < det.offset_).mean() == pytest.approx(0.1, abs=0.01)


def test_neighbor_scores_of_trimmed_training_samples_keep_every_neighbour(blobs):
    X, _ = blobs
    det = AutoencoderAnomalyDetector(trim_fraction=0.3, n_neighbors=2, contamination=0.2,
                                     **NEIGHBORS).fit(X)
    z = _embedding(det, X)
    kept = _kept(det.feature_errors(X).mean(1), 0.3)
    training = np.empty(len(X))
    training[~kept] = _kth_squared_distances(det.reference_embedding_, z[~kept], 2)
    training[kept] = _kth_squared_distances(det.reference_embedding_, None, 2,
                                            leave_self_out=True)
    assert det.offset_ == pytest.approx(np.quantile(-training, 0.2), rel=1e-5)


def test_kth_distances_count_weights_as_frequencies():
    rng = np.random.RandomState(0)
    reference = rng.normal(size=(40, 3))
    counts = rng.randint(1, 4, size=40)
    queries = rng.normal(size=(25, 3))
    repeated = np.repeat(reference, counts, axis=0)
    for k in (1, 2, 5):
        got = _neighbors.kth_distances(queries, reference, counts.astype(float), k)
        np.testing.assert_allclose(got, _kth_squared_distances(repeated, queries, k),
                                   rtol=1e-9)
        # left out: one copy of each reference row's own
        own = np.arange(40)
        got = _neighbors.kth_distances(reference, reference, counts.astype(float), k, own)
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        expected = [_kth_squared_distances(np.delete(repeated, s, axis=0), reference[i:i + 1],
                                           k)[0] for i, s in enumerate(starts)]
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    # fractional weights: the k-th neighbour is where the cumulated weight reaches k
    halves = np.full(40, 0.5)
    np.testing.assert_allclose(_neighbors.kth_distances(queries, reference, halves, 1),
                               _kth_squared_distances(reference, queries, 2), rtol=1e-9)
    # a reference row of weight below 1 left out entirely; not a query of its own
    light = np.full(40, 0.25)
    assert np.isinf(_neighbors.kth_distances(reference[:1], reference[:4], light[:4], 1,
                                             np.array([0]))[0])
    # fewer reference rows than neighbours (left out or not): infinitely far
    assert np.isinf(_neighbors.kth_distances(queries[:2], reference[:3], None, 4)).all()
    assert np.isinf(_neighbors.kth_distances(reference[:3], reference[:3], None, 3,
                                             np.arange(3))).all()
    # a query that is not finite is infinitely far
    bad = queries[:3].copy()
    bad[0, 0], bad[1, 1] = np.inf, np.nan
    got = _neighbors.kth_distances(bad, reference, None, 1)
    assert np.isinf(got[:2]).all() and np.isfinite(got[2])


def test_n_neighbors_flags_a_sample_between_clusters_that_the_gaussian_does_not():
    # clean training data in two clusters: their midpoint is the Gaussian's
    # centre, but far from every training sample
    rng = np.random.RandomState(0)
    side = rng.choice([-4.0, 4.0], size=600)
    X = np.column_stack([side + 0.3 * rng.normal(size=600), rng.normal(size=600)])
    params = dict(trim_fraction=0.0, max_iter=30, contamination=0.01, random_state=0)
    middle = np.zeros((1, 2))
    gaussian = AutoencoderAnomalyDetector(**params).fit(X)
    neighbors = AutoencoderAnomalyDetector(n_neighbors=5, **params).fit(X)
    assert gaussian.decision_function(middle)[0] > 5
    assert neighbors.decision_function(middle)[0] < -0.2
    assert (neighbors.predict(X) == 1).mean() == pytest.approx(0.99, abs=0.005)


@pytest.mark.parametrize("params, needs", [
    (dict(code_distance=None), "code_distance='add'"),
    (dict(code_distance="multiply"), "code_distance='add'"),
    (dict(variational=True), "code_distance='add'"),
    (dict(architecture="conv", image_shape=(1, 4, 4)), "code_distance='add'"),
    (dict(loss="bce", output_activation="sigmoid", standardize=False), "loss='mse'"),
])
def test_n_neighbors_states_what_it_needs(params, needs):
    X = np.random.RandomState(0).uniform(size=(50, 16))
    det = AutoencoderAnomalyDetector(n_neighbors=1, max_iter=1, **params)
    with pytest.raises(ValueError, match=f"n_neighbors=1 needs {re.escape(needs)}"):
        det.fit(X)
    assert not hasattr(det, "module_")


def test_n_neighbors_needs_enough_kept_training_samples_and_a_failed_fit_keeps_the_last(blobs):
    X, _ = blobs
    det = AutoencoderAnomalyDetector(n_neighbors=2, trim_fraction=0.5, **NEIGHBORS).fit(X[:6])
    reference = det.reference_embedding_.copy()
    scores = det.score_samples(X)
    det.set_params(n_neighbors=3)
    with pytest.raises(ValueError, match=r"n_neighbors=3 needs .* to weigh n_neighbors \+ 1 = 4 "
                                         r"at least, .*got 3 samples of total weight 3\."):
        det.fit(X[:6])
    assert det.n_neighbors_ == 2
    np.testing.assert_array_equal(det.reference_embedding_, reference)
    np.testing.assert_array_equal(det.score_samples(X), scores)


@pytest.mark.parametrize("value", [0, -1, 1.5, "1"])
def test_n_neighbors_is_validated(value, blobs):
    with pytest.raises(InvalidParameterError, match="'n_neighbors' parameter"):
        AutoencoderAnomalyDetector(n_neighbors=value).fit(blobs[0])


def test_n_neighbors_follows_the_last_training_call(blobs):
    X, _ = blobs
    det = AutoencoderAnomalyDetector(n_neighbors=1, trim_fraction=0.0, **NEIGHBORS).fit(X)
    det.partial_fit(X[:100] + 5.0)
    assert det.reference_embedding_.shape[0] == 100
    np.testing.assert_allclose(det.reference_embedding_, _embedding(det, X[:100] + 5.0),
                               rtol=1e-4, atol=1e-4)
    det.set_params(n_neighbors=None).fit(X)
    assert det.n_neighbors_ is None and det.reference_embedding_ is None
    gaussian = AutoencoderAnomalyDetector(trim_fraction=0.0, **NEIGHBORS).fit(X)
    np.testing.assert_array_equal(det.score_samples(X), gaussian.score_samples(X))


@pytest.mark.parametrize("residual", ["full", "spherical"])
def test_neighbor_fit_embeds_the_in_memory_training_rows_from_one_pass(blobs, monkeypatch,
                                                                       residual):
    X, _ = blobs
    calls = []
    errors = skae._inference.reconstruction_errors

    def counting_errors(*args, **kwargs):
        calls.append(len(args[1]))  # rows
        return errors(*args, **kwargs)

    monkeypatch.setattr(skae._inference, "reconstruction_errors", counting_errors)
    params = dict(NEIGHBORS, n_neighbors=2, residual_covariance=residual)
    cached = AutoencoderAnomalyDetector(**params).fit(X)
    assert calls == [len(X)]  # the residuals and codes of the statistics' pass
    calls.clear()
    monkeypatch.setattr(skae.anomaly, "RESIDUAL_CACHE_BYTES", X.size * 8 - 1)  # too small
    again = AutoencoderAnomalyDetector(**params).fit(X)
    assert calls == [len(X), len(X)]  # the embeddings: one pass more (one block here)
    np.testing.assert_allclose(again.reference_embedding_, cached.reference_embedding_,
                               rtol=1e-9, atol=1e-12)
    assert again.offset_ == pytest.approx(cached.offset_, rel=1e-9)
