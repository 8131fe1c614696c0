"""Devices and process-wide torch settings: resolution, staging, threads, precision.

torch's intra-op thread count and CUDA matmul precision are process-wide.
Fits may run concurrently (joblib's threading backend), so every change goes
through :class:`_SharedSetting`: the first fit to enter sets the value, the
last to leave restores it, and no fit ever sees a setting changed under it.
"""

import threading
import warnings
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, replace

import numpy as np
import torch


@dataclass(frozen=True)
class DevicePolicy:
    """Tunable thresholds of device use.

    Attributes
    ----------
    data_fraction : float
        Largest share of a GPU's free memory the training data may take
        there; larger data is streamed from host memory.
    single_thread_macs : int
        Below this many multiply-adds in a minibatch's forward pass, CPU
        training uses one intra-op thread: synchronising threads then costs
        more than it saves. On 2 cores, 2 threads were as fast as or faster
        than 1 down to about 1M multiply-adds per batch
        (``benchmarks/bench_speed.py --thread-sweep``).
    """

    data_fraction: float = 0.5
    single_thread_macs: int = 1 << 18


_POLICY = ContextVar("skae_device_policy", default=DevicePolicy())


def current_policy():
    """The :class:`DevicePolicy` in effect in this context."""
    return _POLICY.get()


@contextmanager
def device_policy(**changes):
    """Run a block under a modified :class:`DevicePolicy` (this context only).

    Used by benchmarks and tests, e.g. ``device_policy(data_fraction=0.0)``
    streams every data set; nothing module-level is reassigned.
    """
    token = _POLICY.set(replace(_POLICY.get(), **changes))
    try:
        yield
    finally:
        _POLICY.reset(token)


def resolve_device(device, owner):
    """Turn the ``device`` parameter into a ``torch.device``.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` or a ``torch.device`` of type cpu or cuda.
    owner : str
        Estimator name for error messages.

    Returns
    -------
    device : torch.device
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    allowed = "'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device of type 'cpu' or 'cuda'"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise ValueError(
            f"The 'device' parameter of {owner} must be {allowed}. Got {device!r} instead."
        )
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"The 'device' parameter of {owner} is {device!r}, but CUDA is not "
                "available on this machine. Use device='auto' or device='cpu'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"The 'device' parameter of {owner} is {device!r}, but only "
                f"{torch.cuda.device_count()} CUDA device(s) are available."
            )
    return resolved


def device_of(net):
    """Device of a network's parameters."""
    return next(net.parameters()).device


def stage_on_device(n_bytes, device):
    """Whether training data of ``n_bytes`` is copied to ``device`` whole."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return n_bytes <= current_policy().data_fraction * free


def training_threads(widths, batch_size, device):
    """Intra-op threads for training: one for small problems on the CPU, else None.

    Parameters
    ----------
    widths : sequence of int
        Layer widths of the encoder, input first (the decoder mirrors them).
    batch_size : int
    device : torch.device
    """
    if device.type != "cpu":
        return None
    macs = 2 * batch_size * sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    return 1 if macs < current_policy().single_thread_macs else None


def as_tensor(array, device, dtype):
    """Wrap a numpy array as a tensor on ``device``, copying only when needed.

    Arrays with negative strides (``X[::-1]``), which torch cannot view, are
    copied first. Read-only arrays (memory maps) are wrapped, never written.

    Parameters
    ----------
    array : ndarray
    device : torch.device
    dtype : torch.dtype

    Returns
    -------
    tensor : torch.Tensor
    """
    if any(s < 0 for s in array.strides):
        array = np.ascontiguousarray(array)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        tensor = torch.as_tensor(array)
    return tensor.to(device=device, dtype=dtype)


class _SharedSetting:
    """A process-wide torch setting shared by concurrent fits.

    ``hold(value)`` sets ``value`` for the block. While other blocks hold the
    setting, a block asking for the value already set joins them; with
    ``wait=True`` a block asking for another value waits until they leave,
    with ``wait=False`` it runs under the value already set (for settings
    that change speed only). The last block to leave restores the value
    found by the first.
    """

    def __init__(self, get, set_):
        self._get, self._set = get, set_
        self._cond = threading.Condition()
        self._holders = 0
        self._saved = None

    @contextmanager
    def hold(self, value, wait):
        with self._cond:
            if wait:
                self._cond.wait_for(lambda: self._holders == 0 or self._get() == value)
            if self._holders == 0:
                self._saved = self._get()
                if value != self._saved:
                    self._set(value)
            self._holders += 1
        try:
            yield
        finally:
            with self._cond:
                self._holders -= 1
                if self._holders == 0:
                    if self._get() != self._saved:
                        self._set(self._saved)
                    self._cond.notify_all()


_THREADS = _SharedSetting(torch.get_num_threads, torch.set_num_threads)
_MATMUL = _SharedSetting(torch.get_float32_matmul_precision, torch.set_float32_matmul_precision)


@contextmanager
def training_context(device, precision, n_threads):
    """Run training with the requested threads and arithmetic, then restore.

    Parameters
    ----------
    device : torch.device
        Training device.
    precision : {"float32", "tf32", "bfloat16"}
        ``"tf32"`` lets CUDA matrix products use TensorFloat-32 (no effect on
        the CPU); ``"bfloat16"`` runs under ``torch.autocast`` with bfloat16
        and without the weight-cast cache (it would outlive optimizer steps).
    n_threads : int or None
        Intra-op threads on the CPU; None keeps torch's setting.
    """
    threads = nullcontext() if n_threads is None else _THREADS.hold(n_threads, wait=False)
    if precision == "tf32" and device.type == "cuda":
        arithmetic = _MATMUL.hold("high", wait=True)
    elif precision == "bfloat16":
        arithmetic = torch.autocast(
            device_type=device.type, dtype=torch.bfloat16, cache_enabled=False
        )
    elif device.type == "cuda":
        arithmetic = _MATMUL.hold("highest", wait=True)
    else:
        arithmetic = nullcontext()
    with threads, arithmetic:
        yield
