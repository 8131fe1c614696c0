"""The training loop and its callbacks.

Free of scikit-learn and of the estimators' parameters. ``loss_fn(net, xb)
-> (loss, parts)`` is the one seam for what is minimized; everything that
decides when to stop, what to record or what to show is a small callback
whose ``on_epoch_end`` returns a reason to stop, or None.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.optim import optimizer as _torch_optimizer
from tqdm.auto import tqdm

from ._data import iter_chunks
from ._distributed import Lockstep


@dataclass
class TrainState:
    """Training history, kept across ``partial_fit`` calls and warm starts.

    Attributes
    ----------
    n_iter : int
        Epochs run so far.
    loss_curve : list of float
        Mean training loss (all terms) per epoch.
    terms : dict of str to list of float
        Mean of each loss part per epoch, keyed by name; 0 for the epochs in
        which a part was not in the loss, so every list has ``n_iter`` values.
    validation_scores : list of float
        Validation score per epoch (higher is better), when validating.
    best_loss : float
        Lowest training loss seen.
    best_validation_score : float
        Highest validation score seen.
    no_improvement_count : int
        Consecutive epochs without an improvement larger than ``tol``.
    split_seed : int or None
        Seed of the early-stopping split, fixed by the first fit so that warm
        starts hold out the same rows.
    """

    n_iter: int = 0
    loss_curve: list = field(default_factory=list)
    terms: dict = field(default_factory=dict)
    validation_scores: list = field(default_factory=list)
    best_loss: float = math.inf
    best_validation_score: float = -math.inf
    no_improvement_count: int = 0
    split_seed: int = None


@dataclass
class Loop:
    """What callbacks see: the net, its optimizer, the history, this epoch's loss."""

    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    state: TrainState
    loss: float = math.nan
    finite: bool = True


class Callback:
    """No-op hooks; subclasses override what they need."""

    def on_train_begin(self, loop):
        """Called once before the first epoch."""

    def on_epoch_end(self, loop):
        """Called after each epoch; return a reason to stop, or None."""

    def on_train_end(self, loop, status):
        """Called once at the end, whatever the reason (not on an error)."""

    def close(self):
        """Called last, also when training raised: release resources."""


class NonFiniteGuard(Callback):
    """Raise FloatingPointError when the loss, the weights or the optimizer state is not finite.

    Checked after the epoch's last update, so a step that breaks the
    weights at the very end of a fit is caught too.
    """

    def on_epoch_end(self, loop):
        """Raise on non-finite values."""
        if not (math.isfinite(loop.loss) and loop.finite):
            what = "training loss" if not math.isfinite(loop.loss) else "weights or optimizer state"
            raise FloatingPointError(
                f"The {what} became non-finite at epoch {loop.state.n_iter}: training "
                "diverged. Lower learning_rate_init, or standardize or rescale X."
            )


class LossPlateau(Callback):
    """Count epochs without an improvement of the training loss larger than ``tol``."""

    def __init__(self, tol):
        self.tol = tol

    def on_epoch_end(self, loop):
        """Update ``no_improvement_count``."""
        improved = loop.loss < loop.state.best_loss - self.tol
        loop.state.no_improvement_count = 0 if improved else loop.state.no_improvement_count + 1


class EarlyStopping(Callback):
    """Score held-out rows each epoch, count stalls on it, restore the best weights.

    Parameters
    ----------
    score : callable
        ``score(net) -> float``, higher is better.
    tol : float
        Minimum improvement that counts.
    """

    def __init__(self, score, tol):
        self.score, self.tol = score, tol
        self.best = None

    def on_train_begin(self, loop):
        """Start from this call's weights: the best epoch is one of this call's."""
        loop.state.best_validation_score = -math.inf

    def on_epoch_end(self, loop):
        """Record the validation score; keep the best weights."""
        loop.net.eval()
        with torch.no_grad():
            value = float(self.score(loop.net))
        loop.net.train()
        state = loop.state
        state.validation_scores.append(value)
        improved = value > state.best_validation_score + self.tol
        if value > state.best_validation_score:
            state.best_validation_score = value
            self.best = {k: v.detach().clone() for k, v in loop.net.state_dict().items()}
        state.no_improvement_count = 0 if improved else state.no_improvement_count + 1

    def on_train_end(self, loop, status):
        """Put the best epoch's weights back."""
        if self.best is not None:
            loop.net.load_state_dict(self.best)


class Plateau(Callback):
    """Stop after ``n_iter_no_change`` stalled epochs, or first lower the learning rate.

    Parameters
    ----------
    n_iter_no_change : int
    adaptive : bool
        Divide the learning rate by 5 instead of stopping, until it falls
        below 1e-6.
    """

    def __init__(self, n_iter_no_change, adaptive=False):
        self.n_iter_no_change, self.adaptive = n_iter_no_change, adaptive

    def on_epoch_end(self, loop):
        """Return "converged" when training has stalled for good."""
        if loop.state.no_improvement_count <= self.n_iter_no_change:
            return None
        groups = loop.optimizer.param_groups
        if self.adaptive and any(g["lr"] > 1e-6 for g in groups):
            for g in groups:
                g["lr"] /= 5.0
            loop.state.no_improvement_count = 0
            return None
        return "converged"


class TermSchedule(Callback):
    """Tell scheduled loss terms (those with ``start_epoch``) which epoch starts.

    Epochs count over the model's whole training (``state.n_iter + 1``), so
    a schedule continues across warm starts and ``partial_fit`` calls. While
    a term's weight is still below its final value the loss is a moving
    target: the epoch counts as progress and the best loss restarts from it,
    so training neither stops during a warm-up nor compares later losses
    with the lighter ones of the warm-up. Runs after the other callbacks.
    """

    def __init__(self, terms):
        self.terms = [t for t in terms if hasattr(t, "start_epoch")]

    def on_train_begin(self, loop):
        """Set the first epoch's values."""
        for term in self.terms:
            term.start_epoch(loop.state.n_iter + 1)

    def on_epoch_end(self, loop):
        """Suspend the plateau count during a warm-up; set the next epoch's values."""
        if any(term.current < term.weight for term in self.terms):
            loop.state.no_improvement_count = 0
            loop.state.best_loss = math.inf
        self.on_train_begin(loop)


class Progress(Callback):
    """A progress bar with the running loss and, when validating, the validation score."""

    def __init__(self, total, desc="fit"):
        self.total, self.desc, self.bar = total, desc, None

    def on_train_begin(self, loop):
        """Open the bar."""
        self.bar = tqdm(total=self.total, desc=self.desc, unit="epoch")

    def on_epoch_end(self, loop):
        """Show this epoch's numbers."""
        shown = {"loss": f"{loop.loss:.4g}"}
        if loop.state.validation_scores:
            shown["val_score"] = f"{loop.state.validation_scores[-1]:.4g}"
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update()

    def close(self):
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()


#: Tensors of at most this many elements are checked for finiteness together
#: (flattened into one per device); larger ones one by one, without a copy.
FINITE_CHECK_BATCHED_NUMEL = 1 << 16


def _all_finite(net, optimizer):
    """One boolean tensor: every parameter and optimizer state tensor is finite.

    A check costs about 25 us per tensor whatever its size, more than a
    small network's whole epoch when done tensor by tensor; the small
    tensors of each device are therefore concatenated (``torch.cat``
    promotes mixed dtypes without losing an infinity or a NaN) and checked
    at once.
    """
    tensors = list(net.parameters())
    for st in optimizer.state.values():
        tensors.extend(v for v in st.values() if torch.is_tensor(v) and v.is_floating_point())
    device = tensors[0].device  # some optimizers keep step counters on the CPU
    small, flags = {}, []
    for t in tensors:
        if t.numel() <= FINITE_CHECK_BATCHED_NUMEL:
            small.setdefault(t.device, []).append(t.detach().reshape(-1))
        else:
            flags.append(torch.isfinite(t).all().to(device))
    flags.extend(torch.isfinite(torch.cat(rows)).all().to(device) for rows in small.values())
    return torch.stack(flags).all()


def run_epoch(net, data, loss_fn, optimizer, *, index, batch_size, generator, shuffle,
              lockstep=None):
    """One pass of minibatch updates over the rows ``index`` of ``data``.

    Parameters
    ----------
    net : torch.nn.Module
    data : row source
        See :mod:`skae._data`.
    loss_fn : callable
        ``loss_fn(net, xb) -> (loss, parts)``. When it has a true
        ``sets_gradients`` attribute it also leaves the gradients in every
        parameter's ``.grad`` and no backward pass is run.
    optimizer : torch.optim.Optimizer
    index : torch.Tensor or None
        Rows to train on (on ``data.index_device``); None for all.
    batch_size : int
    generator : torch.Generator
        Shuffling randomness, a CPU generator: the order is drawn on the host
        and moved to ``data.index_device``.
    shuffle : bool
    lockstep : skae._distributed.Lockstep or None, default=None
        In a distributed fit: the number of steps every rank takes, and the
        average of the ranks' gradients before each ``optimizer.step()``.

    Returns
    -------
    sums : torch.Tensor
        Sums over this rank's rows of the loss and of each part (each
        batch's mean times its row count), still on the device (no host
        synchronisation).
    names : list of str
        Part names, in the order of ``sums[1:]``.
    """
    n = data.n_rows if index is None else index.shape[0]
    if hasattr(data, "order"):  # a source that chooses its own visiting order
        order = data.order(index, generator, shuffle)
    else:
        # drawn on the host whatever the device, so that data held on a GPU, streamed
        # to it, memory-mapped or sparse visits its rows in the same order
        order = torch.randperm(n, generator=generator).to(data.index_device) if shuffle else None
        if index is not None:
            order = index if order is None else index[order]
    totals, names = None, []
    direct = getattr(loss_fn, "sets_gradients", False)
    step = AdamStep(optimizer)
    n_steps = math.ceil(n / batch_size) if lockstep is None else lockstep.n_steps
    for start in range(0, n_steps * batch_size, batch_size):
        if start >= n:  # this rank's rows have run out: the others' batches make the step
            lockstep.average_gradients(0)
            step()
            continue
        stop = min(start + batch_size, n)
        xb = data.slice(start, stop) if order is None else data.take(order[start:stop])
        loss, parts = loss_fn(net, xb)
        if not direct:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        if lockstep is not None:
            lockstep.average_gradients(stop - start)
        step()
        if totals is None:
            names = list(parts)
            totals = torch.zeros(1 + len(parts), device=xb.device)
        totals[0].add_(loss.detach().float(), alpha=stop - start)
        for i, part in enumerate(parts.values(), start=1):
            totals[i].add_(part.detach().float(), alpha=stop - start)
    return totals, names


def fit_module(net, data, loss_fn, optimizer, state, *, max_iter, batch_size, generator,
               index=None, shuffle=True, callbacks=(), collective=None):
    """Train ``net`` with minibatch gradient descent.

    Parameters
    ----------
    net : torch.nn.Module
        Trained in place, on the training device.
    data : row source
        See :mod:`skae._data`.
    loss_fn : callable
        See :func:`run_epoch`.
    optimizer : torch.optim.Optimizer
    state : TrainState
        History to append to; updated in place.
    max_iter : int
        Maximum number of epochs in this call.
    batch_size : int
        Clipped to the number of training rows.
    generator : torch.Generator
        Shuffling randomness, a CPU generator: the order is drawn on the host
        and moved to ``data.index_device``.
    index : torch.Tensor or None, default=None
        Training rows; None for all.
    shuffle : bool, default=True
    callbacks : sequence of Callback, default=()
        Run in order after every epoch; the first to return a reason stops
        training.
    collective : skae._distributed.Collective or None, default=None
        The ranks of a distributed fit; None in a single process. Every
        rank then takes the same steps with the averaged gradients (see
        :class:`skae._distributed.Lockstep`), and each epoch's loss, parts
        and finiteness are those of all ranks' rows, so the history and
        the callbacks' decisions are the same on every rank.

    Returns
    -------
    status : {"converged", "max_iter", "interrupted"}
        Why training stopped. Ctrl-C (KeyboardInterrupt) stops it with
        "interrupted"; the caller decides how to report it.
    """
    n = data.n_rows if index is None else index.shape[0]
    batch_size = max(1, min(batch_size, n))
    loop = Loop(net, optimizer, state)
    status = "max_iter"
    lockstep = None if collective is None else Lockstep(
        collective, optimizer, math.ceil(n / batch_size))
    try:
        for cb in callbacks:
            cb.on_train_begin(loop)
        net.train()
        for _ in range(max_iter):
            sums, names = run_epoch(
                net, data, loss_fn, optimizer,
                index=index, batch_size=batch_size, generator=generator, shuffle=shuffle,
                lockstep=lockstep,
            )
            flag = _all_finite(net, optimizer).to(sums.dtype).reshape(1)
            count = n
            if collective is not None:  # every rank's sums, finite flags and rows
                total = collective.all_reduce(torch.cat([sums, flag, sums.new_tensor([n])]))
                sums, count = total[:-2], total[-1]
                flag = (total[-2:-1] == collective.world_size).to(sums.dtype)
            values = torch.cat([sums / count, flag]).tolist()  # the one host synchronisation
            loop.loss, loop.finite = values[0], values[-1] == 1.0
            _record(state, loop.loss, dict(zip(names, values[1:-1])))
            reason = None
            for cb in callbacks:
                reason = cb.on_epoch_end(loop) or reason
            state.best_loss = min(state.best_loss, loop.loss)
            if reason is not None:
                status = reason
                break
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        for cb in callbacks:
            cb.close()
    net.eval()
    for cb in callbacks:
        cb.on_train_end(loop, status)
    return status


def _record(state, loss, parts):
    """Append an epoch's loss and parts; a part new in this call reads 0 before it."""
    state.n_iter += 1
    state.loss_curve.append(loss)
    for name in parts.keys() - state.terms.keys():
        state.terms[name] = [0.0] * (state.n_iter - 1)
    for name, curve in state.terms.items():
        curve.append(parts.get(name, 0.0))


class AdamStep:
    """``optimizer.step()``, without torch's per-call overhead for fused Adam.

    For a small network on one CPU thread, ``torch.optim.Adam.step`` spends
    about 135 us per call around a fused kernel of about 30 us (hooks,
    profiler records, grouping tensors by device and dtype), and a training
    step of such a network takes about 1.3 ms. Once every parameter has its
    state (torch's own first step makes it), this runs the same kernel on
    the same state tensors, with one call for consecutive groups that share
    their settings; the result is bit for bit ``optimizer.step()``'s.
    Everything else goes through ``optimizer.step()``: other optimizers,
    Adam that is not fused or has other options, step hooks, a parameter
    without a gradient, several devices or dtypes.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer

    Attributes
    ----------
    kernel_calls : int
        Calls of the fused kernel in the last step; 0 when it was torch's.
    """

    _PLAIN = {"amsgrad": False, "maximize": False, "capturable": False,
              "differentiable": False, "decoupled_weight_decay": False, "fused": True}

    def __init__(self, optimizer):
        self.optimizer = optimizer
        groups = optimizer.param_groups
        params = [p for group in groups for p in group["params"]]
        self.eligible = (
            type(optimizer) is torch.optim.Adam
            and hasattr(torch, "_fused_adam_")
            and all(group.get(key, plain) == plain for group in groups
                    for key, plain in self._PLAIN.items())
            and not any(isinstance(group["lr"], torch.Tensor) for group in groups)
            and len({(p.device, p.dtype) for p in params}) == 1
        )
        self.states = None  # per group: its exp_avg, exp_avg_sq and step tensors
        self.kernel_calls = 0

    def _hooked(self):
        return any((self.optimizer._optimizer_step_pre_hooks,
                    self.optimizer._optimizer_step_post_hooks,
                    getattr(_torch_optimizer, "_global_optimizer_pre_hooks", None),
                    getattr(_torch_optimizer, "_global_optimizer_post_hooks", None)))

    def _runs(self):
        """``(settings, tensor lists)`` per run of consecutive groups with the same settings.

        None while some state is missing (before torch's first step) or some
        gradient is.
        """
        groups, state = self.optimizer.param_groups, self.optimizer.state
        if self.states is None:
            if not all("exp_avg" in state[p] for group in groups for p in group["params"]):
                return None
            self.states = [[[state[p][key] for p in group["params"]]
                            for key in ("exp_avg", "exp_avg_sq", "step")] for group in groups]
        runs = []
        for group, states in zip(groups, self.states):
            grads = [p.grad for p in group["params"]]
            if any(g is None for g in grads):
                return None
            settings = (group["lr"], *group["betas"], group["weight_decay"], group["eps"])
            tensors = [group["params"], grads, *states]
            if runs and runs[-1][0] == settings:
                runs[-1][1] = [a + b for a, b in zip(runs[-1][1], tensors)]
            else:
                runs.append([settings, tensors])
        return runs

    def __call__(self):
        """Take one optimizer step."""
        runs = self._runs() if self.eligible and not self._hooked() else None
        self.kernel_calls = 0 if runs is None else len(runs)
        if runs is None:
            return self.optimizer.step()
        for (lr, beta1, beta2, weight_decay, eps), (params, grads, exp_avgs, exp_avg_sqs,
                                                    steps) in runs:
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False,
                               lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay,
                               eps=eps, maximize=False)
        return None


def make_optimizer(net, *, solver, learning_rate_init, alpha, momentum, nesterovs_momentum,
                   beta_1, beta_2, epsilon):
    """The optimizer over ``net``'s parameters; weight decay ``alpha`` on weights only.

    Parameters
    ----------
    net : torch.nn.Module
        With ``parameter_groups() -> (weights, others)``.
    solver : {"adam", "adamw", "sgd"}
    learning_rate_init, alpha, momentum : float
    nesterovs_momentum : bool
    beta_1, beta_2, epsilon : float

    Returns
    -------
    optimizer : torch.optim.Optimizer
    """
    weights, others = net.parameter_groups()
    groups = [{"params": weights, "weight_decay": alpha}, {"params": others, "weight_decay": 0.0}]
    if solver == "sgd":
        return torch.optim.SGD(
            groups, lr=learning_rate_init, momentum=momentum,
            nesterov=nesterovs_momentum and momentum > 0,
        )
    cls = torch.optim.Adam if solver == "adam" else torch.optim.AdamW
    kwargs = dict(lr=learning_rate_init, betas=(beta_1, beta_2), eps=epsilon)
    try:
        return cls(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device
        return cls(groups, **kwargs)


def mean_error(net, data, index, error, chunk_width, collective=None):
    """Mean of ``error(net, x)`` over the rows ``index`` of ``data``, chunk by chunk.

    Rows are gathered a chunk at a time: no copy of the selection is made.

    Parameters
    ----------
    net : torch.nn.Module
    data : row source
    index : torch.Tensor
        Rows to score.
    error : callable
        ``error(net, x) -> (errors, weights)``: elementwise errors of shape
        ``(m, k)`` and the rows' sample weights (shape ``(m,)``, or None).
    chunk_width : int
        Widest row a chunk materializes.
    collective : skae._distributed.Collective or None, default=None
        In a distributed fit, the mean is over every rank's rows ``index``.

    Returns
    -------
    mean : float
    """
    total, count = 0.0, 0.0
    for a, b in iter_chunks(index.shape[0], chunk_width):
        errors, weights = error(net, data.take(index[a:b]))
        if weights is None:
            total = total + errors.sum()
            count = count + errors.numel()
        else:
            total = total + (errors * weights.unsqueeze(1)).sum()
            count = count + weights.sum() * errors.shape[1]
    total, count = float(total), float(count)
    if collective is not None:
        total, count = collective.all_reduce(np.array([total, count]))
    return total / count
