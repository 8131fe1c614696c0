"""Property-based tests: valid parameters and awkward arrays never crash badly.

Hypothesis draws valid parameter combinations (some combinations are invalid
together, e.g. ``loss="bce"`` with ``standardize=True``) and small arrays with
awkward memory layouts (Fortran order, negative strides, strided views whose
gaps hold NaN), dtypes, scales from 1e-30 to 1e30, offsets, constant and
duplicated columns. Every public method must either

(a) raise a scikit-learn style error: ``ValueError`` or ``TypeError`` whose
    message names a parameter (``'name'`` or ``name=``) or the input (``X``
    or ``Input``); ``fit`` may also raise ``FloatingPointError`` when the
    training diverged (message mentions "training loss" or "non-finite");
    any other exception (torch's ``RuntimeError``, ``IndexError``, ...) fails;

(b) or return outputs of the right shape, in the input's dtype for float
    outputs, without NaN: finite everywhere, except that the detector's
    ``score_samples`` may be ``-inf`` (an overflowing reconstruction error),
    and then ``decision_function`` may be ``-inf`` and ``feature_errors``
    ``+inf`` in those rows only; ``predict`` gives -1 or +1.

The default tests are bounded to a few seconds each; the ``slow`` versions
draw many more examples (``pytest -m slow tests/test_properties.py``).
"""

import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skae import AutoencoderAnomalyDetector, AutoencoderTransformer

ACTIVATIONS = ["identity", "relu", "logistic", "sigmoid", "tanh", "leaky_relu", "elu", "gelu"]
LAYOUTS = [
    "C",
    "F",
    "reversed_rows",  # X[::-1]
    "reversed_columns",  # X[:, ::-1]
    "reversed_both",  # X[::-1, ::-1]
    "every_other_row",  # X[::2], the skipped rows hold NaN
    "every_other_column",  # X[:, ::2], the skipped columns hold NaN
]

#: Exponents k of the scales 10**k, drawn uniformly; shrinking goes towards k = 0.
POWERS = st.sampled_from(sorted(range(-30, 31), key=lambda k: (abs(k), k < 0)))

_SETTINGS = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
FAST = settings(max_examples=100, **_SETTINGS)
SLOW = settings(max_examples=300, **_SETTINGS)


# ----------------------------------------------------------------- strategies
def with_layout(values, layout):
    """An array equal to ``values`` (2-D) with the given memory layout."""
    values = np.ascontiguousarray(values)
    n, p = values.shape
    if layout == "C":
        return values
    if layout == "F":
        return np.asfortranarray(values)
    if layout == "reversed_rows":
        return np.ascontiguousarray(values[::-1])[::-1]
    if layout == "reversed_columns":
        return np.ascontiguousarray(values[:, ::-1])[:, ::-1]
    if layout == "reversed_both":
        return np.ascontiguousarray(values[::-1, ::-1])[::-1, ::-1]
    if layout == "every_other_row":
        buffer = np.full((2 * n, p), np.nan, dtype=values.dtype)
        buffer[::2] = values
        return buffer[::2]
    if layout == "every_other_column":
        buffer = np.full((n, 2 * p), np.nan, dtype=values.dtype)
        buffer[:, ::2] = values
        return buffer[:, ::2]
    raise AssertionError(layout)


@st.composite
def datasets(draw, unit_interval=False):
    """Finite values (in their final dtype) and the memory layouts to present them in.

    A dict: ``values`` (C-contiguous), ``fit_layout`` for ``fit``,
    ``predict_layout`` for the other methods and ``code_layout`` for the codes
    passed to ``inverse_transform``; the layouts show in falsifying examples.
    """
    n = draw(st.integers(1, 40), label="n_samples")
    p = draw(st.integers(1, 6), label="n_features")
    dtype = draw(st.sampled_from([np.float64, np.float32]), label="dtype")
    values = draw(
        st.one_of(
            hnp.arrays(
                np.float64, (n, p), elements=st.floats(-10, 10, width=32), fill=st.nothing()
            ),
            st.integers(0, 2**32 - 1).map(
                lambda seed: np.random.RandomState(seed).standard_normal((n, p))
            ),
        ),
        label="base",
    )
    exponents = draw(st.lists(POWERS, min_size=p, max_size=p), label="log10_scales")
    offsets = draw(
        st.lists(
            st.one_of(
                st.just(0.0),
                st.builds(lambda sign, k: sign * 10.0**k, st.sampled_from([1.0, -1.0]), POWERS),
            ),
            min_size=p,
            max_size=p,
        ),
        label="offsets",
    )
    values = values * 10.0 ** np.array(exponents, dtype=float) + np.array(offsets)
    columns = st.integers(0, p - 1)
    constant = draw(st.booleans(), label="some_constant_columns")
    for j in draw(st.lists(columns, max_size=p if constant else 0, unique=True)):
        values[:, j] = offsets[j]
    duplicate = draw(st.booleans(), label="some_duplicated_columns")
    for src, dst in draw(st.lists(st.tuples(columns, columns), max_size=3 if duplicate else 0)):
        values[:, dst] = values[:, src]
    if unit_interval or draw(st.booleans(), label="min_max_to_unit_interval"):  # for loss="bce"
        low, high = values.min(axis=0), values.max(axis=0)
        span = np.where(high > low, high - low, 1.0)
        values = np.clip((values - low) / span, 0.0, 1.0)
    values = values.astype(dtype)
    assert np.isfinite(values).all()
    return {
        "values": values,
        "fit_layout": draw(st.sampled_from(LAYOUTS), label="fit_layout"),
        "predict_layout": draw(st.sampled_from(LAYOUTS), label="predict_layout"),
        "code_layout": draw(st.sampled_from(LAYOUTS), label="code_layout"),
    }


@st.composite
def base_params(draw):
    """Valid parameters; half the draws have no regularizer, and half repair
    invalid combinations.

    Unrepaired, ``loss="bce"`` and ``sparsity="kl"`` mostly meet settings they
    cannot be combined with (and must then raise a parameter error).
    """
    params = dict(
        n_components=draw(st.integers(1, 4)),
        hidden_layer_sizes=draw(st.sampled_from([(), (3,), (4, 2)])),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        latent_activation=draw(st.sampled_from(ACTIVATIONS)),
        output_activation=draw(st.sampled_from(ACTIVATIONS)),
        loss=draw(st.sampled_from(["mse", "mse", "bce"])),
        solver=draw(st.sampled_from(["adam", "adamw", "sgd"])),
        batch_size=draw(st.integers(1, 64)),
        learning_rate=draw(st.sampled_from(["constant", "adaptive"])),
        max_iter=draw(st.integers(1, 3)),
        standardize=draw(st.booleans()),
        sparsity=draw(st.sampled_from([None, "l1", "kl"])),
        sparsity_layers=draw(st.sampled_from(["code", "all"])),
        noise=draw(st.sampled_from([None, "gaussian", "masking", "salt_and_pepper", "block",
                                    "watermark"])),
        noise_level=draw(st.floats(0.0, 1.0)),
        contractive_weight=draw(st.sampled_from([0.0, 1e-3])),
        pretraining=draw(st.sampled_from([None, "greedy"])),
        tied_weights=draw(st.booleans()),
        early_stopping=draw(st.booleans()),
        warm_start=draw(st.booleans()),
        architecture=draw(st.sampled_from(["mlp", "mlp", "conv"])),
        image_shape=draw(st.sampled_from([None, (1, -1, 1), (1, -1)])),  # rows as 1-pixel-high images
        conv_channels=draw(st.sampled_from([(2,), (3, 2)])),
        random_state=0,
        device="cpu",
        verbose=False,
    )
    if draw(st.booleans(), label="plain_network"):
        # no regularizer: the common case, trained and run by skae's direct
        # (autograd-free) code path
        params.update(sparsity=None, noise=None, contractive_weight=0.0, pretraining=None)
    if draw(st.booleans(), label="repair_combinations"):
        if params["loss"] == "bce":
            params["standardize"] = False
            params["output_activation"] = "sigmoid"
        if params["sparsity"] == "kl":
            params["latent_activation"] = "sigmoid"
            if params["sparsity_layers"] == "all":
                params["activation"] = "logistic"
        if params["architecture"] == "conv" or params["noise"] in ("block", "watermark"):
            params["image_shape"] = (1, -1, 1)
        if params["architecture"] == "conv":
            params.update(tied_weights=False, contractive_weight=0.0)
    return params


@st.composite
def detector_params(draw):
    params = draw(base_params())
    params["contamination"] = draw(st.one_of(st.just("auto"), st.floats(0.01, 0.5)))
    params["trim_fraction"] = draw(st.floats(0.0, 0.9))
    params["relative_errors"] = draw(st.booleans())
    params["code_distance"] = draw(st.sampled_from([None, "add", "multiply"]))
    return params


# ------------------------------------------------------------------- checking
class _Raised:
    """Marks a call that raised an acceptable error."""


RAISED = _Raised()


def is_sklearn_style_error(exc, estimator):
    """Whether a ValueError/TypeError names a parameter of ``estimator`` or the input."""
    message = str(exc)
    if re.search(r"\bX\b", message) or "Input" in message:
        return True
    return any(
        f"'{name}'" in message or re.search(rf"\b{re.escape(name)}=", message)
        for name in estimator.get_params(deep=False)
    )


def call(estimator, method, *args):
    """``estimator.method(*args)``, or RAISED for an acceptable error."""
    label = f"{type(estimator).__name__}.{method}"
    try:
        return getattr(estimator, method)(*args)
    except (ValueError, TypeError) as exc:
        if is_sklearn_style_error(exc, estimator):
            return RAISED
        raise AssertionError(
            f"{label} raised {type(exc).__name__} naming neither a parameter nor the "
            f"input: {exc}"
        ) from exc
    except FloatingPointError as exc:
        if method == "fit" and ("training loss" in str(exc) or "non-finite" in str(exc)):
            return RAISED
        raise AssertionError(f"{label} raised FloatingPointError: {exc}") from exc
    except Exception as exc:
        raise AssertionError(f"{label} raised {type(exc).__name__}: {exc}") from exc


def check_float_output(out, shape, dtype, what, allow=None):
    """``out`` is an ndarray of ``shape`` and ``dtype``, finite where ``allow`` is not set."""
    assert isinstance(out, np.ndarray), f"{what} returned {type(out).__name__}"
    assert out.shape == shape, f"{what} has shape {out.shape}, expected {shape}"
    assert out.dtype == dtype, f"{what} has dtype {out.dtype} for {np.dtype(dtype)} input"
    assert not np.isnan(out).any(), f"{what} contains NaN: {out}"
    bad = ~np.isfinite(out)
    if allow is not None:
        bad &= ~allow
    assert not bad.any(), f"{what} contains infinite values: {out}"


def fit(estimator, X):
    """Fit (twice with warm_start); False when fit raised an acceptable error."""
    for _ in range(2 if estimator.warm_start else 1):
        fitted = call(estimator, "fit", X)
        if fitted is RAISED:
            return False
        assert fitted is estimator
    return True


# ------------------------------------------------------------------ properties
def transformer_property(params, data):
    X = with_layout(data["values"], data["fit_layout"])
    X_test = with_layout(data["values"], data["predict_layout"])
    n, p = X_test.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae = AutoencoderTransformer(**params)
        if not fit(ae, X):
            return
        k = params["n_components"]
        Z = call(ae, "transform", X_test)
        if Z is not RAISED:
            check_float_output(Z, (n, k), X.dtype, "transform")
            codes = with_layout(Z, data["code_layout"])
            X_hat = call(ae, "inverse_transform", codes)
            if X_hat is not RAISED:
                check_float_output(X_hat, (n, p), X.dtype, "inverse_transform")
        scores = call(ae, "score_samples", X_test)
        if scores is not RAISED:
            check_float_output(scores, (n,), X.dtype, "score_samples")


def detector_property(params, data):
    X = with_layout(data["values"], data["fit_layout"])
    X_test = with_layout(data["values"], data["predict_layout"])
    n, p = X_test.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = AutoencoderAnomalyDetector(**params)
        if not fit(det, X):
            return
        scores = call(det, "score_samples", X_test)
        overflow = np.zeros(n, dtype=bool)
        if scores is not RAISED:
            overflow = np.isneginf(scores) if isinstance(scores, np.ndarray) else overflow
            check_float_output(scores, (n,), X.dtype, "score_samples", allow=overflow)
        decision = call(det, "decision_function", X_test)
        if decision is not RAISED:
            allow = np.isneginf(decision) & overflow if isinstance(decision, np.ndarray) else None
            check_float_output(decision, (n,), X.dtype, "decision_function", allow=allow)
        labels = call(det, "predict", X_test)
        if labels is not RAISED:
            assert isinstance(labels, np.ndarray) and labels.shape == (n,), labels
            assert set(np.unique(labels).tolist()) <= {-1, 1}, labels
        errors = call(det, "feature_errors", X_test)
        if errors is not RAISED:
            allow = None
            if isinstance(errors, np.ndarray) and errors.shape == (n, p):
                allow = np.isposinf(errors) & overflow[:, None]
            check_float_output(errors, (n, p), X.dtype, "feature_errors", allow=allow)


@st.composite
def cases(draw, params):
    """``(params, data)``; data in [0, 1] for half the draws with ``loss="bce"``."""
    params = draw(params)
    unit_interval = params["loss"] == "bce" and draw(st.booleans(), label="bce_data_in_0_1")
    return params, draw(datasets(unit_interval=unit_interval))


def _transformer(case):
    transformer_property(*case)


def _detector(case):
    detector_property(*case)


# Explicit examples, always run first: bugs found by these properties (see
# the messages) that random generation only reaches now and then.
SIMPLE = dict(
    n_components=1,
    hidden_layer_sizes=(),
    activation="identity",
    latent_activation="identity",
    output_activation="identity",
    loss="mse",
    solver="adam",
    batch_size=1,
    learning_rate="constant",
    max_iter=1,
    standardize=False,
    sparsity=None,
    sparsity_layers="code",
    noise=None,
    noise_level=0.0,
    contractive_weight=0.0,
    pretraining=None,
    tied_weights=False,
    early_stopping=False,
    warm_start=False,
    random_state=0,
    device="cpu",
    verbose=False,
)
SIMPLE_DETECTOR = dict(SIMPLE, contamination="auto", trim_fraction=0.0)


def _data(values, dtype, fit_layout="C", predict_layout="C", code_layout="C"):
    return {
        "values": np.array(values, dtype=dtype),
        "fit_layout": fit_layout,
        "predict_layout": predict_layout,
        "code_layout": code_layout,
    }


TRANSFORMER_EXAMPLES = [
    # negative strides reached torch.as_tensor: ValueError naming neither X nor a parameter
    (SIMPLE, _data([[0.0, 0.0]], np.float64, fit_layout="reversed_columns")),
    (SIMPLE, _data([[0.0], [0.0]], np.float64, predict_layout="reversed_rows")),
    (SIMPLE, _data([[0.0], [0.0]], np.float64, code_layout="reversed_rows")),
    # strided views whose gaps hold NaN
    (SIMPLE, _data([[1.0, 2.0], [3.0, 5.0]], np.float32, "every_other_row", "every_other_column")),
    # standardize=True, a standard deviation beyond float32's range: infinite
    # scale, so -inf reconstructions and NaN scores
    (dict(SIMPLE, standardize=True), _data([[0.0], [1e20]], np.float32)),
]
DETECTOR_EXAMPLES = [
    (SIMPLE_DETECTOR, _data([[0.0], [0.0]], np.float64, fit_layout="reversed_rows")),
    (SIMPLE_DETECTOR, _data([[0.0], [0.0]], np.float64, predict_layout="reversed_rows")),
    (SIMPLE_DETECTOR, _data([[1.0, 2.0], [3.0, 5.0]], np.float32, "every_other_column", "F")),
    # standardize=True, standard deviation beyond float32's range: NaN scores
    (dict(SIMPLE_DETECTOR, standardize=True), _data([[0.0], [1e20]], np.float64)),
    # trimmed training leaves out a row whose float32 error overflows: its
    # score is -inf, and offset_ (a percentile over -inf) became NaN, so
    # decision_function was NaN everywhere and predict flagged nothing
    (
        dict(SIMPLE_DETECTOR, batch_size=2, trim_fraction=0.5, tied_weights=True),
        _data([[0.0], [1e20]], np.float32),
    ),
    (
        dict(
            SIMPLE_DETECTOR, batch_size=2, trim_fraction=0.5, tied_weights=True, contamination=0.1
        ),
        _data([[0.0], [1e20]], np.float32),
    ),
]


def with_examples(test, examples):
    for case in reversed(examples):
        test = example(case=case)(test)
    return test


test_transformer_property = FAST(
    with_examples(given(case=cases(base_params()))(_transformer), TRANSFORMER_EXAMPLES)
)
test_detector_property = FAST(
    with_examples(given(case=cases(detector_params()))(_detector), DETECTOR_EXAMPLES)
)
test_transformer_property_slow = pytest.mark.slow(
    SLOW(with_examples(given(case=cases(base_params()))(_transformer), TRANSFORMER_EXAMPLES))
)
test_detector_property_slow = pytest.mark.slow(
    SLOW(with_examples(given(case=cases(detector_params()))(_detector), DETECTOR_EXAMPLES))
)
