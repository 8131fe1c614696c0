"""The training engine: one minibatch loop shared by every estimator.

Free of scikit-learn. A loss function ``loss_fn(module, xb) -> (loss, terms)``
is the only seam: regularizers are extra terms it returns, and every term is
recorded per epoch in :class:`TrainState`.
"""

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

#: Rows per chunk in inference and validation: bounds memory on any n.
INFERENCE_CHUNK_ELEMENTS = 1 << 21


@dataclass
class TrainState:
    """Training history and early-stopping bookkeeping, kept across calls.

    Attributes
    ----------
    n_iter : int
        Epochs run so far.
    loss_curve : list of float
        Mean training loss (all terms) per epoch.
    terms : dict of str to list of float
        Mean of each loss term per epoch, keyed by term name.
    validation_scores : list of float
        Validation score per epoch (higher is better), when validating.
    best_loss : float
        Lowest training loss seen.
    best_validation_score : float
        Highest validation score seen.
    no_improvement_count : int
        Consecutive epochs without an improvement larger than ``tol``.
    best_state : dict or None
        Copy of the module's ``state_dict`` at the best validation score.
    """

    n_iter: int = 0
    loss_curve: list = field(default_factory=list)
    terms: dict = field(default_factory=dict)
    validation_scores: list = field(default_factory=list)
    best_loss: float = math.inf
    best_validation_score: float = -math.inf
    no_improvement_count: int = 0
    best_state: dict = None


@contextmanager
def torch_threads(n_threads):
    """Run a block with ``torch.set_num_threads(n_threads)``, then restore.

    Parameters
    ----------
    n_threads : int or None
        Number of intra-op threads; None leaves the setting alone.
    """
    previous = torch.get_num_threads()
    if n_threads is None or n_threads == previous:
        yield
        return
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def training_precision(precision, device):
    """Run a block of training in the requested arithmetic.

    Parameters
    ----------
    precision : {"float32", "tf32", "bfloat16"}
        ``"tf32"`` lets CUDA matrix products use TensorFloat-32 (restored
        afterwards; no effect on the CPU); ``"bfloat16"`` runs the block
        under ``torch.autocast`` with bfloat16.
    device : torch.device
        Training device.
    """
    if precision == "bfloat16":
        # no weight-cast cache: it lives as long as the context, which spans
        # many optimizer steps here, and would keep stale weights
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=False):
            yield
        return
    if precision != "tf32" or device.type != "cuda":
        yield
        return
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def _clone_state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def iter_chunks(n_rows, n_cols):
    """Yield ``(start, stop)`` row ranges whose size bounds memory use.

    Parameters
    ----------
    n_rows : int
        Rows to cover.
    n_cols : int
        Widest row (in elements) that a chunk will materialize.
    """
    step = max(1, INFERENCE_CHUNK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


class StreamedRows:
    """Training rows kept in host memory and sent to the device batch by batch.

    For data sets larger than the accelerator's memory. Each batch is gathered
    on the host into one of ``n_slots`` page-locked (pinned) staging buffers
    and copied to the device without blocking, so gathering the next batch
    overlaps the device's work on the current one. A staging buffer is only
    refilled once its previous copy has completed (a CUDA event), the one wait
    on the host in this path.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        The data, on the CPU; never copied as a whole.
    device : torch.device
        Where batches are sent.
    batch_size : int
        Largest batch.
    n_slots : int, default=2
        Number of staging buffers.
    """

    def __init__(self, X, device, batch_size, n_slots=2):
        self.X = X
        self.device = torch.device(device)
        self.shape = X.shape
        cuda = self.device.type == "cuda"
        self._staging = [
            torch.empty(batch_size, X.shape[1], dtype=X.dtype, pin_memory=cuda)
            for _ in range(n_slots)
        ]
        self._copied = [None] * n_slots
        self._next = 0

    def take(self, rows):
        """Rows ``X[rows]`` on the device; ``rows`` is a CPU index tensor."""
        slot = self._next
        self._next = (slot + 1) % len(self._staging)
        if self._copied[slot] is not None:
            self._copied[slot].synchronize()
        staging = torch.index_select(self.X, 0, rows, out=self._staging[slot][: rows.shape[0]])
        if self.device.type != "cuda":
            return staging.to(self.device, copy=True)
        batch = staging.to(self.device, non_blocking=True)
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))  # the copy's stream
        self._copied[slot] = event
        return batch

    def slice(self, start, stop):
        """Rows ``X[start:stop]`` on the device."""
        return self.take(torch.arange(start, stop))


def _take(X, rows):
    return X.take(rows) if isinstance(X, StreamedRows) else X.index_select(0, rows)


def _slice(X, start, stop):
    return X.slice(start, stop) if isinstance(X, StreamedRows) else X[start:stop]


def index_device(X):
    """Device on which row indices of ``X`` (a tensor or StreamedRows) live."""
    return X.X.device if isinstance(X, StreamedRows) else X.device


def run_epoch(module, X, loss_fn, optimizer, *, index, batch_size, generator, shuffle):
    """Run one pass of minibatch updates over ``X[index]``.

    Parameters
    ----------
    module : torch.nn.Module
        Module to train (already on the training device).
    X : torch.Tensor of shape (n_samples, n_features) or StreamedRows
        Whole data set: a tensor on the training device, or rows streamed
        to it from host memory.
    loss_fn : callable
        ``loss_fn(module, xb) -> (loss, terms)``: a scalar tensor to
        minimize, and a dict of named scalar tensors to record. When it has
        a true attribute ``sets_gradients`` (see
        :class:`skae._direct.DirectGradient`), it also leaves the gradients
        in every parameter's ``.grad`` and no backward pass is run.
    optimizer : torch.optim.Optimizer
    index : torch.Tensor or None
        Rows of ``X`` to train on, on :func:`index_device`; None for all rows.
    batch_size : int
    generator : torch.Generator
        Shuffling randomness, on :func:`index_device`.
    shuffle : bool

    Returns
    -------
    means : torch.Tensor
        Sample-weighted mean of the loss and then of each term over the
        epoch, still on the device (no host synchronisation).
    names : list of str
        Term names, in the order of ``means[1:]``.
    """
    n = X.shape[0] if index is None else index.shape[0]
    order = torch.randperm(n, generator=generator, device=index_device(X)) if shuffle else None
    if index is not None:
        order = index if order is None else index[order]
    # Sample-weighted sums of the loss and of each term, accumulated in place on
    # the device: no host synchronisation and no allocation that outlives a batch.
    totals = None
    direct = getattr(loss_fn, "sets_gradients", False)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        xb = _slice(X, start, stop) if order is None else _take(X, order[start:stop])
        loss, terms = loss_fn(module, xb)
        if not direct:  # a direct loss_fn has already written the gradients
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        optimizer.step()
        if totals is None:
            totals = torch.zeros(1 + len(terms), device=xb.device)
        totals[0].add_(loss.detach(), alpha=stop - start)
        for i, term in enumerate(terms.values(), start=1):
            totals[i].add_(term.detach(), alpha=stop - start)
    return totals / n, list(terms)


def fit_module(
    module,
    X,
    loss_fn,
    optimizer,
    state,
    *,
    max_iter,
    batch_size,
    generator,
    index=None,
    validation_score=None,
    shuffle=True,
    tol=1e-4,
    n_iter_no_change=10,
    check_convergence=True,
    adaptive_learning_rate=False,
    verbose=False,
):
    """Train ``module`` with minibatch gradient descent.

    Parameters
    ----------
    module : torch.nn.Module
        Module to train in place, on the training device.
    X : torch.Tensor of shape (n_samples, n_features) or StreamedRows
        Training data: one tensor on the training device, or
        :class:`StreamedRows` for data kept in host memory.
    loss_fn : callable
        ``loss_fn(module, xb) -> (loss, terms)``; see :func:`run_epoch`.
    optimizer : torch.optim.Optimizer
        Optimizer over ``module``'s parameters.
    state : TrainState
        History to append to; updated in place.
    max_iter : int
        Maximum number of epochs in this call.
    batch_size : int
        Minibatch size (clipped to the number of training rows).
    generator : torch.Generator
        Randomness for shuffling, on :func:`index_device`.
    index : torch.Tensor or None, default=None
        Training rows of ``X`` (on :func:`index_device`); None for all.
    validation_score : callable or None, default=None
        ``validation_score(module) -> float``, higher is better. When given,
        training stops on it (early stopping) and the weights of the best
        epoch are restored at the end.
    shuffle : bool, default=True
        Reshuffle the rows every epoch.
    tol : float, default=1e-4
        Minimum improvement of the monitored quantity.
    n_iter_no_change : int, default=10
        Stop after this many epochs without an improvement of ``tol``.
    check_convergence : bool, default=True
        Whether to stop on the criterion above at all.
    adaptive_learning_rate : bool, default=False
        When the stopping criterion is met, divide the learning rate by 5 and
        go on instead, until it falls below 1e-6.
    verbose : bool, default=False
        Show a progress bar with the running loss.

    Returns
    -------
    status : {"converged", "max_iter", "interrupted"}
        Why training stopped.

    Raises
    ------
    FloatingPointError
        When the training loss becomes NaN or infinite. The module's weights
        are then put back to what they were when the call started.
    """
    n = X.shape[0] if index is None else index.shape[0]
    batch_size = max(1, min(batch_size, n))
    start_state = _clone_state(module)
    status = "max_iter"
    bar = tqdm(total=max_iter, disable=not verbose, desc="fit", unit="epoch")
    try:
        for _ in range(max_iter):
            module.train()
            means, names = run_epoch(
                module, X, loss_fn, optimizer,
                index=index, batch_size=batch_size, generator=generator, shuffle=shuffle,
            )
            values = means.tolist()  # the one host synchronisation per epoch
            loss = values[0]
            if not math.isfinite(loss):
                module.load_state_dict(start_state)
                raise FloatingPointError(
                    f"The training loss became {loss} at epoch {state.n_iter + 1}; the "
                    "weights were reset to those before this fit. Lower "
                    "learning_rate_init or standardize the input."
                )
            state.n_iter += 1
            state.loss_curve.append(loss)
            for name, value in zip(names, values[1:]):
                state.terms.setdefault(name, []).append(value)
            improved = _update_stopping(state, module, loss, validation_score, tol)
            state.no_improvement_count = 0 if improved else state.no_improvement_count + 1
            bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            bar.update()
            if check_convergence and state.no_improvement_count > n_iter_no_change:
                if adaptive_learning_rate and _reduce_learning_rate(optimizer):
                    state.no_improvement_count = 0
                    continue
                status = "converged"
                break
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.", UserWarning, stacklevel=3)
        status = "interrupted"
    finally:
        bar.close()
    if validation_score is not None and state.best_state is not None:
        module.load_state_dict(state.best_state)
    module.eval()
    return status


def _reduce_learning_rate(optimizer, factor=5.0, minimum=1e-6):
    """Divide every group's learning rate by ``factor``; False once at ``minimum``."""
    if all(group["lr"] <= minimum for group in optimizer.param_groups):
        return False
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] / factor
    return True


def _update_stopping(state, module, loss, validation_score, tol):
    """Record the epoch's loss or validation score; return whether it improved."""
    previous_best = state.best_loss
    state.best_loss = min(previous_best, loss)
    if validation_score is None:
        return loss < previous_best - tol
    module.eval()
    with torch.no_grad():
        score = float(validation_score(module))
    state.validation_scores.append(score)
    improved = score > state.best_validation_score + tol
    if score > state.best_validation_score:
        state.best_validation_score = score
        state.best_state = _clone_state(module)
    return improved
