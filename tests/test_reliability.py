"""Regression tests for silent failures: public API only.

Each test states, in a comment at its top, what the code did before these
failures were fixed (skae at commit b3ae34f). All data is small and seeded;
warnings are errors here, so every expected warning is asserted.
"""

import _thread
import copy
import pickle
import signal
import threading
import time
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.utils.validation import check_is_fitted

from skae import AutoencoderAnomalyDetector, AutoencoderTransformer

pytestmark = [pytest.mark.filterwarnings("error"), pytest.mark.usefixtures("one_thread")]

ESTIMATORS = [AutoencoderTransformer, AutoencoderAnomalyDetector]

#: A short fit that stops as converged (no improvement can exceed tol) after a
#: few epochs, so it emits no ConvergenceWarning.
FAST = dict(max_iter=10, tol=1e3, n_iter_no_change=1)

#: One plain SGD update with a huge step on data of scale 10 (standardize=False):
#: the loss of the only epoch is finite (it is measured before the step), the
#: weights after that step are not.
DIVERGE = dict(
    solver="sgd", learning_rate_init=1e38, max_iter=1, batch_size=64,
    hidden_layer_sizes=(8,), standardize=False,
)




def _params(est):
    return {k: v.detach().cpu().clone() for k, v in est.module_.state_dict().items()}


def _assert_same_params(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _normal(n, d, seed=0):
    return np.random.RandomState(seed).normal(size=(n, d))


# --------------------------------------------------------- 1. huge-scale data
def test_detector_on_huge_scale_data_flags_planted_outliers():
    # Old: fit on X * 1e20 gave offset_ = nan and all-NaN score_samples;
    # predict returned +1 for every sample, the 5 planted outliers included.
    X = _normal(300, 5)
    X[:5] += 8
    det = AutoencoderAnomalyDetector(n_components=2, random_state=0).fit(X * 1e20)
    assert np.isfinite(det.offset_)
    assert np.all(np.isfinite(det.score_samples(X * 1e20)))
    assert np.all(np.isfinite(det.decision_function(X * 1e20)))
    huge_labels = det.predict(X * 1e20)
    assert np.all(huge_labels[:5] == -1)
    assert np.mean(huge_labels[5:] == 1) > 0.85


# ------------------------------------------- 2. overflow at inference, no NaN
def _extreme_rows(n_features):
    sign = (-1.0) ** np.arange(n_features)
    return np.vstack([3e38 * sign, np.full(n_features, 3e38), np.full(n_features, -3e38)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_detector_overflowing_rows_score_minus_inf_never_nan(dtype):
    # Old (20 features, float32): the all -3e38 row got score_samples = nan,
    # decision_function = nan, predict = +1 (an inlier!) and 20 NaNs in
    # feature_errors; the other rows got -inf. float64 input gave finite
    # scores of about -4e76 (no NaN; that dtype passed already).
    X = _normal(300, 20)
    det = AutoencoderAnomalyDetector(n_components=2, random_state=0).fit(X)
    rows = _extreme_rows(20).astype(dtype)
    scores = det.score_samples(rows)
    decision = det.decision_function(rows)
    errors = det.feature_errors(rows)
    assert not np.isnan(scores).any()
    assert not np.isnan(decision).any()
    assert not np.isnan(errors).any()
    assert np.all(det.predict(rows) == -1)
    assert np.all(decision < 0)
    # overflowed errors score -inf; the others are far below the threshold
    assert np.all(np.isneginf(scores) | (np.isfinite(scores) & (scores < det.offset_)))
    if scores.dtype == np.float32:  # an error ~1e76 overflows float32
        assert np.all(np.isneginf(scores))


def test_transformer_transform_of_extreme_float32_row_is_never_nan():
    # Old (20 features): transform of the float32 row [3e38, -3e38, ...]
    # returned NaN codes (the first layer's sum overflowed to inf - inf).
    X = _normal(300, 20)
    ae = AutoencoderTransformer(n_components=2, random_state=0, **FAST).fit(X)
    row = _extreme_rows(20)[:1].astype(np.float32)
    try:
        Z = ae.transform(row)
    except ValueError:
        return
    assert np.all(np.isfinite(Z))


# ---------------------------------------- 3. offset / tiny-spread features
def _one_feature_anomalies(mean, std, seed=0):
    """Train on N(0, 1) noise plus column 0 = mean + std * noise; the first
    20 of 120 test rows deviate by 10 std in column 0 only."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(400, 5))
    X[:, 0] = mean + std * rng.normal(size=400)
    X_test = rng.normal(size=(120, 5))
    X_test[:, 0] = mean + std * rng.normal(size=120)
    X_test[:20, 0] = mean + 10 * std * rng.choice([-1.0, 1.0], size=20)
    is_anomaly = np.zeros(120, dtype=bool)
    is_anomaly[:20] = True
    return X, X_test, is_anomaly


def test_detector_ranks_anomalies_of_large_offset_small_spread_feature():
    # Old: mean 1e6, std 1e-3 (float64 input) was standardized from float32
    # values (resolution 0.0625 at 1e6): the 10-sigma deviations vanished,
    # AUROC 0.46.
    X, X_test, is_anomaly = _one_feature_anomalies(1e6, 1e-3)
    det = AutoencoderAnomalyDetector(n_components=2, random_state=0).fit(X)
    assert roc_auc_score(is_anomaly, -det.score_samples(X_test)) > 0.95


@pytest.mark.parametrize("mean", [0.0, 1.0])
def test_detector_ranks_anomalies_of_tiny_spread_feature(mean):
    # Old: std 1e-13 < 1e-12 * max(|mean|, 1) was treated as a constant
    # feature (scale 1), so its 10-sigma anomalies were invisible and ranked
    # below normal samples: AUROC 0.46 for mean 0 and for mean 1.
    X, X_test, is_anomaly = _one_feature_anomalies(mean, 1e-13)
    det = AutoencoderAnomalyDetector(n_components=2, random_state=0).fit(X)
    assert roc_auc_score(is_anomaly, -det.score_samples(X_test)) > 0.95


# ------------------------------------------- 4. divergence on the last update
@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_divergence_on_last_update_raises(Estimator):
    # Old: no error; module_ ended with 57 (transformer) / 36 (detector)
    # non-finite parameters, loss_curve_ = [101.6] (finite), the detector's
    # offset_ = nan (plus a ConvergenceWarning for max_iter=1).
    X = _normal(50, 4) * 10
    est = Estimator(n_components=2, random_state=0, **DIVERGE)
    with pytest.raises(FloatingPointError):
        est.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(est)


# ------------------------------------- 5. partial_fit on an overflowing batch
def test_failed_partial_fit_leaves_estimator_unchanged():
    # Old: partial_fit on a batch holding 1e18 succeeded silently (loss
    # 4.5e33 appended to loss_curve_, n_iter_ 1 -> 2, every parameter
    # changed) and left Adam's exp_avg_sq = inf for 4 of the 40 first-layer
    # weights, which then never changed again in later partial_fits.
    X = _normal(64, 5)
    ae = AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(8,), batch_size=16, shuffle=False, random_state=0
    ).partial_fit(X)
    before, n_iter, loss_curve = _params(ae), ae.n_iter_, list(ae.loss_curve_)
    reference = copy.deepcopy(ae)
    X_bad = X.copy()
    X_bad[3, 1] = 1e18
    with pytest.raises((FloatingPointError, ValueError)):
        ae.partial_fit(X_bad)
    _assert_same_params(_params(ae), before)
    assert ae.n_iter_ == n_iter
    assert ae.loss_curve_ == loss_curve
    # the optimizer is not poisoned either: training goes on as if the bad
    # batch had never been seen (shuffle=False: no randomness involved; the
    # deep copy keeps the optimizer state, see case 8)
    ae.partial_fit(X)
    reference.partial_fit(X)
    _assert_same_params(_params(ae), _params(reference))


# ---------------------------------------- 6. Ctrl-C during greedy pretraining
def _stop_interrupts(timer, stop, guard):
    """Stop the interrupting threads and absorb a Ctrl-C still pending."""
    while True:
        try:
            stop.set()
            timer.cancel()
            for thread in (timer, guard):
                if thread.ident is not None:  # started
                    thread.join()
            time.sleep(0.05)  # a pending KeyboardInterrupt is raised here
            return
        except KeyboardInterrupt:
            continue


@pytest.fixture
def sigint_raises():
    """Make SIGINT raise KeyboardInterrupt, as in an interactive session.

    A process started in the background (e.g. by a CI runner) may inherit an
    ignored SIGINT, and ``_thread.interrupt_main`` then does nothing.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_keyboard_interrupt_during_greedy_pretraining_stops_the_fit(sigint_raises):
    # Old: the Ctrl-C only ended the first pretraining stage (warning
    # "Training interrupted by user."); the other stages and the fine-tuning
    # ran on for their 10_000 epochs each (minutes). In this test a
    # safety-net thread interrupts again every 0.5 s from 8 s on, so the old
    # fit returned after about 9.5 s and failed the elapsed-time check.
    X = _normal(2000, 20)
    # Warm up first: the first optimizer built in a process imports
    # torch._dynamo (over a second on a busy machine), and a Ctrl-C landing
    # in that import, outside training, would rightly escape from fit.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        AutoencoderTransformer(
            n_components=2, hidden_layer_sizes=(4, 3), pretraining="greedy", max_iter=1,
            random_state=0,
        ).fit(X[:20])
    ae = AutoencoderTransformer(
        n_components=4, hidden_layer_sizes=(32, 16), pretraining="greedy",
        pretraining_max_iter=10_000, max_iter=10_000, tol=0, n_iter_no_change=10_000,
        random_state=0,
    )
    stop = threading.Event()

    def safety_net():  # only matters when the first Ctrl-C does not end the fit
        if stop.wait(8.0):
            return
        while not stop.wait(0.5):
            _thread.interrupt_main()

    timer = threading.Timer(1.0, _thread.interrupt_main)
    guard = threading.Thread(target=safety_net, daemon=True)
    escaped = False
    elapsed = None
    try:
        try:
            with pytest.warns(UserWarning, match="interrupted"):
                start = time.perf_counter()
                timer.start()
                guard.start()
                try:
                    ae.fit(X)
                except KeyboardInterrupt:
                    escaped = True
                elapsed = time.perf_counter() - start
        finally:
            _stop_interrupts(timer, stop, guard)
    except KeyboardInterrupt:  # from the safety net, outside the fit
        escaped = True
    assert not escaped, "KeyboardInterrupt escaped from fit"
    assert elapsed is not None and elapsed < 6.0, elapsed
    Z = ae.transform(X[:50])
    assert Z.shape == (50, 4)
    assert np.all(np.isfinite(Z))


# ------------------------------------------------------ 7. transactional refit
@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_diverging_refit_keeps_previous_model(Estimator):
    # Old: the diverging refit on 6 features raised nothing (a
    # ConvergenceWarning at most) and replaced the model: n_features_in_
    # became 6, module_ held inf/nan, the detector's offset_ became nan.
    X4 = _normal(60, 4)
    est = Estimator(n_components=2, random_state=0, **FAST).fit(X4)
    before = est.transform(X4) if hasattr(est, "transform") else est.score_samples(X4)
    offset = getattr(est, "offset_", None)
    est.set_params(**DIVERGE)
    with pytest.raises(FloatingPointError):
        est.fit(_normal(50, 6, seed=1) * 10)
    assert est.n_features_in_ == 4
    after = est.transform(X4) if hasattr(est, "transform") else est.score_samples(X4)
    np.testing.assert_array_equal(after, before)
    if offset is not None:
        assert est.offset_ == offset
        np.testing.assert_allclose(est.decision_function(X4), before - offset, rtol=1e-12)


# ----------------------------------------- 8. pickle / deepcopy keep optimizer
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_copies_keep_optimizer_state(Estimator, how):
    # Old: __getstate__ dropped the optimizer, so the copy's partial_fit
    # started a fresh Adam and its parameters differed from the original's
    # after the same partial_fit (pickle and deepcopy alike).
    X, X2 = _normal(80, 5), _normal(40, 5, seed=1)
    a = Estimator(n_components=2, hidden_layer_sizes=(8,), random_state=0, **FAST).fit(X)
    b = pickle.loads(pickle.dumps(a)) if how == "pickle" else copy.deepcopy(a)
    a.partial_fit(X2)
    b.partial_fit(X2)
    _assert_same_params(_params(a), _params(b))


# ------------------------------------------------------ 9. negative strides
@pytest.mark.parametrize("view", ["reversed_rows", "reversed_columns"])
def test_negative_stride_arrays(view):
    # Old: every method raised ValueError("At least one stride in the given
    # numpy array is negative, ...") from torch.as_tensor.
    X = _normal(60, 5)
    Xv = X[::-1] if view == "reversed_rows" else X[:, ::-1]
    assert any(s < 0 for s in Xv.strides)
    Xc = np.ascontiguousarray(Xv)
    kwargs = dict(n_components=2, hidden_layer_sizes=(8,), random_state=0, **FAST)

    def close(a, b):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)

    ae_v = AutoencoderTransformer(**kwargs).fit(Xv)
    ae_c = AutoencoderTransformer(**kwargs).fit(Xc)
    _assert_same_params(_params(ae_v), _params(ae_c))
    ae_v.partial_fit(Xv)
    ae_c.partial_fit(Xc)
    _assert_same_params(_params(ae_v), _params(ae_c))
    close(ae_c.transform(Xv), ae_c.transform(Xc))
    close(ae_c.score_samples(Xv), ae_c.score_samples(Xc))
    Z = ae_c.transform(Xc)
    Zv = Z[::-1]
    close(ae_c.inverse_transform(Zv), ae_c.inverse_transform(np.ascontiguousarray(Zv)))

    det_v = AutoencoderAnomalyDetector(**kwargs).fit(Xv)
    det_c = AutoencoderAnomalyDetector(**kwargs).fit(Xc)
    _assert_same_params(_params(det_v), _params(det_c))
    det_v.partial_fit(Xv)
    det_c.partial_fit(Xc)
    _assert_same_params(_params(det_v), _params(det_c))
    assert det_v.offset_ == pytest.approx(det_c.offset_, rel=1e-6)
    close(det_c.score_samples(Xv), det_c.score_samples(Xc))
    close(det_c.decision_function(Xv), det_c.decision_function(Xc))
    np.testing.assert_array_equal(det_c.predict(Xv), det_c.predict(Xc))
    close(det_c.feature_errors(Xv), det_c.feature_errors(Xc))


# ------------------------------------------------------------ 10. parameters
@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize(
    "params",
    [
        dict(beta_1=0),
        dict(beta_1=np.float32(0.9)),
        dict(beta_2=np.float32(0.99)),
        dict(learning_rate_init=np.float32(1e-3)),
        dict(momentum=np.float32(0.9), solver="sgd"),
        dict(batch_size=np.int64(16)),
        dict(n_components=np.int64(2)),
        dict(max_iter=np.int32(3)),
    ],
    ids=lambda p: ",".join(f"{k}={type(v).__name__}" for k, v in p.items()),
)
def test_valid_parameters_of_other_numeric_types(Estimator, params):
    # Old: beta_1=0 and beta_1/beta_2 as np.float32 failed in torch.optim.Adam
    # with ValueError("betas must be either both floats or both Tensors").
    # The others already worked (lr, momentum as np.float32; batch_size,
    # n_components as np.int64; max_iter as np.int32). The ConvergenceWarning
    # of these few-epoch fits is beside the point here.
    kwargs = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    kwargs.update(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = Estimator(**kwargs).fit(_normal(40, 5))
    assert est.n_iter_ >= 1
    assert np.all(np.isfinite(est.score_samples(_normal(5, 5, seed=1))))


def _no_mps():
    return not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available())


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize(
    "params, name",
    [
        (dict(n_components=True), "n_components"),
        (dict(batch_size=True), "batch_size"),
        (dict(momentum=True), "momentum"),
        (dict(max_iter=True), "max_iter"),
        (dict(device="meta"), "device"),
        pytest.param(
            dict(device="mps"), "device",
            marks=pytest.mark.skipif(not _no_mps(), reason="MPS is available here"),
        ),
        pytest.param(
            dict(device="cuda:7"), "device",
            marks=pytest.mark.skipif(torch.cuda.device_count() > 7, reason="cuda:7 exists"),
        ),
        (dict(sparsity="l1", sparsity_layers=[]), "sparsity_layers"),
        (dict(sparsity="l1", sparsity_layers=[True]), "sparsity_layers"),
    ],
    ids=lambda p: p if isinstance(p, str) else ",".join(f"{k}={v!r}" for k, v in p.items()),
)
def test_invalid_parameters_raise_naming_the_parameter(Estimator, params, name):
    # Old: n_components=True / batch_size=True -> TypeError from torch.empty
    # (no parameter named); momentum=True, max_iter=True, sparsity_layers=[]
    # and [True] fitted silently; device="meta" -> RuntimeError /
    # NotImplementedError, device="mps" -> RuntimeError from torch.
    # device="cuda:7" already raised ValueError naming 'device' (passes).
    kwargs = dict(n_components=2, hidden_layer_sizes=(8,), random_state=0, **FAST)
    kwargs.update(params)
    with pytest.raises((ValueError, TypeError), match=f"'{name}'"):
        Estimator(**kwargs).fit(_normal(40, 5))


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize(
    "change, name",
    [(dict(hidden_layer_sizes=(8,)), "hidden_layer_sizes"), (dict(n_components=3), "n_components")],
)
def test_warm_start_rejects_architecture_change(Estimator, change, name):
    # Old: the second fit silently reused the old network (hidden layer of 4,
    # code of 2), ignoring the new hidden_layer_sizes / n_components.
    X = _normal(40, 5)
    est = Estimator(
        n_components=2, hidden_layer_sizes=(4,), warm_start=True, random_state=0, **FAST
    ).fit(X)
    est.set_params(**change)
    with pytest.raises(ValueError, match=f"'{name}'"):
        est.fit(X)


# ----------------------------------------------------- 11. unfitted names out
def test_get_feature_names_out_unfitted_raises():
    # Old: returned ['autoencodertransformer0', 'autoencodertransformer1'].
    with pytest.raises(NotFittedError):
        AutoencoderTransformer().get_feature_names_out()


# ------------------------------------------ 12. partial_fit + early_stopping
@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_partial_fit_small_batch_with_early_stopping(Estimator):
    # Old: ValueError("early_stopping=True with validation_fraction=0.1
    # leaves no validation or no training sample among 5 samples ...").
    X = _normal(5, 5)
    est = Estimator(n_components=2, hidden_layer_sizes=(8,), early_stopping=True, random_state=0)
    est.partial_fit(X)
    assert est.n_iter_ == 1
    assert np.all(np.isfinite(est.score_samples(X)))


# ------------------------------------------- 13. beyond float32's range
def _beyond_float32():
    X = _normal(100, 5)
    X[:, 2] = 1e39 * (1 + 0.1 * np.random.RandomState(1).normal(size=100))
    return X


def test_values_beyond_float32_without_standardize_raise_clearly():
    # Old: FloatingPointError("The training loss became nan at epoch 1 ...
    # Lower learning_rate_init or standardize the input.").
    ae = AutoencoderTransformer(n_components=2, standardize=False, random_state=0, **FAST)
    with pytest.raises(ValueError, match="float32"):
        ae.fit(_beyond_float32())


def test_values_beyond_float32_with_standardize_fit():
    # Old: the same FloatingPointError as without standardize: X was cast to
    # float32 (1e39 -> inf) before being centred and scaled.
    X = _beyond_float32()
    ae = AutoencoderTransformer(n_components=2, standardize=True, random_state=0, **FAST).fit(X)
    Z = ae.transform(X)
    assert np.all(np.isfinite(Z))
    assert np.all(np.isfinite(ae.score_samples(X)))
    assert np.all(np.isfinite(ae.inverse_transform(Z)))
    det = AutoencoderAnomalyDetector(n_components=2, random_state=0).fit(X)
    assert np.isfinite(det.offset_)
    assert np.all(np.isfinite(det.score_samples(X)))


# --------------------------------------------- 14. detector defaults are quiet
def test_detector_defaults_fit_without_warning():
    # Old: ConvergenceWarning("AutoencoderAnomalyDetector: maximum iterations
    # (20) reached and the optimization hasn't converged yet.").
    X = _normal(300, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AutoencoderAnomalyDetector(random_state=0).fit(X)


def test_partial_fit_beyond_float32_after_centring_raises_and_keeps_the_model():
    # the fitted statistics centre and scale new data in float64; a value that
    # still overflows float32 there cannot be trained on: a clear error naming
    # X and float32, and the estimator is left as it was
    X = _normal(100, 4)
    ae = AutoencoderAnomalyDetector(n_components=2, random_state=0).partial_fit(X)
    before = _params(ae)
    wild = X.copy()
    wild[0, 2] = 1e300
    with pytest.raises(ValueError, match="feature 2.*float32"):
        ae.partial_fit(wild)
    after = _params(ae)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert ae.n_iter_ == 1


# ------------------------------------------- found by reviewing the rewrite
def test_warm_start_with_early_stopping_restores_this_calls_best_epoch():
    # the best score of an earlier call used to carry over: no epoch of the
    # warm start beat it, so nothing was restored and the attribute named a
    # score whose weights the model no longer had
    X = _normal(300, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = AutoencoderTransformer(2, max_iter=30, early_stopping=True,
                                     validation_fraction=0.3, random_state=0).fit(X)
        n_first = est.n_iter_
        est.set_params(warm_start=True, max_iter=5, solver="sgd", alpha=50.0,
                       learning_rate_init=0.01).fit(X)
    this_call = est.validation_scores_[n_first:]
    assert len(this_call) == est.n_iter_ - n_first
    assert est.best_validation_score_ == max(this_call)


def test_loss_terms_stay_aligned_with_epochs_when_a_term_is_switched_on():
    X = _normal(100, 4)
    est = AutoencoderTransformer(2, max_iter=3, tol=1e3, n_iter_no_change=1,
                                 random_state=0).fit(X)
    est.set_params(sparsity="l1", sparsity_weight=1.0).partial_fit(X)
    assert all(len(curve) == est.n_iter_ == len(est.loss_curve_)
               for curve in est.loss_terms_.values())
    assert est.loss_terms_["sparsity"][:-1] == [0.0] * (est.n_iter_ - 1)
    assert est.loss_terms_["sparsity"][-1] > 0


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_bce_inference_outside_unit_interval_raises_naming_the_loss(Estimator):
    X = (_normal(100, 4) > 0).astype(float)
    est = Estimator(2, loss="bce", output_activation="sigmoid", standardize=False,
                    max_iter=3, tol=1e3, n_iter_no_change=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="loss='bce' needs X in"):
        est.score_samples(X * 2 - 0.5)


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
@pytest.mark.parametrize("params", [dict(contractive_weight=0.1), dict(sparsity="l1"),
                                    dict(precision="bfloat16"), dict()])
def test_fit_inside_a_no_grad_block_trains(mode, params):
    X = _normal(100, 4)
    context = torch.no_grad() if mode == "no_grad" else torch.inference_mode()
    with context:
        est = AutoencoderTransformer(2, max_iter=3, tol=1e3, n_iter_no_change=1,
                                     random_state=0, **params).fit(X)
        est.partial_fit(X)
    reference = AutoencoderTransformer(2, max_iter=3, tol=1e3, n_iter_no_change=1,
                                       random_state=0, **params).fit(X).partial_fit(X)
    np.testing.assert_array_equal(est.transform(X), reference.transform(X))


def test_fit_ignores_torchs_default_dtype():
    X = _normal(100, 4)
    reference = AutoencoderTransformer(2, max_iter=3, tol=1e3, n_iter_no_change=1,
                                       random_state=0).fit(X).transform(X)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        est = AutoencoderTransformer(2, max_iter=3, tol=1e3, n_iter_no_change=1,
                                     random_state=0).fit(X)
    finally:
        torch.set_default_dtype(previous)
    assert all(p.dtype == torch.float32 for p in est.module_.parameters())
    np.testing.assert_array_equal(est.transform(X), reference)


@pytest.mark.parametrize(
    "params, name",
    [
        (dict(epsilon=1e-320), "epsilon"),
        (dict(learning_rate_init=1e-45), "learning_rate_init"),
        (dict(hidden_layer_sizes={4: 1}), "hidden_layer_sizes"),
        (dict(hidden_layer_sizes={64, 8}), "hidden_layer_sizes"),
        (dict(sparsity="l1", hidden_layer_sizes=(4,), sparsity_layers=[0, 0]), "sparsity_layers"),
        (dict(sparsity="l1", hidden_layer_sizes=(4,), sparsity_layers=[1, -1]), "sparsity_layers"),
    ],
)
def test_degenerate_parameters_raise_naming_them(params, name):
    with pytest.raises(ValueError, match=f"'{name}'"):
        AutoencoderTransformer(2, max_iter=1, random_state=0, **params).fit(_normal(20, 4))
