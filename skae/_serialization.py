"""Persistence without pickle: an estimator as JSON plus named arrays.

One state code serves every way of storing an estimator:

- :func:`export_state` turns an estimator into a JSON-compatible header and a
  dict of named numpy arrays (network weights and buffers, numeric fitted
  arrays, optionally the optimizer's moments), all on the CPU;
- :func:`import_state` checks such a pair and rebuilds the estimator: the
  class comes from an allow-list, the network is rebuilt from the resolved
  :class:`~skae._params.Spec` with the package's own builders, and every
  array is checked (name, shape, dtype) before it is loaded.

:func:`save` and :func:`load` write and read the pair as one safetensors
file (the JSON in the header's metadata). ``__getstate__`` and
``__setstate__`` of the estimators use the same pair, so that pickle,
``copy.deepcopy`` and skops see no torch object at all.

Nothing here unpickles, evaluates or imports anything named by a file.
"""

import hashlib
import json
import struct
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import validate_parameter_constraints

from ._device import device_of, resolve_device
from ._nets import build_network
from ._params import resolve
from ._training import TrainState

#: Version of the layout written by this skae. A reader accepts every version
#: up to its own; a file of a later version is refused with a request to
#: upgrade. Bump it whenever the header or the array names change meaning.
FORMAT_VERSION = 1

#: Parameters (and network description fields) added after format version 1
#: was first written, with the value that describes a model written before
#: them: a detector saved before ``std_offset`` standardized by the standard
#: deviations alone, one saved before ``code_weight`` weighed the code
#: distance by 1, one saved before ``residual_covariance`` weighed every
#: feature's residual alike, and one saved before ``n_neighbors`` scored by
#: the Gaussian distance.
_ADDED_PARAMS = {"std_offset": 0.0, "code_weight": 1.0, "residual_covariance": "spherical",
                 "n_neighbors": None}

#: Fitted attributes those parameters brought: ``{attribute: (parameter,
#: value for a model fitted before it)}``.
_ADDED_ATTRIBUTES = {
    "_code_weight": ("code_weight", 1.0),
    "_residual_covariance": ("residual_covariance", "spherical"),
    "residual_mean_": ("residual_covariance", None),
    "residual_whitening_": ("residual_covariance", None),
    "residual_shrinkage_": ("residual_covariance", None),
    "n_neighbors_": ("n_neighbors", None),
    "reference_embedding_": ("n_neighbors", None),
    "reference_weights_": ("n_neighbors", None),
}

#: Marker in the safetensors metadata of every file :func:`save` writes.
FORMAT_NAME = "skae"

#: Largest header a file may declare (safetensors' own limit is 100 MB).
_MAX_HEADER_BYTES = 100_000_000

#: Tag key of the JSON values that are not plain JSON (tuples, arrays, ...).
_TAG = "__skae__"

#: Array dtypes that may be stored (numeric only: object arrays never are).
_DTYPES = frozenset({"bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
                     "uint32", "uint64", "float16", "float32", "float64"})

#: Keys of the state that ``__getstate__`` returns.
_STATE_KEY, _ARRAYS_KEY = "__skae_state__", "__skae_arrays__"

#: ``__dict__`` entries that are stored by their own rules, not generically.
_SPECIAL = ("module_", "_spec", "_optimizer_state")


class UnsafeOrCorruptFileError(ValueError):
    """Error raised when a file or a state is not a valid skae estimator.

    Raised by :func:`skae.load` (and by unpickling or ``skops.io.load``) for
    anything that is not exactly what skae writes: not a skae file, corrupted
    or truncated bytes, an unknown or non-skae class, a missing, extra or
    mismatched array, an invalid parameter, or a format written by a newer
    skae. Nothing in the file is executed before or after the error. It is a
    subclass of :class:`ValueError`.
    """


def _estimator_classes():
    """The allow-list: the name a file may give -> skae's estimator class."""
    from .anomaly import AutoencoderAnomalyDetector
    from .ensemble import AutoencoderEnsembleDetector
    from .regressor import AutoencoderRegressor
    from .transformer import AutoencoderTransformer

    classes = (AutoencoderTransformer, AutoencoderAnomalyDetector, AutoencoderRegressor,
               AutoencoderEnsembleDetector)
    return {f"skae.{cls.__name__}": cls for cls in classes}


def _class_name(cls, subclasses=False):
    """The name a file gives ``cls``: ``"skae.<Name>"`` for skae's estimators.

    With ``subclasses=True`` (pickling, where the pickle itself names the
    class), a subclass of one of them is named by its module and qualified name.
    """
    names = {c: name for name, c in _estimator_classes().items()}
    if cls in names:
        return names[cls]
    if subclasses and issubclass(cls, tuple(names)):
        return f"{cls.__module__}.{cls.__qualname__}"
    raise TypeError(
        f"{cls.__name__} is not one of skae's estimators ({', '.join(sorted(names.values()))}); "
        "skae stores only those."
    )


def _versions():
    from . import __version__

    return {"skae": __version__, "torch": torch.__version__, "numpy": np.__version__}


# ------------------------------------------------------------- generic values
class _Writer:
    """Encode Python values into JSON, moving arrays into a dict of named arrays.

    A skae estimator inside the value (an ensemble's members) is stored as a
    nested header whose arrays are named under its own path.
    """

    def __init__(self, arrays=None, prefix="", include_optimizer=True, subclasses=False):
        self.arrays = {} if arrays is None else arrays
        self.prefix = prefix
        self.include_optimizer = include_optimizer
        self.subclasses = subclasses

    def _array(self, value, path):
        path = self.prefix + path
        if path in self.arrays:
            raise ValueError(f"two stored arrays would share the name {path!r}")
        self.arrays[path] = value
        return path

    def encode(self, value, path):
        """``value`` as JSON; arrays go to ``self.arrays`` under names from ``path``."""
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and not isinstance(value, np.integer):
            return value
        if isinstance(value, float) and not isinstance(value, np.floating):
            return value
        if isinstance(value, list):
            return [self.encode(v, f"{path}/{i}") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {_TAG: "tuple", "items": [self.encode(v, f"{path}/{i}")
                                             for i, v in enumerate(value)]}
        if isinstance(value, dict):
            items = []
            for k, v in value.items():
                if not (k is None or isinstance(k, (str, int, float, bool))):
                    raise TypeError(f"cannot store the dict key {k!r} of type "
                                    f"{type(k).__name__} at {path!r}")
                items.append([k, self.encode(v, f"{path}/{k}")])
            return {_TAG: "dict", "items": items}
        if isinstance(value, (np.generic,)) and value.dtype.name in _DTYPES:
            return {_TAG: "scalar", "dtype": value.dtype.name, "value": value.item()}
        if isinstance(value, np.ndarray):
            if value.dtype == object and all(isinstance(v, str) for v in value.flat):
                return {_TAG: "strings", "shape": list(value.shape), "items": value.ravel().tolist()}
            if value.dtype.name not in _DTYPES:
                raise TypeError(f"cannot store the array at {path!r}: dtype {value.dtype} is "
                                "not a plain numeric dtype")
            return {_TAG: "array", "name": self._array(np.ascontiguousarray(value), path)}
        if torch.is_tensor(value):
            array = value.detach().to("cpu", copy=True)
            if array.dtype is torch.bfloat16:
                raise TypeError(f"cannot store the bfloat16 tensor at {path!r}")
            return {_TAG: "tensor", "name": self._array(array.numpy(), path),
                    "requires_grad": bool(value.requires_grad)}
        if isinstance(value, torch.device):
            return {_TAG: "device", "value": str(value)}
        if type(value) is np.random.RandomState:
            name, keys, pos, has_gauss, cached = value.get_state(legacy=True)
            return {_TAG: "random_state", "algorithm": name, "keys": self._array(keys, path),
                    "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
        if type(value) is TrainState:
            return {_TAG: "train_state", "fields": {
                f.name: self.encode(getattr(value, f.name), f"{path}/{f.name}")
                for f in fields(value)}}
        if isinstance(value, tuple(_estimator_classes().values())):
            nested = _Writer(self.arrays, f"{self.prefix}{path}/", self.include_optimizer,
                             self.subclasses)
            return {_TAG: "estimator", "header": _export(value, nested)}
        raise TypeError(
            f"cannot store {path!r}: values of type {type(value).__module__}."
            f"{type(value).__qualname__} have no safe representation"
        )


class _Reader:
    """Decode what :class:`_Writer` wrote; every array it reads is marked used."""

    def __init__(self, arrays, device=None):
        self.arrays = arrays
        self.device = device
        self.used = set()

    def array(self, name, where):
        if not isinstance(name, str) or name not in self.arrays:
            raise UnsafeOrCorruptFileError(f"the array {name!r} of {where} is missing")
        if name in self.used:
            raise UnsafeOrCorruptFileError(f"the array {name!r} is referenced twice")
        self.used.add(name)
        return np.array(self.arrays[name])  # a writable copy

    def decode(self, value, where):
        """The Python value of the JSON ``value`` (``where`` names it in errors)."""
        if value is None or isinstance(value, (bool, str, int, float)):
            return value
        if isinstance(value, list):
            return [self.decode(v, where) for v in value]
        if not isinstance(value, dict) or not isinstance(value.get(_TAG), str):
            raise UnsafeOrCorruptFileError(f"{where} holds an unrecognized value {value!r:.80}")
        tag = value[_TAG]
        try:
            return self._decode_tagged(tag, value, where)
        except UnsafeOrCorruptFileError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise UnsafeOrCorruptFileError(f"{where} holds a malformed {tag!r} value: {exc}") from exc

    def _decode_tagged(self, tag, value, where):
        if tag == "tuple":
            return tuple(self.decode(v, where) for v in value["items"])
        if tag == "dict":
            out = {}
            for k, v in value["items"]:
                if not (k is None or isinstance(k, (str, int, float, bool))):
                    raise TypeError(f"a dict key may not be {k!r}")
                out[k] = self.decode(v, where)
            return out
        if tag == "scalar":
            if value["dtype"] not in _DTYPES:
                raise TypeError(f"dtype {value['dtype']!r} is not allowed")
            return np.dtype(value["dtype"]).type(value["value"])
        if tag == "strings":
            items = value["items"]
            if not all(isinstance(s, str) for s in items):
                raise TypeError("the items are not all strings")
            out = np.empty(len(items), dtype=object)
            out[:] = items
            return out.reshape([int(n) for n in value["shape"]])
        if tag == "array":
            return self.array(value["name"], where)
        if tag == "tensor":
            tensor = torch.from_numpy(self.array(value["name"], where))
            return tensor.requires_grad_(bool(value["requires_grad"]))
        if tag == "device":
            return torch.device(str(value["value"]))
        if tag == "random_state":
            keys = self.array(value["keys"], where)
            if value["algorithm"] != "MT19937" or keys.dtype != np.uint32 or keys.shape != (624,):
                raise ValueError("not an MT19937 state of 624 uint32 keys")
            rng = np.random.RandomState()
            rng.set_state((value["algorithm"], keys, int(value["pos"]), int(value["has_gauss"]),
                           float(value["cached_gaussian"])))
            return rng
        if tag == "estimator":
            cls, state = _import(value["header"], self, None)
            estimator = cls.__new__(cls)
            estimator.__dict__.update(state)
            return estimator
        if tag == "train_state":
            names = {f.name for f in fields(TrainState)}
            stored = value["fields"]
            if not isinstance(stored, dict) or set(stored) != names:
                raise ValueError(f"the fields must be {sorted(names)}")
            return TrainState(**{k: self.decode(v, where) for k, v in stored.items()})
        raise UnsafeOrCorruptFileError(f"{where} holds a value of unknown kind {tag!r}")


# ---------------------------------------------------------------- the state
def _spec_json(spec, writer):
    return {f.name: writer.encode(getattr(spec, f.name), f"spec/{f.name}") for f in fields(spec)}


def export_state(estimator, *, include_optimizer=True, subclasses=False):
    """An estimator as ``(header, arrays)``: JSON-compatible data and named numpy arrays.

    Parameters
    ----------
    estimator : skae estimator
        Fitted or not.
    include_optimizer : bool, default=True
        Store the optimizer's state (moments and step counts), so that
        ``partial_fit`` after loading continues exactly.
    subclasses : bool, default=False
        Accept a subclass of a skae estimator (pickling only: a file written
        by :func:`save` names one of skae's own classes).

    Returns
    -------
    header : dict
        Class, parameters, fitted attributes, versions; JSON-compatible.
    arrays : dict of str to ndarray
        Every array the header refers to, on the CPU.

    Raises
    ------
    TypeError
        If some attribute has a type with no safe representation (nothing is
        dropped silently).
    """
    writer = _Writer(include_optimizer=include_optimizer, subclasses=subclasses)
    header = _export(estimator, writer)
    return header, writer.arrays


def _is_fitted(cls, state):
    """Whether an estimator's ``__dict__`` is that of a fitted one."""
    return ("estimators_" if _is_ensemble(cls) else "module_") in state


def _is_ensemble(cls):
    from .ensemble import AutoencoderEnsembleDetector

    return issubclass(cls, AutoencoderEnsembleDetector)


def _export(estimator, writer):
    """:func:`export_state`'s header, its arrays written by ``writer``."""
    cls = type(estimator)
    state = dict(vars(estimator))
    param_names = cls._get_param_names()
    params = {name: writer.encode(state.pop(name), f"params/{name}") for name in param_names}
    header = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "versions": _versions(),
        "class": _class_name(cls, writer.subclasses), "params": params,
        "fitted": _is_fitted(cls, state),
    }
    if header["fitted"] and not _is_ensemble(cls):
        net = state.pop("module_")
        weights = {}
        for name, tensor in net.state_dict(keep_vars=True).items():
            weights[name] = writer.encode(tensor.detach(), f"module/{name}")["name"]
        header["network"] = {
            "tensors": weights, "device": str(device_of(net)), "training": net.training,
            "frozen": [n for n, p in net.named_parameters() if not p.requires_grad],
        }
        header["spec"] = _spec_json(state.pop("_spec"), writer)
        optimizer_state = state.pop("_optimizer_state", None)
        header["optimizer"] = (writer.encode(optimizer_state, "optimizer")
                               if writer.include_optimizer and optimizer_state is not None
                               else None)
    header["attributes"] = {name: writer.encode(value, f"attributes/{name}")
                            for name, value in state.items()}
    return header


def _check_header(header, cls=None):
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise UnsafeOrCorruptFileError("this is not a skae estimator (no skae header)")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UnsafeOrCorruptFileError(f"the format version {version!r} is not valid")
    if version > FORMAT_VERSION:
        written = header.get("versions", {})
        written = written.get("skae", "?") if isinstance(written, dict) else "?"
        raise UnsafeOrCorruptFileError(
            f"this estimator was written by a newer skae (skae {written}, format version "
            f"{version}; this skae reads format versions up to {FORMAT_VERSION}): upgrade skae "
            "to load it."
        )
    for key, kind in (("class", str), ("params", dict), ("fitted", bool), ("attributes", dict)):
        if not isinstance(header.get(key), kind):
            raise UnsafeOrCorruptFileError(f"the header's {key!r} entry is missing or malformed")
    classes = _estimator_classes()
    if cls is not None and header["class"] == _class_name(cls, subclasses=True):
        return cls  # unpickling: the pickle named the class, skae's or a subclass of one
    if header["class"] not in classes:
        raise UnsafeOrCorruptFileError(
            f"the header names the class {header['class']!r}, which is not one of skae's "
            f"estimators ({', '.join(sorted(classes))}); nothing else is ever loaded."
        )
    return classes[header["class"]]


def _load_device(params, owner, device):
    """Where the network goes: ``device``, else the ``device`` parameter, else the CPU."""
    if device is not None:
        return resolve_device(device, "load")
    try:
        return resolve_device(params["device"], owner)
    except (TypeError, ValueError):  # no CUDA (or not that GPU) here
        return torch.device("cpu")


def _rebuild_spec(cls, stored, device, reader):
    """The Spec the header describes, re-resolved and compared field by field."""
    names = {f.name for f in fields(_spec_cls())}
    if isinstance(stored, dict):  # written before a field existed: the old network
        stored = {**{k: v for k, v in _ADDED_PARAMS.items() if k in names}, **stored}
    if not isinstance(stored, dict) or set(stored) != names:
        raise UnsafeOrCorruptFileError(f"the header's 'spec' entry must have the fields {sorted(names)}")
    values = {k: reader.decode(v, f"spec/{k}") for k, v in stored.items()}
    owner = cls.__name__
    if values["owner"] != owner:
        raise UnsafeOrCorruptFileError(
            f"the network was fitted by {values['owner']!r}, not by {owner}")
    ints = ("n_features",) + (("n_outputs",) if values["n_outputs"] is not None else ())
    for name in ints:
        if not isinstance(values[name], int) or isinstance(values[name], bool) or values[name] < 1:
            raise UnsafeOrCorruptFileError(f"spec/{name} must be an int >= 1, got {values[name]!r}")
    params = {k: v for k, v in values.items() if k not in (
        "owner", "kind", "n_features", "n_outputs", "output_image_shape", "conv_code", "incremental")}
    params["n_components"] = None if values["conv_code"] else params["n_components"]
    params["sparsity_layers"] = list(params["sparsity_layers"]) or "code"
    params["device"] = device
    constraints = {k: c for k, c in cls._parameter_constraints.items() if k in params}
    try:
        validate_parameter_constraints(constraints, params, caller_name=owner)
        X = np.zeros((0, values["n_features"]))
        Y = None if values["n_outputs"] is None else np.zeros((0, values["n_outputs"]))
        spec = resolve(params, owner, X, incremental=True, Y=Y)
    except (TypeError, ValueError) as exc:
        raise UnsafeOrCorruptFileError(f"the stored network description is not valid: {exc}") from exc
    spec = replace(spec, incremental=bool(values["incremental"]))
    resolved = _spec_json(spec, _Writer())
    for name in names - {"device"}:
        if resolved[name] != stored[name]:
            raise UnsafeOrCorruptFileError(
                f"the stored network description does not resolve to itself: spec/{name} is "
                f"{stored[name]!r} in the file but resolves to {resolved[name]!r}"
            )
    return spec


def _spec_cls():
    from ._params import Spec

    return Spec


def _rebuild_network(spec, info, reader):
    """The network of ``spec``, with every stored tensor checked, then loaded."""
    if not isinstance(info, dict) or not isinstance(info.get("tensors"), dict):
        raise UnsafeOrCorruptFileError("the header's 'network' entry is missing or malformed")
    shift = scale = targets = None
    if spec.standardize:
        shift = scale = torch.zeros(spec.n_features, dtype=torch.float64)
        if spec.n_outputs is not None:
            targets = (torch.zeros(spec.n_outputs, dtype=torch.float64),) * 2
    with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten anyway
        net = build_network(spec, shift, scale, None, targets)
    expected = net.state_dict()
    stored = info["tensors"]
    missing = sorted(set(expected) - set(stored))
    extra = sorted(set(stored) - set(expected))
    if missing or extra:
        raise UnsafeOrCorruptFileError(
            "the stored network tensors do not match the network the parameters build: "
            + "; ".join(filter(None, [missing and f"missing {missing}", extra and f"extra {extra}"]))
        )
    loaded = {}
    for name, want in expected.items():
        array = reader.array(stored[name], f"network tensor {name!r}")
        got_dtype = f"torch.{array.dtype.name}"
        if tuple(array.shape) != tuple(want.shape) or got_dtype != str(want.dtype):
            raise UnsafeOrCorruptFileError(
                f"the network tensor {name!r} has shape {tuple(array.shape)} and dtype "
                f"{got_dtype} in the file, but the network needs shape {tuple(want.shape)} "
                f"and dtype {want.dtype}"
            )
        loaded[name] = torch.from_numpy(array)
    net.load_state_dict(loaded, strict=True)
    frozen = info.get("frozen", [])
    params = dict(net.named_parameters())
    if not isinstance(frozen, list) or not set(frozen) <= set(params):
        raise UnsafeOrCorruptFileError("the header's list of frozen parameters is malformed")
    for name in frozen:
        params[name].requires_grad_(False)
    net.train(bool(info.get("training", True)))
    return net


def _check_optimizer(optimizer_state, spec, net):
    """Every per-parameter tensor of the optimizer's state fits its parameter."""
    from ._fitting import build_optimizer

    ok = isinstance(optimizer_state, dict) and set(optimizer_state) == {"state", "param_groups"}
    ok = ok and isinstance(optimizer_state["state"], dict) and isinstance(
        optimizer_state["param_groups"], list)
    if not ok:
        raise UnsafeOrCorruptFileError("the stored optimizer state is malformed")
    fresh = build_optimizer(spec, net).state_dict()["param_groups"]
    weights, others = net.parameter_groups()
    index = dict(enumerate([*weights, *others]))  # the optimizer numbers its parameters so
    stored_groups = optimizer_state["param_groups"]
    if len(stored_groups) != len(fresh) or any(
        not isinstance(s, dict) or s.get("params") != f["params"]
        for s, f in zip(stored_groups, fresh)
    ):
        raise UnsafeOrCorruptFileError(
            "the stored optimizer state's parameter groups do not match the network")
    for i, entry in optimizer_state["state"].items():
        if i not in index or not isinstance(entry, dict):
            raise UnsafeOrCorruptFileError(f"the stored optimizer state has an unknown entry {i!r}")
        for key, value in entry.items():
            if torch.is_tensor(value) and value.ndim > 0 and (
                    value.shape != index[i].shape or value.dtype != index[i].dtype):
                raise UnsafeOrCorruptFileError(
                    f"the optimizer tensor {key!r} of parameter {i} has shape "
                    f"{tuple(value.shape)} and dtype {value.dtype}, but the parameter has shape "
                    f"{tuple(index[i].shape)} and dtype {index[i].dtype}"
                )


def import_state(header, arrays, *, device=None, cls=None):
    """Check ``(header, arrays)`` from :func:`export_state` and rebuild the estimator's state.

    Parameters
    ----------
    header : dict
    arrays : dict of str to ndarray
    device : str, torch.device or None, default=None
        Where the network goes; None follows the estimator's ``device``
        parameter, or the CPU when that device is not available here.
    cls : type or None, default=None
        The class the state must be of (unpickling into an instance), or
        None to take it from the header's allow-listed name.

    Returns
    -------
    cls : type
    state : dict
        The estimator's ``__dict__``.

    Raises
    ------
    UnsafeOrCorruptFileError
        If anything is not as :func:`export_state` writes it.
    """
    if not isinstance(arrays, dict) or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) for k, v in arrays.items()):
        raise UnsafeOrCorruptFileError("the stored arrays are malformed")
    reader = _Reader(arrays, device)
    cls, state = _import(header, reader, cls)
    unused = sorted(set(arrays) - reader.used)
    if unused:
        raise UnsafeOrCorruptFileError(f"the file holds arrays that nothing refers to: {unused}")
    return cls, state


def _import(header, reader, cls):
    """:func:`import_state` of one estimator, its arrays read by ``reader``."""
    found = _check_header(header, cls)
    if cls is not None and found is not cls:
        raise UnsafeOrCorruptFileError(f"the state is of {header['class']}, not of {cls.__name__}")
    cls = found
    device = reader.device
    names = set(cls._get_param_names())
    stored = header["params"]
    if isinstance(stored, dict):  # parameters added since: the value that gives the old model
        stored = {**{k: v for k, v in _ADDED_PARAMS.items() if k in names}, **stored}
    if set(stored) != names:
        missing, extra = sorted(names - set(stored)), sorted(set(stored) - names)
        raise UnsafeOrCorruptFileError(
            f"the stored parameters do not match {cls.__name__}'s: "
            + "; ".join(filter(None, [missing and f"missing {missing}", extra and f"unknown {extra}"]))
        )
    params = {k: reader.decode(v, f"parameter {k!r}") for k, v in stored.items()}
    estimator = cls.__new__(cls)
    estimator.__dict__.update(params)
    try:
        estimator._validate_params()
    except (TypeError, ValueError) as exc:
        raise UnsafeOrCorruptFileError(f"a stored parameter is not valid: {exc}") from exc
    state = dict(params)
    network = header["fitted"] and not _is_ensemble(cls)
    if network:
        for key in ("network", "spec"):
            if key not in header:
                raise UnsafeOrCorruptFileError(f"the header of a fitted estimator lacks {key!r}")
        target = _load_device(params, cls.__name__, device)
        spec = _rebuild_spec(cls, header["spec"], target, reader)
        net = _rebuild_network(spec, header["network"], reader)
        optimizer_state = header.get("optimizer")
        if optimizer_state is not None:
            optimizer_state = reader.decode(optimizer_state, "the optimizer state")
            _check_optimizer(optimizer_state, spec, net)
        state.update(module_=net.to(target), _spec=spec, _optimizer_state=optimizer_state)
    attributes = {k: reader.decode(v, f"attribute {k!r}") for k, v in header["attributes"].items()}
    if set(attributes) & (set(state) | set(_SPECIAL)):
        raise UnsafeOrCorruptFileError("the stored attributes repeat a parameter or the network")
    if network and attributes.get("n_features_in_") != spec.n_features:
        raise UnsafeOrCorruptFileError(
            f"n_features_in_={attributes.get('n_features_in_')!r} does not match the network's "
            f"{spec.n_features} inputs")
    for name, (param, value) in _ADDED_ATTRIBUTES.items():
        if header["fitted"] and param in names and name not in attributes:
            attributes[name] = value  # fitted before the parameter that sets it existed
    state.update(attributes)
    if header["fitted"] and _is_ensemble(cls):
        _check_members(state)
    if network and state.get("n_neighbors_") is not None:
        _check_neighbors(state, spec)
    if _is_fitted(cls, state) != bool(header["fitted"]):
        raise UnsafeOrCorruptFileError("the header's 'fitted' does not match its attributes")
    return cls, state


def _check_neighbors(state, spec):
    """A detector's nearest-neighbour reference: its shape, and weights that can be frequencies."""
    k, reference = state["n_neighbors_"], state.get("reference_embedding_")
    width = spec.n_features + spec.n_components
    if not (isinstance(k, int) and not isinstance(k, bool) and k >= 1
            and isinstance(reference, np.ndarray) and reference.dtype == np.float64
            and reference.ndim == 2 and reference.shape[1] == width
            and np.isfinite(reference).all()):
        raise UnsafeOrCorruptFileError(
            f"n_neighbors_ must be a positive int and reference_embedding_ finite float64 rows "
            f"of {width} numbers (n_features + n_components)")
    weights = state.get("reference_weights_")
    if weights is None:
        total = reference.shape[0]
    elif (isinstance(weights, np.ndarray) and weights.shape == reference.shape[:1]
            and np.isfinite(weights).all() and (weights > 0).all()):
        total = float(weights.sum())
    else:
        raise UnsafeOrCorruptFileError(
            "reference_weights_ must be None or finite positive weights, one per reference row")
    if not total >= k + 1:
        raise UnsafeOrCorruptFileError(
            f"the reference rows weigh {total:g}, less than n_neighbors_ + 1 = {k + 1}")


def _check_members(state):
    """An ensemble's members: fitted detectors, as many as ``n_estimators``, of its width."""
    from .anomaly import AutoencoderAnomalyDetector

    members = state.get("estimators_")
    if not (isinstance(members, list) and len(members) == state["n_estimators"] and all(
            type(m) is AutoencoderAnomalyDetector and "module_" in vars(m) for m in members)):
        raise UnsafeOrCorruptFileError(
            "the ensemble's estimators_ are not n_estimators fitted AutoencoderAnomalyDetectors")
    widths = {m.n_features_in_ for m in members}
    if widths != {state.get("n_features_in_")}:
        raise UnsafeOrCorruptFileError(
            f"the members' n_features_in_ {sorted(widths)} do not match the ensemble's "
            f"{state.get('n_features_in_')!r}")


# ------------------------------------------------------------------ pickling
def get_state(estimator):
    """The pickled state of an estimator: a JSON string and numpy arrays, no torch object.

    Parameters
    ----------
    estimator : skae estimator

    Returns
    -------
    state : dict
        ``{"__skae_state__": str, "__skae_arrays__": dict of str to ndarray}``.
    """
    header, arrays = export_state(estimator, include_optimizer=True, subclasses=True)
    return {_STATE_KEY: json.dumps(header), _ARRAYS_KEY: arrays}


def set_state(estimator, state):
    """Restore an estimator from :func:`get_state`'s output (or an older pickle's ``__dict__``)."""
    if isinstance(state, dict) and _STATE_KEY in state:
        try:
            header = json.loads(state[_STATE_KEY])
        except (TypeError, ValueError) as exc:
            raise UnsafeOrCorruptFileError(f"the stored state is not valid JSON: {exc}") from exc
        _, restored = import_state(header, state.get(_ARRAYS_KEY), cls=type(estimator))
        estimator.__dict__.update(restored)
        return
    # a pickle written before the state was torch-free: the network on the CPU
    state = dict(state)
    fit_device = state.pop("_fit_device", "cpu")
    estimator.__dict__.update(state)
    if "module_" in state and fit_device.startswith("cuda") and torch.cuda.is_available():
        try:
            estimator.module_.to(resolve_device(fit_device, type(estimator).__name__))
        except ValueError:  # that GPU index is absent here: stay on the CPU
            pass


# -------------------------------------------------------------- file format
def _digest(arrays):
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(json.dumps([name, a.dtype.name, list(a.shape)]).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save(estimator, path, *, include_optimizer=False):
    """Save a fitted skae estimator to a safetensors file, without pickle.

    The network's parameters and buffers, numeric fitted arrays and (with
    ``include_optimizer=True``) the optimizer's state are stored as
    safetensors tensors, on the CPU; the class, ``get_params()``, every
    other fitted attribute, the format version and the skae, torch and
    numpy versions that wrote it are stored as JSON in the file's metadata.
    Load it with :func:`skae.load`.

    Parameters
    ----------
    estimator : AutoencoderTransformer, AutoencoderAnomalyDetector, \
            AutoencoderRegressor or AutoencoderEnsembleDetector
        A fitted estimator (an ensemble with its members, each stored as a
        detector is).
    path : str or path-like
        File to write (conventionally ending in ``.safetensors``);
        overwritten if it exists.
    include_optimizer : bool, default=False
        Also store the optimizer's state (moments, step counts), so that
        ``partial_fit`` after loading continues exactly as it would have
        without saving. Without it, ``partial_fit`` after loading starts a
        fresh optimizer.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    TypeError
        If ``estimator`` is not a skae estimator, or holds an attribute of a
        type with no safe representation.

    See Also
    --------
    load : Load an estimator saved by this function.
    """
    _class_name(type(estimator))
    if not _is_fitted(type(estimator), vars(estimator)):
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before saving it."
        )
    if not isinstance(include_optimizer, (bool, np.bool_)):
        raise TypeError(f"include_optimizer must be a bool. Got {include_optimizer!r} instead.")
    header, arrays = export_state(estimator, include_optimizer=bool(include_optimizer))
    _write(path, header, arrays)


def _write(path, header, arrays):
    """Write ``(header, arrays)`` as one safetensors file, the header in its metadata."""
    from safetensors.numpy import save as save_arrays

    metadata = {"format": FORMAT_NAME, "skae": json.dumps(header), "sha256": _digest(arrays)}
    Path(path).write_bytes(save_arrays(arrays, metadata=metadata))


def _read(data):
    """``(header, arrays)`` of a file's bytes, or an :class:`UnsafeOrCorruptFileError`."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_arrays

    if len(data) < 8:
        raise UnsafeOrCorruptFileError(f"not a skae file: {len(data)} bytes are too few for a "
                                       "safetensors header")
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(_MAX_HEADER_BYTES, len(data) - 8):
        raise UnsafeOrCorruptFileError(
            "not a skae file: the first 8 bytes do not give the length of a safetensors header "
            "(truncated, or another format)")
    try:
        raw = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnsafeOrCorruptFileError(f"not a skae file: the safetensors header is not valid "
                                       f"JSON ({exc})") from exc
    metadata = raw.get("__metadata__") if isinstance(raw, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise UnsafeOrCorruptFileError("not a skae file: a safetensors file without skae's metadata")
    try:
        arrays = load_arrays(bytes(data))
    except (SafetensorError, ValueError, TypeError) as exc:
        raise UnsafeOrCorruptFileError(f"corrupted or truncated file: {exc}") from exc
    if metadata.get("sha256") != _digest(arrays):
        raise UnsafeOrCorruptFileError("corrupted file: the tensors' checksum does not match")
    try:
        header = json.loads(metadata.get("skae", ""))
    except ValueError as exc:
        raise UnsafeOrCorruptFileError(f"corrupted file: the skae header is not valid JSON "
                                       f"({exc})") from exc
    return header, arrays


def load(path, *, device=None):
    """Load an estimator saved by :func:`skae.save`; nothing in the file is executed.

    Only JSON and safetensors are read: no pickle, no ``torch.load``, no
    import of a name found in the file. The class must be one of skae's
    estimators; the network is rebuilt from the stored parameters and every
    stored tensor's name, shape and dtype is checked against it before the
    weights are loaded.

    Parameters
    ----------
    path : str or path-like
        File written by :func:`skae.save`.
    device : str, torch.device or None, default=None
        Device of the loaded network (``"cpu"``, ``"cuda"``, ``"cuda:N"``,
        ``"auto"``). None follows the estimator's ``device`` parameter as
        ``fit`` resolves it, falling back to the CPU when that device is not
        available here, so a model trained on a GPU loads on a machine
        without one.

    Returns
    -------
    estimator : AutoencoderTransformer, AutoencoderAnomalyDetector, \
            AutoencoderRegressor or AutoencoderEnsembleDetector
        The fitted estimator, whose inference methods return what the saved
        one returned.

    Raises
    ------
    UnsafeOrCorruptFileError
        If the file is not a skae file, is corrupted or truncated, names a
        class that is not a skae estimator, holds a tensor whose name, shape
        or dtype the rebuilt network does not expect (or lacks one), holds an
        invalid parameter, or was written by a newer skae.

    See Also
    --------
    save : Save a fitted estimator.
    """
    data = Path(path).read_bytes()
    header, arrays = _read(data)
    cls, state = import_state(header, arrays, device=device)
    estimator = cls.__new__(cls)
    estimator.__dict__.update(state)
    return estimator

