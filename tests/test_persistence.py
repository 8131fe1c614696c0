"""skae.save / skae.load (safetensors + JSON), torch-free pickled state, skops."""

import copy
import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import torch
from safetensors.numpy import save as save_arrays
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skops.io.exceptions import UntrustedTypesFoundException

import skae
from sklearn.base import BaseEstimator
from skae import (
    AutoencoderAnomalyDetector,
    AutoencoderEnsembleDetector,
    AutoencoderRegressor,
    AutoencoderTransformer,
    UnsafeOrCorruptFileError,
)
from skae._serialization import FORMAT_VERSION, _read, _write, export_state
from skae._training import TrainState

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skae.PosteriorCollapseWarning"),
    pytest.mark.usefixtures("one_thread"),  # tiny tensors: no thread spinning
]

_RNG = np.random.RandomState(0)
X = _RNG.rand(24, 12).astype(np.float32)
Y = _RNG.rand(24, 5)
IMAGES = _RNG.rand(12, 6 * 5 * 2).astype(np.float32)
FAST = dict(max_iter=3, batch_size=16, random_state=0)
VAE = dict(variational=True, n_importance_samples=2)
CONV = dict(architecture="conv", image_shape=(6, 5, 2), conv_channels=(3, 4))
FRAME = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])

#: Every network kind: (estimator, X, y).
KINDS = {
    "mlp": lambda: (AutoencoderTransformer(3, hidden_layer_sizes=(6,), **FAST), X, None),
    "variational": lambda: (AutoencoderTransformer(3, **VAE, **FAST), X, None),
    "conv": lambda: (AutoencoderTransformer(3, **CONV, **FAST), IMAGES, None),
    "conv_variational": lambda: (AutoencoderTransformer(3, **VAE, **CONV, **FAST), IMAGES, None),
    "conv_spatial_code": lambda: (AutoencoderTransformer(None, hidden_layer_sizes=(), **CONV,
                                                         **FAST), IMAGES, None),
    "tied": lambda: (AutoencoderTransformer(3, hidden_layer_sizes=(6,), tied_weights=True,
                                            solver="sgd", **FAST), X, None),
    "greedy": lambda: (AutoencoderTransformer(3, hidden_layer_sizes=(6,), pretraining="greedy",
                                              pretraining_max_iter=2, **FAST), X, None),
    "sparse_contractive_denoising": lambda: (AutoencoderTransformer(
        3, sparsity="kl", latent_activation="sigmoid", sparsity_weight=0.1,
        contractive_weight=0.1, noise="masking", noise_level=0.2, early_stopping=True,
        standardize=True, **FAST), X, None),
    "detector": lambda: (AutoencoderAnomalyDetector(3, contamination=0.1, **FAST), X, None),
    "detector_auto_code": lambda: (AutoencoderAnomalyDetector("auto", **FAST), X[:, :5], None),
    "detector_relative_errors": lambda: (AutoencoderAnomalyDetector(3, relative_errors=True,
                                                                    **FAST), X, None),
    "detector_code_distance": lambda: (AutoencoderAnomalyDetector(3, code_distance="add",
                                                                  **FAST), X, None),
    "detector_neighbors": lambda: (AutoencoderAnomalyDetector(3, n_neighbors=2, **FAST), X,
                                   None),
    "ensemble": lambda: (AutoencoderEnsembleDetector(AutoencoderAnomalyDetector(
        3, relative_errors=True, max_iter=3, batch_size=16), n_estimators=2, random_state=0),
        X, None),
    "detector_variational": lambda: (AutoencoderAnomalyDetector(3, **VAE, **FAST), X, None),
    "regressor": lambda: (AutoencoderRegressor(3, standardize=True, **FAST), X, Y),
    "regressor_conv_skip": lambda: (AutoencoderRegressor(
        None, hidden_layer_sizes=(), skip_connections=True, **CONV, **FAST), IMAGES, IMAGES),
    "dataframe": lambda: (AutoencoderTransformer(3, random_state=np.random.RandomState(3),
                                                 max_iter=3), FRAME, None),
}

_FITTED = {}


def fitted(kind):
    """A fitted estimator of ``kind`` (fitted once per session) and its data."""
    if kind not in _FITTED:
        est, data, y = KINDS[kind]()
        est.fit(data) if y is None else est.fit(data, y)
        _FITTED[kind] = est, data, y
    est, data, y = _FITTED[kind]
    return copy.deepcopy(est), data, y


def inference(est, data, y=None):
    """The output of every inference method of ``est`` on ``data`` (and targets ``y``)."""
    out = {}
    for name in ("transform", "reconstruct", "predict", "score_samples", "decision_function",
                 "feature_errors"):
        if hasattr(est, name):
            out[name] = getattr(est, name)(data)
    if hasattr(est, "score"):
        out["score"] = est.score(data) if y is None else est.score(data, y)
    if hasattr(est, "inverse_transform"):
        out["inverse_transform"] = est.inverse_transform(out["transform"])
        out["compress"] = est.compress(data)
        out["decompress"] = est.decompress(out["compress"])
    if hasattr(est, "sample"):
        out["sample"] = est.sample(3, random_state=0)
    return out


def assert_same(a, b, where="value"):
    """Recursive exact equality of fitted attributes of any supported kind."""
    if isinstance(a, torch.nn.Module):
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb), where
        for k in sa:
            assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k].cpu(), sb[k].cpu()), k
        assert a.training == b.training
        assert [p.requires_grad for p in a.parameters()] == [p.requires_grad for p in b.parameters()]
    elif torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a.cpu(), b.cpu()), where
    elif isinstance(a, np.random.RandomState):
        assert_same(a.get_state(), b.get_state(), where)
    elif isinstance(a, BaseEstimator):  # an ensemble's members and template
        assert type(a) is type(b), where
        assert_same(dict(sorted(vars(a).items())), dict(sorted(vars(b).items())), where)
    elif isinstance(a, TrainState):
        assert_same(vars(a), vars(b), where)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert type(b) is dict and list(a) == list(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b), where
        assert a == b or (a != a and b != b), where


def resave(path, edit, arrays_edit=None):
    """Rewrite a saved file after ``edit(header)`` (and ``arrays_edit(arrays)``)."""
    header, arrays = _read(path.read_bytes())
    arrays = dict(arrays)
    edit(header)
    if arrays_edit is not None:
        arrays_edit(arrays)
    _write(path, header, arrays)


# -------------------------------------------------------------- round trips
@pytest.mark.parametrize("kind", list(KINDS))
def test_round_trip_is_exact_and_partial_fit_continues(kind, tmp_path):
    fitted(kind)
    # the fitted original itself: its copies would go through the code under test
    est, data, y = _FITTED.pop(kind)
    path = tmp_path / "model.safetensors"
    skae.save(est, path, include_optimizer=True)
    loaded = skae.load(path)
    assert type(loaded) is type(est)
    # every fitted attribute is stored or rebuilt, and equal
    assert sorted(vars(loaded)) == sorted(vars(est))
    for name, value in vars(est).items():
        assert_same(value, vars(loaded)[name], name)
    want, got = inference(est, data, y), inference(loaded, data, y)
    assert list(want) == list(got)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    # the optimizer state came along: partial_fit continues exactly
    args = (data,) if y is None else (data, y)
    est.partial_fit(*args)
    loaded.partial_fit(*args)
    for a, b in zip(getattr(est, "estimators_", [est]), getattr(loaded, "estimators_", [loaded])):
        assert_same(a.module_, b.module_, "module_ after partial_fit")
        assert a.loss_curve_ == b.loss_curve_


def test_without_the_optimizer_partial_fit_starts_a_fresh_one(tmp_path):
    est, data, _ = fitted("mlp")
    skae.save(est, tmp_path / "m.safetensors")
    loaded = skae.load(tmp_path / "m.safetensors")
    assert loaded._optimizer_state is None
    header, arrays = _read((tmp_path / "m.safetensors").read_bytes())
    assert header["optimizer"] is None and not any(k.startswith("optimizer") for k in arrays)
    np.testing.assert_array_equal(loaded.transform(data), est.transform(data))
    fresh = copy.deepcopy(est)
    fresh._optimizer_state = None
    loaded.partial_fit(data)
    fresh.partial_fit(data)
    assert_same(fresh.module_, loaded.module_)


def test_file_holds_json_metadata_and_safetensors_only(tmp_path):
    est, data, _ = fitted("dataframe")
    skae.save(est, tmp_path / "m.safetensors")
    header, arrays = _read((tmp_path / "m.safetensors").read_bytes())
    assert header["class"] == "skae.AutoencoderTransformer"
    assert header["format_version"] == FORMAT_VERSION
    assert header["versions"]["skae"] == skae.__version__
    assert header["versions"]["torch"] == torch.__version__
    assert header["params"]["max_iter"] == 3
    assert header["attributes"]["feature_names_in_"]["items"] == list(FRAME.columns)
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    assert "module/encoder.0.weight" not in arrays or arrays["module/encoder.0.weight"].ndim == 2
    # the estimator fitted on a DataFrame still checks the names after loading
    loaded = skae.load(tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="feature names"):
        loaded.transform(FRAME.rename(columns={"f0": "other"}))


def test_saving_an_unfitted_estimator_raises(tmp_path):
    with pytest.raises(NotFittedError, match="not fitted"):
        skae.save(AutoencoderTransformer(), tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
    with pytest.raises(TypeError, match="not one of skae's estimators"):
        skae.save(StandardScaler().fit(X), tmp_path / "m.safetensors")


def test_an_attribute_of_unknown_type_fails_loudly(tmp_path):
    est, _, _ = fitted("mlp")
    est.extra_ = object()
    with pytest.raises(TypeError, match="'attributes/extra_'.*no safe representation"):
        skae.save(est, tmp_path / "m.safetensors")
    with pytest.raises(TypeError, match="no safe representation"):
        pickle.dumps(est)


def test_every_fitted_attribute_type_is_covered():
    # walk __dict__ after fit for every kind: the writer stores each entry
    for kind in KINDS:
        est, _, _ = fitted(kind)
        header, _ = export_state(est)
        stored = set(header["params"]) | set(header["attributes"]) | {"module_", "_spec",
                                                                       "_optimizer_state"}
        assert set(vars(est)) <= stored, kind


def test_a_file_written_on_a_gpu_loads_on_the_cpu(tmp_path):
    est, data, _ = fitted("detector")
    path = tmp_path / "m.safetensors"
    skae.save(est, path)

    def on_cuda(header):
        header["params"]["device"] = "cuda"
        header["network"]["device"] = "cuda:0"
        header["spec"]["device"] = {"__skae__": "device", "value": "cuda:0"}

    resave(path, on_cuda)
    loaded = skae.load(path)
    assert loaded.device == "cuda"  # the parameter is kept as it was
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(loaded.module_.parameters()).device.type == expected
    assert loaded._spec.device.type == expected
    cpu = skae.load(path, device="cpu")
    assert next(cpu.module_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(cpu.decision_function(data), est.decision_function(data))
    if not torch.cuda.is_available():
        np.testing.assert_array_equal(loaded.predict(data), est.predict(data))
        with pytest.raises(ValueError, match="CUDA is not available"):
            skae.load(path, device="cuda")


# ----------------------------------------------------------------- errors
@pytest.fixture
def saved(tmp_path):
    est, _, _ = fitted("mlp")
    path = tmp_path / "m.safetensors"
    skae.save(est, path, include_optimizer=True)
    return path


def test_not_a_skae_file(tmp_path, saved):
    path = tmp_path / "x.safetensors"
    for data in (b"", b"hello", b"\x00" * 100, json.dumps({"a": 1}).encode()):
        path.write_bytes(data)
        with pytest.raises(UnsafeOrCorruptFileError, match="not a skae file"):
            skae.load(path)
    path.write_bytes(save_arrays({"w": np.zeros(3)}))  # safetensors, but not skae's
    with pytest.raises(UnsafeOrCorruptFileError, match="without skae's metadata"):
        skae.load(path)
    assert issubclass(UnsafeOrCorruptFileError, ValueError)


def test_truncated_and_corrupted_bytes(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[:-7])
    with pytest.raises(UnsafeOrCorruptFileError, match="corrupted or truncated"):
        skae.load(saved)
    saved.write_bytes(data[:200])
    with pytest.raises(UnsafeOrCorruptFileError, match="not a skae file"):
        skae.load(saved)
    flipped = bytearray(data)
    flipped[-5] ^= 0x40  # a bit of a tensor
    saved.write_bytes(bytes(flipped))
    with pytest.raises(UnsafeOrCorruptFileError, match="checksum"):
        skae.load(saved)
    flipped = bytearray(data)
    flipped[9] = ord("!")  # the header's JSON
    saved.write_bytes(bytes(flipped))
    with pytest.raises(UnsafeOrCorruptFileError, match="not valid JSON"):
        skae.load(saved)


@pytest.mark.parametrize("name", ["os.system", "sklearn.svm.SVC", "skae._base._BaseAutoencoder",
                                  "builtins.eval", 3])
def test_a_class_outside_the_allow_list_is_refused(saved, name):
    resave(saved, lambda h: h.update({"class": name}))
    with pytest.raises(UnsafeOrCorruptFileError, match="not one of skae's estimators|'class'"):
        skae.load(saved)


def test_a_newer_format_asks_to_upgrade(saved):
    resave(saved, lambda h: h.update({"format_version": FORMAT_VERSION + 1}))
    with pytest.raises(UnsafeOrCorruptFileError, match="newer skae.*upgrade"):
        skae.load(saved)


def _retype(name, shape=None, dtype=None):
    def edit(arrays):
        a = arrays[name]
        arrays[name] = np.zeros(shape or a.shape, dtype=dtype or a.dtype)
    return edit


def test_tensor_shape_dtype_missing_and_extra_are_refused(saved):
    data = saved.read_bytes()
    weight = "module/encoder.0.weight"
    cases = [
        (_retype(weight, shape=(5, 12)), r"'encoder.0.weight' has shape \(5, 12\).*needs shape"),
        (_retype(weight, dtype=np.float64), "dtype torch.float64 .*dtype torch.float32"),
        (lambda a: a.pop(weight), "array 'module/encoder.0.weight' of network tensor.*missing"),
        (lambda a: a.update(stray=np.zeros(2)), r"arrays that nothing refers to: \['stray'\]"),
    ]
    for edit, match in cases:
        saved.write_bytes(data)
        resave(saved, lambda h: None, edit)
        with pytest.raises(UnsafeOrCorruptFileError, match=match):
            skae.load(saved)
    saved.write_bytes(data)
    resave(saved, lambda h: h["network"]["tensors"].pop("encoder.0.weight"))
    with pytest.raises(UnsafeOrCorruptFileError, match=r"missing \['encoder.0.weight'\]"):
        skae.load(saved)
    saved.write_bytes(data)
    resave(saved, lambda h: h["network"]["tensors"].update(extra="module/encoder.0.bias"))
    with pytest.raises(UnsafeOrCorruptFileError, match=r"extra \['extra'\]"):
        skae.load(saved)
    saved.write_bytes(data)

    def moments(arrays):  # an optimizer moment of the wrong shape
        name = next(k for k in arrays if k.startswith("optimizer") and arrays[k].ndim == 2)
        arrays[name] = np.zeros((1, 1), dtype=np.float32)

    resave(saved, lambda h: None, moments)
    with pytest.raises(UnsafeOrCorruptFileError, match="optimizer tensor"):
        skae.load(saved)


@pytest.mark.parametrize("edit, match", [
    (lambda h: h["params"].update(max_iter=-2), "'max_iter' parameter"),
    (lambda h: h["params"].update(activation="rm -rf"), "'activation' parameter"),
    (lambda h: h["params"].update(unknown=1), r"unknown \['unknown'\]"),
    (lambda h: h["params"].pop("alpha"), r"missing \['alpha'\]"),
    (lambda h: h["spec"].update(hidden_layer_sizes={"__skae__": "tuple", "items": [7]}),
     r"'encoder.0.weight' has shape \(6, 12\) .*needs shape \(7, 12\)"),
    (lambda h: h["spec"].update(kind="variational"), "spec/kind is 'variational' in the file"),
    (lambda h: h["spec"].update(n_features=0), "n_features must be an int >= 1"),
    (lambda h: h["attributes"].update(n_features_in_=5), "n_features_in_=5"),
    (lambda h: h["attributes"].update(x_={"__skae__": "pickle", "data": "gASV"}), "unknown kind"),
])
def test_invalid_contents_are_refused_naming_them(saved, edit, match):
    resave(saved, edit)
    with pytest.raises(UnsafeOrCorruptFileError, match=match):
        skae.load(saved)


class _Bomb:
    """Unpickling this creates the directory ``path``: code a malicious pickle would run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_a_pickle_is_never_unpickled(tmp_path):
    marker = tmp_path / "marker"
    bomb = pickle.dumps(_Bomb(marker))
    path = tmp_path / "m.safetensors"
    path.write_bytes(bomb)  # a pickle under the safetensors name
    with pytest.raises(UnsafeOrCorruptFileError):
        skae.load(path)
    # a safetensors file whose metadata embeds the pickle, as the header and as a value
    path.write_bytes(save_arrays({}, metadata={"format": "skae", "skae": bomb.decode("latin-1")}))
    with pytest.raises(UnsafeOrCorruptFileError):
        skae.load(path)
    est, _, _ = fitted("mlp")
    skae.save(est, path)
    resave(path, lambda h: h["attributes"].update(
        loss_curve_={"__skae__": "pickle", "data": bomb.decode("latin-1")}))
    with pytest.raises(UnsafeOrCorruptFileError, match="unknown kind 'pickle'"):
        skae.load(path)
    # an array holding the pickle's bytes stays bytes
    skae.save(est, path)
    resave(path, lambda h: None, lambda a: a.update(evil=np.frombuffer(bomb, dtype=np.uint8)))
    with pytest.raises(UnsafeOrCorruptFileError, match="nothing refers to"):
        skae.load(path)
    assert not marker.exists()
    pickle.loads(bomb)  # the bomb is real: unpickling it does create the marker
    assert marker.exists()


# ------------------------------------------------- pickle state and skops
def _torch_objects(obj):
    if isinstance(obj, (torch.Tensor, torch.nn.Module, torch.device)):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _torch_objects(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _torch_objects(v)


@pytest.mark.parametrize("kind", ["mlp", "conv_variational", "detector", "regressor"])
def test_pickled_state_is_json_and_numpy_only(kind):
    est, data, _ = fitted(kind)
    state = est.__getstate__()
    assert set(state) == {"__skae_state__", "__skae_arrays__"}
    assert isinstance(state["__skae_state__"], str)
    assert all(type(a) is np.ndarray for a in state["__skae_arrays__"].values())
    assert not list(_torch_objects(state))
    twin = pickle.loads(pickle.dumps(est))
    assert_same(est.module_, twin.module_)
    assert_same(est._optimizer_state, twin._optimizer_state)
    unfitted = pickle.loads(pickle.dumps(AutoencoderTransformer(4, hidden_layer_sizes=[5])))
    assert unfitted.get_params()["hidden_layer_sizes"] == [5]


def test_a_pickled_state_is_checked_like_a_file():
    est, _, _ = fitted("mlp")
    state = est.__getstate__()
    header = json.loads(state["__skae_state__"])
    header["class"] = "os.system"
    bad = {**state, "__skae_state__": json.dumps(header)}
    with pytest.raises(UnsafeOrCorruptFileError, match="'os.system'"):
        AutoencoderTransformer.__new__(AutoencoderTransformer).__setstate__(bad)
    with pytest.raises(UnsafeOrCorruptFileError, match="not of AutoencoderAnomalyDetector"):
        AutoencoderAnomalyDetector.__new__(AutoencoderAnomalyDetector).__setstate__(state)


@pytest.mark.parametrize("make", [
    lambda: make_pipeline(StandardScaler(), AutoencoderTransformer(3, **FAST),
                          LogisticRegression()),
    lambda: make_pipeline(StandardScaler(), AutoencoderAnomalyDetector(3, **FAST)),
    lambda: make_pipeline(StandardScaler(), AutoencoderEnsembleDetector(
        AutoencoderAnomalyDetector(3, max_iter=3), n_estimators=2, random_state=0)),
])
def test_skops_round_trips_pipelines_trusting_only_skae_types(make, tmp_path):
    labels = (X[:, 0] > 0.5).astype(int)
    pipe = make().fit(X, labels)
    path = tmp_path / "pipe.skops"
    sio.dump(pipe, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted and all(t.startswith("skae.") for t in untrusted), untrusted
    with pytest.raises(UntrustedTypesFoundException, match="skae"):
        sio.load(path)
    loaded = sio.load(path, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    np.testing.assert_array_equal(loaded.decision_function(X), pipe.decision_function(X))
    for a, b in zip(getattr(pipe[1], "estimators_", [pipe[1]]),
                    getattr(loaded[1], "estimators_", [loaded[1]])):
        assert_same(a.module_, b.module_)


class _Custom(AutoencoderTransformer):
    """A user's subclass: pickles (the pickle names its class), is not saved by skae.save."""


def test_a_subclass_pickles_but_save_names_skae_classes_only(tmp_path):
    est = _Custom(2, **FAST).fit(X)
    twin = pickle.loads(pickle.dumps(est))
    assert type(twin) is _Custom
    np.testing.assert_array_equal(twin.transform(X), est.transform(X))
    with pytest.raises(TypeError, match="_Custom is not one of skae's estimators"):
        skae.save(est, tmp_path / "m.safetensors")
    state = est.__getstate__()
    with pytest.raises(UnsafeOrCorruptFileError, match="test_persistence._Custom"):
        AutoencoderTransformer.__new__(AutoencoderTransformer).__setstate__(state)


def test_a_pickle_of_the_previous_layout_still_loads():
    # pickles written before the state was torch-free held __dict__ itself
    est, data, _ = fitted("mlp")
    twin = AutoencoderTransformer.__new__(AutoencoderTransformer)
    twin.__setstate__(dict(vars(est), _fit_device="cpu"))
    assert "_fit_device" not in vars(twin)
    np.testing.assert_array_equal(twin.transform(data), est.transform(data))


def test_an_ensemble_file_must_hold_its_members(tmp_path):
    est, data, _ = fitted("ensemble")
    path = tmp_path / "e.safetensors"
    skae.save(est, path)
    header, arrays = _read(path.read_bytes())
    members = header["attributes"]["estimators_"]
    assert len(members) == 2 and all(m[next(iter(m))] == "estimator" for m in members)
    assert all(k.startswith(("attributes/estimators_/0/", "attributes/estimators_/1/",
                             "attributes/random_states_"))
               for k in arrays)

    def more_members(h):
        h["params"]["n_estimators"] = 3

    resave(path, more_members)
    with pytest.raises(UnsafeOrCorruptFileError, match="not n_estimators fitted"):
        skae.load(path)
    skae.save(est, path)

    def transformer_member(h):
        h["attributes"]["estimators_"][1]["header"]["class"] = "skae.AutoencoderTransformer"

    resave(path, transformer_member)
    with pytest.raises(UnsafeOrCorruptFileError):
        skae.load(path)


_RESIDUAL_ENTRIES = ("_residual_covariance", "residual_mean_", "residual_whitening_",
                     "residual_shrinkage_")


def _drop_residual_covariance(header):
    header["params"].pop("residual_covariance")
    for name in _RESIDUAL_ENTRIES:
        header["attributes"].pop(name)


def _drop_new_entries(header):
    _drop_residual_covariance(header)
    header["spec"].pop("std_offset")
    for name in ("std_offset", "code_weight"):
        header["params"].pop(name)
    header["attributes"].pop("_code_weight")


def test_a_file_written_before_std_offset_and_code_weight_loads_as_then(tmp_path):
    # files of this format written before the detector had std_offset,
    # code_weight and residual_covariance describe a network standardized by
    # the standard deviations alone, and scores that weigh the code distance
    # by 1 and every feature's residual alike
    X = np.random.RandomState(0).normal(size=(200, 5)) * [1, 2, 3, 0.1, 5]
    det = skae.AutoencoderAnomalyDetector(std_offset=0.0, code_weight=1.0, max_iter=2,
                                          residual_covariance="spherical",
                                          random_state=0).fit(X)
    path = tmp_path / "old.safetensors"
    skae.save(det, path)
    resave(path, _drop_new_entries)
    loaded = skae.load(path)
    np.testing.assert_array_equal(loaded.score_samples(X), det.score_samples(X))
    # a refit builds the same model
    assert loaded.get_params()["std_offset"] == 0.0 and loaded.get_params()["code_weight"] == 1.0
    assert loaded.get_params()["residual_covariance"] == "spherical"
    assert loaded._residual_covariance == "spherical" and loaded.residual_whitening_ is None
    assert loaded._spec.std_offset == 0.0 and loaded._code_weight == 1.0


def test_a_file_written_before_residual_covariance_loads_as_then(tmp_path):
    X = np.random.RandomState(0).normal(size=(200, 5)) * [1, 2, 3, 0.1, 5]
    det = skae.AutoencoderAnomalyDetector(residual_covariance="spherical", max_iter=2,
                                          random_state=0).fit(X)
    full = skae.AutoencoderAnomalyDetector(max_iter=2, random_state=0).fit(X)
    assert full.residual_whitening_ is not None  # the default now
    path = tmp_path / "old.safetensors"
    skae.save(det, path)
    resave(path, _drop_residual_covariance)
    loaded = skae.load(path)
    assert loaded.get_params()["residual_covariance"] == "spherical"
    assert all(getattr(loaded, name) == value for name, value in zip(
        _RESIDUAL_ENTRIES, ["spherical", None, None, None]))
    np.testing.assert_array_equal(loaded.score_samples(X), det.score_samples(X))
    # the file of a full covariance keeps it
    skae.save(full, path)
    np.testing.assert_array_equal(skae.load(path).score_samples(X), full.score_samples(X))


def _neighbors_file(tmp_path):
    X = np.random.RandomState(0).normal(size=(100, 4))
    det = skae.AutoencoderAnomalyDetector(n_neighbors=2, max_iter=2, random_state=0)
    det.fit(X, sample_weight=np.r_[np.full(50, 2.0), np.ones(50)])
    path = tmp_path / "neighbors.safetensors"
    skae.save(det, path)
    return det, X, path


@pytest.mark.parametrize("edit, arrays_edit, match", [
    (None, lambda a: a.update({"attributes/reference_embedding_":
                               a["attributes/reference_embedding_"][:, :-1].copy()}),
     "reference_embedding_ finite float64 rows of 7 numbers"),
    (None, lambda a: a["attributes/reference_embedding_"].__setitem__((0, 0), np.nan),
     "reference_embedding_ finite"),
    (None, lambda a: a["attributes/reference_weights_"].__setitem__(0, -1.0),
     "reference_weights_ must be None or finite positive weights"),
    (None, lambda a: a.update({"attributes/reference_weights_":
                               a["attributes/reference_weights_"][:-1].copy()}),
     "one per reference row"),
    (lambda h: h["attributes"].update(n_neighbors_=0), None, "n_neighbors_ must be a positive int"),
    (lambda h: h["attributes"].update(n_neighbors_=1000), None,
     r"less than n_neighbors_ \+ 1 = 1001"),
])
def test_a_file_with_an_inconsistent_neighbor_reference_is_refused(tmp_path, edit, arrays_edit,
                                                                   match):
    det, X, path = _neighbors_file(tmp_path)
    np.testing.assert_array_equal(skae.load(path).score_samples(X), det.score_samples(X))
    resave(path, edit or (lambda h: None), arrays_edit)
    with pytest.raises(UnsafeOrCorruptFileError, match=match):
        skae.load(path)
