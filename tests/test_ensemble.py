"""Behaviour of AutoencoderEnsembleDetector."""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.metrics import roc_auc_score

from skae import AutoencoderAnomalyDetector, AutoencoderEnsembleDetector
from skae._compat import InvalidParameterError

pytestmark = pytest.mark.usefixtures("one_thread")

MEMBER = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=5, batch_size=32)


@pytest.fixture(scope="module")
def data():
    """Rows near a plane in 6-D, and 10 rows off it."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 6)) + 0.05 * rng.normal(size=(200, 6))
    outliers = 3 * rng.normal(size=(10, 6))
    return np.vstack([X, outliers]), np.r_[np.zeros(200), np.ones(10)]


def ensemble(**params):
    params = {"n_estimators": 3, "random_state": 0, **params}
    return AutoencoderEnsembleDetector(AutoencoderAnomalyDetector(**MEMBER), **params)


def test_scores_are_the_mean_of_members_that_differ_by_seed(data):
    X, y = data
    ens = ensemble().fit(X)
    assert len(ens.estimators_) == 3 and len(set(ens.random_states_)) == 3
    expected = np.random.RandomState(0).randint(np.iinfo(np.int32).max, size=3)
    assert_array_equal(ens.random_states_, expected)
    for member, seed in zip(ens.estimators_, ens.random_states_):
        alone = AutoencoderAnomalyDetector(random_state=int(seed), **MEMBER).fit(X)
        assert_array_equal(member.score_samples(X), alone.score_samples(X))
    scores = [m.score_samples(X) for m in ens.estimators_]
    assert not np.allclose(scores[0], scores[1])  # the seeds matter
    assert_allclose(ens.score_samples(X), np.mean(scores, axis=0), rtol=1e-12)
    assert_allclose(ens.feature_errors(X),
                    np.mean([m.feature_errors(X) for m in ens.estimators_], axis=0), rtol=1e-12)
    assert roc_auc_score(y, -ens.score_samples(X)) > 0.95
    # the same random_state, the same ensemble
    assert_array_equal(ensemble().fit(X).score_samples(X), ens.score_samples(X))


@pytest.mark.parametrize("contamination", [0.05, "auto"])
def test_one_member_thresholds_as_the_detector(data, contamination):
    """The threshold rule is the detector's, applied to the ensemble's scores."""
    X, _ = data
    ens = ensemble(n_estimators=1, contamination=contamination).fit(X)
    seed = int(ens.random_states_[0])
    det = AutoencoderAnomalyDetector(random_state=seed, contamination=contamination,
                                     **MEMBER).fit(X)
    assert_array_equal(ens.score_samples(X), det.score_samples(X))
    assert ens.offset_ == det.offset_
    assert_array_equal(ens.predict(X), det.predict(X))
    assert_allclose(ens.decision_function(X), ens.score_samples(X) - ens.offset_)
    if contamination != "auto":
        assert np.mean(ens.predict(X) == -1) == pytest.approx(contamination, abs=0.01)


def test_sample_weights_act_as_copies(data):
    X, _ = data
    counts = np.random.RandomState(1).randint(0, 3, size=len(X))
    weighted = ensemble(n_estimators=2).fit(X, sample_weight=counts)
    repeated = ensemble(n_estimators=2).fit(np.repeat(X, counts, axis=0))
    assert_array_equal(weighted.score_samples(X), repeated.score_samples(X))
    assert weighted.offset_ == repeated.offset_


def test_partial_fit_trains_every_member_one_epoch(data):
    X, _ = data
    ens = ensemble(n_estimators=2).partial_fit(X)
    assert [m.n_iter_ for m in ens.estimators_] == [1, 1]
    seeds = ens.random_states_.copy()
    ens.partial_fit(X)
    assert [m.n_iter_ for m in ens.estimators_] == [2, 2]
    assert_array_equal(ens.random_states_, seeds)
    assert_allclose(ens.score_samples(X),
                    np.mean([m.score_samples(X) for m in ens.estimators_], axis=0), rtol=1e-12)


def test_a_failing_member_leaves_the_ensemble_as_it_was(data, monkeypatch):
    X, _ = data
    ens = ensemble(n_estimators=2).fit(X)
    before = pickle.dumps(ens)
    calls = []
    real = AutoencoderAnomalyDetector.partial_fit

    def second_fails(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise FloatingPointError("the loss became NaN")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderAnomalyDetector, "partial_fit", second_fails)
    with pytest.raises(FloatingPointError):
        ens.partial_fit(X)
    assert pickle.dumps(ens) == before
    # a failing fit: the members' parameters conflict
    ens.estimator.set_params(variational=True, relative_errors=True)
    with pytest.raises(ValueError, match="relative_errors=True needs variational=False"):
        ens.fit(X)
    ens.estimator.set_params(variational=False, relative_errors=False)
    assert pickle.dumps(ens) == before


def test_parameters_are_checked_in_fit(data):
    X, _ = data
    with pytest.raises(InvalidParameterError, match="'n_estimators' parameter"):
        ensemble(n_estimators=0).fit(X)
    with pytest.raises(InvalidParameterError, match="'estimator' parameter"):
        AutoencoderEnsembleDetector(estimator="iforest").fit(X)
    with pytest.raises(InvalidParameterError, match="'contamination' parameter"):
        ensemble(contamination=0.7).fit(X)


def test_dataframes_and_lazy_dask_inference(data):
    pd = pytest.importorskip("pandas")
    da = pytest.importorskip("dask.array")
    X, _ = data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    ens = ensemble(n_estimators=2).fit(frame)
    assert list(ens.feature_names_in_) == list(frame.columns)
    errors = ens.set_output(transform="pandas").feature_errors(frame)
    assert list(errors.columns) == list(frame.columns)
    ens = ensemble(n_estimators=2).fit(X)  # a Dask array has no column names
    lazy = ens.score_samples(da.from_array(X, chunks=(50, 6)))
    assert isinstance(lazy, da.Array)
    assert_allclose(lazy.compute(scheduler="synchronous"), ens.score_samples(X), rtol=1e-12)
    labels = ens.predict(da.from_array(X, chunks=(50, 6))).compute(scheduler="synchronous")
    assert_array_equal(labels, ens.predict(X))
    fitted_on_dask = ensemble(n_estimators=2).fit(da.from_array(X, chunks=(50, 6)))
    assert_allclose(fitted_on_dask.score_samples(X), ens.score_samples(X), rtol=1e-6)
    assert fitted_on_dask.offset_ == pytest.approx(ens.offset_, rel=1e-6)


def test_fit_on_a_memory_map_equals_in_memory(data, tmp_path):
    X, _ = data
    np.save(tmp_path / "X.npy", X)
    mapped = ensemble(n_estimators=2).fit(np.load(tmp_path / "X.npy", mmap_mode="r"))
    memory = ensemble(n_estimators=2).fit(X)
    assert_array_equal(mapped.score_samples(X), memory.score_samples(X))
    assert mapped.offset_ == memory.offset_


def test_score_and_feature_error_plots(data):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skae.plotting import FeatureErrorDisplay, ScoreDisplay

    X, _ = data
    ens = ensemble(n_estimators=2).fit(X)
    try:
        scores = ScoreDisplay.from_estimator(ens, X)
        assert sum(b.get_height() for b in scores.bars_[0]) == len(X)
        assert scores.threshold_line_.get_xdata()[0] == ens.offset_
        bars = FeatureErrorDisplay.from_estimator(ens, X, sample=-1)
        assert_allclose([b.get_height() for b in bars.bars_], ens.feature_errors(X[-1:])[0],
                        rtol=1e-6)
    finally:
        plt.close("all")
