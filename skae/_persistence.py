"""Pickling: device-independent state, optimizer included.

A fitted estimator pickles its network and its optimizer state on the CPU,
so a model trained on a GPU unpickles on a machine without one, and
``partial_fit`` resumes from a pickle exactly as it would have without it.
"""

import copy

import torch

from ._device import device_of


def to_cpu(obj):
    """A copy of ``obj`` (tensors, dicts, lists, tuples) with every tensor on the CPU."""
    if torch.is_tensor(obj):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return copy.deepcopy(obj)


def get_state(state):
    """Make an estimator's ``__dict__`` (``state``) safe to pickle on any machine."""
    state = dict(state)
    if "module_" in state:
        net = state["module_"]
        state["_fit_device"] = str(device_of(net))
        if device_of(net).type != "cpu":
            state["module_"] = copy.deepcopy(net).cpu()
        if state.get("_optimizer_state") is not None:
            state["_optimizer_state"] = to_cpu(state["_optimizer_state"])
    return state


def set_state(est, resolve_device):
    """Move an unpickled estimator's network back to its GPU when there is one."""
    fit_device = est.__dict__.pop("_fit_device", "cpu")
    if "module_" not in est.__dict__ or not fit_device.startswith("cuda"):
        return
    if torch.cuda.is_available():
        try:
            est.module_.to(resolve_device(fit_device, type(est).__name__))
        except ValueError:  # that GPU index is absent here: stay on the CPU
            pass
