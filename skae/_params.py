"""Parameters: their constraints, and their resolution into one frozen Spec.

:func:`resolve` is the only place that reads the estimators' parameters.
It runs at the top of every ``fit``/``partial_fit``, after scikit-learn's
declarative validation, and checks what the constraint language cannot
express (element-wise and cross-parameter rules, bools posing as numbers)
with scikit-learn's message shape.
"""

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch

from ._compat import Interval, InvalidParameterError, StrOptions
from ._device import resolve_device
from ._nets.activations import ACTIVATIONS, UNIT_INTERVAL
from ._nets.conv import stage_shapes
from ._objective import IMAGE_NOISES, NOISES, check_bce_range

_ACTIVATION = StrOptions(set(ACTIVATIONS))

#: Constraints shared by every estimator (scikit-learn's declarative form).
CONSTRAINTS = {
    "n_components": [None, Interval(Integral, 1, None, closed="left")],
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [_ACTIVATION],
    "latent_activation": [_ACTIVATION],
    "output_activation": [_ACTIVATION],
    "loss": [StrOptions({"mse", "bce"})],
    "solver": [StrOptions({"adam", "adamw", "sgd"})],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [StrOptions({"constant", "adaptive"})],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "momentum": [Interval(Real, 0, 1, closed="both")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "beta_1": [Interval(Real, 0, 1, closed="left")],
    "beta_2": [Interval(Real, 0, 1, closed="left")],
    "epsilon": [Interval(Real, 0, None, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "standardize": ["boolean"],
    "sparsity": [None, StrOptions({"l1", "kl"})],
    "sparsity_weight": [Interval(Real, 0, None, closed="left")],
    "sparsity_target": [Interval(Real, 0, 1, closed="neither")],
    "sparsity_layers": [StrOptions({"code", "all"}), "array-like"],
    "noise": [None, StrOptions(set(NOISES))],
    "noise_level": [Interval(Real, 0, None, closed="left")],
    "contractive_weight": [Interval(Real, 0, None, closed="left")],
    "pretraining": [None, StrOptions({"greedy"})],
    "pretraining_max_iter": [None, Interval(Integral, 1, None, closed="left")],
    "tied_weights": ["boolean"],
    "variational": ["boolean"],
    "kl_weight": [Interval(Real, 0, None, closed="left")],
    "kl_warmup": [Interval(Integral, 0, None, closed="left")],
    "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
    "architecture": [StrOptions({"mlp", "conv"})],
    "image_shape": [None, "array-like"],
    "conv_channels": ["array-like", Interval(Integral, 1, None, closed="left")],
    "kernel_size": [Interval(Integral, 1, None, closed="left")],
    "device": [str, torch.device],
    "precision": [StrOptions({"float32", "tf32", "bfloat16"})],
}

#: Parameters that define the network: a warm start may not change them (a new
#: number of features is rejected earlier, by scikit-learn's validate_data).
ARCHITECTURE = ("n_components", "hidden_layer_sizes", "activation",
                "latent_activation", "output_activation", "standardize", "tied_weights",
                "variational", "architecture", "image_shape", "conv_channels", "kernel_size",
                "skip_connections", "n_outputs", "std_offset")

#: Parameters that only some estimators have, and the value that means "not used".
_ABSENT = {"variational": False, "kl_weight": 1.0, "kl_warmup": 0, "n_importance_samples": 1,
           "pretraining": None, "pretraining_max_iter": None, "tied_weights": False,
           "contractive_weight": 0.0, "skip_connections": False, "std_offset": 0.0}

#: The anomaly detector's ``std_offset="auto"`` for the MLP network (chosen
#: out of sample on ADBench, see ``benchmarks/adbench_grid.json``).
AUTO_STD_OFFSET = 2.0


@dataclass(frozen=True)
class Spec:
    """Everything a fit needs to know, resolved and cross-checked once.

    Attributes are the estimators' parameters under the same names, with
    numbers as plain Python ``int``/``float``, plus: ``owner`` (class name),
    ``kind`` (network kind), ``n_features``, ``device`` (a ``torch.device``),
    ``sparsity_layers`` as sorted encoder-layer indices (0 = first hidden
    layer; empty without sparsity), ``kind`` ``"variational"`` when
    ``variational`` else ``"mlp"``, ``pretraining_max_iter`` as an int,
    ``trim_fraction`` (0 unless the estimator has one), ``contamination``
    (None unless the estimator has one), and ``incremental``
    (a ``partial_fit`` call).
    """

    owner: str
    kind: str
    n_features: int
    n_components: int
    hidden_layer_sizes: tuple
    activation: str
    latent_activation: str
    output_activation: str
    loss: str
    solver: str
    alpha: float
    batch_size: int
    learning_rate: str
    learning_rate_init: float
    max_iter: int
    shuffle: bool
    tol: float
    verbose: bool
    warm_start: bool
    momentum: float
    nesterovs_momentum: bool
    early_stopping: bool
    validation_fraction: float
    beta_1: float
    beta_2: float
    epsilon: float
    n_iter_no_change: int
    standardize: bool
    std_offset: float
    sparsity: object
    sparsity_weight: float
    sparsity_target: float
    sparsity_layers: tuple
    noise: object
    noise_level: float
    contractive_weight: float
    pretraining: object
    pretraining_max_iter: int
    tied_weights: bool
    variational: bool
    kl_weight: float
    kl_warmup: int
    n_importance_samples: int
    architecture: str
    image_shape: object
    conv_channels: tuple
    kernel_size: int
    skip_connections: bool
    n_outputs: object
    output_image_shape: object
    conv_code: bool
    device: torch.device
    precision: str
    trim_fraction: float
    contamination: object
    incremental: bool

    @property
    def widths(self):
        """Encoder widths (flattened for convolutional stages), input first."""
        convs = ()
        if self.architecture == "conv":
            shapes = stage_shapes(self.image_shape, self.conv_channels, self.kernel_size)[1:]
            convs = tuple(c * h * w for c, h, w in shapes)
        if self.conv_code:
            return (self.n_features, *convs)
        return (self.n_features, *convs, *self.hidden_layer_sizes, self.n_components)

    @property
    def n_encoder_layers(self):
        """Encoder layers, the code's included (what ``sparsity_layers`` indexes)."""
        return len(self.widths) - 1

    @property
    def max_width(self):
        """Widest layer: bounds the rows per inference or validation chunk."""
        return max(*self.widths, self.n_outputs or 0)

    @property
    def regularized(self):
        """Whether some regularizer keeps the network from learning the identity."""
        return (
            (self.sparsity is not None and self.sparsity_weight > 0)
            or (self.noise is not None and self.noise_level > 0)
            or self.contractive_weight > 0
            or (self.variational and self.kl_weight > 0)
        )

    def check_same_network(self, fitted):
        """Raise if a warm start would change the network ``fitted`` describes."""
        # a variational network's likelihood (and its parameters) follows loss
        for name in ARCHITECTURE + (("loss",) if self.variational else ()):
            old, new = getattr(fitted, name), getattr(self, name)
            if old != new:
                raise ValueError(
                    f"{self.owner} continues training its fitted network (warm_start=True "
                    f"or partial_fit), but {name!r} changed from {old!r} to {new!r}. Set "
                    "warm_start=False and call fit to build a new network."
                )


def _invalid(owner, name, allowed, value):
    return InvalidParameterError(
        f"The {name!r} parameter of {owner} must be {allowed}. Got {value!r} instead."
    )


def _integer(params, owner, name):
    value = params[name]
    if isinstance(value, (bool, np.bool_)):
        raise _invalid(owner, name, "an int (not a bool)", value)
    return None if value is None else int(value)


_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT32_TINY = float(np.finfo(np.float32).tiny)
#: Strictly positive factors of float32 arithmetic: below float32's smallest
#: normal number they vanish (a learning rate) or divide by zero (epsilon).
_POSITIVE_FLOAT32 = ("learning_rate_init", "epsilon")


def _real(params, owner, name):
    value = params[name]
    if isinstance(value, (bool, np.bool_)):
        raise _invalid(owner, name, "a float (not a bool)", value)
    if value is not None and abs(float(value)) > _FLOAT32_MAX:
        # training arithmetic is float32: larger factors overflow inside torch
        raise _invalid(owner, name, f"a float of magnitude at most {_FLOAT32_MAX:.4g} "
                       "(training runs in float32)", value)
    if name in _POSITIVE_FLOAT32 and 0 < float(value) < _FLOAT32_TINY:
        raise _invalid(owner, name, f"a float of at least {_FLOAT32_TINY:.4g} (float32's "
                       "smallest normal number; training runs in float32)", value)
    return float(value)


def _contamination(params, owner):
    value = params.get("contamination")
    return value if value is None or isinstance(value, str) else _real(params, owner, "contamination")


def _hidden_sizes(value, owner, name="hidden_layer_sizes", empty=True):
    sizes = (value,) if isinstance(value, Integral) and not isinstance(value, bool) else value
    ordered = isinstance(sizes, (list, tuple, range, np.ndarray))  # not a set or dict
    sizes = tuple(np.asarray(sizes, dtype=object).ravel()) if ordered and np.ndim(sizes) == 1 else (
        () if ordered and np.size(sizes) == 0 else None)
    ok = sizes is not None and all(
        isinstance(s, Integral) and not isinstance(s, (bool, np.bool_)) and s >= 1 for s in sizes
    )
    ok = ok and (empty or bool(sizes))
    if not ok:
        raise _invalid(owner, name, "a sequence of ints >= 1" + (" (or empty)" if empty else ""),
                       value)
    return tuple(int(s) for s in sizes)


def _sparse_layers(params, owner, n_layers):
    value = params["sparsity_layers"]
    if params["sparsity"] is None:
        return ()
    if isinstance(value, str):
        return (n_layers - 1,) if value == "code" else tuple(range(n_layers))
    raw = np.asarray(value, dtype=object).ravel().tolist() if np.ndim(value) <= 1 else None
    ok = bool(raw) and all(
        isinstance(i, Integral) and not isinstance(i, (bool, np.bool_)) and -n_layers <= i < n_layers
        for i in raw
    ) and len({int(i) % n_layers for i in raw}) == len(raw)
    if not ok:
        raise _invalid(
            owner, "sparsity_layers",
            f"'code', 'all' or a non-empty sequence of distinct encoder layer indices (ints) in "
            f"[-{n_layers}, {n_layers - 1}] (0 = first hidden layer, -1 = code)", value,
        )
    indices = tuple(sorted({int(i) % n_layers for i in raw}))
    return indices


def _image_shape(value, owner, n_features):
    """``image_shape`` as ``(H, W, C)`` with any ``-1`` resolved, or None."""
    if value is None:
        return None
    ok = isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) == 1 and len(value) in (2, 3)
    dims = list(value) if ok else []
    ok = ok and all(isinstance(d, Integral) and not isinstance(d, (bool, np.bool_))
                    and (d >= 1 or d == -1) for d in dims) and sum(d == -1 for d in dims) <= 1
    if not ok:
        raise _invalid(owner, "image_shape", "None or a tuple (height, width) or (height, width, "
                       "channels) of ints >= 1, one of which may be -1", value)
    dims = [int(d) for d in dims] + ([1] if len(dims) == 2 else [])
    known = int(np.prod([d for d in dims if d != -1]))
    if -1 in dims and n_features % known == 0 and n_features:
        dims[dims.index(-1)] = n_features // known
    if int(np.prod(dims)) != n_features:
        raise ValueError(
            f"image_shape={tuple(value)!r} on {owner} does not match X's {n_features} features: "
            "each row must be one image, laid out as images.reshape(n_samples, -1) lays out a "
            "(n_samples, height, width, channels) batch."
        )
    return tuple(dims)


def _output_image_shape(spec_values, owner):
    """The decoder's ``(H, W, C)``: the input's, or paired targets' with their own channels."""
    shape, n_outputs = spec_values["image_shape"], spec_values["n_outputs"]
    if shape is None or n_outputs is None:
        return shape
    h, w, _ = shape
    if n_outputs % (h * w):
        raise ValueError(
            f"{owner} with image_shape={shape!r}: the targets' {n_outputs} columns are not a "
            f"whole number of channels of {h}x{w} images. Targets must be images of the input's "
            "height and width, laid out as images.reshape(n_samples, -1)."
        )
    return (h, w, n_outputs // (h * w))


def _check_image_rules(spec):
    owner = spec.owner
    if spec.architecture == "conv":
        if spec.image_shape is None:
            raise ValueError(
                f"architecture='conv' on {owner} needs image_shape=(height, width, channels): "
                "how each row of X is laid out as an image."
            )
        if spec.kernel_size % 2 == 0:
            raise _invalid(owner, "kernel_size", "an odd int (the stages keep the image centred)",
                           spec.kernel_size)
        for name, clash in (("tied_weights", spec.tied_weights),
                            ("contractive_weight", spec.contractive_weight > 0)):
            if clash:
                raise ValueError(
                    f"architecture='conv' on {owner} does not support {name}="
                    f"{getattr(spec, name)!r} (it is defined for dense layers only)."
                )
    if spec.conv_code:
        needs = [("architecture", "'conv'", spec.architecture != "conv"),
                 ("hidden_layer_sizes", "()", bool(spec.hidden_layer_sizes)),
                 ("variational", "False", spec.variational)]
        for name, value, clash in needs:
            if clash:
                raise ValueError(
                    f"n_components=None (the code is the last convolutional stage's feature "
                    f"map) needs {name}={value} on {owner}. Got {name}="
                    f"{getattr(spec, name)!r}."
                )
    if spec.noise in IMAGE_NOISES and spec.noise_level > 0 and spec.image_shape is None:
        raise ValueError(
            f"noise={spec.noise!r} on {owner} corrupts images and needs image_shape="
            "(height, width, channels)."
        )


def _check_data_rules(spec, X, Y=None):
    owner = spec.owner
    _check_image_rules(spec)
    if spec.loss == "bce":
        if spec.standardize:
            raise ValueError(
                f"loss='bce' compares reconstructions with X in [0, 1] and cannot be "
                f"combined with standardize=True on {owner}; use loss='mse' or "
                "standardize=False."
            )
        if spec.output_activation not in UNIT_INTERVAL:
            raise ValueError(
                f"loss='bce' needs reconstructions in (0, 1): set output_activation='sigmoid' "
                f"on {owner}. Got output_activation={spec.output_activation!r}."
            )
        target, name = (X, "X") if Y is None else (Y, "y")  # what is reconstructed
        if target.size:
            check_bce_range(
                target.min(), target.max(),
                f"Scale {name} (e.g. with MinMaxScaler) or use loss='mse'.", name
            )
    if spec.noise in ("masking", "salt_and_pepper", *IMAGE_NOISES) and spec.noise_level > 1:
        raise _invalid(
            owner, "noise_level",
            f"in [0, 1] with noise={spec.noise!r} (a fraction of the entries)", spec.noise_level,
        )
    if spec.sparsity == "kl":
        n_layers = spec.n_encoder_layers
        for i in spec.sparsity_layers:
            which = "latent_activation" if i == n_layers - 1 else "activation"
            act = getattr(spec, which)
            if act not in UNIT_INTERVAL:
                raise ValueError(
                    f"sparsity='kl' needs activations in (0, 1) on the chosen layers, but "
                    f"encoder layer {i} uses {which}={act!r} on {owner}. Set {which}='sigmoid', "
                    "or use sparsity='l1'."
                )
    if spec.variational:
        _check_variational(spec)
    if spec.early_stopping and not spec.incremental:
        n_val = int(spec.validation_fraction * X.shape[0])
        if n_val < 1 or X.shape[0] - n_val < 1:
            raise ValueError(
                f"early_stopping=True with validation_fraction={spec.validation_fraction} "
                f"leaves no validation or no training sample among {X.shape[0]} samples on "
                f"{owner}. Use more samples, a larger validation_fraction, or "
                "early_stopping=False."
            )


def _check_variational(spec):
    clashes = [
        ("latent_activation", spec.latent_activation != "identity",
         "latent_activation='identity' (the code is Gaussian)"),
        ("tied_weights", spec.tied_weights, "tied_weights=False"),
        ("pretraining", spec.pretraining is not None, "pretraining=None"),
    ]
    for name, clash, needed in clashes:
        if clash:
            raise ValueError(
                f"variational=True needs {needed} on {spec.owner}. Got "
                f"{name}={getattr(spec, name)!r}."
            )


#: Widest code ``n_components="auto"`` gives (the detector's).
AUTO_COMPONENTS = 8


def auto_components(n_features):
    """The code size ``n_components="auto"`` resolves to.

    ``min(8, n_features - 1)``, at least 1: 8 units, or one fewer than the
    input has features where it has no more than 8, so that the code is a
    bottleneck (the network cannot pass the input through unchanged).

    Parameters
    ----------
    n_features : int
        Number of input features.

    Returns
    -------
    n_components : int
    """
    return max(1, min(AUTO_COMPONENTS, int(n_features) - 1))


def resolve(params, owner, X, *, incremental=False, Y=None):
    """Resolve validated parameters and the training data into a :class:`Spec`.

    Parameters
    ----------
    params : dict
        ``estimator.get_params(deep=False)``, already checked against the
        declarative constraints.
    owner : str
        Class name for error messages.
    X : ndarray of shape (n_samples, n_features)
        Validated training data.
    incremental : bool, default=False
        Whether this is a ``partial_fit`` call.
    Y : ndarray of shape (n_samples, n_outputs) or None, default=None
        Validated targets of paired data; None for an autoencoder.

    Returns
    -------
    spec : Spec
    """
    params = {**_ABSENT, **params}
    if isinstance(params["n_components"], str) and params["n_components"] == "auto":
        params["n_components"] = auto_components(X.shape[1])
    hidden = _hidden_sizes(params["hidden_layer_sizes"], owner)
    channels = _hidden_sizes(params["conv_channels"], owner, "conv_channels", empty=False)
    image_shape = _image_shape(params["image_shape"], owner, int(X.shape[1]))
    n_layers = len(hidden) + 1 + (len(channels) if params["architecture"] == "conv" else 0)
    integers = ("n_components", "batch_size", "max_iter", "n_iter_no_change", "pretraining_max_iter",
                "kl_warmup", "n_importance_samples", "kernel_size")
    reals = ("alpha", "learning_rate_init", "tol", "momentum", "validation_fraction", "beta_1",
             "beta_2", "epsilon", "sparsity_weight", "sparsity_target", "noise_level",
             "contractive_weight", "kl_weight")
    values = {name: _integer(params, owner, name) for name in integers}
    values.update({name: _real(params, owner, name) for name in reals})
    if values["pretraining_max_iter"] is None:
        values["pretraining_max_iter"] = values["max_iter"]
    flags = ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping", "standardize",
             "tied_weights", "variational", "skip_connections")
    values.update({name: bool(params[name]) for name in flags})
    values.update({name: params[name] for name in (
        "activation", "latent_activation", "output_activation", "loss", "solver",
        "learning_rate", "sparsity", "noise", "pretraining", "precision", "architecture")})
    n_outputs = None if Y is None else int(Y.shape[1])
    values.update(image_shape=image_shape, n_outputs=n_outputs, conv_channels=channels)
    values["conv_code"] = values["n_components"] is None
    if values["conv_code"]:  # the last stage's feature map, flattened
        if image_shape is not None and params["architecture"] == "conv":
            c, h, w = stage_shapes(image_shape, channels, values["kernel_size"])[-1]
            values["n_components"] = c * h * w
            n_layers = len(channels)
        else:
            values["n_components"] = 0  # rejected by the image rules
    values["output_image_shape"] = _output_image_shape(values, owner)
    kind = "variational" if params["variational"] else values["architecture"]
    if isinstance(params["std_offset"], str):  # "auto": measured on the MLP network only
        values["std_offset"] = AUTO_STD_OFFSET if kind == "mlp" else 0.0
    else:
        values["std_offset"] = _real(params, owner, "std_offset")
    spec = Spec(
        owner=owner, kind=kind,
        n_features=int(X.shape[1]), hidden_layer_sizes=hidden,
        verbose=bool(params["verbose"]),
        sparsity_layers=_sparse_layers(params, owner, n_layers),
        device=resolve_device(params["device"], owner),
        trim_fraction=_real({"trim_fraction": params.get("trim_fraction", 0.0)}, owner,
                            "trim_fraction"),
        contamination=_contamination(params, owner),
        incremental=incremental,
        **values,
    )
    _check_data_rules(spec, X, Y)
    return spec

