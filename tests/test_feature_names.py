"""Feature names of the detector's per-feature errors: set_output and get_feature_names_out."""

import copy

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from skae import AutoencoderAnomalyDetector, AutoencoderTransformer

pd = pytest.importorskip("pandas")

COLUMNS = ["alpha", "beta", "gamma", "delta", "epsilon"]
FAST = dict(n_components=2, max_iter=3, batch_size=60, random_state=0)


@pytest.fixture(scope="module")
def frame():
    X = np.random.RandomState(0).normal(size=(60, 5))
    return pd.DataFrame(X, columns=COLUMNS, index=np.arange(100, 160))


@pytest.fixture(scope="module", params=[False, True], ids=["mlp", "variational"])
def detector(request, frame):
    return AutoencoderAnomalyDetector(variational=request.param, **FAST).fit(frame)


def test_default_output_is_an_ndarray(detector, frame):
    errors = detector.feature_errors(frame)
    assert type(errors) is np.ndarray and errors.shape == frame.shape


def test_pandas_output_keeps_columns_and_index(detector, frame):
    expected = detector.feature_errors(frame.iloc[10:20])
    det = copy.deepcopy(detector).set_output(transform="pandas")
    errors = det.feature_errors(frame.iloc[10:20])
    assert isinstance(errors, pd.DataFrame)
    assert list(errors.columns) == COLUMNS
    np.testing.assert_array_equal(errors.index, frame.index[10:20])
    np.testing.assert_array_equal(errors.to_numpy(), expected)


def test_polars_output_keeps_columns(detector, frame):
    pl = pytest.importorskip("polars")
    det = copy.deepcopy(detector).set_output(transform="polars")
    errors = det.feature_errors(frame)
    assert isinstance(errors, pl.DataFrame)
    assert errors.columns == COLUMNS
    np.testing.assert_array_equal(errors.to_numpy(), detector.feature_errors(frame))
    back = det.set_output(transform="default").feature_errors(frame)
    assert type(back) is np.ndarray


def test_global_transform_output_config(detector, frame):
    pl = pytest.importorskip("polars")
    with sklearn.config_context(transform_output="pandas"):
        errors = detector.feature_errors(frame)
    assert isinstance(errors, pd.DataFrame) and list(errors.columns) == COLUMNS
    np.testing.assert_array_equal(errors.index, frame.index)
    with sklearn.config_context(transform_output="polars"):
        assert isinstance(detector.feature_errors(frame), pl.DataFrame)
    # the estimator's own configuration wins over the global one
    det = copy.deepcopy(detector).set_output(transform="default")
    with sklearn.config_context(transform_output="pandas"):
        assert type(det.feature_errors(frame)) is np.ndarray


def test_ndarray_input_gets_generated_names():
    X = np.random.RandomState(0).normal(size=(40, 3))
    det = AutoencoderAnomalyDetector(**FAST).fit(X).set_output(transform="pandas")
    errors = det.feature_errors(X)
    assert list(errors.columns) == ["x0", "x1", "x2"]
    np.testing.assert_array_equal(errors.index, np.arange(40))
    np.testing.assert_array_equal(det.get_feature_names_out(), ["x0", "x1", "x2"])
    np.testing.assert_array_equal(det.get_feature_names_out(["u", "v", "w"]), ["u", "v", "w"])


def test_get_feature_names_out_follows_scikit_learn_rules(detector):
    np.testing.assert_array_equal(detector.get_feature_names_out(), COLUMNS)
    np.testing.assert_array_equal(detector.get_feature_names_out(COLUMNS), COLUMNS)
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        detector.get_feature_names_out(COLUMNS[::-1])
    with pytest.raises(NotFittedError):
        AutoencoderAnomalyDetector().get_feature_names_out()


def test_set_output_validates_and_survives_clone(detector):
    det = clone(detector)
    assert det.set_output() is det and not hasattr(det, "_sklearn_output_config")
    with pytest.raises(ValueError, match="'transform' parameter of AutoencoderAnomalyDetector"):
        det.set_output(transform="arrow")
    det.set_output(transform="pandas")
    assert clone(det)._sklearn_output_config == {"transform": "pandas"}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_reconstructions_stay_arrays_as_inverse_transform_does_in_scikit_learn(frame):
    # scikit-learn's set_output configures transform and fit_transform only
    ae = AutoencoderTransformer(**FAST).fit(frame).set_output(transform="pandas")
    codes = ae.transform(frame)
    assert list(codes.columns) == ["autoencodertransformer0", "autoencodertransformer1"]
    assert type(ae.inverse_transform(codes)) is np.ndarray
    assert type(ae.reconstruct(frame)) is np.ndarray
