"""The training engine, without scikit-learn."""

import math
import warnings

import numpy as np
import pytest
import torch

from skae._data import OnDevice
from skae._device import as_tensor
from skae._training import (
    FINITE_CHECK_BATCHED_NUMEL,
    EarlyStopping,
    LossPlateau,
    NonFiniteGuard,
    Plateau,
    Progress,
    TrainState,
    _all_finite,
    fit_module,
)


def make_problem():
    torch.manual_seed(0)
    X = torch.randn(64, 4)
    module = torch.nn.Linear(4, 4)

    def loss_fn(m, xb):
        rec = (m(xb) - xb).square().mean()
        penalty = 0.1 * m.weight.abs().sum()
        return rec + penalty, {"reconstruction": rec, "penalty": penalty}

    return OnDevice(X), module, loss_fn


def fit(module, data, loss_fn, optimizer, state=None, **kwargs):
    state = TrainState() if state is None else state
    kwargs = {"max_iter": 3, "batch_size": 16, "generator": torch.Generator(), **kwargs}
    return fit_module(module, data, loss_fn, optimizer, state, **kwargs), state


def test_every_loss_term_is_recorded():
    data, module, loss_fn = make_problem()
    status, state = fit(module, data, loss_fn, torch.optim.SGD(module.parameters(), lr=0.01))
    assert status == "max_iter" and state.n_iter == 3 and len(state.loss_curve) == 3
    assert set(state.terms) == {"reconstruction", "penalty"}
    for epoch in range(3):
        total = state.terms["reconstruction"][epoch] + state.terms["penalty"][epoch]
        assert abs(total - state.loss_curve[epoch]) < 1e-5
    assert state.best_loss == min(state.loss_curve)
    assert not module.training  # left in eval mode


def test_early_stopping_restores_the_best_epoch():
    data, module, loss_fn = make_problem()
    scores = iter([1.0, 3.0, 2.0, 2.0, 2.0, 2.0])
    snapshots = []

    def validation_score(m):
        assert not m.training  # scored in eval mode
        snapshots.append(m.weight.detach().clone())
        return next(scores)

    status, state = fit(module, data, loss_fn, torch.optim.SGD(module.parameters(), lr=0.1),
                        max_iter=6,
                        callbacks=[EarlyStopping(validation_score, tol=0), Plateau(2)])
    assert status == "converged" and state.n_iter == 5
    assert state.validation_scores == [1.0, 3.0, 2.0, 2.0, 2.0]
    assert state.best_validation_score == 3.0
    assert torch.equal(module.weight, snapshots[1])  # weights of the best (2nd) epoch
    assert not torch.equal(snapshots[1], snapshots[-1])  # training had moved on


def test_float32_input_is_not_copied():
    X = np.ones((5, 3), dtype=np.float32)
    t = as_tensor(X, torch.device("cpu"), torch.float32)
    assert t.data_ptr() == X.__array_interface__["data"][0]
    X.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = as_tensor(X, torch.device("cpu"), torch.float32)  # read-only input: no warning
    assert t.data_ptr() == X.__array_interface__["data"][0]  # and no copy


# ------------------------------------------------------------ non-finite values
class _BreakingSGD(torch.optim.SGD):
    """SGD that, after its ``at``-th step, makes ``poison(self)`` non-finite."""

    def __init__(self, params, at, poison, **kwargs):
        super().__init__(params, **kwargs)
        self.at, self.poison, self.steps = at, poison, 0

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        self.steps += 1
        if self.steps == self.at:
            self.poison(self)
        return loss


def _weight(optimizer):
    optimizer.param_groups[0]["params"][0][0, 0] = math.inf


def _momentum(optimizer):
    p = optimizer.param_groups[0]["params"][0]
    optimizer.state[p]["momentum_buffer"][0, 0] = math.nan


@pytest.mark.parametrize("poison, what", [(_weight, "weights"), (_momentum, "optimizer state")])
def test_non_finite_guard_checks_weights_and_optimizer_state_after_the_last_update(poison, what):
    data, module, loss_fn = make_problem()
    n_steps = 2 * 4  # 2 epochs of 4 batches: broken by the very last update
    optimizer = _BreakingSGD(module.parameters(), n_steps, poison, lr=0.01, momentum=0.9)
    state = TrainState()
    with pytest.raises(FloatingPointError, match="weights or optimizer state.*epoch 2"):
        fit(module, data, loss_fn, optimizer, state, max_iter=2, callbacks=[NonFiniteGuard()])
    assert all(math.isfinite(v) for v in state.loss_curve)  # every loss seen was finite
    assert optimizer.steps == n_steps
    if what == "optimizer state":
        assert all(torch.isfinite(p).all() for p in module.parameters())
    # without the guard the same run ends "normally"
    data, module, loss_fn = make_problem()
    optimizer = _BreakingSGD(module.parameters(), n_steps, poison, lr=0.01, momentum=0.9)
    status, state = fit(module, data, loss_fn, optimizer, max_iter=2)
    assert status == "max_iter" and all(math.isfinite(v) for v in state.loss_curve)


def test_non_finite_guard_reports_a_non_finite_loss():
    data, module, loss_fn = make_problem()

    def exploding(m, xb):
        loss, parts = loss_fn(m, xb)
        return loss * math.inf, parts

    with pytest.raises(FloatingPointError, match="training loss.*epoch 1"):
        fit(module, data, exploding, torch.optim.SGD(module.parameters(), lr=0.01),
            callbacks=[NonFiniteGuard()])


def test_non_finite_guard_passes_finite_training():
    data, module, loss_fn = make_problem()
    status, state = fit(module, data, loss_fn,
                        torch.optim.Adam(module.parameters(), lr=0.01),
                        callbacks=[NonFiniteGuard()])
    assert status == "max_iter" and state.n_iter == 3



def _finite_check_problem(dtype):
    """A net with one small and one large weight, after one Adam step (its state exists)."""
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 2), torch.nn.Linear(FINITE_CHECK_BATCHED_NUMEL // 2 + 1, 2, bias=False)
    ).to(dtype)
    net[1].weight.data[0, -1] = 3e38 if dtype == torch.float32 else 1e300  # large but finite
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()
    return net, optimizer


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("where", ["small weight", "large weight", "small state", "large state",
                                   "bfloat16 buffer"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_all_finite_finds_any_non_finite_value(dtype, where, value):
    net, optimizer = _finite_check_problem(dtype)
    assert bool(_all_finite(net, optimizer))
    small, large = net[0].weight, net[1].weight
    with torch.no_grad():
        if where == "small weight":
            small[1, 2] = value
        elif where == "large weight":
            large[1, 7] = value
        elif where == "small state":
            optimizer.state[small]["exp_avg_sq"][0, 1] = value
        elif where == "large state":
            optimizer.state[large]["exp_avg"][0, -1] = value
        else:  # a tensor of another dtype among the small ones
            optimizer.state[small]["extra"] = torch.tensor([1.0, value], dtype=torch.bfloat16)
    assert not bool(_all_finite(net, optimizer))


# ------------------------------------------------------------------ plateaus
def test_adaptive_plateau_divides_the_learning_rate_by_five():
    data, module, loss_fn = make_problem()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01)
    # tol is huge: no epoch after the first counts as an improvement
    status, state = fit(module, data, loss_fn, optimizer, max_iter=5,
                        callbacks=[LossPlateau(tol=1e9), Plateau(1, adaptive=True)])
    # stalls after epochs 2, 3 (count 2 > 1: divide, reset), 4, 5 (divide again)
    assert status == "max_iter" and state.n_iter == 5
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 / 25)
    # the same run without adaptive stops at the first plateau
    data, module, loss_fn = make_problem()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01)
    status, state = fit(module, data, loss_fn, optimizer, max_iter=5,
                        callbacks=[LossPlateau(tol=1e9), Plateau(1)])
    assert status == "converged" and state.n_iter == 3
    assert optimizer.param_groups[0]["lr"] == 0.01


def test_adaptive_plateau_stops_once_the_learning_rate_is_tiny():
    data, module, loss_fn = make_problem()
    optimizer = torch.optim.SGD(module.parameters(), lr=4e-6)
    status, state = fit(module, data, loss_fn, optimizer, max_iter=10,
                        callbacks=[LossPlateau(tol=1e9), Plateau(1, adaptive=True)])
    # epoch 3: 4e-6 > 1e-6, divide to 8e-7; epoch 5: nothing above 1e-6, stop
    assert status == "converged" and state.n_iter == 5
    assert optimizer.param_groups[0]["lr"] == pytest.approx(8e-7)


# ------------------------------------------------------------- interruption
def test_keyboard_interrupt_in_the_loss_stops_training():
    data, module, loss_fn = make_problem()
    calls = {"n": 0}

    def interrupted(m, xb):
        calls["n"] += 1
        if calls["n"] == 2 * 4 + 1:  # first batch of the third epoch
            raise KeyboardInterrupt
        return loss_fn(m, xb)

    ended = []

    class Spy(NonFiniteGuard):
        def on_train_end(self, loop, status):
            ended.append(status)

    status, state = fit(module, data, interrupted, torch.optim.SGD(module.parameters(), lr=0.01),
                        max_iter=5, callbacks=[Spy()])
    assert status == "interrupted"
    assert state.n_iter == 2 and len(state.loss_curve) == 2
    assert ended == ["interrupted"] and not module.training


# ------------------------------------------------------------------ progress
def test_progress_shows_the_validation_score(capsys):
    data, module, loss_fn = make_problem()
    fit(module, data, loss_fn, torch.optim.SGD(module.parameters(), lr=0.01),
        callbacks=[EarlyStopping(lambda m: -1.5, tol=0), Progress(3)])
    err = capsys.readouterr().err
    assert "val_score" in err and "-1.5" in err and "loss=" in err
    data, module, loss_fn = make_problem()
    fit(module, data, loss_fn, torch.optim.SGD(module.parameters(), lr=0.01),
        callbacks=[Progress(3)])
    err = capsys.readouterr().err
    assert "loss=" in err and "val_score" not in err


def _adam_pair(weight_decays, lr=1e-2, cls=None, **options):
    import copy

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 5))
    weights = [net[0].weight, net[2].weight]
    others = [net[0].bias, net[2].bias]
    groups = [{"params": weights, "weight_decay": weight_decays[0]},
              {"params": others, "weight_decay": weight_decays[1]}]
    cls = cls or torch.optim.Adam
    optimizer = cls(groups, lr=lr, fused=True, **options)
    twin = copy.deepcopy(net)
    twin_groups = [{"params": [twin[0].weight, twin[2].weight], "weight_decay": weight_decays[0]},
                   {"params": [twin[0].bias, twin[2].bias], "weight_decay": weight_decays[1]}]
    twin_optimizer = cls(twin_groups, lr=lr, fused=True, **options)
    return net, optimizer, twin, twin_optimizer


def _set_gradients(nets, step):
    g = torch.Generator().manual_seed(step)
    grads = [torch.randn(p.shape, generator=g) for p in nets[0].parameters()]
    for net in nets:
        for p, grad in zip(net.parameters(), grads):
            p.grad = grad.clone()


@pytest.mark.parametrize("weight_decays", [(0.0, 0.0), (0.1, 0.0)])
def test_adam_step_is_torch_adam_bit_for_bit(weight_decays):
    from skae._training import AdamStep

    net, optimizer, twin, twin_optimizer = _adam_pair(weight_decays)
    step = AdamStep(optimizer)
    for i in range(6):
        if i == 4:  # the learning rate changes between epochs ("adaptive", "invscaling")
            for opt in (optimizer, twin_optimizer):
                for group in opt.param_groups:
                    group["lr"] = 3e-3
        _set_gradients([net, twin], i)
        step()
        twin_optimizer.step()
        if i in (1, 5):  # torch's first step made the states; then the kernel runs directly
            assert step.kernel_calls == (1 if weight_decays[0] == weight_decays[1] else 2)
        for p, q in zip(net.parameters(), twin.parameters()):
            assert torch.equal(p, q), i
    for p, q in zip(net.parameters(), twin.parameters()):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(optimizer.state[p][key], twin_optimizer.state[q][key])


def test_adam_step_leaves_other_cases_to_torch():
    from skae._training import AdamStep

    net, optimizer, twin, twin_optimizer = _adam_pair((0.0, 0.0), amsgrad=True)
    assert not AdamStep(optimizer).eligible
    net, optimizer, _, _ = _adam_pair((0.0, 0.0), cls=torch.optim.AdamW)
    assert not AdamStep(optimizer).eligible
    net, optimizer, twin, twin_optimizer = _adam_pair((0.0, 0.0))
    step = AdamStep(optimizer)
    calls = []
    handle = optimizer.register_step_pre_hook(lambda *args: calls.append(1))
    for i in range(3):
        _set_gradients([net, twin], i)
        step()
    assert calls == [1, 1, 1] and step.kernel_calls == 0  # a hook: every step is torch's
    handle.remove()
    _set_gradients([net, twin], 3)
    step()
    assert step.kernel_calls == 1
    net[0].bias.grad = None  # a parameter without a gradient: torch's step skips it
    before = net[0].bias.detach().clone()
    step()
    assert torch.equal(net[0].bias, before) and step.kernel_calls == 0
