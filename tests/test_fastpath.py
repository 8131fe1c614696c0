"""The hand-derived gradients of plain autoencoders against autograd's, and its allow-list."""

import copy

import numpy as np
import pytest
import torch

import skae._fastpath
import skae._objective
from skae import AutoencoderAnomalyDetector, AutoencoderTransformer
from skae._data import standardization, training_rows, with_weights
from skae._fastpath import DirectGradient, covers, loss_function
from skae._inference import Forward
from skae._nets.activations import ACTIVATIONS
from skae._nets.mlp import MLPAutoencoder, build_mlp
from skae._objective import (
    Contractive,
    GaussianNoise,
    KLSparsity,
    L1Activity,
    Masking,
    Objective,
    SaltAndPepper,
)
from skae._params import resolve

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.usefixtures("one_thread"),
]




FAST = ["relu", "tanh", "logistic", "sigmoid", "identity", "leaky_relu"]


def _spec(X, Estimator=AutoencoderAnomalyDetector, **params):
    """The Spec a fit of ``Estimator(**params)`` on ``X`` trains with."""
    est = Estimator(**params)
    return resolve(est.get_params(deep=False), type(est).__name__, X)


def _data(seed=0):
    rng = np.random.RandomState(seed)
    return (rng.normal(size=(80, 7)) * rng.uniform(0.5, 3, 7) + 2).astype(np.float32)


def _net(X, standardize=False, **params):
    """A freshly initialized net and the rows it trains on (standardized when asked)."""
    spec = _spec(X, n_components=3, hidden_layer_sizes=(6, 5), standardize=standardize, **params)
    shift = scale = None
    if standardize:
        shift, scale = standardization(X, "test")
    rows = training_rows(X, shift, scale, owner="test")
    if standardize:
        shift, scale = torch.from_numpy(shift), torch.from_numpy(scale)
    net = build_mlp(spec, shift, scale, torch.Generator().manual_seed(0))
    return net, rows


def _corruption(kind, rows, seed=3):
    """A fresh corruption of ``kind``; equal seeds give equal draws."""
    g = torch.Generator().manual_seed(seed)
    if kind is None:
        return None
    if kind == "function":  # not a known corruption type
        return lambda xb: xb * 0.7 + 0.3
    if kind == "gaussian":
        return GaussianNoise(0.3, g)
    if kind == "masking":
        return Masking(0.25, g)
    low, high = torch.aminmax(rows, dim=0)
    return SaltAndPepper(0.2, low, high, g)


def _gradients(net, loss_fn, xb):
    for p in net.parameters():
        p.grad = None
    loss, parts = loss_fn(net, xb)
    if not getattr(loss_fn, "sets_gradients", False):
        loss.backward()
    assert list(parts) == ["reconstruction"]
    return float(loss.detach()), [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity", "leaky_relu"])
@pytest.mark.parametrize("output_activation", ["identity", "sigmoid"])
@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("trim", [0.0, 0.3])
@pytest.mark.parametrize("corruption", [None, "function", "gaussian", "masking",
                                        "salt_and_pepper"])
def test_direct_gradients_match_autograd(activation, output_activation, standardize, trim,
                                         corruption):
    X = _data()
    net, rows = _net(X, standardize, activation=activation, latent_activation=activation,
                     output_activation=output_activation, trim_fraction=trim)
    reference = Objective("mse", (), _corruption(corruption, rows), trim)
    objective = Objective("mse", (), _corruption(corruption, rows), trim)
    # covered exactly when the corruption is of a known type
    assert covers(objective, net, "float32") is (corruption != "function")
    direct = DirectGradient(objective, net, batch_size=32)
    assert direct.sets_gradients and not getattr(reference, "sets_gradients", False)
    for xb in (rows[:32], rows[32:45], rows[45:77]):  # full, short, and full again
        loss_ref, grads_ref = _gradients(net, reference, xb)
        loss_dir, grads_dir = _gradients(net, direct, xb)
        assert loss_dir == pytest.approx(loss_ref, rel=1e-5)
        for g_ref, g_dir in zip(grads_ref, grads_dir):
            torch.testing.assert_close(g_dir, g_ref, rtol=1e-4, atol=1e-6)



@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("trim", [0.0, 0.3])
@pytest.mark.parametrize("corruption", [None, "gaussian"])
def test_direct_gradients_match_autograd_with_sample_weights(standardize, trim, corruption):
    """Rows carrying a weight column: the weighted (trimmed) mean's gradients."""
    X = _data()
    net, rows = _net(X, standardize, activation="tanh", trim_fraction=trim)
    weights = torch.from_numpy(np.random.RandomState(1).exponential(1.0, (len(rows), 1)))
    rows = with_weights(rows, weights.to(rows.dtype))
    reference = Objective("mse", (), _corruption(corruption, rows), trim, weighted=True)
    objective = Objective("mse", (), _corruption(corruption, rows), trim, weighted=True)
    assert covers(objective, net, "float32")
    direct = DirectGradient(objective, net, batch_size=32)
    unweighted = DirectGradient(Objective("mse", (), _corruption(corruption, rows), trim), net,
                                batch_size=32)
    for xb in (rows[:32], rows[32:45], rows[45:77]):
        loss_ref, grads_ref = _gradients(net, reference, xb)
        loss_dir, grads_dir = _gradients(net, direct, xb)
        assert loss_dir == pytest.approx(loss_ref, rel=1e-5)
        for g_ref, g_dir in zip(grads_ref, grads_dir):
            torch.testing.assert_close(g_dir, g_ref, rtol=1e-4, atol=1e-6)
        # the weights matter: the unweighted mean of the same rows has other gradients
        _, grads_plain = _gradients(net, unweighted, xb[:, :-1].contiguous())
        assert not torch.allclose(grads_plain[0], grads_ref[0], rtol=1e-2, atol=1e-4)


# ---------------------------------------------------------------- allow-list
@pytest.mark.parametrize("position", ["activation", "latent_activation", "output_activation"])
@pytest.mark.parametrize("name", FAST)
def test_covers_the_allow_listed_networks(position, name):
    X = _data()
    net, rows = _net(X, **{position: name})
    for kind in (None, "gaussian", "masking", "salt_and_pepper"):
        for trim in (0.0, 0.3):
            objective = Objective("mse", (), _corruption(kind, rows), trim)
            for precision in ("float32", "tf32"):
                assert covers(objective, net, precision)
            assert isinstance(loss_function(objective, net, 32, "float32"), DirectGradient)
    for stage in net.stages():  # greedy pretraining's shallow autoencoders
        assert covers(Objective("mse"), stage, "float32")
    standardized, _ = _net(X, standardize=True, **{position: name})
    assert covers(Objective("mse"), standardized, "float32")


class _CustomTerm:
    """A regularizer the fast path knows nothing about."""

    name = "custom"
    needs_activations = False

    def __init__(self, weight):
        self.weight = weight

    def __call__(self, output, x, net, weights=None):
        return self.weight * output.code.square().mean()


class _OtherNet(MLPAutoencoder):
    """A network kind the fast path does not implement (even if it looks the same)."""


def test_covers_nothing_else():
    X = _data()
    net, rows = _net(X)
    plain = Objective("mse")
    assert covers(plain, net, "float32")
    not_covered = {
        "l1": (Objective("mse", (L1Activity(0.1, (1,)),)), net, "float32"),
        "kl": (Objective("mse", (KLSparsity(0.1, 0.05, (1,)),)), net, "float32"),
        "contractive": (Objective("mse", (Contractive(0.1),)), net, "float32"),
        "custom term": (Objective("mse", (_CustomTerm(0.1),)), net, "float32"),
        "bce": (Objective("bce"), net, "float32"),
        "bfloat16": (plain, net, "bfloat16"),
        "unknown corruption": (Objective("mse", (), lambda xb: xb), net, "float32"),
        "tied": (plain, _net(X, tied_weights=True)[0], "float32"),
        "unknown net type": (plain, _OtherNet(7, (6, 5), 3, "relu", "identity", "identity"),
                             "float32"),
        "plain module": (plain, torch.nn.Sequential(torch.nn.Linear(7, 7)), "float32"),
    }
    for position in ("activation", "latent_activation", "output_activation"):
        for name in ("elu", "gelu"):
            not_covered[f"{position}={name}"] = (plain, _net(X, **{position: name})[0], "float32")
    frozen = copy.deepcopy(net)
    frozen.encoder_layers[0].linear.weight.requires_grad_(False)
    not_covered["frozen parameter"] = (plain, frozen, "float32")
    for case, (objective, model, precision) in not_covered.items():
        assert not covers(objective, model, precision), case
        assert loss_function(objective, model, 32, precision) is objective, case
    assert set(ACTIVATIONS) - set(FAST) == {"elu", "gelu"}  # every other one is covered


# --------------------------------------------------------------- whole fits
def _spy_covers(monkeypatch, result=None):
    """Record what ``covers`` answers (or force ``result``)."""
    original, answers = skae._fastpath.covers, []

    def spy(*args):
        answer = original(*args) if result is None else result
        answers.append(answer)
        return answer

    # loss_function calls covers through the module global
    monkeypatch.setattr(skae._fastpath, "covers", spy)
    return answers


@pytest.mark.parametrize(
    "Estimator, params",
    [
        (AutoencoderTransformer, {}),
        (AutoencoderAnomalyDetector, {}),
        (AutoencoderTransformer, dict(noise="masking", noise_level=0.2, standardize=True)),
        (AutoencoderAnomalyDetector, dict(noise="salt_and_pepper", noise_level=0.1)),
        (AutoencoderTransformer, dict(early_stopping=True, validation_fraction=0.2)),
        (AutoencoderTransformer, dict(pretraining="greedy", pretraining_max_iter=2)),
        (AutoencoderAnomalyDetector, dict(sample_weight="uneven")),
        (AutoencoderAnomalyDetector, dict(sample_weight="repeated rows")),
        (AutoencoderAnomalyDetector, dict(variational=True, sample_weight="uneven")),
    ],
)
def test_fit_matches_autograd_training(Estimator, params, digits, monkeypatch):
    """Whole fits with and without the direct gradients follow the same path."""
    X = digits[0][:400].astype(np.float32)
    params = dict(hidden_layer_sizes=(32, 16), max_iter=5, batch_size=64, random_state=0,
                  **params)
    fit_params = {}
    weights = params.pop("sample_weight", None)
    if weights == "uneven":
        fit_params["sample_weight"] = np.random.RandomState(0).uniform(0.5, 2.0, len(X))
    elif weights == "repeated rows":  # merged into weighted distinct rows
        X = np.concatenate([X, X[:150]])
    with monkeypatch.context() as mp:
        answers = _spy_covers(mp)
        direct = Estimator(4, **params).fit(X, **fit_params)
    assert answers and all(answers)  # every stage and the fine-tuning took the fast path
    with monkeypatch.context() as mp:
        forced = _spy_covers(mp, result=False)
        reference = Estimator(4, **params).fit(X, **fit_params)
    assert len(forced) == len(answers)
    np.testing.assert_allclose(direct.loss_curve_, reference.loss_curve_, rtol=1e-3)
    np.testing.assert_allclose(direct.reconstruct(X), reference.reconstruct(X), rtol=1e-2,
                               atol=1e-3)
    if params.get("early_stopping"):
        np.testing.assert_allclose(direct.validation_scores_, reference.validation_scores_,
                                   rtol=1e-3)
    if params.get("pretraining"):
        for a, b in zip(direct.pretraining_loss_curves_, reference.pretraining_loss_curves_):
            np.testing.assert_allclose(a, b, rtol=1e-3)
    assert all(p.grad is None for p in direct.module_.parameters())


def test_a_newly_registered_term_is_never_dropped_by_the_fast_path(digits, monkeypatch):
    X = digits[0][:300].astype(np.float32)
    params = dict(hidden_layer_sizes=(16,), max_iter=3, batch_size=64, random_state=0)
    with monkeypatch.context() as mp:
        answers = _spy_covers(mp)
        plain = AutoencoderTransformer(4, **params).fit(X)
    assert answers == [True] and set(plain.loss_terms_) == {"reconstruction"}

    def build_custom(spec):
        return _CustomTerm(0.5)

    monkeypatch.setattr(skae._objective, "TERMS", [*skae._objective.TERMS, build_custom])
    answers = _spy_covers(monkeypatch)
    ae = AutoencoderTransformer(4, **params).fit(X)
    assert answers == [False]  # trained with autograd
    assert set(ae.loss_terms_) == {"reconstruction", "custom"}
    assert len(ae.loss_terms_["custom"]) == ae.n_iter_ == 3
    assert all(v > 0 for v in ae.loss_terms_["custom"])
    total = np.add(ae.loss_terms_["reconstruction"], ae.loss_terms_["custom"])
    np.testing.assert_allclose(total, ae.loss_curve_, rtol=1e-5)
    # and it took part in training: the codes differ from the plain fit's
    assert not np.allclose(ae.transform(X), plain.transform(X))


# ----------------------------------------------------------------- inference
def _expected(net, x, parts):
    """What the module's own encoder/decoder compute for ``parts``."""
    z = net.encoder(x)
    if parts == ("encoder",):
        return x, z
    if parts == ("decoder",):
        return z, net.decoder(z)
    if parts == ("encoder", "decoder"):
        return x, net(x)[0]
    xs = x if net.standardizer is None else net.standardizer(x)
    if parts == ("standardize",):
        return x, xs
    return xs, net.forward_standardized(xs).reconstruction  # ("core",)


PARTS = [("encoder",), ("decoder",), ("encoder", "decoder"), ("standardize",), ("core",)]


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_module(activation, standardize, dtype):
    rng = np.random.RandomState(0)
    X = (rng.normal(size=(50, 7)) * 3 + 1).astype(dtype)
    est = AutoencoderTransformer(
        3, hidden_layer_sizes=(6,), activation=activation, latent_activation=activation,
        output_activation="sigmoid", standardize=standardize, max_iter=2, random_state=0,
    ).fit(X)
    net = est.module_
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    reference = copy.deepcopy(net).to(torch_dtype)  # Forward itself never copies the module
    x = torch.from_numpy(X)
    with torch.no_grad():
        for parts in PARTS:
            inp, want = _expected(reference, x, parts)
            forward = Forward(net.inference_steps(parts), torch_dtype)
            got = forward(inp)
            assert got.dtype == torch_dtype
            torch.testing.assert_close(got, want)
            out = torch.empty_like(want)
            forward(inp[:20], out=out[:20])  # a shorter chunk reuses the buffers
            torch.testing.assert_close(out[:20], want[:20])
            grown = Forward(net.inference_steps(parts), torch_dtype)
            grown(inp[:10])
            torch.testing.assert_close(grown(inp), want)  # a longer chunk grows them
        z = reference.encoder(x)
    # the public methods take the same route
    np.testing.assert_allclose(est.transform(X), z.numpy(), rtol=1e-5, atol=1e-6)
    assert est.transform(X).dtype == dtype
    assert next(net.parameters()).dtype == torch.float32  # the fitted module is untouched


def test_forward_handles_tied_weights():
    est = AutoencoderTransformer(2, hidden_layer_sizes=(4,), tied_weights=True, max_iter=1)
    X = np.random.RandomState(0).normal(size=(30, 5))
    est.fit(X)
    net = est.module_
    x = torch.from_numpy(X).float()
    with torch.no_grad():
        z = net.encoder(x)
        torch.testing.assert_close(Forward(net.inference_steps(("encoder",)), torch.float32)(x), z)
        torch.testing.assert_close(Forward(net.inference_steps(("decoder",)), torch.float32)(z),
                                   net.decoder(z))
    with torch.no_grad():
        want = copy.deepcopy(net).double()(torch.from_numpy(X))[0].numpy()
    np.testing.assert_allclose(est.reconstruct(X), want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_training_tanh_is_tanh_to_rounding_and_inference_keeps_torch_tanh(dtype):
    from skae._nets.activations import ACTIVATIONS

    x = torch.cat([torch.linspace(-30, 30, 20001, dtype=dtype),
                   torch.tensor([0.0, 1e-30, -1e-30, float("inf"), -float("inf")], dtype=dtype)])
    tanh = ACTIVATIONS["tanh"]
    exact = torch.tanh(x)
    trained = tanh.apply_in_training_(x.clone())
    tolerance = 2e-7 if dtype == torch.float32 else 1e-15
    assert (trained - exact).abs().max() <= tolerance
    assert trained.abs().max() == 1.0  # saturates at +-1, never beyond
    assert torch.equal(tanh.apply_(x.clone()), exact)  # inference: torch's tanh
    relu = ACTIVATIONS["relu"]
    assert torch.equal(relu.apply_in_training_(x.clone()), relu.apply_(x.clone()))


def test_the_training_step_uses_the_training_activation():
    from skae._nets.activations import ACTIVATIONS

    X = np.random.RandomState(0).normal(size=(64, 7)).astype(np.float32)
    est = AutoencoderTransformer(3, hidden_layer_sizes=(6,), activation="tanh", max_iter=1,
                                 random_state=0).fit(X)
    net = est.module_
    xb = torch.from_numpy(X)  # not standardized (standardize=False)
    assert net.standardizer is None
    objective = skae._objective.Objective("mse", (), None, 0.0)
    direct = DirectGradient(objective, net, batch_size=64)
    direct(net, xb)
    first = net.encoder_layers[0]
    pre = torch.addmm(first.linear.bias, xb, first.linear.weight.t())
    hidden = direct.outputs[0]
    assert torch.equal(hidden, ACTIVATIONS["tanh"].apply_in_training_(pre.clone()))
    assert not torch.equal(hidden, torch.tanh(pre))  # the two differ in the last bits
