"""Training semantics that a small change in the code would break silently.

Each test here pins down one behaviour whose mutation used to survive the
suite: noise in standardized units, early stopping that never trains on its
validation rows, and optimizer hyperparameters that reach the optimizer.
"""

import numpy as np
import pytest
import torch

import skae._data
from skae import AutoencoderAnomalyDetector, AutoencoderTransformer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def X():
    rng = np.random.RandomState(0)
    latent = rng.normal(size=(160, 2))
    return latent @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(160, 5))


@pytest.mark.parametrize("noise, level", [("gaussian", 0.5), ("masking", 0.3),
                                          ("salt_and_pepper", 0.2)])
def test_standardized_corruption_is_scale_invariant(X, noise, level):
    # With standardize=True the noise acts in standard deviations of each
    # feature: rescaling the columns must not change training at all. Noise
    # drawn in raw units (or masking to 0 instead of the mean) would.
    scales = np.array([1e-3, 1.0, 1e3, 5.0, 1e5])
    kwargs = dict(standardize=True, noise=noise, noise_level=level, max_iter=5, random_state=0)
    a = AutoencoderTransformer(2, **kwargs).fit(X)
    b = AutoencoderTransformer(2, **kwargs).fit(X * scales + 7.0)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(a.transform(X), b.transform(X * scales + 7.0), rtol=1e-3, atol=1e-4)


def test_gaussian_noise_level_is_in_standard_deviations(X):
    # the same fit with raw-unit noise would barely corrupt the 1e3-scaled data
    kwargs = dict(standardize=True, max_iter=40, learning_rate_init=1e-2, random_state=0)
    Xs = X * 1e3
    clean = AutoencoderTransformer(2, **kwargs).fit(Xs).loss_curve_[-1]
    noisy = AutoencoderTransformer(2, noise="gaussian", noise_level=1.0, **kwargs).fit(Xs)
    assert noisy.loss_curve_[-1] > 1.5 * clean


@pytest.mark.parametrize("Estimator", [AutoencoderTransformer, AutoencoderAnomalyDetector])
def test_early_stopping_never_trains_on_validation_rows(X, Estimator, monkeypatch):
    seen = {"train": set(), "validation": set()}
    original = skae._data.OnDevice.take

    def take(self, rows):
        which = "train" if torch.is_grad_enabled() else "validation"
        seen[which].update(rows.tolist())
        return original(self, rows)

    monkeypatch.setattr(skae._data.OnDevice, "take", take)
    est = Estimator(2, early_stopping=True, validation_fraction=0.25, max_iter=4,
                    random_state=0).fit(X)
    n_val = int(0.25 * len(X))
    assert len(seen["validation"]) == n_val
    assert len(seen["train"]) == len(X) - n_val
    assert not seen["train"] & seen["validation"]
    assert len(est.validation_scores_) == est.n_iter_


def _optimizer_groups(est):
    return est._optimizer_state["param_groups"]


def test_sgd_momentum_and_nesterov_reach_the_optimizer(X):
    def fit(**kw):
        return AutoencoderTransformer(2, solver="sgd", learning_rate_init=0.05, max_iter=5,
                                      random_state=0, **kw).fit(X)

    nesterov, classic, plain = fit(), fit(nesterovs_momentum=False), fit(momentum=0.0)
    assert all(g["nesterov"] and g["momentum"] == 0.9 for g in _optimizer_groups(nesterov))
    assert not any(g["nesterov"] for g in _optimizer_groups(classic))
    assert all(g["momentum"] == 0.0 for g in _optimizer_groups(plain))
    assert nesterov.loss_curve_ != classic.loss_curve_
    assert classic.loss_curve_ != plain.loss_curve_


@pytest.mark.parametrize("solver", ["adam", "adamw"])
def test_adam_hyperparameters_reach_the_optimizer(X, solver):
    def fit(**kw):
        return AutoencoderTransformer(2, solver=solver, max_iter=3, random_state=0, **kw).fit(X)

    default = fit()
    changed = {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-2, "alpha": 0.5}
    for name, value in changed.items():
        other = fit(**{name: value})
        assert other.loss_curve_ != default.loss_curve_, name
        groups = _optimizer_groups(other)
        if name.startswith("beta"):
            assert groups[0]["betas"][int(name[-1]) - 1] == value
        elif name == "epsilon":
            assert groups[0]["eps"] == value
        else:  # weight decay on weights only
            assert groups[0]["weight_decay"] == value and groups[1]["weight_decay"] == 0.0


def test_partial_fit_keeps_adam_moments_between_calls(X):
    # a fresh optimizer per call would restart Adam's bias correction
    ae = AutoencoderTransformer(2, random_state=0)
    for _ in range(3):
        ae.partial_fit(X)
    steps = {float(s["step"]) for s in ae._optimizer_state["state"].values()}
    n_batches = int(np.ceil(len(X) / ae.batch_size))
    assert steps == {3.0 * n_batches}
