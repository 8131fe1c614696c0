"""Behaviour of AutoencoderTransformer."""

import json
import pickle
import re
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skae._fitting
import skae._inference
from skae import AutoencoderTransformer
from skae._compat import InvalidParameterError

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def heldout_mse(X_test, X_hat):
    return float(np.mean((X_test - X_hat) ** 2))


# ------------------------------------------------------------------ the claims
@pytest.mark.parametrize("k", [4, 10])
def test_linear_autoencoder_matches_pca(digits, k):
    X_train, X_test, _, _ = digits
    pca = PCA(k).fit(X_train)
    pca_err = heldout_mse(X_test, pca.inverse_transform(pca.transform(X_test)))
    ae = AutoencoderTransformer(
        k, hidden_layer_sizes=(), learning_rate="adaptive", learning_rate_init=1e-2,
        batch_size=128, max_iter=500, tol=1e-5, n_iter_no_change=5, random_state=0,
    ).fit(X_train)
    assert ae.n_iter_ < 500  # converged, not cut off
    ae_err = heldout_mse(X_test, ae.inverse_transform(ae.transform(X_test)))
    assert ae_err <= 1.02 * pca_err, (ae_err, pca_err)


@pytest.mark.slow  # seconds of training: run with -m slow
def test_deep_autoencoder_beats_pca_on_nonlinear_data(digits):
    X_train, X_test, _, _ = digits
    k = 4
    pca = PCA(k).fit(X_train)
    pca_err = heldout_mse(X_test, pca.inverse_transform(pca.transform(X_test)))
    ae = AutoencoderTransformer(
        k, hidden_layer_sizes=(128, 64), batch_size=64, max_iter=150, random_state=0
    ).fit(X_train)
    ae_err = heldout_mse(X_test, ae.inverse_transform(ae.transform(X_test)))
    assert ae_err < 0.9 * pca_err, (ae_err, pca_err)


# ------------------------------------------------------------------ basic API
def test_shapes_dtypes_and_attributes(small_X):
    ae = AutoencoderTransformer(3, hidden_layer_sizes=(16, 8), max_iter=7, random_state=0)
    Z = ae.fit_transform(small_X)
    assert Z.shape == (120, 3) and Z.dtype == np.float64
    assert ae.inverse_transform(Z).shape == small_X.shape
    assert ae.reconstruct(small_X).shape == small_X.shape
    assert ae.n_features_in_ == 6 and ae.n_iter_ == 7
    assert len(ae.loss_curve_) == 7
    assert ae.loss_terms_["reconstruction"] == pytest.approx(ae.loss_curve_)
    assert ae.best_loss_ == pytest.approx(min(ae.loss_curve_))
    assert ae.validation_scores_ is None
    Z32 = ae.transform(small_X.astype(np.float32))
    assert Z32.dtype == np.float32
    np.testing.assert_allclose(Z32, Z, rtol=1e-4, atol=1e-5)


def test_encoder_and_decoder_are_reusable_torch_modules(small_X):
    ae = AutoencoderTransformer(2, hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(small_X)
    x = torch.as_tensor(small_X, dtype=torch.float32)
    with torch.no_grad():
        z = ae.module_.encoder(x)
        x_hat = ae.module_.decoder(z)
    np.testing.assert_allclose(z.numpy(), ae.transform(small_X), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(x_hat.numpy(), ae.reconstruct(small_X), rtol=1e-4, atol=1e-5)


def test_score_is_negative_reconstruction_error(small_X):
    ae = AutoencoderTransformer(2, max_iter=3, random_state=0).fit(small_X)
    errors = np.mean((ae.reconstruct(small_X) - small_X) ** 2, axis=1)
    np.testing.assert_allclose(ae.score_samples(small_X), -errors, rtol=1e-10)
    assert ae.score(small_X) == pytest.approx(-errors.mean())


def test_feature_names_and_pandas_output(small_X):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(small_X, columns=[f"f{i}" for i in range(6)])
    ae = AutoencoderTransformer(3, max_iter=2, random_state=0).set_output(transform="pandas")
    out = ae.fit_transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["autoencodertransformer0", "autoencodertransformer1",
                                 "autoencodertransformer2"]
    assert list(ae.feature_names_in_) == list(df.columns)
    assert list(ae.get_feature_names_out()) == list(out.columns)


def test_in_pipeline_and_grid_search_without_labels(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = make_pipeline(
        StandardScaler(), AutoencoderTransformer(16, max_iter=30, random_state=0),
        LogisticRegression(max_iter=500),
    )
    assert pipe.fit(X_train, y_train).score(X_test, y_test) > 0.8
    search = GridSearchCV(
        AutoencoderTransformer(max_iter=20, random_state=0), {"n_components": [1, 8]}, cv=2
    ).fit(X_train)
    assert search.best_params_ == {"n_components": 8}


# ----------------------------------------------------------- reproducibility
def test_same_random_state_same_model(small_X):
    a = AutoencoderTransformer(2, max_iter=5, random_state=3).fit_transform(small_X)
    b = AutoencoderTransformer(2, max_iter=5, random_state=3).fit_transform(small_X)
    c = AutoencoderTransformer(2, max_iter=5, random_state=4).fit_transform(small_X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_no_global_torch_seed_is_used_or_changed(small_X):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    AutoencoderTransformer(2, max_iter=2, random_state=0).fit(small_X)
    assert torch.equal(torch.rand(3), expected)


def test_shuffle_false_is_deterministic_given_init(small_X):
    a = AutoencoderTransformer(2, max_iter=3, shuffle=False, batch_size=16, random_state=1)
    b = AutoencoderTransformer(2, max_iter=3, shuffle=True, batch_size=16, random_state=1)
    assert not np.allclose(a.fit_transform(small_X), b.fit_transform(small_X))


# --------------------------------------------------------------- persistence
@pytest.mark.parametrize("dumps,loads", [(pickle.dumps, pickle.loads), ("joblib", "joblib")])
def test_pickle_round_trip(small_X, tmp_path, dumps, loads):
    ae = AutoencoderTransformer(2, max_iter=3, random_state=0).fit(small_X)
    if dumps == "joblib":
        joblib.dump(ae, tmp_path / "ae.joblib")
        restored = joblib.load(tmp_path / "ae.joblib")
    else:
        restored = loads(dumps(ae))
    np.testing.assert_array_equal(restored.transform(small_X), ae.transform(small_X))
    restored.partial_fit(small_X)
    assert restored.n_iter_ == ae.n_iter_ + 1


def test_pickled_state_holds_no_torch_object(small_X):
    ae = AutoencoderTransformer(2, max_iter=3, early_stopping=True, random_state=0).fit(small_X)
    state = ae.__getstate__()
    # JSON and numpy arrays only (skae/_serialization.py): nothing device-bound
    assert not list(_tensors(state))
    header, arrays = json.loads(state["__skae_state__"]), state["__skae_arrays__"]
    assert all(type(a) is np.ndarray for a in arrays.values())
    assert any(name.startswith("optimizer/state/") for name in arrays)  # Adam's moments
    assert header["optimizer"] is not None
    # the training history holds plain numbers only (the best early-stopping
    # weights live in the callback and are put back into module_ at the end)
    assert not any(name.startswith("attributes/_train_state") for name in arrays)
    assert "best_state" not in header["attributes"]["_train_state"]["fields"]


def _tensors(obj):
    """Every tensor in nested dicts, lists, tuples and modules."""
    if torch.is_tensor(obj):
        yield obj
    elif isinstance(obj, torch.nn.Module):
        yield from obj.state_dict().values()
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


# ------------------------------------------------- incremental training
def test_partial_fit_runs_one_epoch_per_call(small_X):
    ae = AutoencoderTransformer(2, random_state=0)
    for i in range(1, 4):
        ae.partial_fit(small_X)
        assert ae.n_iter_ == i and len(ae.loss_curve_) == i
    assert ae.loss_curve_[-1] < ae.loss_curve_[0]


def test_warm_start_continues_training(small_X):
    ae = AutoencoderTransformer(2, max_iter=5, warm_start=True, random_state=0).fit(small_X)
    first = list(ae.loss_curve_)
    ae.fit(small_X)
    assert ae.n_iter_ == 10 and ae.loss_curve_[:5] == first
    assert ae.loss_curve_[5] < first[0]
    cold = AutoencoderTransformer(2, max_iter=5, random_state=0).fit(small_X)
    cold.fit(small_X)
    assert cold.n_iter_ == 5


def test_warm_start_rejects_other_number_of_features(small_X):
    ae = AutoencoderTransformer(2, max_iter=2, warm_start=True, random_state=0).fit(small_X)
    with pytest.raises(ValueError, match="features"):
        ae.fit(small_X[:, :4])


# ---------------------------------------------------------- stopping rules
def test_convergence_stops_early_and_max_iter_warns(small_X):
    ae = AutoencoderTransformer(2, max_iter=500, tol=10.0, n_iter_no_change=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ae.fit(small_X)
    assert ae.n_iter_ == 5  # epoch 1 improves on +inf; stop after 4 (> 3) without
    with pytest.warns(ConvergenceWarning, match="maximum iterations"):
        AutoencoderTransformer(2, max_iter=2, random_state=0).fit(small_X)


def test_early_stopping_records_validation_and_restores_best(digits):
    X_train = digits[0]
    ae = AutoencoderTransformer(
        4, max_iter=60, early_stopping=True, n_iter_no_change=3, learning_rate_init=0.05,
        random_state=0,
    ).fit(X_train)
    assert len(ae.validation_scores_) == ae.n_iter_ < 60
    assert ae.best_validation_score_ == max(ae.validation_scores_)
    assert all(s < 0 for s in ae.validation_scores_)


def test_early_stopping_needs_enough_samples(small_X):
    with pytest.raises(ValueError, match="early_stopping"):
        AutoencoderTransformer(early_stopping=True).fit(small_X[:1])


# -------------------------------------------------------------- parameters
def test_activations_shape_the_network(small_X):
    ae = AutoencoderTransformer(
        2, hidden_layer_sizes=(8,), activation="tanh", latent_activation="sigmoid",
        output_activation="sigmoid", max_iter=2, random_state=0,
    ).fit(small_X)
    enc = [type(m).__name__ for m in ae.module_.encoder]
    dec = [type(m).__name__ for m in ae.module_.decoder]
    assert enc == ["Linear", "Tanh", "Linear", "Sigmoid"]
    assert dec == ["Linear", "Tanh", "Linear", "Sigmoid"]
    Z = ae.transform(small_X)
    assert np.all((Z > 0) & (Z < 1))
    X_hat = ae.inverse_transform(Z)
    assert np.all((X_hat > 0) & (X_hat < 1))


def test_shallow_and_overcomplete_networks(small_X):
    shallow = AutoencoderTransformer(2, hidden_layer_sizes=(), max_iter=2, random_state=0)
    shallow.fit(small_X)
    assert [type(m).__name__ for m in shallow.module_.encoder] == ["Linear", "Identity"]
    over = AutoencoderTransformer(12, hidden_layer_sizes=(32,), max_iter=2, random_state=0)
    with pytest.warns(UserWarning, match="can learn the identity map"):
        assert over.fit_transform(small_X).shape == (120, 12)


def test_bce_loss(digits):
    X = digits[0][:200]
    ae = AutoencoderTransformer(
        4, loss="bce", output_activation="sigmoid", max_iter=3, random_state=0
    ).fit(X)
    assert np.all(np.isfinite(ae.score_samples(X)))
    with pytest.raises(ValueError, match="output_activation='sigmoid'"):
        AutoencoderTransformer(loss="bce").fit(X)
    with pytest.raises(ValueError, match=r"X in \[0, 1\]"):
        AutoencoderTransformer(loss="bce", output_activation="sigmoid").fit(X * 2)


@pytest.mark.parametrize("solver", ["sgd", "adamw"])
def test_other_solvers_train(small_X, solver):
    ae = AutoencoderTransformer(2, solver=solver, learning_rate_init=0.01, max_iter=30,
                                random_state=0).fit(small_X)
    assert ae.loss_curve_[-1] < 0.8 * ae.loss_curve_[0]
    # the optimizer a fit builds for this spec, and the state it left behind
    optimizer = type(skae._fitting.build_optimizer(ae._spec, ae.module_)).__name__.lower()
    assert optimizer == solver
    moments = ae._optimizer_state["state"].values()
    assert moments
    key = "momentum_buffer" if solver == "sgd" else "exp_avg"
    assert all(key in st for st in moments)


def test_alpha_shrinks_weights(small_X):
    def weight_norm(alpha):
        ae = AutoencoderTransformer(2, alpha=alpha, max_iter=30, random_state=0).fit(small_X)
        return sum(float(p.detach().square().sum()) for n, p in ae.module_.named_parameters()
                   if n.endswith("weight"))
    assert weight_norm(1.0) < 0.8 * weight_norm(0.0)


def test_adaptive_learning_rate_divides_by_five_on_plateaus(small_X):
    ae = AutoencoderTransformer(2, learning_rate="adaptive", tol=10.0, n_iter_no_change=2,
                                max_iter=12, random_state=0).fit(small_X)
    # every 3 epochs without progress divide the rate by 5: after epochs 4, 7 and 10
    lrs = [g["lr"] for g in ae._optimizer_state["param_groups"]]
    assert lrs == pytest.approx([1e-3 / 5**3] * len(lrs))
    assert ae.n_iter_ == 12
    constant = AutoencoderTransformer(2, tol=10.0, n_iter_no_change=2, max_iter=12,
                                      random_state=0).fit(small_X)
    assert constant.n_iter_ == 4
    assert all(g["lr"] == 1e-3 for g in constant._optimizer_state["param_groups"])


def test_batch_size_and_learning_rate_matter(small_X):
    base = AutoencoderTransformer(2, max_iter=3, random_state=0).fit(small_X).loss_curve_
    small_batches = AutoencoderTransformer(2, max_iter=3, batch_size=8, random_state=0)
    assert small_batches.fit(small_X).loss_curve_[-1] < base[-1]
    faster = AutoencoderTransformer(2, max_iter=3, learning_rate_init=1e-2, random_state=0)
    assert faster.fit(small_X).loss_curve_[-1] < base[-1]


def test_standardize_removes_feature_scale(small_X):
    scaled = small_X * np.array([1, 1e4, 1, 1, 1e-3, 1])
    a = AutoencoderTransformer(2, standardize=True, max_iter=5, random_state=0).fit(small_X)
    b = AutoencoderTransformer(2, standardize=True, max_iter=5, random_state=0).fit(scaled)
    np.testing.assert_allclose(a.score_samples(small_X), b.score_samples(scaled), rtol=1e-3)
    np.testing.assert_allclose(b.reconstruct(scaled)[:, 1] / 1e4, a.reconstruct(small_X)[:, 1],
                               rtol=1e-3, atol=1e-4)


def test_verbose_shows_progress(small_X, capsys):
    AutoencoderTransformer(2, max_iter=3, verbose=True, random_state=0).fit(small_X)
    assert "loss=" in capsys.readouterr().err
    AutoencoderTransformer(2, max_iter=3, random_state=0).fit(small_X)
    assert capsys.readouterr().err == ""


def test_device_parameter(small_X):
    ae = AutoencoderTransformer(2, max_iter=1, device="cpu", random_state=0).fit(small_X)
    assert next(ae.module_.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="'device' parameter"):
        AutoencoderTransformer(device="gpu0").fit(small_X)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            AutoencoderTransformer(device="cuda").fit(small_X)
        auto = AutoencoderTransformer(2, max_iter=1, random_state=0).fit(small_X)
        assert next(auto.module_.parameters()).device.type == "cpu"


def test_small_data_and_single_sample(small_X):
    ae = AutoencoderTransformer(2, batch_size=256, max_iter=2, random_state=0)
    assert ae.fit_transform(small_X[:10]).shape == (10, 2)
    assert ae.fit_transform(small_X[:1]).shape == (1, 2)


def test_inference_is_chunked(small_X, monkeypatch):
    ae = AutoencoderTransformer(2, max_iter=2, random_state=0).fit(small_X)
    small_X = small_X.astype(np.float32)  # computed by module_ itself, not a float64 copy
    whole = ae.transform(small_X)
    monkeypatch.setattr("skae._data.CHUNK_ELEMENTS", 7)  # read by iter_chunks at call time
    calls = []
    original = skae._inference.as_tensor
    monkeypatch.setattr(
        skae._inference, "as_tensor", lambda a, *args: calls.append(len(a)) or original(a, *args)
    )
    np.testing.assert_allclose(ae.transform(small_X), whole, rtol=1e-5, atol=1e-6)
    assert len(calls) > 1 and max(calls) < len(small_X)
    assert sum(calls) == len(small_X)


# ------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "X, message",
    [
        (np.array([[np.nan, 1.0], [1.0, 2.0]]), "NaN"),
        (np.array([[np.inf, 1.0], [1.0, 2.0]]), "infinity"),
        (np.array([["a", "b"], ["c", "d"]]), "could not convert|dtype"),
        (np.empty((0, 3)), "0 sample"),
        (np.zeros((2, 2, 2)), "Found array with dim 3"),
    ],
)
def test_bad_input_raises_sklearn_errors(X, message):
    with pytest.raises(ValueError, match=message):
        AutoencoderTransformer(max_iter=1).fit(X)


def test_wrong_number_of_features_after_fit(small_X):
    ae = AutoencoderTransformer(2, max_iter=1, random_state=0).fit(small_X)
    with pytest.raises(ValueError, match="X has 5 features"):
        ae.transform(small_X[:, :5])
    with pytest.raises(ValueError, match="n_components=2"):
        ae.inverse_transform(np.zeros((3, 5)))
    with pytest.raises(NotFittedError):
        AutoencoderTransformer().transform(small_X)


@pytest.mark.parametrize(
    "params, name",
    [
        ({"n_components": 0}, "n_components"),
        ({"activation": "softmax"}, "activation"),
        ({"loss": "mae"}, "loss"),
        ({"solver": "lbfgs"}, "solver"),
        ({"learning_rate_init": 0}, "learning_rate_init"),
        ({"batch_size": 0}, "batch_size"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
    ],
)
def test_invalid_parameters_name_the_parameter(small_X, params, name):
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter of "
                       "AutoencoderTransformer must be .* Got .* instead"):
        AutoencoderTransformer(**params).fit(small_X)


def test_hidden_layer_sizes_must_be_positive(small_X):
    with pytest.raises(ValueError, match=re.escape("'hidden_layer_sizes' parameter")):
        AutoencoderTransformer(hidden_layer_sizes=(8, 0)).fit(small_X)


# ------------------------------------------------------------------ faults
def test_non_finite_loss_stops_with_clear_error(small_X):
    ae = AutoencoderTransformer(2, max_iter=3, random_state=0)
    with pytest.raises(FloatingPointError, match="training loss became"):
        ae.fit(small_X * 1e30)
    assert not hasattr(ae, "module_")


def test_non_finite_loss_in_warm_start_keeps_previous_weights(small_X):
    ae = AutoencoderTransformer(2, max_iter=3, warm_start=True, random_state=0).fit(small_X)
    before = ae.transform(small_X)
    with pytest.raises(FloatingPointError):
        ae.fit(small_X * 1e30)
    np.testing.assert_array_equal(ae.transform(small_X), before)


def test_keyboard_interrupt_keeps_model_and_warns(small_X, monkeypatch):
    import skae._training as training

    calls = {"n": 0}
    run_epoch = training.run_epoch

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return run_epoch(*args, **kwargs)

    monkeypatch.setattr(training, "run_epoch", interrupted)
    ae = AutoencoderTransformer(2, max_iter=50, random_state=0)
    with pytest.warns(UserWarning, match="interrupted by user"):
        ae.fit(small_X)
    assert ae.n_iter_ == 2
    assert ae.transform(small_X).shape == (120, 2)


@pytest.mark.parametrize("value, message", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_inference_rejects_non_finite_values_in_any_chunk(small_X, value, message, monkeypatch):
    ae = AutoencoderTransformer(2, max_iter=2, random_state=0).fit(small_X)
    monkeypatch.setattr("skae._data.CHUNK_ELEMENTS", 7)
    X = small_X.copy()
    X[-1, 0] = value
    for method in (ae.transform, ae.score_samples, ae.reconstruct):
        with pytest.raises(ValueError, match=message):
            method(X)


def test_inference_accepts_large_finite_values(small_X):
    ae = AutoencoderTransformer(2, max_iter=2, random_state=0).fit(small_X)
    X = np.full((4, small_X.shape[1]), 3e38, dtype=np.float32)  # their sum overflows
    assert ae.transform(X).shape == (4, 2)
