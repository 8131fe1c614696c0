"""The training objective's pieces against values computed independently."""

import math

import numpy as np
import pytest
import torch

from skae import AutoencoderAnomalyDetector, AutoencoderTransformer
from skae._inference import reconstruction_errors
from skae._nets.activations import ACTIVATIONS, derivative
from skae._nets.mlp import MLPAutoencoder, NetOutput, Standardize
from skae._objective import (
    Contractive,
    GaussianNoise,
    KLSparsity,
    L1Activity,
    Masking,
    Objective,
    SaltAndPepper,
    build_objective,
    contractive_penalty,
    elementwise_error,
    kl_divergence_sparsity,
    n_kept,
    reconstruction_loss,
)
from skae._params import resolve

pytestmark = pytest.mark.usefixtures("one_thread")


def _spec(Estimator=AutoencoderTransformer, X=None, **params):
    """The Spec a fit of ``Estimator(**params)`` on ``X`` would train with."""
    X = np.random.RandomState(0).normal(size=(20, 5)) if X is None else X
    est = Estimator(**params)
    return resolve(est.get_params(deep=False), type(est).__name__, X)


# ------------------------------------------------------------- reconstruction
def test_reconstruction_errors_by_hand():
    x = torch.tensor([[0.0, 1.0]])
    x_hat = torch.tensor([[0.5, 0.25]])
    assert elementwise_error(x_hat, x, "mse").tolist() == [[0.25, 0.5625]]
    bce = elementwise_error(x_hat, x, "bce")
    assert bce[0, 0].item() == pytest.approx(-math.log(0.5))
    assert bce[0, 1].item() == pytest.approx(-math.log(0.25))
    # bce clips the reconstruction: an exact 0 or 1 gives a large but finite error
    clipped = elementwise_error(torch.tensor([[0.0, 1.0]], dtype=torch.float64),
                                torch.tensor([[1.0, 0.0]], dtype=torch.float64), "bce")
    assert torch.isfinite(clipped).all()
    assert clipped[0].tolist() == pytest.approx([-math.log(1e-7)] * 2, rel=1e-6)
    # errors are measured in standardized units: ((x_hat - x) / scale) ** 2
    standardize = Standardize(torch.tensor([3.0, -1.0]), torch.tensor([0.5, 1.0]))
    scaled = elementwise_error(standardize(x_hat), standardize(x), "mse")
    torch.testing.assert_close(scaled, torch.tensor([[1.0, 0.5625]]))


def test_mean_loss_is_the_mean_elementwise_error():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(9, 4, generator=g, dtype=torch.float64)
    x_hat = torch.rand(9, 4, generator=g, dtype=torch.float64)
    for loss in ("mse", "bce"):
        expected = elementwise_error(x_hat, x, loss).mean()
        torch.testing.assert_close(reconstruction_loss(x_hat, x, loss), expected)
        torch.testing.assert_close(reconstruction_loss(x_hat, x, loss, 0.0), expected)


@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("m, trim", [(10, 0.3), (10, 0.25), (7, 0.5), (5, 0.01), (3, 0.9)])
def test_trimmed_loss_is_the_mean_over_the_best_samples(loss, m, trim):
    g = torch.Generator().manual_seed(m)
    x = torch.rand(m, 3, generator=g, dtype=torch.float64)
    x_hat = torch.rand(m, 3, generator=g, dtype=torch.float64)
    # by hand: per-sample mean errors, drop the ceil(trim m) largest, average the rest
    if loss == "mse":
        per_sample = [sum((a - b) ** 2 for a, b in zip(r, t)) / 3
                      for r, t in zip(x_hat.tolist(), x.tolist())]
    else:
        per_sample = [-sum(b * math.log(a) + (1 - b) * math.log(1 - a)
                           for a, b in zip(r, t)) / 3
                      for r, t in zip(x_hat.tolist(), x.tolist())]
    dropped = math.ceil(trim * m)
    kept = sorted(per_sample)[: max(1, m - dropped)]
    assert n_kept(m, trim) == len(kept)
    got = reconstruction_loss(x_hat, x, loss, trim).item()
    assert got == pytest.approx(sum(kept) / len(kept), rel=1e-12)
    assert got <= reconstruction_loss(x_hat, x, loss).item()


def test_trimmed_loss_ignores_the_outlying_samples_gradient():
    x = torch.zeros(4, 2)
    x_hat = torch.tensor([[0.1, 0.0], [0.0, 0.2], [5.0, 5.0], [0.1, 0.1]], requires_grad=True)
    reconstruction_loss(x_hat, x, "mse", 0.25).backward()
    assert torch.all(x_hat.grad[2] == 0) and torch.any(x_hat.grad[[0, 1, 3]] != 0)
    assert n_kept(1, 0.5) == 1 and n_kept(4, 0.0) == 4 and n_kept(4, 0.99) == 1


def test_errors_of_a_standardizing_network_are_in_standardized_units():
    """The new design's form of the removed ``feature_scale``: errors divide by the scale."""
    torch.manual_seed(0)
    shift = torch.tensor([100.0, -3.0, 0.0, 7.0], dtype=torch.float64)
    scale = torch.tensor([1e3, 0.01, 1.0, 5.0], dtype=torch.float64)
    net = MLPAutoencoder(4, (3,), 2, "tanh", "identity", "identity", shift=shift, scale=scale)
    X = (np.random.RandomState(0).normal(size=(6, 4)) * scale.numpy() + shift.numpy())
    with torch.no_grad():
        x_hat = net.double()(torch.from_numpy(X))[0].numpy()
    errors = reconstruction_errors(net, X, "mse", 4, per_feature=True)
    np.testing.assert_allclose(errors, ((x_hat - X) / scale.numpy()) ** 2, rtol=1e-9)
    means = reconstruction_errors(net, X, "mse", 4, per_feature=False)
    np.testing.assert_allclose(means, errors.mean(1), rtol=1e-12)


# ----------------------------------------------------------------- sparsity
def _output(*activations):
    a = activations[-1]
    return NetOutput(reconstruction=a, code=a, pre_activations=activations,
                     activations=activations)


def test_l1_activity_by_hand():
    a = torch.tensor([[1.0, -2.0], [0.0, 3.0]])  # per-sample |a| sums 3 and 3
    b = torch.tensor([[0.5], [-1.5]])  # 0.5 and 1.5
    assert L1Activity(1.0, (0,))(_output(a), None, None).item() == pytest.approx(3.0)
    assert L1Activity(0.1, (0,))(_output(a), None, None).item() == pytest.approx(0.3)
    term = L1Activity(0.5, (0, 1))
    assert term(_output(a, b), None, None).item() == pytest.approx(0.5 * (3.0 + 1.0))
    assert L1Activity(2.0, (1,))(_output(a, b), None, None).item() == pytest.approx(2.0)
    assert term.name == "sparsity" and term.needs_activations


def _kl(rho, q):
    return rho * math.log(rho / q) + (1 - rho) * math.log((1 - rho) / (1 - q))


def test_kl_sparsity_by_hand():
    a = torch.tensor([[0.2, 0.5], [0.4, 0.5]])  # unit means 0.3 and 0.5
    rho = 0.1
    assert kl_divergence_sparsity(a, rho).item() == pytest.approx(_kl(rho, 0.3) + _kl(rho, 0.5),
                                                                  rel=1e-5)
    assert kl_divergence_sparsity(a, rho).item() > 0
    # zero exactly when every unit's mean activation is the target
    assert kl_divergence_sparsity(torch.full((4, 3), rho), rho).item() == pytest.approx(0.0,
                                                                                       abs=1e-6)
    spread = torch.tensor([[0.05, 0.0, 0.2], [0.15, 0.2, 0.0]], dtype=torch.float64)
    assert kl_divergence_sparsity(spread, rho).item() == pytest.approx(0.0, abs=1e-12)
    # the term: weighted sum over the chosen layers
    b = torch.tensor([[0.7], [0.9]])  # mean 0.8
    term = KLSparsity(0.5, rho, (0, 1))
    expected = 0.5 * (_kl(rho, 0.3) + _kl(rho, 0.5) + _kl(rho, 0.8))
    assert term(_output(a, b), None, None).item() == pytest.approx(expected, rel=1e-5)
    assert KLSparsity(3.0, rho, (1,))(_output(a, b), None, None).item() == pytest.approx(
        3.0 * _kl(rho, 0.8), rel=1e-5)
    at_target = _output(torch.full((5, 2), 0.3), torch.full((5, 4), 0.3))
    assert KLSparsity(2.0, 0.3, (0, 1))(at_target, None, None).item() == pytest.approx(0.0,
                                                                                      abs=1e-6)
    assert term.name == "sparsity" and term.needs_activations


# -------------------------------------------------------------- activations
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivatives(name):
    act = ACTIVATIONS[name]
    module = act.module()
    pre = torch.linspace(-2, 2, 9, dtype=torch.float64)
    post = module(pre)
    expected = torch.func.vmap(torch.func.grad(lambda t: module(t)))(pre)
    got = derivative(act, pre, post)
    if got is None:
        assert name == "identity"
        torch.testing.assert_close(expected, torch.ones_like(pre))
    else:
        torch.testing.assert_close(got, expected)
    # the in-place form computes the same function
    if act.apply_ is not None:
        torch.testing.assert_close(act.apply_(pre.clone()), post)
    # the derivative is differentiable (the contractive penalty trains through it)
    if name != "identity":
        p = pre.clone().requires_grad_()
        d = derivative(act, p, module(p))
        assert d.requires_grad or name in ("relu", "leaky_relu")


# --------------------------------------------------------------- contractive
def _jacobian_penalty(f, x, create_graph=False):
    """``(1/m) sum_i ||J_f(x_i)||_F^2`` by autograd, one sample at a time."""
    return sum(
        torch.autograd.functional.jacobian(f, xi, create_graph=create_graph).square().sum()
        for xi in x
    ) / len(x)


@pytest.mark.parametrize(
    "hidden, n_features, activation, latent",
    [((), 5, "sigmoid", "sigmoid"), ((), 5, "relu", "identity"), ((7,), 5, "tanh", "identity"),
     ((4, 3), 9, "sigmoid", "tanh"), ((6, 5, 4), 3, "elu", "sigmoid"),
     ((12,), 20, "sigmoid", "identity"), ((4, 3), 9, "relu", "identity"),
     ((5,), 4, "gelu", "leaky_relu"), ((3,), 6, "logistic", "elu")],
)
def test_contractive_penalty_matches_autograd_jacobian(hidden, n_features, activation, latent):
    torch.manual_seed(0)
    net = MLPAutoencoder(n_features, hidden, 2, activation, latent, "identity").double()
    x = torch.randn(6, n_features, dtype=torch.float64)
    output = net.forward_standardized(x, keep_activations=True)
    layers = net.encoder_layers
    assert len(output.activations) == len(output.pre_activations) == len(layers)
    derivatives = [derivative(layer.activation, p, q)
                   for layer, p, q in zip(layers, output.pre_activations, output.activations)]
    penalty = contractive_penalty([layer.linear.weight for layer in layers], derivatives)
    expected = _jacobian_penalty(net.encoder, x)
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-10)
    # the term on the network, as the objective calls it
    term = Contractive(0.25)
    assert term.name == "contractive" and term.needs_activations
    assert term(output, x, net).item() == pytest.approx(0.25 * expected.item(), rel=1e-10)


def test_contractive_term_gradients_match_autograd_and_use_standardized_units():
    torch.manual_seed(1)
    shift = torch.tensor([5.0, -2.0, 0.0, 1.0])
    scale = torch.tensor([10.0, 0.5, 1.0, 2.0])
    net = MLPAutoencoder(4, (6, 5), 3, "tanh", "sigmoid", "identity", shift=shift,
                         scale=scale).double()
    x = torch.randn(7, 4, dtype=torch.float64)  # standardized rows, as training sees them
    output = net.forward_standardized(x, keep_activations=True)
    penalty = Contractive(1.0)(output, x, net)
    weights = [p for n, p in net.named_parameters()]
    grads = torch.autograd.grad(penalty, weights, allow_unused=True)

    def code(h):
        return net.encode_standardized(h)[0]

    expected = _jacobian_penalty(code, x, create_graph=True)
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-10)
    expected_grads = torch.autograd.grad(expected, weights, allow_unused=True)
    for g, e in zip(grads, expected_grads):
        assert (g is None) == (e is None)
        if g is not None:
            torch.testing.assert_close(g, e)
    # w.r.t. raw inputs the Jacobian is divided column-wise by the scale: not what is penalized
    raw = _jacobian_penalty(net.encoder, net.destandardizer(x))
    assert raw.item() != pytest.approx(expected.item(), rel=1e-3)


# ---------------------------------------------------------------- corruption
def test_gaussian_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.full((2000, 10), 0.5)
    noisy = GaussianNoise(0.3, g)(x)
    assert (noisy - x).std().item() == pytest.approx(0.3, rel=0.05)
    assert (noisy - x).mean().item() == pytest.approx(0.0, abs=0.01)
    assert torch.equal(x, torch.full((2000, 10), 0.5))  # a corrupted copy
    # applied in standardized units: in the data's units its spread is level * scale
    standardize = Standardize(torch.full((10,), 1.0), torch.full((10,), 2.0))
    unstandardize = Standardize(torch.full((10,), 1.0), torch.full((10,), 2.0), inverse=True)
    scaled = unstandardize(GaussianNoise(0.3, g)(standardize(x)))
    assert (scaled - x).std().item() == pytest.approx(0.6, rel=0.05)
    assert GaussianNoise(0.0, g)(x).equal(x)


def test_masking():
    g = torch.Generator().manual_seed(0)
    x = torch.full((2000, 10), 0.5)
    for level in (0.25, 0.6):
        masked = Masking(level, g)(x)
        assert (masked == 0).float().mean().item() == pytest.approx(level, abs=0.01)
        assert set(masked.unique().tolist()) == {0.0, 0.5}
    assert torch.equal(Masking(0.0, g)(x), x)
    assert torch.all(Masking(1.0, g)(x) == 0)
    a = Masking(0.5, torch.Generator().manual_seed(1))(x)
    b = Masking(0.5, torch.Generator().manual_seed(1))(x)
    assert torch.equal(a, b)
    c = Masking(0.5, torch.Generator().manual_seed(2))(x)
    assert not torch.equal(a, c)


def test_salt_and_pepper_uses_each_features_own_extremes():
    g = torch.Generator().manual_seed(0)
    d = 6
    low = -torch.arange(1.0, d + 1)  # -1, -2, ..., distinct from every other column's
    high = 10.0 + torch.arange(d)  # 10, 11, ...
    # values strictly inside each column's range: every hit entry changes
    x = low + (high - low) * (0.1 + 0.8 * torch.rand(5000, d, generator=g))
    sp = SaltAndPepper(0.1, low, high, g)(x)
    changed = sp != x
    assert changed.float().mean().item() == pytest.approx(0.1, abs=0.01)
    is_low, is_high = sp == low, sp == high
    assert torch.equal(changed, is_low | is_high)  # changed entries are their own column's
    for j in range(d):
        col = sp[changed[:, j], j]
        others = torch.cat([low[torch.arange(d) != j], high[torch.arange(d) != j]])
        assert not torch.isin(col, others).any()
        # salt and pepper about equally often, in every column
        assert (col == high[j]).float().mean().item() == pytest.approx(0.5, abs=0.1)
    assert is_high[changed].float().mean().item() == pytest.approx(0.5, abs=0.03)
    assert torch.equal(sp[~changed], x[~changed])
    # at level 1 every entry is its column's low or high
    full = SaltAndPepper(1.0, low, high, g)(x)
    assert torch.all((full == low) | (full == high))
    assert (full == high).float().mean().item() == pytest.approx(0.5, abs=0.02)
    assert torch.equal(SaltAndPepper(0.0, low, high, g)(x), x)
    a = SaltAndPepper(0.3, low, high, torch.Generator().manual_seed(1))(x)
    b = SaltAndPepper(0.3, low, high, torch.Generator().manual_seed(1))(x)
    assert torch.equal(a, b)


def test_salt_and_pepper_on_unit_interval_data():
    g = torch.Generator().manual_seed(0)
    x = torch.full((2000, 10), 0.5)
    sp = SaltAndPepper(0.2, torch.zeros(10), torch.ones(10), g)(x)
    assert (sp == 0).float().mean().item() == pytest.approx(0.1, abs=0.01)
    assert (sp == 1).float().mean().item() == pytest.approx(0.1, abs=0.01)


# ----------------------------------------------------------------- objective
def test_objective_encodes_the_corrupted_batch_and_reconstructs_the_clean_one():
    torch.manual_seed(0)
    net = MLPAutoencoder(5, (4,), 3, "sigmoid", "sigmoid", "identity").double()
    x = torch.randn(8, 5, dtype=torch.float64)
    corrupt = lambda xb: xb * 0.5 + 1.0  # noqa: E731
    terms = (KLSparsity(0.2, 0.05, (0, 1)), Contractive(0.3))
    loss, parts = Objective("mse", terms, corrupt, 0.25)(net, x)
    x_in = corrupt(x)
    output = net.forward_standardized(x_in, keep_activations=True)
    expected = {
        "reconstruction": reconstruction_loss(output.reconstruction, x, "mse", 0.25),
        "sparsity": terms[0](output, x_in, net),
        "contractive": terms[1](output, x_in, net),
    }
    assert list(parts) == list(expected)
    for name, value in expected.items():
        assert parts[name].item() == pytest.approx(value.item(), rel=1e-12), name
    assert loss.item() == pytest.approx(sum(v.item() for v in expected.values()), rel=1e-12)
    # the target is the clean batch: reconstructing the corrupted one would differ
    assert expected["reconstruction"].item() != pytest.approx(
        reconstruction_loss(output.reconstruction, x_in, "mse", 0.25).item(), rel=1e-3)
    plain_loss, plain_parts = Objective("mse")(net, x)
    assert list(plain_parts) == ["reconstruction"]
    assert plain_loss.item() == pytest.approx(
        reconstruction_loss(net.forward_standardized(x).reconstruction, x, "mse").item())
    bce_x = torch.rand(8, 5, dtype=torch.float64)
    net_bce = MLPAutoencoder(5, (4,), 3, "tanh", "tanh", "sigmoid").double()
    bce_loss, _ = Objective("bce")(net_bce, bce_x)
    assert bce_loss.item() == pytest.approx(elementwise_error(
        net_bce.forward_standardized(bce_x).reconstruction, bce_x, "bce").mean().item())


def test_build_objective_follows_the_spec():
    X = np.random.RandomState(0).uniform(size=(30, 5)) * np.arange(1, 6) - 2
    rows = torch.from_numpy(X).float()
    g = torch.Generator()
    plain = build_objective(_spec(X=X), rows, g)
    assert plain.loss == "mse" and plain.terms == () and plain.corruption is None
    assert plain.trim == 0
    spec = _spec(X=X, sparsity="l1", sparsity_weight=0.1, contractive_weight=0.2,
                 noise="salt_and_pepper", noise_level=0.3)
    objective = build_objective(spec, rows, g)
    assert [type(t) for t in objective.terms] == [L1Activity, Contractive]
    assert objective.terms[0].weight == 0.1 and objective.terms[1].weight == 0.2
    sp = objective.corruption
    assert isinstance(sp, SaltAndPepper) and sp.level == 0.3
    torch.testing.assert_close(sp.low, rows.min(0).values)
    torch.testing.assert_close(sp.high, rows.max(0).values)
    kl = build_objective(_spec(X=X, sparsity="kl", latent_activation="sigmoid",
                               sparsity_target=0.2, noise="masking"), rows, g)
    assert isinstance(kl.terms[0], KLSparsity) and kl.terms[0].target == 0.2
    assert isinstance(kl.corruption, Masking)
    # zero weights and levels add nothing
    off = build_objective(_spec(X=X, sparsity="l1", sparsity_weight=0.0, noise="gaussian",
                                noise_level=0.0), rows, g)
    assert off.terms == () and off.corruption is None
    gaussian = build_objective(_spec(X=X, noise="gaussian", noise_level=0.4), rows, g)
    assert isinstance(gaussian.corruption, GaussianNoise) and gaussian.corruption.level == 0.4
    trimmed = build_objective(_spec(AutoencoderAnomalyDetector, X=X, trim_fraction=0.1), rows, g)
    assert trimmed.trim == 0.1
