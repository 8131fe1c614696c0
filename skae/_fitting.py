"""One training run as a Spec describes it: rows, objective, callbacks, pretraining, loop.

Free of scikit-learn: the estimator validates, resolves the Spec and builds
or copies the network; :func:`train` does the rest and returns what the
estimator publishes.
"""

import copy
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ._data import SparseRows, row_source, training_rows, with_weights
from ._device import training_context, training_threads
from ._fastpath import loss_function
from ._objective import (
    build_objective,
    elementwise_error,
    gaussian_kl,
    split_rows,
    split_weights,
)
from ._pretraining import pretrain_greedy
from ._training import (
    EarlyStopping,
    LossPlateau,
    NonFiniteGuard,
    Plateau,
    Progress,
    TermSchedule,
    fit_module,
    make_optimizer,
    mean_error,
)


@dataclass
class FitResult:
    """What a training run produced.

    Attributes
    ----------
    status : {"converged", "max_iter", "interrupted"}
    optimizer_state : dict
        The optimizer's ``state_dict``, to resume from.
    pretraining_curves : list of list of float or None
        Loss curve of each greedy pretraining stage; None when none ran.
    """

    status: str
    optimizer_state: dict
    pretraining_curves: Optional[list] = None


class Generators:
    """One seeded ``torch.Generator`` per device, created on first use."""

    def __init__(self, seed):
        self.seed, self._made = seed, {}

    def __call__(self, device):
        device = torch.device(device)
        if device not in self._made:
            self._made[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._made[device]


def build_optimizer(spec, net):
    """The optimizer the Spec asks for, over ``net``'s parameters."""
    return make_optimizer(
        net, solver=spec.solver, learning_rate_init=spec.learning_rate_init, alpha=spec.alpha,
        momentum=spec.momentum, nesterovs_momentum=spec.nesterovs_momentum,
        beta_1=spec.beta_1, beta_2=spec.beta_2, epsilon=spec.epsilon,
    )


def resume(optimizer, saved):
    """Load ``saved`` per-parameter state (moments, steps) into ``optimizer``.

    The hyperparameters stay those ``optimizer`` was built with (the current
    parameters). ``saved`` is copied first: loading would alias its tensors,
    and it must stay intact should this run fail.
    """
    saved = copy.deepcopy(saved)
    current = optimizer.state_dict()["param_groups"]
    saved["param_groups"] = [
        {**new, "params": old["params"]} for old, new in zip(saved["param_groups"], current)
    ]
    optimizer.load_state_dict(saved)


def _stopping(spec, data, seed, n_rows, state, weighted=False, collective=None):
    """``(train_index, callbacks)`` deciding when training stops.

    In a distributed fit each rank holds out its own rows, and the
    validation score is the mean error over all ranks' held-out rows.
    """
    callbacks = [NonFiniteGuard()]
    index = None
    if spec.early_stopping and not spec.incremental:
        n_val = int(spec.validation_fraction * n_rows)
        split_seed = seed if state.split_seed is None else state.split_seed
        state.split_seed = split_seed  # a warm start holds out the same rows
        perm = torch.randperm(n_rows, generator=torch.Generator().manual_seed(split_seed))
        val_index, index = (p.to(data.index_device) for p in (perm[:n_val], perm[n_val:]))
        if getattr(data, "sequential", False):  # read block by block: score in row order
            val_index = val_index.sort().values

        def error(net, x):
            x, weights = split_weights(x, weighted)
            return _validation_error(net, x), weights

        def _validation_error(net, x):
            if spec.variational:  # the negative ELBO, on noise fixed across epochs
                noise = torch.randn((x.shape[0], spec.n_components), dtype=x.dtype,
                                    generator=torch.Generator().manual_seed(split_seed))
                out = net.forward_standardized(x, noise=noise.to(x.device))
                nelbo = net.negative_log_likelihood(out, x) + gaussian_kl(out.mean, out.log_variance)
                return nelbo.unsqueeze(1)
            x, target = split_rows(x, net.n_inputs)
            return elementwise_error(net.forward_standardized(x).reconstruction, target, spec.loss)

        def score(net):
            return -mean_error(net, data, val_index, error, spec.max_width, collective)

        callbacks.append(EarlyStopping(score, spec.tol))
    else:
        callbacks.append(LossPlateau(spec.tol))
    if not spec.incremental:
        callbacks.append(Plateau(spec.n_iter_no_change, spec.learning_rate == "adaptive"))
    return index, callbacks


def _stage_callbacks(spec, verbose):
    def make(max_iter):
        cbs = [NonFiniteGuard(), LossPlateau(spec.tol), Plateau(spec.n_iter_no_change)]
        return cbs + ([Progress(max_iter, "pretrain")] if verbose else [])

    return make


def _pretraining_rows(data, index):
    """The rows greedy pretraining trains on: all of them, or the training part ``index``."""
    if isinstance(data, SparseRows):
        return data if index is None else data.subset(index)
    return data.X if index is None else data.X.index_select(0, index)


def train(spec, X, net, state, *, seed, weights=None, optimizer_state=None, pretrain=False,
          collective=None):
    """Train ``net`` (in place) on ``X`` as ``spec`` says.

    Parameters
    ----------
    spec : skae._params.Spec
    X : ndarray or CSR matrix of shape (n_samples, n_features) or (n_samples, n_features + n_outputs)
        Validated training data; for paired data (``spec.n_outputs`` set),
        each row's inputs followed by its targets. A sparse matrix is
        densified one batch at a time.
    net : torch.nn.Module
        The network, on ``spec.device``; trained in place.
    state : skae._training.TrainState
        History to extend; updated in place.
    seed : int
        Seed of this run's generators (shuffling, corruption, split).
    weights : ndarray of shape (n_samples,) or None, default=None
        Sample weights (frequencies) of the rows; None for equal weights.
        They travel with the rows as a last column, so that batches,
        shuffling and streaming carry them.
    optimizer_state : dict or None, default=None
        Optimizer state to resume from (``partial_fit``).
    pretrain : bool, default=False
        Run greedy layer-wise pretraining first.
    collective : skae._distributed.Collective or None, default=None
        The ranks of a distributed fit, each with its own shard ``X``; None
        in a single process. The ranks then train in lockstep on averaged
        gradients, agree on every epoch's history and on when to stop, and
        draw their own random numbers (shuffling, corruption, sampling).
        Only rank 0 shows progress bars.

    Returns
    -------
    result : FitResult
    """
    stats = net.training_statistics()
    rows = training_rows(X, *stats, owner=spec.owner)
    inputs, weighted = rows, weights is not None
    if weighted:  # normalized to mean 1 in float64, so float32 keeps them exact enough
        column = torch.from_numpy((weights / weights.mean()).astype(np.float32)).unsqueeze(1)
        rows = with_weights(rows, column)
    batch_size = min(spec.batch_size, X.shape[0])
    data = row_source(rows, spec.device, batch_size)
    optimizer = build_optimizer(spec, net)
    if optimizer_state is not None:
        resume(optimizer, optimizer_state)
    rank = 0 if collective is None else collective.rank
    generators = Generators(seed + 1 + (rank << 32))  # each rank its own random numbers
    objective = build_objective(spec, inputs, generators(spec.device), stats, weighted,
                                reduce=None if collective is None else collective.all_reduce)
    if not spec.incremental:  # a new call to fit: a fresh optimizer, a fresh count
        state.no_improvement_count = 0
    index, callbacks = _stopping(spec, data, seed, X.shape[0], state, weighted, collective)
    callbacks.append(TermSchedule(objective.terms))
    max_iter = 1 if spec.incremental else spec.max_iter
    verbose = spec.verbose and rank == 0
    if verbose:
        callbacks.append(Progress(max_iter))
    status, curves = "max_iter", None
    threads = training_threads(spec.widths, batch_size, spec.device)
    with training_context(spec.device, spec.precision, threads):
        if pretrain:
            status, stages = pretrain_greedy(
                net, _pretraining_rows(data, index),
                loss=spec.loss, device=spec.device, batch_size=batch_size,
                max_iter=spec.pretraining_max_iter,
                make_optimizer=lambda stage: build_optimizer(spec, stage),
                generators=generators, callbacks=_stage_callbacks(spec, verbose),
                shuffle=spec.shuffle, precision=spec.precision, weighted=weighted,
                collective=collective,
            )
            curves = [list(s.loss_curve) for s in stages]
        if status != "interrupted":
            status = fit_module(
                net, data, loss_function(objective, net, batch_size, spec.precision),
                optimizer, state, max_iter=max_iter, batch_size=batch_size,
                generator=generators("cpu"), index=index, shuffle=spec.shuffle,
                callbacks=callbacks, collective=collective,
            )
    for p in net.parameters():
        p.grad = None
    return FitResult(status, optimizer.state_dict(), curves)
