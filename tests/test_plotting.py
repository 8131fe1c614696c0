"""skae.plotting: what each Display draws, where, and its errors."""

import importlib
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import NotFittedError

import skae
from skae import AutoencoderAnomalyDetector, AutoencoderRegressor, AutoencoderTransformer
from skae.plotting import (
    CodeDisplay,
    FeatureErrorDisplay,
    LossCurveDisplay,
    ReconstructionDisplay,
    ScoreDisplay,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = dict(max_iter=3, batch_size=200, random_state=0)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return (X[:200] / 16.0).astype(np.float32), y[:200]


@pytest.fixture(scope="module")
def fitted(data):
    X, _ = data
    conv = dict(architecture="conv", image_shape=(8, 8), conv_channels=(4,))
    return {
        "transformer": AutoencoderTransformer(n_components=3, sparsity="l1", early_stopping=True,
                                              **FAST).fit(X),
        "variational": AutoencoderTransformer(n_components=2, variational=True, **FAST).fit(X),
        "conv": AutoencoderTransformer(n_components=3, **conv, **FAST).fit(X),
        "detector": AutoencoderAnomalyDetector(n_components=3, **FAST).fit(X),
        "regressor": AutoencoderRegressor(n_components=3, **FAST).fit(X, X[:, :10]),
        "conv_regressor": AutoencoderRegressor(n_components=3, **conv, **FAST).fit(X, X),
    }


# ------------------------------------------------------------ optional import
def test_import_without_matplotlib_and_the_error_when_drawing(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    monkeypatch.setattr(skae, "plotting", sys.modules["skae.plotting"])  # restored after
    monkeypatch.delitem(sys.modules, "skae.plotting")
    fresh = importlib.import_module("skae.plotting")  # the module imports without matplotlib
    with pytest.raises(ImportError, match="ScoreDisplay.plot requires matplotlib"):
        fresh.ScoreDisplay(scores=[0.0, 1.0], threshold=0.5).plot()
    with pytest.raises(ImportError, match="LossCurveDisplay.from_estimator requires matplotlib"):
        fresh.LossCurveDisplay.from_estimator(AutoencoderTransformer())


# ---------------------------------------------------------------- loss curve
@pytest.mark.parametrize("kind", ["transformer", "variational", "detector", "regressor"])
def test_loss_curve_draws_the_loss_each_term_and_the_validation_score(fitted, kind):
    est = fitted[kind]
    display = LossCurveDisplay.from_estimator(est)
    epochs = np.arange(1, est.n_iter_ + 1)
    np.testing.assert_array_equal(display.line_.get_xdata(), epochs)
    np.testing.assert_allclose(display.line_.get_ydata(), est.loss_curve_)
    assert list(display.term_lines_) == list(est.loss_terms_)
    for term, line in display.term_lines_.items():
        np.testing.assert_allclose(line.get_ydata(), est.loss_terms_[term])
        assert line in display.ax_.lines
    if est.validation_scores_ is None:
        assert display.validation_line_ is None and display.validation_ax_ is None
    else:
        assert display.validation_line_ in display.validation_ax_.lines
        np.testing.assert_allclose(display.validation_line_.get_ydata(), est.validation_scores_)
    assert display.figure_ is display.ax_.figure


def test_loss_curve_terms_are_the_regularizers_and_can_be_hidden(fitted):
    shown = LossCurveDisplay.from_estimator(fitted["variational"])
    assert set(shown.term_lines_) == {"reconstruction", "kl"}
    hidden = LossCurveDisplay.from_estimator(fitted["transformer"], show_terms=False,
                                             show_validation=False)
    assert hidden.term_lines_ == {} and hidden.validation_line_ is None
    assert len(hidden.ax_.lines) == 1


def test_loss_curve_errors():
    with pytest.raises(NotFittedError):
        LossCurveDisplay.from_estimator(AutoencoderTransformer())
    forest = IsolationForest(n_estimators=2, random_state=0).fit(np.zeros((5, 2)))
    with pytest.raises(TypeError, match="loss_curve_"):
        LossCurveDisplay.from_estimator(forest)


# --------------------------------------------------------------------- codes
def test_codes_scatter_offsets_are_the_codes(fitted, data):
    X, _ = data
    est = fitted["transformer"]
    Z = est.transform(X)
    display = CodeDisplay.from_estimator(est, X)
    (scatter,) = display.scatters_
    np.testing.assert_allclose(scatter.get_offsets(), Z[:, [0, 1]], rtol=1e-6)
    display = CodeDisplay.from_estimator(est, X, components=(2, 0))
    np.testing.assert_allclose(display.scatters_[0].get_offsets(), Z[:, [2, 0]], rtol=1e-6)
    assert display.ax_.get_xlabel() == "Component 2"


def test_codes_pca_projection(fitted, data):
    X, _ = data
    est = fitted["transformer"]
    Z = est.transform(X).astype(np.float64)
    display = CodeDisplay.from_estimator(est, X, components="pca")
    expected = PCA(n_components=2).fit_transform(Z)
    np.testing.assert_allclose(display.scatters_[0].get_offsets(), expected, atol=1e-6)
    assert display.ax_.get_xlabel().startswith("PC 1 of the codes")


def test_codes_coloured_by_classes_with_a_legend_or_by_values_with_a_colorbar(fitted, data):
    X, y = data
    est = fitted["variational"]
    Z = est.transform(X)
    display = CodeDisplay.from_estimator(est, X, y)
    assert len(display.scatters_) == len(np.unique(y))
    for label, scatter in zip(np.unique(y), display.scatters_):
        np.testing.assert_allclose(scatter.get_offsets(), Z[y == label], rtol=1e-6)
    legend = display.ax_.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [str(v) for v in np.unique(y)]
    assert display.colorbar_ is None
    values = np.linspace(0.0, 1.0, len(X))
    display = CodeDisplay.from_estimator(est, X, values)
    assert len(display.scatters_) == 1 and display.colorbar_ is not None
    np.testing.assert_allclose(display.scatters_[0].get_array(), values)


def test_codes_errors(fitted, data):
    X, y = data
    with pytest.raises(NotFittedError):
        CodeDisplay.from_estimator(AutoencoderTransformer(), X)
    with pytest.raises(TypeError, match="transform"):
        CodeDisplay.from_estimator(fitted["detector"], X)
    for bad in [(0, 0), (0, 3), (0,), "first", (0.0, 1)]:
        with pytest.raises(ValueError, match="'components' parameter"):
            CodeDisplay.from_estimator(fitted["transformer"], X, components=bad)
    with pytest.raises(ValueError, match="one label per sample"):
        CodeDisplay.from_estimator(fitted["transformer"], X, y[:-1])
    one = AutoencoderTransformer(n_components=1, **FAST).fit(X)
    with pytest.raises(ValueError, match="at least 2 components"):
        CodeDisplay.from_estimator(one, X)


# ----------------------------------------------------------- reconstructions
def test_grayscale_images_are_the_rows_and_their_reconstructions(fitted, data):
    X, _ = data
    est = fitted["conv"]
    display = ReconstructionDisplay.from_estimator(est, X, n_samples=4)
    assert display.axes_.shape == (2, 4) and display.lines_ == {}
    R = est.reconstruct(X[:4])
    for i in range(4):
        np.testing.assert_array_equal(display.images_["original"][i].get_array(),
                                      X[i].reshape(8, 8))
        np.testing.assert_allclose(display.images_["reconstruction"][i].get_array(),
                                   R[i].reshape(8, 8))
        # grey levels of the originals' range, shared by both rows
        assert display.images_["reconstruction"][i].get_clim() == (X[:4].min(), X[:4].max())


def test_colour_images(caplog):
    X = np.random.RandomState(0).rand(40, 4 * 5 * 3).astype(np.float32)
    est = AutoencoderTransformer(n_components=2, architecture="conv", image_shape=(4, 5, 3),
                                 conv_channels=(4,), **FAST).fit(X)
    display = ReconstructionDisplay.from_estimator(est, X, n_samples=2)
    R = est.reconstruct(X[:2])
    for i in range(2):
        np.testing.assert_array_equal(display.images_["original"][i].get_array(),
                                      X[i].reshape(4, 5, 3))
        np.testing.assert_allclose(display.images_["reconstruction"][i].get_array(),
                                   np.clip(R[i].reshape(4, 5, 3), 0, 1))
    # originals in [0, 1]: reconstructions beyond it are clipped, not rescaled
    display = ReconstructionDisplay(originals=X[:2], reconstructions=1.5 * X[:2] - 0.2,
                                    image_shape=(4, 5, 3)).plot()
    np.testing.assert_allclose(display.images_["reconstruction"][0].get_array(),
                               np.clip(1.5 * X[0] - 0.2, 0, 1).reshape(4, 5, 3))
    assert "Clipping input data" not in caplog.text  # clipped before matplotlib logs it
    # outside [0, 1]: rescaled from the originals' range
    display = ReconstructionDisplay(originals=4 * X[:2] - 1, reconstructions=4 * X[:2] - 1,
                                    image_shape=(4, 5, 3)).plot()
    low, high = (4 * X[:2] - 1).min(), (4 * X[:2] - 1).max()
    np.testing.assert_allclose(display.images_["original"][1].get_array(),
                               ((4 * X[1] - 1 - low) / (high - low)).reshape(4, 5, 3), rtol=1e-6)


def test_profiles_without_image_shape(fitted, data):
    X, _ = data
    est = fitted["detector"]
    display = ReconstructionDisplay.from_estimator(est, X, n_samples=3)
    assert display.axes_.shape == (1, 3) and display.images_ == {}
    R = est.reconstruct(X[:3])
    for i in range(3):
        np.testing.assert_array_equal(display.lines_["original"][i].get_ydata(), X[i])
        np.testing.assert_allclose(display.lines_["reconstruction"][i].get_ydata(), R[i])
        assert display.lines_["original"][i] in display.axes_[0, i].lines


def test_regressor_input_target_prediction(fitted, data):
    X, _ = data
    est = fitted["regressor"]
    display = ReconstructionDisplay.from_estimator(est, X, X[:, :10], n_samples=2)
    assert display.axes_.shape == (2, 2)
    P = est.predict(X[:2])
    np.testing.assert_array_equal(display.lines_["input"][1].get_ydata(), X[1])
    np.testing.assert_array_equal(display.lines_["target"][1].get_ydata(), X[1, :10])
    np.testing.assert_allclose(display.lines_["prediction"][1].get_ydata(), P[1])
    assert display.lines_["prediction"][1] in display.axes_[1, 1].lines
    images = ReconstructionDisplay.from_estimator(fitted["conv_regressor"], X, X, n_samples=2)
    assert list(images.images_) == ["input", "target", "prediction"]
    np.testing.assert_allclose(images.images_["prediction"][0].get_array(),
                               fitted["conv_regressor"].predict(X[:2])[0].reshape(8, 8))


def test_reconstruction_draws_on_given_axes_and_errors(fitted, data):
    X, _ = data
    fig, axes = plt.subplots(2, 3)
    display = ReconstructionDisplay.from_estimator(fitted["conv"], X, n_samples=3, ax=axes)
    assert display.figure_ is fig and display.axes_[1, 2] is axes[1, 2]
    assert display.images_["reconstruction"][2] in axes[1, 2].images
    with pytest.raises(ValueError, match="must hold 6 Axes"):
        ReconstructionDisplay.from_estimator(fitted["conv"], X, n_samples=3, ax=axes[0])
    with pytest.raises(ValueError, match="only used with an AutoencoderRegressor"):
        ReconstructionDisplay.from_estimator(fitted["conv"], X, X)
    with pytest.raises(ValueError, match="'n_samples' parameter"):
        ReconstructionDisplay.from_estimator(fitted["conv"], X, n_samples=0)
    with pytest.raises(NotFittedError):
        ReconstructionDisplay.from_estimator(AutoencoderRegressor(), X)
    with pytest.raises(TypeError, match="AutoencoderRegressor"):
        ReconstructionDisplay.from_estimator(PCA(2).fit(X), X)


# -------------------------------------------------------------------- scores
def test_score_histogram_holds_every_sample_and_the_threshold(fitted, data):
    X, y = data
    det = fitted["detector"]
    display = ScoreDisplay.from_estimator(det, X)
    (bars,) = display.bars_
    assert sum(b.get_height() for b in bars) == len(X)
    assert display.threshold_line_.get_xdata()[0] == det.offset_
    assert display.threshold_line_ in display.ax_.lines
    # the histogram's bins hold exactly the scores
    scores = det.score_samples(X)
    left = [b.get_x() for b in bars]
    counts = np.histogram(scores, bins=[*left, left[-1] + bars[-1].get_width()])[0]
    np.testing.assert_array_equal([b.get_height() for b in bars], counts)


def test_scores_split_by_labels(fitted, data):
    X, y = data
    labels = np.where(y == 0, -1, 1)
    display = ScoreDisplay.from_estimator(fitted["detector"], X, labels)
    assert len(display.bars_) == 2
    assert [sum(b.get_height() for b in bars) for bars in display.bars_] == [
        (labels == -1).sum(), (labels == 1).sum()]
    texts = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert texts[:2] == ["y = -1", "y = 1"]


def test_infinite_scores_are_counted_at_the_edge():
    display = ScoreDisplay(scores=[-np.inf, -3.0, -1.0, -0.5], threshold=-2.0).plot(bins=4)
    heights = [b.get_height() for b in display.bars_[0]]
    assert sum(heights) == 4 and heights[0] == 2
    with pytest.raises(ValueError, match="NaN"):
        ScoreDisplay(scores=[np.nan, 1.0], threshold=0.0).plot()


def test_score_display_works_for_isolation_forest_and_rejects_transformers(fitted, data):
    X, _ = data
    forest = IsolationForest(n_estimators=5, random_state=0).fit(X)
    display = ScoreDisplay.from_estimator(forest, X)
    assert display.threshold_line_.get_xdata()[0] == forest.offset_
    with pytest.raises(TypeError, match="offset_"):
        ScoreDisplay.from_estimator(fitted["transformer"], X)
    with pytest.raises(NotFittedError):
        ScoreDisplay.from_estimator(AutoencoderAnomalyDetector(), X)


# ------------------------------------------------------------ feature errors
def test_feature_error_bars_are_the_feature_errors(fitted, data):
    X, _ = data
    det = fitted["detector"]
    display = FeatureErrorDisplay.from_estimator(det, X, sample=5)
    heights = [b.get_height() for b in display.bars_]
    np.testing.assert_allclose(heights, det.feature_errors(X[5:6])[0], rtol=1e-6)
    labels = [t.get_text() for t in display.ax_.get_xticklabels()]
    assert labels == [f"x{i}" for i in range(X.shape[1])]
    last = FeatureErrorDisplay.from_estimator(det, X, sample=-1)
    np.testing.assert_allclose([b.get_height() for b in last.bars_],
                               det.feature_errors(X[-1:])[0], rtol=1e-6)


def test_feature_errors_labelled_by_column_names_and_top_k():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.normal(size=(60, 5)), columns=["a", "b", "c", "d", "e"])
    det = AutoencoderAnomalyDetector(n_components=2, **FAST).fit(X)
    errors = det.feature_errors(X.iloc[[3]])[0]
    display = FeatureErrorDisplay.from_estimator(det, X, sample=3, top_k=3)
    order = np.argsort(-errors)[:3]
    np.testing.assert_allclose([b.get_height() for b in display.bars_], errors[order], rtol=1e-6)
    assert [t.get_text() for t in display.ax_.get_xticklabels()] == list(X.columns[order])
    np.testing.assert_array_equal(display.shown_, order)


def test_feature_error_errors(fitted, data):
    X, _ = data
    for bad in [len(X), -len(X) - 1, 1.0, True]:
        with pytest.raises(ValueError, match="'sample' parameter"):
            FeatureErrorDisplay.from_estimator(fitted["detector"], X, sample=bad)
    with pytest.raises(ValueError, match="'top_k' parameter"):
        FeatureErrorDisplay.from_estimator(fitted["detector"], X, top_k=0)
    with pytest.raises(TypeError, match="feature_errors"):
        FeatureErrorDisplay.from_estimator(fitted["transformer"], X)
    with pytest.raises(NotFittedError):
        FeatureErrorDisplay.from_estimator(AutoencoderAnomalyDetector(), X)


# ------------------------------------------------------------- given axes
def test_single_axes_displays_draw_on_the_given_axes(fitted, data):
    X, y = data
    calls = [
        lambda ax: LossCurveDisplay.from_estimator(fitted["transformer"], ax=ax),
        lambda ax: CodeDisplay.from_estimator(fitted["transformer"], X, y, ax=ax),
        lambda ax: ScoreDisplay.from_estimator(fitted["detector"], X, ax=ax),
        lambda ax: FeatureErrorDisplay.from_estimator(fitted["detector"], X, ax=ax),
    ]
    for call in calls:
        fig, (left, right) = plt.subplots(1, 2)
        display = call(right)
        assert display.ax_ is right and display.figure_ is fig
        assert not left.has_data() and right.has_data()


# ---------------------------------------------------------------- docstrings
def _plotting_objects():
    import inspect

    for name in skae.plotting.__all__:
        cls = getattr(skae.plotting, name)
        yield f"skae.plotting.{name}"
        for method in ("plot", "from_estimator"):
            assert inspect.ismethod(getattr(cls, method)) or inspect.isfunction(
                getattr(cls, method))
            yield f"skae.plotting.{name}.{method}"


@pytest.mark.parametrize("name", list(_plotting_objects()))
def test_docstrings(name):
    numpydoc_validate = pytest.importorskip("numpydoc.validate")
    checked = {"GL01", "GL02", "GL03", "GL07", "PR01", "PR02", "PR03", "PR06", "PR10",
               "RT01", "SS01", "SS03", "SS05"}
    errors = [(code, msg) for code, msg in numpydoc_validate.validate(name)["errors"]
              if code in checked]
    assert not errors, errors
