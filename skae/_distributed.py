"""Data-parallel training over torch.distributed: which fits are distributed, and their collectives.

A fit is distributed when its process belongs to a process group of more
than one process: the default group the user initialized
(``torch.distributed.init_process_group``), or the one skae initializes
itself when it finds torchrun's environment (``WORLD_SIZE`` > 1, ``RANK``,
``MASTER_ADDR``, ``MASTER_PORT``). Every rank then fits the same network on
its own shard of the rows, as ``DistributedDataParallel`` would: gradients
are averaged with an all-reduce after each step. The averaging is done here,
on the gradients themselves, because skae's fast path
(:mod:`skae._fastpath`) computes them without autograd, so the hooks that
``DistributedDataParallel`` sets on the autograd graph would never run.

:func:`current` gives the fit's :class:`Collective`, or None in a single
process; nothing else here runs then. The training code receives that one
object as an argument (never through global state) and calls its few
collectives: sums and maxima, the gather of the detector's scores, the
broadcast of the initial weights and, each step, :class:`Lockstep`'s
gradient average.
"""

import atexit
import datetime
import math
import os
import threading

import numpy as np
import torch
import torch.distributed as dist

from ._device import resolve_device

#: Environment variable: seconds a collective waits for the other ranks when
#: skae initializes the process group.
TIMEOUT_VARIABLE = "SKAE_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 600.0

#: What torchrun sets for every worker; all of them are needed to join the group.
_LAUNCHER_VARIABLES = ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")

_INIT_LOCK = threading.Lock()  # concurrent first fits initialize the group once


def _launched():
    """Whether torchrun's environment (more than one worker) is present."""
    if not all(name in os.environ for name in _LAUNCHER_VARIABLES):
        return False
    try:
        return int(os.environ["WORLD_SIZE"]) > 1
    except ValueError:
        return False


def _timeout(owner):
    """The process group's timeout: ``SKAE_DIST_TIMEOUT`` seconds, default 600."""
    value = os.environ.get(TIMEOUT_VARIABLE)
    if value is None:
        return datetime.timedelta(seconds=DEFAULT_TIMEOUT)
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(
            f"The environment variable {TIMEOUT_VARIABLE} read by {owner} must be a positive "
            f"number of seconds. Got {value!r} instead."
        )
    return datetime.timedelta(seconds=seconds)


def _rank_device(device, owner):
    """``device`` for this rank: plain ``cuda`` becomes ``cuda:LOCAL_RANK``, one GPU per rank."""
    if device.type != "cuda" or device.index is not None:
        return device
    if "LOCAL_RANK" not in os.environ:
        return torch.device("cuda", torch.cuda.current_device())
    index = int(os.environ["LOCAL_RANK"])
    if index >= torch.cuda.device_count():
        raise ValueError(
            f"{owner} trains on cuda:LOCAL_RANK under torch.distributed, but LOCAL_RANK={index} "
            f"and only {torch.cuda.device_count()} CUDA device(s) are visible. Start at most "
            "one process per GPU (torchrun --nproc_per_node), or pass device='cpu'."
        )
    return torch.device("cuda", index)


def _destroy():
    if dist.is_initialized():
        dist.destroy_process_group()


def _init_process_group(device, owner):
    """Join torchrun's group as the default process group: NCCL on CUDA, Gloo on the CPU."""
    if not dist.is_available():
        raise RuntimeError(
            f"{owner} found torchrun's environment (WORLD_SIZE={os.environ['WORLD_SIZE']}), "
            "but this build of torch has no torch.distributed support."
        )
    timeout = _timeout(owner)
    with _INIT_LOCK:
        if dist.is_initialized():
            return
        if device.type == "cuda":
            dist.init_process_group("nccl", timeout=timeout, device_id=device)
        else:
            dist.init_process_group("gloo", timeout=timeout)
        atexit.register(_destroy)  # skae made the group, so skae takes it down


def current(device, owner):
    """The :class:`Collective` of a fit, or None when it runs in a single process.

    Parameters
    ----------
    device : str or torch.device
        The estimator's ``device`` parameter (resolved here only when the
        fit is distributed).
    owner : str
        Estimator name for error messages.

    Returns
    -------
    collective : Collective or None
        None unless the default process group is initialized with more
        than one process, or torchrun's environment asks for one (skae then
        initializes it, with the backend chosen by ``device``).
    """
    initialized = dist.is_available() and dist.is_initialized()
    if initialized and dist.get_world_size() == 1:
        return None
    if not (initialized or _launched()):
        return None
    device = _rank_device(resolve_device(device, owner), owner)
    if not initialized:
        _init_process_group(device, owner)
    return Collective(device, owner)


_OPS = {"sum": "SUM", "max": "MAX"}


class Collective:
    """The ranks of a distributed fit (the default process group) and its collectives.

    Parameters
    ----------
    device : torch.device
        This rank's training device.
    owner : str
        Estimator name for error messages.

    Attributes
    ----------
    rank, world_size : int
    device : torch.device
        This rank's training device: ``cuda:LOCAL_RANK`` for ``device="cuda"``.
    home : torch.device
        Where communicated tensors live: the training device when the group
        runs NCCL on it, else the CPU.
    """

    def __init__(self, device, owner):
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.device = device
        backend = str(dist.get_backend())
        if device.type == "cuda" and "nccl" in backend:
            self.home = device
        elif backend == "nccl":
            raise ValueError(
                f"{owner} trains on the CPU, but the default process group uses NCCL, which "
                "communicates CUDA tensors only. Fit on CUDA (device='cuda'), or initialize "
                "the group with backend='cpu:gloo,cuda:nccl'."
            )
        else:
            self.home = torch.device("cpu")

    def all_reduce(self, values, op="sum"):
        """The elementwise sum or maximum of ``values`` over the ranks.

        Parameters
        ----------
        values : array-like or torch.Tensor
            The same shape and dtype on every rank.
        op : {"sum", "max"}, default="sum"

        Returns
        -------
        reduced : ndarray or torch.Tensor
            A tensor (on ``values``' device) for a tensor, else an ndarray.
        """
        if torch.is_tensor(values):
            buffer = values.detach().to(self.home, copy=True)
        else:
            buffer = torch.from_numpy(np.array(values)).to(self.home)
        dist.all_reduce(buffer, op=getattr(dist.ReduceOp, _OPS[op]))
        return buffer.to(values.device) if torch.is_tensor(values) else buffer.cpu().numpy()

    def all_gather(self, values):
        """The rows of ``values`` of every rank, rank 0's first.

        Every rank receives all of them: ``n_rows * n_cols`` numbers, with
        ``n_rows`` the total over the ranks.

        Parameters
        ----------
        values : ndarray of shape (n_rows, n_cols), float64
            This rank's rows (their number may differ between ranks).

        Returns
        -------
        gathered : ndarray of shape (total_rows, n_cols), float64
        """
        values = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))
        counts = np.zeros(self.world_size, dtype=np.int64)
        counts[self.rank] = values.shape[0]
        counts = self.all_reduce(counts)
        padded = torch.zeros((int(counts.max()), *values.shape[1:]), dtype=torch.float64,
                             device=self.home)
        padded[:values.shape[0]] = values
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        return np.concatenate([p[:k].cpu().numpy() for p, k in zip(parts, counts)])

    def check_columns(self, n_columns, owner):
        """Raise the same ValueError on every rank unless all ranks have the same columns.

        One all-reduce, at the start of ``fit``: a rank that raised alone
        would leave the others waiting in their next collective.

        Parameters
        ----------
        n_columns : tuple of int
            This rank's column counts (features, and targets for paired data).
        owner : str
            Estimator name for error messages.
        """
        columns = np.asarray(n_columns, dtype=np.int64)
        agreed = self.all_reduce(np.r_[columns, -columns], op="max")
        most, fewest = agreed[:columns.size], -agreed[columns.size:]
        for i, what in enumerate(("features", "targets")[:columns.size]):
            if most[i] != fewest[i]:
                raise ValueError(
                    f"{owner} is fitted with torch.distributed, and the ranks' shards of X "
                    f"have different numbers of {what}: between {fewest[i]} and {most[i]}. "
                    "Every rank must pass the same columns."
                )

    def rank_0_seed(self, seed):
        """Rank 0's ``seed``, on every rank.

        Every rank then draws the same random numbers where they must
        agree (the initial weights, the importance samples of a variational
        model), even with ``random_state=None``.
        """
        buffer = torch.tensor([seed], dtype=torch.int64, device=self.home)
        dist.broadcast(buffer, src=0)
        return int(buffer.item())

    def broadcast_module(self, net):
        """Copy rank 0's parameters and buffers into ``net`` on every rank."""
        with torch.no_grad():
            for tensor in [*net.parameters(), *net.buffers()]:
                buffer = tensor.detach().to(self.home)
                dist.broadcast(buffer, src=0)
                if buffer.data_ptr() != tensor.data_ptr():
                    tensor.copy_(buffer)


class Lockstep:
    """The steps all ranks take together in an epoch, and the gradient average of each.

    Every rank runs the same number of optimizer steps per epoch, the
    largest of the ranks' batch counts: a rank whose rows have run out
    contributes nothing to the last steps, but still takes them. After a
    step's gradients exist (from autograd or from the fast path) and before
    ``optimizer.step()``, each rank's gradient is weighted by its batch's
    row count ``m_r`` and the ranks' weighted sums are divided by
    ``sum_r m_r``. One flat buffer (every gradient and ``m_r``) is summed
    per step. For a loss that is a mean over the batch's rows, the result is
    the gradient of the mean over the union of the ranks' batches.

    Parameters
    ----------
    collective : Collective
    optimizer : torch.optim.Optimizer
        Its parameters are those whose gradients are averaged.
    n_steps : int
        This rank's batch count per epoch.
    """

    def __init__(self, collective, optimizer, n_steps):
        self.collective = collective
        self.n_steps = int(collective.all_reduce(np.int64(n_steps), op="max"))
        self._candidates = [p for group in optimizer.param_groups for p in group["params"]]
        self.params = self._flat = None

    def _agree_on_parameters(self):
        """The parameters some rank has a gradient for (one all-reduce, at the first step).

        A parameter without a gradient anywhere (unused by the loss) keeps
        none, so the optimizer skips it as it would in a single process.
        """
        present = np.array([p.grad is not None for p in self._candidates], dtype=np.int64)
        present = self.collective.all_reduce(present)
        self.params = [p for p, k in zip(self._candidates, present) if k > 0]
        size = sum(p.numel() for p in self.params) + 1
        self._flat = torch.empty(size, dtype=torch.float32, device=self.collective.home)

    def average_gradients(self, rows):
        """Replace every gradient by the row-weighted mean of the ranks' gradients.

        Parameters
        ----------
        rows : int
            This rank's batch size in this step; 0 when its rows have run
            out (its gradients, if any, are then ignored).
        """
        if self.params is None:  # the first step: every rank has a batch
            self._agree_on_parameters()
        flat, offset = self._flat, 0
        for p in self.params:
            part = flat[offset:offset + p.numel()]
            if rows and p.grad is not None:
                part.copy_(p.grad.reshape(-1))
            else:
                part.zero_()
            offset += p.numel()
        flat[:-1].mul_(rows)
        flat[-1] = rows
        dist.all_reduce(flat)
        flat[:-1].div_(flat[-1])
        offset = 0
        for p in self.params:
            if p.grad is None:
                p.grad = torch.empty_like(p)
            p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
