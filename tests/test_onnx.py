"""ONNX export: onnxruntime's results equal the estimators', for every network kind and method."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import (
    AutoencoderAnomalyDetector,
    AutoencoderEnsembleDetector,
    AutoencoderRegressor,
    AutoencoderTransformer,
)

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
skae_onnx = pytest.importorskip("skae.onnx")
to_onnx = skae_onnx.to_onnx

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skae.PosteriorCollapseWarning"),
    pytest.mark.usefixtures("one_thread"),
]

#: Largest absolute difference allowed between onnxruntime and skae, float32 input.
ATOL = 1e-5
#: ... and relative difference: float32 rounding of scores of magnitude up to ~400
#: (the code distance's, weighted by the default code_weight=4), computed in
#: another order: the graph subtracts the code mean in float32, whose rounding
#: the weight multiplies.
RTOL = 5e-6
FAST = dict(max_iter=3, random_state=0)
MLP = dict(n_components=2, hidden_layer_sizes=(5,), **FAST)
IMAGE = (5, 4, 2)  # odd height, channels last with two channels
CONV = dict(architecture="conv", image_shape=IMAGE, conv_channels=(3, 4), kernel_size=3, **FAST)


def _rows():
    """Rows of O(1) values on a curve, a few of them far off it (outliers)."""
    rng = np.random.RandomState(0)
    t = rng.uniform(-1, 1, size=(60, 2))
    X = np.column_stack([t[:, 0], t[:, 1], t[:, 0] ** 2, np.sin(3 * t[:, 1]),
                         t[:, 0] * t[:, 1], np.cos(2 * t[:, 0])])
    X[:4] += 2.0
    return X.astype(np.float32)


def _unit_rows():
    return np.random.RandomState(1).rand(60, 6).astype(np.float32)


def _images():
    return np.random.RandomState(2).rand(30, int(np.prod(IMAGE))).astype(np.float32)


def _targets(X, n):
    return np.tanh(X[:, :n] + X[:, -n:]).astype(np.float32)


ACTIVATIONS = ["identity", "relu", "logistic", "sigmoid", "tanh", "leaky_relu", "elu", "gelu"]

#: name -> (estimator, data, targets or None)
CASES = {
    **{f"mlp-{a}": (AutoencoderTransformer(activation=a, latent_activation=a, **MLP), _rows, None)
       for a in ACTIVATIONS},
    "mlp-tied": (AutoencoderTransformer(tied_weights=True, activation="tanh", **MLP), _rows, None),
    "mlp-greedy": (AutoencoderTransformer(pretraining="greedy", pretraining_max_iter=2,
                                          hidden_layer_sizes=(5, 3), n_components=2, **FAST),
                   _rows, None),
    "mlp-regularized": (AutoencoderTransformer(sparsity="l1", activation="logistic",
                                               noise="gaussian", contractive_weight=0.1, **MLP),
                        _rows, None),
    "mlp-unstandardized": (AutoencoderTransformer(standardize=False, **MLP), _rows, None),
    "mlp-bce": (AutoencoderTransformer(loss="bce", standardize=False, output_activation="sigmoid",
                                       **MLP), _unit_rows, None),
    "vae-gaussian": (AutoencoderTransformer(variational=True, **MLP), _rows, None),
    "vae-bernoulli": (AutoencoderTransformer(variational=True, loss="bce", standardize=False,
                                             output_activation="sigmoid", **MLP), _unit_rows, None),
    "conv": (AutoencoderTransformer(n_components=3, hidden_layer_sizes=(5,), **CONV),
             _images, None),
    "conv-spatial": (AutoencoderTransformer(n_components=None, hidden_layer_sizes=(), **CONV),
                     _images, None),
    "conv-vae": (AutoencoderTransformer(n_components=3, variational=True, loss="bce",
                                        standardize=False, output_activation="sigmoid", **CONV),
                 _images, None),
    "detector-mlp": (AutoencoderAnomalyDetector(**MLP), _rows, None),
    "detector-bce": (AutoencoderAnomalyDetector(loss="bce", standardize=False,
                                                output_activation="sigmoid", **MLP),
                     _unit_rows, None),
    "detector-vae": (AutoencoderAnomalyDetector(variational=True, **MLP), _rows, None),
    "detector-relative": (AutoencoderAnomalyDetector(relative_errors=True, **MLP), _rows, None),
    "ensemble": (AutoencoderEnsembleDetector(AutoencoderAnomalyDetector(relative_errors=True,
                                                                        **MLP),
                                             n_estimators=3, random_state=0), _rows, None),
    "ensemble-vae": (AutoencoderEnsembleDetector(AutoencoderAnomalyDetector(variational=True,
                                                                            **MLP),
                                                 n_estimators=2, contamination="auto",
                                                 random_state=0), _rows, None),
    "detector-relative-bce": (AutoencoderAnomalyDetector(
        relative_errors=True, loss="bce", standardize=False, output_activation="sigmoid", **MLP),
        _unit_rows, None),
    "detector-code-add": (AutoencoderAnomalyDetector(code_distance="add", code_weight=2.5, **MLP),
                          _rows, None),
    "detector-code-multiply": (AutoencoderAnomalyDetector(code_distance="multiply",
                                                          relative_errors=True, **MLP),
                               _rows, None),
    "detector-neighbors": (AutoencoderAnomalyDetector(n_neighbors=2, code_weight=2.5, **MLP),
                           _rows, None),
    "detector-neighbors-relative": (AutoencoderAnomalyDetector(
        n_neighbors=1, relative_errors=True, trim_fraction=0.0, **MLP), _rows, None),
    "detector-conv-code": (AutoencoderAnomalyDetector(n_components=3, hidden_layer_sizes=(),
                                                      code_distance="add", **CONV),
                           _images, None),
    "ensemble-code": (AutoencoderEnsembleDetector(AutoencoderAnomalyDetector(
        code_distance="multiply", **MLP), n_estimators=2, random_state=0), _rows, None),
    "detector-auto-code": (AutoencoderAnomalyDetector(**{**MLP, "n_components": "auto"}),
                           _rows, None),
    "detector-conv": (AutoencoderAnomalyDetector(n_components=3, hidden_layer_sizes=(), **CONV),
                      _images, None),
    "detector-conv-vae": (AutoencoderAnomalyDetector(n_components=2, variational=True, **CONV),
                          _images, None),
    "regressor-mlp-1": (AutoencoderRegressor(**MLP), _rows, 1),
    "regressor-mlp-3": (AutoencoderRegressor(**MLP), _rows, 3),
    "regressor-mlp-skip": (AutoencoderRegressor(skip_connections=True, **MLP), _rows, 3),
    "regressor-conv": (AutoencoderRegressor(n_components=3, **CONV), _images, 40),
    "regressor-conv-skip": (AutoencoderRegressor(n_components=3, skip_connections=True, **CONV),
                            _images, 20),
    "regressor-conv-spatial-skip": (
        AutoencoderRegressor(n_components=None, hidden_layer_sizes=(), skip_connections=True,
                             **CONV), _images, 40),
}


class Fitted:
    """Fitted estimators of the cases, each fitted once per module."""

    def __init__(self):
        self._cache = {}

    def __call__(self, name):
        if name not in self._cache:
            template, data, n_targets = CASES[name]
            X = data()
            est = clone(template)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence and identity-map warnings
                est.fit(X) if n_targets is None else est.fit(X, _targets(X, n_targets))
            self._cache[name] = est, X
        return self._cache[name]


@pytest.fixture(scope="module")
def fitted():
    return Fitted()


def _run(model, inputs, names=None):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()] if names is None else names
    return dict(zip(names, session.run(names, {"X": inputs})))


def _assert_same(got, expected, what):
    assert got.shape == expected.shape, what
    assert got.dtype == expected.dtype, what
    if np.issubdtype(expected.dtype, np.integer):
        np.testing.assert_array_equal(got, expected, err_msg=what)
    else:
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=what)


def _assert_decisions_same(got, expected, offset, what):
    """``decision_function = score_samples - offset_``, compared as the scores it shifts.

    Both sides round scores in float32 before the shift, so near 0 their
    difference is a few float32 steps of the score's magnitude, not of the
    result's.
    """
    assert got.shape == expected.shape and got.dtype == expected.dtype, what
    _assert_same(got.astype(np.float64) + offset, expected.astype(np.float64) + offset, what)


def _methods(est):
    return [m for m in skae_onnx.METHODS[type(est)] if m != "inverse_transform"]


# -------------------------------------------------------------- every kind
@pytest.mark.parametrize("case", sorted(CASES))
def test_onnxruntime_equals_the_estimator(fitted, case):
    est, X = fitted(case)
    methods = _methods(est)
    out = _run(to_onnx(est, methods=methods), X)
    assert sorted(out) == sorted(methods)
    for method in methods:
        if method == "decision_function":
            _assert_decisions_same(out[method], est.decision_function(X), est.offset_,
                                   f"{case}.{method}")
        else:
            _assert_same(out[method], getattr(est, method)(X), f"{case}.{method}")


@pytest.mark.parametrize("case", [c for c in sorted(CASES) if CASES[c][0].__class__
                                  is AutoencoderTransformer])
def test_inverse_transform_is_a_model_of_codes(fitted, case):
    est, X = fitted(case)
    Z = est.transform(X)
    model = to_onnx(est, methods="inverse_transform")
    (dims,) = [[d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input]
    assert dims[1] == Z.shape[1]
    out = _run(model, Z)
    _assert_same(out["inverse_transform"], est.inverse_transform(Z), case)


def test_detector_labels_both_kinds_of_samples(fitted):
    # the label test above is only meaningful when both labels occur
    est, X = fitted("detector-mlp")
    labels = _run(to_onnx(est, methods="predict"), X)["predict"]
    assert set(labels) == {-1, 1}


def test_model_signature_and_default_methods(fitted):
    est, X = fitted("detector-vae")
    model = to_onnx(est)
    onnx.checker.check_model(model, full_check=True)
    (x,) = model.graph.input
    assert x.name == "X" and x.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in x.type.tensor_type.shape.dim] == [0, X.shape[1]]
    outputs = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    assert outputs == {"predict": onnx.TensorProto.INT64,
                       "decision_function": onnx.TensorProto.FLOAT,
                       "score_samples": onnx.TensorProto.FLOAT}
    assert model.opset_import[0].version == skae_onnx.DEFAULT_OPSET
    assert [o.name for o in to_onnx(fitted("mlp-relu")[0]).graph.output] == ["transform"]
    assert [o.name for o in to_onnx(fitted("regressor-mlp-3")[0]).graph.output] == ["predict"]


@pytest.mark.parametrize("opset", [13, 17, onnx.defs.onnx_opset_version()])
@pytest.mark.parametrize("case", ["detector-vae", "detector-conv", "mlp-bce"])
def test_every_supported_opset(fitted, case, opset):
    # reductions take their axes as an attribute before opset 18 and as an input after
    est, X = fitted(case)
    methods = _methods(est)
    model = to_onnx(est, methods=methods, target_opset=opset)
    assert model.opset_import[0].version == opset
    try:
        out = _run(model, X)
    except ort.capi.onnxruntime_pybind11_state.Fail as error:  # onnx newer than onnxruntime
        if "Unsupported model IR version" not in str(error):
            raise
        pytest.skip(f"onnxruntime {ort.__version__} cannot load opset {opset}: {error}")
    for method in methods:
        _assert_same(out[method], getattr(est, method)(X), f"{case}.{method}")


def test_variational_scores_use_the_draws_fixed_at_fit(fitted):
    # the graph holds the fit's importance samples: another seed gives other scores
    est, X = fitted("vae-gaussian")
    other = clone(est).set_params(random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other.fit(X)
    other.module_.load_state_dict(est.module_.state_dict())
    got = _run(to_onnx(est, methods="score_samples"), X)["score_samples"]
    assert np.abs(got - other.score_samples(X)).max() > 10 * ATOL
    _assert_same(got, est.score_samples(X), "score_samples")


# ---------------------------------------------------------------- skl2onnx
def test_pipeline_with_transformer_and_classifier():
    X = _rows()
    y = (X[:, 1] > 0).astype(int)
    pipe = make_pipeline(StandardScaler(), AutoencoderTransformer(**MLP),
                         LogisticRegression()).fit(X, y)
    model = skl2onnx.to_onnx(pipe, X[:1].astype(np.float32), options={"zipmap": False})
    out = _run(model, X)
    np.testing.assert_array_equal(out["label"], pipe.predict(X))
    np.testing.assert_allclose(out["probabilities"], pipe.predict_proba(X), rtol=0, atol=ATOL)


@pytest.mark.parametrize("detector", [
    AutoencoderAnomalyDetector(**MLP),
    AutoencoderEnsembleDetector(AutoencoderAnomalyDetector(**MLP), n_estimators=2, random_state=0),
], ids=["detector", "ensemble"])
def test_pipeline_with_detector_gives_labels_and_decision_scores(detector):
    X = _rows()
    pipe = make_pipeline(StandardScaler(), detector).fit(X)
    model = skl2onnx.to_onnx(pipe, X[:1].astype(np.float32))
    out = _run(model, X)
    assert sorted(out) == ["label", "scores"]
    assert out["label"].dtype == np.int64 and out["scores"].shape == (len(X), 1)
    np.testing.assert_array_equal(out["label"], pipe.predict(X))
    assert set(out["label"]) == {-1, 1}
    _assert_decisions_same(out["scores"][:, 0], pipe.decision_function(X), pipe[-1].offset_,
                           "pipeline.decision_function")


def test_pipeline_with_regressor_and_convolutional_transformer(fitted):
    est, X = fitted("regressor-conv-skip")
    model = skl2onnx.to_onnx(make_pipeline(est), X[:1])
    out = _run(model, X)
    np.testing.assert_allclose(out["variable"], est.predict(X), rtol=0, atol=ATOL)
    est, X = fitted("conv-spatial")
    pipe = make_pipeline(est, PCA(2)).fit(X)
    out = _run(skl2onnx.to_onnx(pipe, X[:1]), X)
    np.testing.assert_allclose(out["variable"], pipe.transform(X), rtol=0, atol=ATOL)


def test_pipeline_needs_float32_input(fitted):
    est, X = fitted("mlp-relu")
    with pytest.raises(TypeError, match="AutoencoderTransformer takes float32 input"):
        skl2onnx.to_onnx(make_pipeline(est), X[:1].astype(np.float64))


def test_registering_again_is_harmless(fitted):
    skae_onnx.register_skl2onnx()
    est, X = fitted("mlp-relu")
    out = _run(skl2onnx.to_onnx(make_pipeline(est), X[:1]), X)
    np.testing.assert_allclose(out["variable"], est.transform(X), rtol=0, atol=ATOL)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("cls", [AutoencoderTransformer, AutoencoderAnomalyDetector,
                                 AutoencoderRegressor])
def test_unfitted_estimator_raises(cls):
    with pytest.raises(NotFittedError):
        to_onnx(cls())


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(methods=["sample"]), ValueError, "sample draws random codes"),
    (dict(methods=["predict"]), ValueError, "methods.*among.*'transform'.*Got 'predict'"),
    (dict(methods=[]), ValueError, "at least one method"),
    (dict(methods=3), TypeError, "'methods' parameter"),
    (dict(methods=["transform", "transform"]), ValueError, "twice"),
    (dict(methods=["transform", "inverse_transform"]), ValueError, "exported alone"),
    (dict(target_opset=12), ValueError, r"'target_opset' parameter.*\[13, "),
    (dict(target_opset=True), ValueError, "'target_opset' parameter"),
    (dict(target_opset=10_000), ValueError, "'target_opset' parameter"),
])
def test_unsupported_settings_raise(fitted, kwargs, error, match):
    est, _ = fitted("vae-gaussian")
    with pytest.raises(error, match=match):
        to_onnx(est, **kwargs)


def test_other_estimators_are_rejected():
    with pytest.raises(TypeError, match="Got PCA instead"):
        to_onnx(PCA(2).fit(_rows()))


# ----------------------------------------------------------- packaging, docs
def test_no_other_module_of_skae_imports_onnx():
    # import skae stays free of onnx: only skae/onnx.py names it (the slow test below checks
    # the running interpreter)
    import ast
    from pathlib import Path

    package = Path(skae_onnx.__file__).parent
    for path in package.rglob("*.py"):
        if path.name == "onnx.py" and path.parent == package:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):  # the module, and each name as a module
                names = [node.module or ""] + [f"{node.module or ''}.{a.name}" for a in node.names]
            else:
                continue
            # relative or absolute: skae.onnx, onnx, skl2onnx and onnxruntime are all out
            assert not any(n.lstrip(".").split(".")[0] in ("onnx", "skl2onnx", "onnxruntime")
                           for n in names), (path, names)


@pytest.mark.slow
def test_import_skae_does_not_import_onnx():
    code = ("import sys, skae; "
            "print(any(m.split('.')[0] in ('onnx', 'skl2onnx') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", ["skae.onnx.to_onnx", "skae.onnx.register_skl2onnx"])
def test_docstring(name):
    validate = pytest.importorskip("numpydoc.validate").validate
    checked = {"GL01", "GL02", "GL03", "GL07", "PR01", "PR02", "PR03", "PR06", "PR10",
               "RT01", "SS01", "SS03", "SS05"}
    errors = [(c, m) for c, m in validate(name)["errors"] if c in checked]
    assert not errors, errors


@pytest.mark.parametrize("k", [1, 3])
def test_neighbor_scores_with_weighted_reference_rows(k):
    # repeated rows are merged into weighted ones, and fractional weights:
    # the graph finds where the cumulated weight reaches n_neighbors
    X = _rows()
    rng = np.random.RandomState(2)
    for weights in (rng.randint(1, 4, size=len(X)).astype(float), rng.uniform(0.3, 2, len(X))):
        est = AutoencoderAnomalyDetector(n_neighbors=k, trim_fraction=0.0, **MLP)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, sample_weight=weights)
        assert est.reference_weights_ is not None
        new = np.vstack([X[:10], X[:10] + 0.05, 3 * X[:5]]).astype(np.float32)
        out = _run(to_onnx(est, methods=["score_samples", "predict"]), new)
        _assert_same(out["score_samples"], est.score_samples(new), f"k={k}")
        np.testing.assert_array_equal(out["predict"], est.predict(new))
