"""The training engine, without scikit-learn."""

import torch

from skae._base import as_tensor
from skae._training import TrainState, fit_module


def make_problem():
    torch.manual_seed(0)
    X = torch.randn(64, 4)
    module = torch.nn.Linear(4, 4)

    def loss_fn(m, xb):
        rec = (m(xb) - xb).square().mean()
        penalty = 0.1 * m.weight.abs().sum()
        return rec + penalty, {"reconstruction": rec, "penalty": penalty}

    return X, module, loss_fn


def test_every_loss_term_is_recorded():
    X, module, loss_fn = make_problem()
    state = TrainState()
    fit_module(module, X, loss_fn, torch.optim.SGD(module.parameters(), lr=0.01), state,
               max_iter=3, batch_size=16, generator=torch.Generator())
    assert set(state.terms) == {"reconstruction", "penalty"}
    for epoch in range(3):
        total = state.terms["reconstruction"][epoch] + state.terms["penalty"][epoch]
        assert abs(total - state.loss_curve[epoch]) < 1e-5


def test_early_stopping_restores_the_best_epoch():
    X, module, loss_fn = make_problem()
    scores = iter([1.0, 3.0, 2.0, 2.0, 2.0, 2.0])
    snapshots = []

    def validation_score(m):
        snapshots.append(m.weight.detach().clone())
        return next(scores)

    state = TrainState()
    status = fit_module(module, X, loss_fn, torch.optim.SGD(module.parameters(), lr=0.1), state,
                        max_iter=6, batch_size=16, generator=torch.Generator(),
                        validation_score=validation_score, n_iter_no_change=2)
    assert status == "converged" and state.n_iter == 5
    assert state.validation_scores == [1.0, 3.0, 2.0, 2.0, 2.0]
    assert torch.equal(module.weight, snapshots[1])  # weights of the best (2nd) epoch


def test_float32_input_is_not_copied():
    import numpy as np

    X = np.ones((5, 3), dtype=np.float32)
    t = as_tensor(X, torch.device("cpu"), torch.float32)
    assert t.data_ptr() == X.__array_interface__["data"][0]
    X.setflags(write=False)
    as_tensor(X, torch.device("cpu"), torch.float32)  # read-only input: no warning, no copy
