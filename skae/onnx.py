"""Export fitted skae estimators to ONNX, on their own or inside scikit-learn pipelines.

:func:`to_onnx` turns a fitted estimator into an ``onnx.ModelProto`` that
onnxruntime (or any ONNX runtime) evaluates without Python or torch. The
graph is built node by node from the same inference steps the estimator
runs (``inference_steps`` of its network): standardization in float64, then
dense layers (``Gemm``), convolutional stages (``Reshape``, ``Transpose``,
``Conv``, ``ConvTranspose``) and activations in float32, and the
destandardization in float64, so the results agree with the estimator's on
float32 input to float32 rounding.

:func:`register_skl2onnx` registers a shape calculator and a converter for
every skae estimator with skl2onnx (it is called when this module is
imported), so that ``skl2onnx.to_onnx`` converts pipelines holding them.

This module imports ``onnx`` (and skl2onnx, to register the converters when
it is installed); ``import skae`` does not import it.
"""

import math
from numbers import Integral

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from sklearn.utils.validation import check_is_fitted

from . import _neighbors
from ._inference import _standard_normal
from ._nets.mlp import _Core
from ._nets.variational import LOG_2PI, MIN_STD, SOFTPLUS_ONE
from ._objective import _BCE_EPS
from .anomaly import AutoencoderAnomalyDetector
from .ensemble import AutoencoderEnsembleDetector
from .regressor import AutoencoderRegressor
from .transformer import AutoencoderTransformer

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "METHODS", "register_skl2onnx", "to_onnx"]

#: Opset of the default domain used when ``target_opset`` is None.
DEFAULT_OPSET = 18
#: Oldest supported opset of the default domain.
MIN_OPSET = 13

#: Methods each estimator exports (the first ones by default) and methods it cannot.
METHODS = {
    AutoencoderTransformer: ("transform", "reconstruct", "score_samples", "inverse_transform"),
    AutoencoderAnomalyDetector: ("predict", "decision_function", "score_samples",
                                 "feature_errors", "reconstruct"),
    AutoencoderRegressor: ("predict",),
    AutoencoderEnsembleDetector: ("predict", "decision_function", "score_samples",
                                  "feature_errors"),
}
_DEFAULTS = {
    AutoencoderTransformer: ("transform",),
    AutoencoderAnomalyDetector: ("predict", "decision_function", "score_samples"),
    AutoencoderRegressor: ("predict",),
    AutoencoderEnsembleDetector: ("predict", "decision_function", "score_samples"),
}
#: Methods that draw random numbers at every call: they have no graph.
_RANDOM = {"sample": "sample draws random codes from the prior at every call"}


# ----------------------------------------------------------------- emission
class _Emitter:
    """Collects ONNX nodes and initializers; the base of both graph builders.

    Subclasses provide ``_name(hint)``, ``_initializer(name, array)`` and
    ``_node(op_type, inputs, outputs, attrs)``.
    """

    opset = DEFAULT_OPSET

    def const(self, value, hint="c", dtype=np.float32):
        """Add a constant tensor; return its name."""
        name = self._name(hint)
        self._initializer(name, np.ascontiguousarray(np.asarray(value, dtype=dtype)))
        return name

    def op(self, op_type, *inputs, out=None, **attrs):
        """Add one node with one output; return the output's name (``out`` when given)."""
        out = self._name(op_type.lower()) if out is None else out
        self._node(op_type, list(inputs), [out], attrs)
        return out

    def reduce(self, op_type, x, axes, keepdims=0, out=None):
        """A reduction over ``axes``, with the axes as an attribute or input as the opset wants."""
        as_input = self.opset >= 18 or (op_type == "ReduceSum" and self.opset >= 13)
        if as_input:
            return self.op(op_type, x, self.const(axes, "axes", np.int64), keepdims=keepdims,
                           out=out)
        return self.op(op_type, x, axes=list(axes), keepdims=keepdims, out=out)

    def reshape(self, x, shape, out=None):
        """Reshape ``x`` (``-1`` for the batch dimension)."""
        return self.op("Reshape", x, self.const(shape, "shape", np.int64), out=out)

    def scalar(self, value, dtype=np.float32):
        """A scalar constant."""
        return self.const(np.asarray(value, dtype=dtype), "scalar", dtype)


class _Standalone(_Emitter):
    """Builds a graph of its own (:func:`to_onnx`)."""

    def __init__(self, opset):
        self.opset, self.nodes, self.initializers, self._count = opset, [], [], 0

    def _name(self, hint):
        self._count += 1
        return f"{hint}_{self._count}"

    def _initializer(self, name, array):
        self.initializers.append(numpy_helper.from_array(array, name))

    def _node(self, op_type, inputs, outputs, attrs):
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=self._name(op_type),
                                           **attrs))


class _InContainer(_Emitter):
    """Adds nodes to a skl2onnx container (the converters)."""

    def __init__(self, scope, container, prefix):
        self.scope, self.container, self.prefix = scope, container, prefix
        self.opset = container.target_opset

    def _name(self, hint):
        return self.scope.get_unique_variable_name(f"{self.prefix}_{hint}")

    def _initializer(self, name, array):
        self.container.add_initializer(
            name, helper.np_dtype_to_tensor_dtype(array.dtype), list(array.shape),
            array.ravel().tolist())

    def _node(self, op_type, inputs, outputs, attrs):
        self.container.add_node(op_type, inputs, outputs,
                                name=self.scope.get_unique_operator_name(op_type), **attrs)


def _numpy(t):
    return t.detach().to("cpu", torch.float32).numpy()


def _activation(g, x, activation):
    """Apply an activation of :data:`skae._nets.activations.ACTIVATIONS` by name."""
    name = activation.name
    if name == "identity":
        return x
    if name == "relu":
        return g.op("Relu", x)
    if name in ("logistic", "sigmoid"):
        return g.op("Sigmoid", x)
    if name == "tanh":
        return g.op("Tanh", x)
    if name == "leaky_relu":
        return g.op("LeakyRelu", x, alpha=0.01)
    if name == "elu":
        return g.op("Elu", x, alpha=1.0)
    if name == "gelu":  # the exact GELU, x * Phi(x), as torch.nn.GELU()
        erf = g.op("Erf", g.op("Mul", x, g.scalar(1.0 / math.sqrt(2.0))))
        phi = g.op("Add", erf, g.scalar(1.0))
        return g.op("Mul", g.op("Mul", x, phi), g.scalar(0.5))
    raise ValueError(
        f"activation={name!r} (activation, latent_activation or output_activation) has no "
        "ONNX export.")


def _image(g, x, shape, channels_last):
    """Flat rows as a batch of ``(C, H, W)`` images."""
    c, h, w = shape
    if channels_last:
        return g.op("Transpose", g.reshape(x, [-1, h, w, c]), perm=[0, 3, 1, 2])
    return g.reshape(x, [-1, c, h, w])


def _conv(g, x, conv):
    """An ``ImageConv`` (``skae._nets.conv``) on flat rows, its layouts included."""
    c, h, w = conv.in_shape
    if conv.image_channels:  # features (C, H, W) first, then the input image channels last
        k = conv.image_channels
        split = (c - k) * h * w
        starts, ends, axes = (g.const([a], "starts", np.int64) for a in (0, split, 1))
        big = g.const([np.iinfo(np.int64).max], "ends", np.int64)
        features = g.op("Slice", x, starts, ends, axes)
        image = g.op("Slice", x, ends, big, axes)
        img = g.op("Concat", _image(g, features, (c - k, h, w), False),
                   _image(g, image, (k, h, w), True), axis=1)
    else:
        img = _image(g, x, conv.in_shape, conv.channels_last_in)
    weight, bias = g.const(_numpy(conv.weight), "kernel"), g.const(_numpy(conv.bias), "bias")
    k, p = conv.kernel_size, conv.padding
    if conv.transpose:
        y = g.op("ConvTranspose", img, weight, bias, kernel_shape=[k, k], strides=[2, 2],
                 pads=[p, p, p, p], output_padding=list(conv.output_padding))
    else:
        y = g.op("Conv", img, weight, bias, kernel_shape=[k, k],
                 strides=[conv.stride, conv.stride], pads=[p, p, p, p])
    if conv.channels_last_out:
        y = g.op("Transpose", y, perm=[0, 2, 3, 1])
    return g.reshape(y, [-1, conv.out_features])


def _layer(g, x, kind, layer):
    """One ``Dense`` layer: its linear map (or convolution) and its activation."""
    if kind == "map":
        if not hasattr(layer.linear, "in_shape"):
            raise ValueError(f"layer {type(layer.linear).__name__} has no ONNX export.")
        h = _conv(g, x, layer.linear)
    else:
        h = g.op("Gemm", x, g.const(_numpy(layer.linear.weight), "weight"),
                 g.const(_numpy(layer.linear.bias), "bias"), transB=1)
    return _activation(g, h, layer.activation)


def _affine(g, x, part):
    """``Standardize``: in float64, as the network computes it, cast back to float32."""
    shift = g.const(part.shift.detach().cpu().numpy(), "shift", np.float64)
    scale = g.const(part.scale.detach().cpu().numpy(), "scale", np.float64)
    x64 = g.op("Cast", x, to=TensorProto.DOUBLE)
    y = (g.op("Add", g.op("Mul", x64, scale), shift) if part.inverse
         else g.op("Div", g.op("Sub", x64, shift), scale))
    return g.op("Cast", y, to=TensorProto.FLOAT)


def _skip_core(g, x, net):
    """The standardized forward pass of a network with skip connections (``_Core``)."""
    h, posts = x, []
    for layer in net.encoder_layers:
        h = _layer(g, h, getattr(layer.linear, "step_kind", "dense"), layer)
        posts.append(h)
    skips, z = (x, *posts), h
    for j, layer in enumerate(net.decoder_layers):
        if j:
            z = g.op("Concat", z, skips[-1 - j], axis=1)
        z = _layer(g, z, getattr(layer.linear, "step_kind", "dense"), layer)
    return z


def _emit_steps(g, x, steps):
    """Emit the nodes of a network's inference ``steps`` (see ``_inference.Forward``).

    Parameters
    ----------
    g : _Emitter
    x : str
        Name of the float32 input rows.
    steps : list of tuple
        As returned by the network's ``inference_steps``.

    Returns
    -------
    y : str
        Name of the float32 result.
    """
    for kind, part in steps:
        if kind in ("standardize", "destandardize"):
            x = _affine(g, x, part)
        elif kind in ("dense", "map"):
            x = _layer(g, x, kind, part)
        elif kind == "module" and isinstance(part, _Core):
            x = _skip_core(g, x, part.net)
        else:
            raise ValueError(f"inference step {kind!r} ({type(part).__name__}) has no ONNX export.")
    return x


# ------------------------------------------------------------------- methods
def _nan_to(g, x, value):
    """Replace NaN by ``value`` (``nan_to_num`` as skae's inference applies it)."""
    return g.op("Where", g.op("IsNaN", x), g.scalar(value), x)


def _errors(g, x, est, with_codes=False, residual=False):
    """Elementwise reconstruction errors (standardized units), NaN as +inf.

    With ``with_codes``, ``(errors, codes)``: the codes from the same pass.
    With ``residual`` (squared error loss), the residuals (reconstruction
    minus standardized input) instead of the errors; relative errors do not
    divide them.
    """
    net = est.module_
    xs = _emit_steps(g, x, net.inference_steps(("standardize",)))
    if with_codes:
        codes = _emit_steps(g, xs, net.inference_steps(("code",)))
        rec = _emit_steps(g, codes, net.inference_steps(("expand",)))
    else:
        rec = _emit_steps(g, xs, net.inference_steps(("core",)))
    if residual or est._spec.loss == "mse":
        diff = g.op("Sub", rec, xs)
        err = diff if residual else g.op("Mul", diff, diff)
    else:  # binary cross-entropy of the clipped reconstruction, logs floored at -100
        p = g.op("Clip", rec, g.scalar(_BCE_EPS), g.scalar(1 - _BCE_EPS))
        floor = g.scalar(-100.0)
        log_p = g.op("Max", g.op("Log", p), floor)
        log_q = g.op("Max", g.op("Log", g.op("Sub", g.scalar(1.0), p)), floor)
        one_minus = g.op("Sub", g.scalar(1.0), xs)
        err = g.op("Neg", g.op("Add", g.op("Mul", xs, log_p), g.op("Mul", one_minus, log_q)))
    scale = None if residual else getattr(est, "feature_error_scale_", None)
    if scale is not None:  # relative errors, as the estimator computes them
        with np.errstate(over="ignore"):
            inverse = (1.0 / np.asarray(scale, np.float64)).astype(np.float32)
        err = g.op("Mul", err, g.const(inverse.reshape(1, -1), "inverse_feature_error_scale"))
    return (err, codes) if with_codes else err


class _VariationalParts:
    """The passes of a variational network (see ``_inference._Variational``), as nodes."""

    def __init__(self, g, x, net):
        self.g, self.net, k = g, net, net.n_components
        self.xs = _emit_steps(g, x, net.inference_steps(("standardize",)))
        stats = _emit_steps(g, self.xs, net.inference_steps(("posterior",)))
        axis = g.const([1], "axes", np.int64)
        self.mean = g.op("Slice", stats, g.const([0], "starts", np.int64),
                         g.const([k], "ends", np.int64), axis)
        head = g.op("Slice", stats, g.const([k], "starts", np.int64),
                    g.const([2 * k], "ends", np.int64), axis)
        std = g.op("Add", g.op("Softplus", g.op("Add", head, g.scalar(SOFTPLUS_ONE))),
                   g.scalar(MIN_STD))
        self.log_var = g.op("Mul", g.scalar(2.0), g.op("Log", std))

    def logits(self, z):
        """The last decoder layer's pre-activation of codes ``z`` (standardized units)."""
        return _emit_steps(self.g, z, self.net.inference_steps(("logits",)))

    def elementwise_log_likelihood(self, logits, x):
        """``log p(x_j | z)`` of every element, from the logits (broadcasting)."""
        g, net = self.g, self.net
        if net.likelihood == "bernoulli":
            return g.op("Sub", g.op("Mul", x, logits), g.op("Softplus", logits))
        mean = _activation(g, logits, net.decoder_layers[-1].activation)
        s = float(net.log_noise_variance.detach().float())
        diff = g.op("Sub", mean, x)
        sq = g.op("Mul", g.op("Mul", diff, diff), g.scalar(np.exp(np.float32(-s))))
        total = g.op("Add", g.op("Add", sq, g.scalar(s)), g.scalar(LOG_2PI))
        return g.op("Mul", g.scalar(-0.5), total)


def _log_likelihood(g, x, est):
    """The importance-weighted ``log p(x)`` of ``_inference.log_likelihood``, its draws fixed."""
    net, spec = est.module_, est._spec
    n_draws, k = spec.n_importance_samples, net.n_components
    eps = _standard_normal((n_draws, k), est._inference_seed, torch.device("cpu"), torch.float32)
    log_q_eps = -0.5 * (eps.square() + LOG_2PI).sum(1)
    parts = _VariationalParts(g, x, net)
    width = net.decoder_layers[-1].linear.out_features
    # z[i, d] = mean[i] + exp(lv[i] / 2) * eps[d], shape (m, K, k), as the estimator computes it
    std = g.op("Exp", g.op("Mul", parts.log_var, g.scalar(0.5)))
    z = g.op("Add", g.reshape(parts.mean, [-1, 1, k]),
             g.op("Mul", g.reshape(std, [-1, 1, k]), g.const(_numpy(eps), "eps")))
    logits = g.reshape(parts.logits(g.reshape(z, [-1, k])), [-1, n_draws, width])
    xs = g.reshape(parts.xs, [-1, 1, width])
    log_px = g.reduce("ReduceSum", parts.elementwise_log_likelihood(logits, xs), [2])
    log_pz = g.op("Mul", g.scalar(-0.5),
                  g.reduce("ReduceSum", g.op("Add", g.op("Mul", z, z), g.scalar(LOG_2PI)), [2]))
    half_lv = g.op("Mul", g.scalar(0.5), g.reduce("ReduceSum", parts.log_var, [1], keepdims=1))
    log_q = g.op("Sub", g.const(_numpy(log_q_eps).reshape(1, -1), "log_q_eps"), half_lv)
    log_w = g.op("Sub", g.op("Add", log_px, log_pz), log_q)
    top = g.reduce("ReduceMax", log_w, [1], keepdims=1)
    lse = g.op("Add", g.op("Log", g.reduce("ReduceSum", g.op("Exp", g.op("Sub", log_w, top)), [1])),
               g.reshape(top, [-1]))
    const = np.float32(net.log_jacobian() - math.log(n_draws))
    return _nan_to(g, g.op("Add", lse, g.scalar(const)), -np.inf)


def _spec_of(est):
    """The resolved parameters of ``est``'s network (of its first member for an ensemble)."""
    return (est.estimators_[0] if isinstance(est, AutoencoderEnsembleDetector) else est)._spec


def _member_mean(g, x, est, emit):
    """Mean over an ensemble's members of ``emit(g, x, member)``."""
    parts = [emit(g, x, member) for member in est.estimators_]
    total = parts[0] if len(parts) == 1 else g.op("Sum", *parts)
    return g.op("Mul", total, g.scalar(1.0 / len(parts)))


def _score_samples(g, x, est):
    if isinstance(est, AutoencoderEnsembleDetector):
        return _member_mean(g, x, est, _score_samples)
    if est._spec.variational:
        return _log_likelihood(g, x, est)
    if getattr(est, "_code_distance", None) is None:
        return g.op("Neg", _nan_to(g, g.reduce("ReduceMean", _errors(g, x, est), [1]), np.inf))
    if getattr(est, "n_neighbors_", None) is not None:
        return g.op("Neg", _neighbor_distances(g, x, est))
    full = getattr(est, "residual_whitening_", None) is not None
    err, codes = _errors(g, x, est, with_codes=True, residual=full)
    if full:  # the residual's squared Mahalanobis distance
        err = _squared_norm(g, err, est.residual_mean_, est.residual_whitening_, "residual")
    else:
        err = g.reduce("ReduceMean", err, [1])
    err = _nan_to(g, err, np.inf)
    return g.op("Neg", _nan_to(g, _code_combination(g, codes, est, err, full), np.inf))


def _whitened(g, rows, mean, whitening, name, dtype=np.float32):
    """``(rows - mean) @ whitening``, the constants in ``dtype``."""
    centered = g.op("Sub", rows, g.const(mean.reshape(1, -1), f"{name}_mean", dtype))
    return g.op("MatMul", centered, g.const(whitening, f"{name}_whitening", dtype))


def _squared_norm(g, rows, mean, whitening, name):
    """``||(rows - mean) @ whitening||^2`` of every row."""
    white = _whitened(g, rows, mean, whitening, name)
    return g.reduce("ReduceSum", g.op("Mul", white, white), [1])


def _neighbor_distances(g, x, est):
    """Squared distances to the ``n_neighbors_``-th nearest reference embedding (float32).

    As :mod:`skae._neighbors` computes them, in float64 from the network's
    float32 residuals and codes; NaN (an overflow) is +inf.
    """
    f64 = np.float64
    residuals, codes = _errors(g, x, est, with_codes=True, residual=True)
    residuals = g.op("Cast", residuals, to=TensorProto.DOUBLE)
    codes = g.op("Cast", codes, to=TensorProto.DOUBLE)
    residual_mean, residual_map, code_mean, code_map = est._embedding_maps()
    if residual_mean is None:  # spherical: a factor per feature
        white = g.op("Mul", residuals, g.const(residual_map.reshape(1, -1), "residual_unit",
                                               f64))
    else:
        white = _whitened(g, residuals, residual_mean, residual_map, "residual", f64)
    code = _whitened(g, codes, code_mean, code_map, "code", f64)
    z = g.op("Concat", white, code, axis=1)
    reference, weights = est.reference_embedding_, est.reference_weights_
    k = est.n_neighbors_
    norms = g.reduce("ReduceSum", g.op("Mul", z, z), [1], keepdims=1)
    cross = g.op("MatMul", z, g.const(reference.T, "reference_t", f64))
    distances = g.op("Add", norms, g.const(np.square(reference).sum(1).reshape(1, -1),
                                           "reference_norms", f64))
    distances = g.op("Sub", distances, g.op("Mul", cross, g.scalar(2.0, f64)))
    distances = g.op("Max", distances, g.scalar(0.0, f64))
    distances = g.op("Where", g.op("IsNaN", distances), g.scalar(np.inf, f64), distances)
    m = k if weights is None else _neighbors.candidates(weights, k, leave_out=False)
    nearest, indices = g._name("nearest"), g._name("nearest_indices")
    g._node("TopK", [distances, g.const([m], "k", np.int64)], [nearest, indices],
            dict(largest=0, sorted=1))
    if weights is None:
        kth = g.reshape(g.op("Gather", nearest, g.const([k - 1], "kth", np.int64), axis=1),
                        [-1])
    else:  # the first of the nearest at which the cumulated weight reaches n_neighbors
        w = g.op("Gather", g.const(weights, "reference_weights", f64), indices)
        cumulated = g.op("CumSum", w, g.const(1, "axis", np.int64))
        reached = g.op("GreaterOrEqual", cumulated,
                       g.scalar(k * (1.0 - _neighbors.WEIGHT_SLACK), f64))
        first = g.op("ArgMax", g.op("Cast", reached, to=TensorProto.INT32), axis=1, keepdims=1)
        kth = g.reshape(g.op("GatherElements", nearest, first, axis=1), [-1])
    return g.op("Cast", kth, to=TensorProto.FLOAT)


def _code_combination(g, codes, est, err, full):
    """``n_features * r + code_weight * m`` or ``r * m`` of ``code_distance`` (see the detector).

    ``err``: the mean errors, or with ``full`` the residuals' squared
    Mahalanobis distances (``n_features * r``).
    """
    distance = _squared_norm(g, codes, est.code_mean_, est.code_whitening_, "code")
    n_features = est._spec.n_features
    if full:
        residual, relative = err, g.op("Mul", err, g.scalar(1.0 / n_features))
    else:
        relative = g.op("Mul", err, g.scalar(1.0 / est.error_scale_))
        residual = g.op("Mul", relative, g.scalar(n_features))
    if est._code_distance == "add":
        return g.op("Add", residual, g.op("Mul", distance, g.scalar(est._code_weight)))
    return g.op("Mul", relative, distance)


def _feature_errors(g, x, est):
    if isinstance(est, AutoencoderEnsembleDetector):
        return _member_mean(g, x, est, _feature_errors)
    if est._spec.variational:
        parts = _VariationalParts(g, x, est.module_)
        ll = parts.elementwise_log_likelihood(parts.logits(parts.mean), parts.xs)
        return _nan_to(g, g.op("Neg", ll), np.inf)
    return _nan_to(g, _errors(g, x, est), np.inf)


def _decision_function(g, x, est):
    """``score_samples - offset_`` in float64, cast to float32 (as the estimator)."""
    scores = g.op("Cast", _score_samples(g, x, est), to=TensorProto.DOUBLE)
    shifted = g.op("Sub", scores, g.scalar(est.offset_, np.float64))
    return g.op("Cast", shifted, to=TensorProto.FLOAT)


def _labels(g, decision, out=None):
    """+1 where ``decision >= 0``, else -1 (int64)."""
    return g.op("Where", g.op("GreaterOrEqual", decision, g.scalar(0.0)),
                g.scalar(1, np.int64), g.scalar(-1, np.int64), out=out)


def _emit_method(g, x, est, method):
    """Nodes of ``method`` of ``est`` on rows ``x``; returns ``(name, shape)`` of the result."""
    net, spec = getattr(est, "module_", None), _spec_of(est)
    n_out = spec.n_outputs or spec.n_features
    if method == "transform":
        return _emit_steps(g, x, net.inference_steps(("encoder",))), [None, spec.n_components]
    if method == "inverse_transform":
        return _emit_steps(g, x, net.inference_steps(("decoder",))), [None, spec.n_features]
    if method == "reconstruct" or (method == "predict" and isinstance(est, AutoencoderRegressor)):
        y = _emit_steps(g, x, net.inference_steps(("reconstruct",)))
        if method == "predict" and est.n_outputs_ == 1:
            return g.reshape(y, [-1]), [None]
        return y, [None, n_out]
    if method == "score_samples":
        return _score_samples(g, x, est), [None]
    if method == "feature_errors":
        return _feature_errors(g, x, est), [None, spec.n_features]
    if method == "decision_function":
        return _decision_function(g, x, est), [None]
    if method == "predict":
        return _labels(g, _decision_function(g, x, est)), [None]
    raise AssertionError(method)  # pragma: no cover - checked by _check_methods


# ---------------------------------------------------------------- validation
def _estimator_class(estimator):
    for cls in METHODS:
        if isinstance(estimator, cls):
            return cls
    raise TypeError(
        "to_onnx expects a fitted AutoencoderTransformer, AutoencoderAnomalyDetector, "
        f"AutoencoderRegressor or AutoencoderEnsembleDetector. Got {type(estimator).__name__} "
        "instead."
    )


def _check_methods(estimator, methods):
    cls = _estimator_class(estimator)
    name = type(estimator).__name__
    if methods is None:
        return _DEFAULTS[cls]
    if isinstance(methods, str):
        methods = (methods,)
    try:
        methods = tuple(methods)
    except TypeError:
        raise TypeError(
            f"The 'methods' parameter of to_onnx must be a str, a sequence of str or None. "
            f"Got {methods!r} instead.") from None
    if not methods:
        raise ValueError("The 'methods' parameter of to_onnx must name at least one method.")
    for m in methods:
        if isinstance(m, str) and m in _RANDOM:
            raise ValueError(
                f"The 'methods' parameter of to_onnx: {name}.{m} cannot be exported: "
                f"{_RANDOM[m]}, and an ONNX graph is deterministic.")
        if not isinstance(m, str) or m not in METHODS[cls]:
            raise ValueError(
                f"The 'methods' parameter of to_onnx must hold methods of {name} among "
                f"{list(METHODS[cls])}. Got {m!r} instead.")
    if len(set(methods)) != len(methods):
        raise ValueError(
            f"The 'methods' parameter of to_onnx names a method twice: {list(methods)}.")
    if "inverse_transform" in methods and len(methods) > 1:
        raise ValueError(
            "The 'methods' parameter of to_onnx: inverse_transform reads codes, not samples, "
            "so it is exported alone, as a model of its own: methods=['inverse_transform'].")
    return methods


def _check_opset(target_opset):
    if target_opset is None:
        return min(DEFAULT_OPSET, onnx.defs.onnx_opset_version())
    latest = onnx.defs.onnx_opset_version()
    if (isinstance(target_opset, (bool, np.bool_)) or not isinstance(target_opset, Integral)
            or not MIN_OPSET <= target_opset <= latest):
        raise ValueError(
            f"The 'target_opset' parameter of to_onnx must be an int in the range "
            f"[{MIN_OPSET}, {latest}] or None. Got {target_opset!r} instead.")
    return int(target_opset)


def to_onnx(estimator, *, methods=None, target_opset=None):
    """Convert a fitted skae estimator into an ONNX model.

    The model has one float32 input ``X`` of shape ``[None, n_features]``
    and one output per method, named after it. Every network kind exports:
    MLP (every activation, tied weights, greedy-pretrained), variational,
    convolutional (``architecture="conv"``, also with a spatial code,
    ``n_components=None``) and skip connections. On float32 input its results
    equal the estimator's up to float32 rounding.

    Parameters
    ----------
    estimator : AutoencoderTransformer, AutoencoderAnomalyDetector, \
            AutoencoderRegressor or AutoencoderEnsembleDetector
        A fitted estimator.
    methods : str, sequence of str or None, default=None
        Methods to export, each an output of the model.

        - :class:`~skae.AutoencoderTransformer`: ``"transform"`` (the
          default), ``"reconstruct"``, ``"score_samples"``, or
          ``"inverse_transform"``. The latter reads codes: it is exported
          alone, and the model's input ``X`` then has shape
          ``[None, n_components]``.
        - :class:`~skae.AutoencoderAnomalyDetector`: ``"predict"`` (int64,
          +1 for inliers, -1 for outliers), ``"decision_function"``,
          ``"score_samples"`` (these three by default), ``"feature_errors"``,
          ``"reconstruct"``.
        - :class:`~skae.AutoencoderRegressor`: ``"predict"`` (1-D when
          there is one target, as the estimator returns).
        - :class:`~skae.AutoencoderEnsembleDetector`: as the detector,
          without ``"reconstruct"``; every member's graph is in the model,
          and the scores are their mean.

        ``sample`` draws random numbers at every call and has no graph. A
        variational model's ``score_samples`` has one: its importance
        samples are drawn once at ``fit``, and the graph holds them.
    target_opset : int or None, default=None
        Opset of the default ONNX domain, at least 13; None for
        :data:`DEFAULT_OPSET` (18).

    Returns
    -------
    model : onnx.ModelProto
        A checked model.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When the estimator is not fitted.
    TypeError
        When ``estimator`` is not a skae estimator.
    ValueError
        When a method cannot be exported or ``target_opset`` is out of range.

    Notes
    -----
    The graph does not check its input: where the estimator raises on
    non-finite values (or, with ``loss="bce"``, on values outside [0, 1]),
    the model returns NaN or meaningless values.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> from skae import AutoencoderTransformer
    >>> from skae.onnx import to_onnx
    >>> X = np.random.RandomState(0).rand(50, 6).astype(np.float32)
    >>> est = AutoencoderTransformer(n_components=2, max_iter=5, random_state=0).fit(X)
    >>> model = to_onnx(est)
    >>> session = ort.InferenceSession(model.SerializeToString())
    >>> Z = session.run(["transform"], {"X": X})[0]
    >>> bool(np.abs(Z - est.transform(X)).max() < 1e-5)
    True
    """
    _estimator_class(estimator)
    check_is_fitted(estimator)
    methods = _check_methods(estimator, methods)
    opset = _check_opset(target_opset)
    spec = _spec_of(estimator)
    width = spec.n_components if methods == ("inverse_transform",) else spec.n_features
    g = _Standalone(opset)
    outputs = []
    with torch.no_grad():
        for method in methods:
            name, shape = _emit_method(g, "X", estimator, method)
            g.op("Identity", name, out=method)
            elem = TensorProto.INT64 if (method == "predict" and not isinstance(
                estimator, AutoencoderRegressor)) else TensorProto.FLOAT
            outputs.append(helper.make_tensor_value_info(method, elem, shape))
    graph = helper.make_graph(
        g.nodes, type(estimator).__name__,
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, width])],
        outputs, g.initializers)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="skae",
                              ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(model)
    return model


# ------------------------------------------------------------------- skl2onnx
def _shape_calculator(operator):
    """Output types of a skae operator in a skl2onnx graph."""
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType

    est = operator.raw_operator
    check_is_fitted(est)
    input_type = operator.inputs[0].type
    if not isinstance(input_type, FloatTensorType):
        raise TypeError(
            f"The ONNX converter of {type(est).__name__} takes float32 input; got "
            f"{type(input_type).__name__}. Convert with float32 initial types.")
    n = input_type.shape[0] if input_type.shape else None
    if isinstance(est, (AutoencoderAnomalyDetector, AutoencoderEnsembleDetector)):
        operator.outputs[0].type = Int64TensorType([n])
        operator.outputs[1].type = FloatTensorType([n, 1])
    elif isinstance(est, AutoencoderRegressor):
        operator.outputs[0].type = FloatTensorType([n, est._spec.n_outputs])
    else:
        operator.outputs[0].type = FloatTensorType([n, est._spec.n_components])


def _converter(scope, operator, container):
    """Emit a skae operator's nodes into a skl2onnx container.

    The transformer outputs ``transform``; the regressor ``predict`` of shape
    ``[N, n_outputs]``; the detector, as skl2onnx's outlier detectors, a
    ``label`` (int64, ``predict``) and ``scores`` of shape ``[N, 1]``
    (``decision_function``).
    """
    est = operator.raw_operator
    check_is_fitted(est)
    g = _InContainer(scope, container, type(est).__name__)
    if g.opset < MIN_OPSET:
        raise ValueError(f"The ONNX converter of {type(est).__name__} needs target_opset >= "
                         f"{MIN_OPSET}; got {g.opset}.")
    x = operator.inputs[0].full_name
    with torch.no_grad():
        if isinstance(est, (AutoencoderAnomalyDetector, AutoencoderEnsembleDetector)):
            decision = _decision_function(g, x, est)
            _labels(g, decision, out=operator.outputs[0].full_name)
            g.reshape(decision, [-1, 1], out=operator.outputs[1].full_name)
        elif isinstance(est, AutoencoderRegressor):
            y = _emit_steps(g, x, est.module_.inference_steps(("reconstruct",)))
            g.op("Identity", y, out=operator.outputs[0].full_name)
        else:
            y = _emit_steps(g, x, est.module_.inference_steps(("encoder",)))
            g.op("Identity", y, out=operator.outputs[0].full_name)


def register_skl2onnx():
    """Register skae's estimators with skl2onnx.

    Adds a shape calculator and a converter for
    :class:`~skae.AutoencoderTransformer` (alias ``"SkaeAutoencoderTransformer"``,
    output ``transform``), :class:`~skae.AutoencoderAnomalyDetector`
    (``"SkaeAutoencoderAnomalyDetector"``, outputs ``label``, the int64
    ``predict``, and ``scores`` of shape ``[N, 1]``, the
    ``decision_function``, as skl2onnx's outlier detectors) and
    :class:`~skae.AutoencoderRegressor` (``"SkaeAutoencoderRegressor"``,
    ``predict`` of shape ``[N, n_outputs]``, as skl2onnx's regressors) and
    :class:`~skae.AutoencoderEnsembleDetector` (``"SkaeAutoencoderEnsembleDetector"``,
    the detector's outputs).
    Called when :mod:`skae.onnx` is imported; calling it again is harmless.

    Raises
    ------
    ImportError
        When skl2onnx is not installed.
    """
    from skl2onnx import update_registered_converter

    for cls in METHODS:
        update_registered_converter(cls, f"Skae{cls.__name__}", _shape_calculator, _converter)


try:  # the converters, when skl2onnx is there; to_onnx needs onnx alone
    register_skl2onnx()
except ImportError:  # pragma: no cover - skl2onnx is installed with the onnx extra
    pass
