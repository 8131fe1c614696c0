"""Visualizations of fitted autoencoders, in scikit-learn's Display style.

Each Display stores the data it shows as attributes, computes it from a
fitted estimator with the class method ``from_estimator``, and draws it with
``plot``, which returns the Display with the matplotlib objects it created
(``ax_``, ``figure_`` and handles such as ``lines_`` or ``bars_``), as
:class:`sklearn.metrics.RocCurveDisplay` does. matplotlib is an optional
dependency: this module imports it only when something is drawn.
"""

from numbers import Integral

import numpy as np
from sklearn.utils import _safe_indexing
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import _num_samples, check_array, check_is_fitted

from ._compat import check_matplotlib_support

__all__ = [
    "CodeDisplay",
    "FeatureErrorDisplay",
    "LossCurveDisplay",
    "ReconstructionDisplay",
    "ScoreDisplay",
]


# ----------------------------------------------------------------- helpers
def _new_axes(ax, caller):
    """``ax``, or the Axes of a new figure when ``ax`` is None."""
    check_matplotlib_support(caller)
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    return ax


def _check_kind(estimator, attributes, caller, expected):
    """Fitted ``estimator`` with every attribute of ``attributes``, else an error.

    Unfitted estimators raise NotFittedError; estimators of another kind
    raise TypeError naming what ``caller`` expects.
    """
    check_is_fitted(estimator)
    missing = [name for name in attributes if not hasattr(estimator, name)]
    if missing:
        raise TypeError(
            f"{caller} expects {expected}; got {type(estimator).__name__}, which has no "
            f"{', '.join(missing)}."
        )


def _check_int(value, name, caller, low=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral) or value < low:
        raise ValueError(
            f"The '{name}' parameter of {caller} must be an int >= {low}. Got {value!r} instead."
        )
    return int(value)


def _as_2d(data):
    """A polars/pandas DataFrame or array as a float64 2-D ndarray."""
    if hasattr(data, "to_numpy"):
        data = data.to_numpy()
    data = np.asarray(data, dtype=np.float64)
    return data.reshape(data.shape[0], -1)


def _check_labels(y, n_samples, caller):
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_samples:
        raise ValueError(
            f"{caller}: y must be 1-D with one label per sample ({n_samples}); got shape "
            f"{y.shape}."
        )
    return y


# -------------------------------------------------------------- loss curve
class LossCurveDisplay:
    """Training loss per epoch, each term of the loss, and the validation score.

    The training loss (``loss_curve_``) is a solid line and each term of the
    loss (``loss_terms_``: the reconstruction, and each regularizer, e.g. the
    KL term of a variational model or a sparsity penalty) a dashed line, on
    the left axis. The validation score (``validation_scores_``, with
    ``early_stopping``; higher is better, and on another scale than the loss)
    is a dotted black line on a twin axis on the right. Works for every skae
    estimator, and any estimator with a ``loss_curve_`` (e.g.
    :class:`~sklearn.neural_network.MLPRegressor`).

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
        Mean training loss per epoch.
    loss_terms : dict of str to array-like or None, default=None
        Each term of the training loss per epoch.
    validation_scores : array-like or None, default=None
        Validation score per epoch; None for none.
    estimator_name : str or None, default=None
        Name of the estimator, used as the title.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The training loss.
    term_lines_ : dict of str to matplotlib Line2D
        One line per loss term, keyed by the term's name (empty when the
        terms are not shown).
    validation_line_ : matplotlib Line2D or None
        The validation score, or None.
    validation_ax_ : matplotlib Axes or None
        The twin axis of the validation score, or None.
    ax_ : matplotlib Axes
        The Axes of the loss.
    figure_ : matplotlib Figure
        The figure.

    See Also
    --------
    sklearn.model_selection.LearningCurveDisplay : Scores against the number of
        training samples.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoencoderTransformer
    >>> from skae.plotting import LossCurveDisplay
    >>> X = np.random.RandomState(0).normal(size=(100, 5))
    >>> ae = AutoencoderTransformer(n_components=2, max_iter=5, sparsity="l1",
    ...                             random_state=0).fit(X)  # doctest: +SKIP
    >>> LossCurveDisplay.from_estimator(ae)  # doctest: +SKIP
    """

    def __init__(self, *, loss_curve, loss_terms=None, validation_scores=None,
                 estimator_name=None):
        self.loss_curve = loss_curve
        self.loss_terms = loss_terms
        self.validation_scores = validation_scores
        self.estimator_name = estimator_name

    @staticmethod
    def _epochs(values, n_epochs):
        """Epoch numbers (from 1) of ``values``, aligned with the last epochs."""
        return np.arange(n_epochs - len(values) + 1, n_epochs + 1)

    def plot(self, ax=None, *, name=None, show_terms=True, show_validation=True):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Axes to draw on; None creates a figure.
        name : str or None, default=None
            Title; None uses ``estimator_name``.
        show_terms : bool, default=True
            Draw one line per loss term.
        show_validation : bool, default=True
            Draw the validation score, when there is one, on a twin axis.

        Returns
        -------
        display : LossCurveDisplay
            The Display, with the drawn objects as attributes.
        """
        ax = _new_axes(ax, f"{type(self).__name__}.plot")
        loss = np.asarray(self.loss_curve, dtype=np.float64)
        n_epochs = len(loss)
        (self.line_,) = ax.plot(self._epochs(loss, n_epochs), loss, color="C0",
                                label="training loss")
        handles = [self.line_]
        self.term_lines_ = {}
        if show_terms and self.loss_terms:
            for i, (term, values) in enumerate(self.loss_terms.items()):
                values = np.asarray(values, dtype=np.float64)
                (line,) = ax.plot(self._epochs(values, n_epochs), values, linestyle="--",
                                  color=f"C{i + 1}", label=term)
                self.term_lines_[term] = line
                handles.append(line)
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Training loss")
        self.validation_line_ = self.validation_ax_ = None
        if show_validation and self.validation_scores is not None:
            scores = np.asarray(self.validation_scores, dtype=np.float64)
            self.validation_ax_ = ax.twinx()
            (self.validation_line_,) = self.validation_ax_.plot(
                self._epochs(scores, n_epochs), scores, color="k", linestyle=":",
                label="validation score",
            )
            self.validation_ax_.set_ylabel("Validation score (higher is better)")
            handles.append(self.validation_line_)
        ax.legend(handles=handles, loc="best")
        name = self.estimator_name if name is None else name
        if name is not None:
            ax.set_title(name)
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, name=None, show_terms=True,
                       show_validation=True):
        """Plot the training history of a fitted estimator.

        Parameters
        ----------
        estimator : estimator instance
            A fitted skae estimator, or any fitted estimator with a
            ``loss_curve_`` (``loss_terms_`` and ``validation_scores_`` are
            used when present).
        ax : matplotlib Axes or None, default=None
            Axes to draw on; None creates a figure.
        name : str or None, default=None
            Title; None uses the estimator's class name.
        show_terms : bool, default=True
            Draw one line per loss term.
        show_validation : bool, default=True
            Draw the validation score, when there is one, on a twin axis.

        Returns
        -------
        display : LossCurveDisplay
            The Display, with the drawn objects as attributes.
        """
        caller = f"{cls.__name__}.from_estimator"
        check_matplotlib_support(caller)
        _check_kind(estimator, ["loss_curve_"], caller, "an estimator with a loss_curve_")
        display = cls(
            loss_curve=list(estimator.loss_curve_),
            loss_terms=getattr(estimator, "loss_terms_", None),
            validation_scores=getattr(estimator, "validation_scores_", None),
            estimator_name=type(estimator).__name__,
        )
        return display.plot(ax=ax, name=name, show_terms=show_terms,
                            show_validation=show_validation)


# -------------------------------------------------------------------- codes
class CodeDisplay:
    """Scatter plot of two-dimensional codes, coloured by an optional label.

    Parameters
    ----------
    codes : ndarray of shape (n_samples, 2)
        The points shown.
    y : array-like of shape (n_samples,) or None, default=None
        Labels: classes (one colour each, with a legend) or continuous values
        (a colour map, with a colour bar). None draws one colour.
    axis_labels : tuple of 2 str, default=("Component 0", "Component 1")
        Labels of the horizontal and vertical axes.
    estimator_name : str or None, default=None
        Name of the estimator, used as the title.

    Attributes
    ----------
    scatters_ : list of matplotlib PathCollection
        One collection per class, or a single one without classes.
    colorbar_ : matplotlib Colorbar or None
        The colour bar of continuous labels, or None.
    ax_ : matplotlib Axes
        The Axes.
    figure_ : matplotlib Figure
        The figure.

    See Also
    --------
    skae.AutoencoderTransformer.transform : The codes.
    """

    def __init__(self, *, codes, y=None, axis_labels=("Component 0", "Component 1"),
                 estimator_name=None):
        self.codes = codes
        self.y = y
        self.axis_labels = axis_labels
        self.estimator_name = estimator_name

    def plot(self, ax=None, *, name=None, cmap=None, **kwargs):
        """Draw the scatter plot.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Axes to draw on; None creates a figure.
        name : str or None, default=None
            Title; None uses ``estimator_name``.
        cmap : str, matplotlib Colormap or None, default=None
            Colour map of continuous labels (None: matplotlib's default).
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.scatter`.

        Returns
        -------
        display : CodeDisplay
            The Display, with the drawn objects as attributes.
        """
        ax = _new_axes(ax, f"{type(self).__name__}.plot")
        codes = np.asarray(self.codes, dtype=np.float64)
        kwargs = {"s": 12, **kwargs}
        y = _check_labels(self.y, codes.shape[0], f"{type(self).__name__}.plot")
        self.colorbar_ = None
        if y is None:
            self.scatters_ = [ax.scatter(codes[:, 0], codes[:, 1], **kwargs)]
        elif type_of_target(y) in ("binary", "multiclass") or y.dtype.kind not in "fc":
            self.scatters_ = [
                ax.scatter(codes[y == label, 0], codes[y == label, 1], label=str(label), **kwargs)
                for label in np.unique(y)
            ]
            ax.legend(title="y", loc="best", markerscale=1.5)
        else:
            scatter = ax.scatter(codes[:, 0], codes[:, 1], c=y, cmap=cmap, **kwargs)
            self.scatters_ = [scatter]
            self.colorbar_ = ax.figure.colorbar(scatter, ax=ax, label="y")
        ax.set_xlabel(self.axis_labels[0])
        ax.set_ylabel(self.axis_labels[1])
        name = self.estimator_name if name is None else name
        if name is not None:
            ax.set_title(name)
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, components=(0, 1), ax=None, name=None,
                       cmap=None, **kwargs):
        """Plot the codes of X.

        Parameters
        ----------
        estimator : estimator instance
            A fitted :class:`~skae.AutoencoderTransformer` (or any fitted
            estimator with a ``transform`` giving at least 2 columns).
        X : array-like of shape (n_samples, n_features)
            Data to encode.
        y : array-like of shape (n_samples,) or None, default=None
            Labels to colour the points by.
        components : tuple of 2 int or "pca", default=(0, 1)
            What is shown of codes with more than 2 components: the two code
            components of these (0-based) indices, or, with ``"pca"``, the
            first two principal components of the codes
            (:class:`~sklearn.decomposition.PCA` fitted on the codes of X;
            the axis labels give their share of the codes' variance).
        ax : matplotlib Axes or None, default=None
            Axes to draw on; None creates a figure.
        name : str or None, default=None
            Title; None uses the estimator's class name.
        cmap : str, matplotlib Colormap or None, default=None
            Colour map of continuous labels.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.scatter`.

        Returns
        -------
        display : CodeDisplay
            The Display, with the drawn objects as attributes.
        """
        caller = f"{cls.__name__}.from_estimator"
        check_matplotlib_support(caller)
        _check_kind(estimator, ["transform"], caller,
                    "a transformer such as AutoencoderTransformer (an estimator with transform)")
        Z = _as_2d(estimator.transform(X))
        if Z.shape[1] < 2:
            raise ValueError(
                f"{caller} needs codes of at least 2 components; "
                f"{type(estimator).__name__} gives {Z.shape[1]}."
            )
        if isinstance(components, str) and components == "pca":
            from sklearn.decomposition import PCA

            pca = PCA(n_components=2).fit(Z)
            codes = pca.transform(Z)
            ratio = pca.explained_variance_ratio_
            labels = (f"PC 1 of the codes ({ratio[0]:.0%} of variance)",
                      f"PC 2 of the codes ({ratio[1]:.0%} of variance)")
        else:
            ok = (isinstance(components, (tuple, list)) and len(components) == 2
                  and all(isinstance(c, Integral) and not isinstance(c, (bool, np.bool_))
                          and -Z.shape[1] <= c < Z.shape[1] for c in components)
                  and components[0] % Z.shape[1] != components[1] % Z.shape[1])
            if not ok:
                raise ValueError(
                    f"The 'components' parameter of {caller} must be 'pca' or a tuple of two "
                    f"distinct int indices in [-{Z.shape[1]}, {Z.shape[1] - 1}]. "
                    f"Got {components!r} instead."
                )
            i, j = (int(c) % Z.shape[1] for c in components)
            codes, labels = Z[:, [i, j]], (f"Component {i}", f"Component {j}")
        display = cls(codes=codes, y=_check_labels(y, Z.shape[0], caller), axis_labels=labels,
                      estimator_name=type(estimator).__name__)
        return display.plot(ax=ax, name=name, cmap=cmap, **kwargs)


# ----------------------------------------------------------- reconstructions
def _spec_shapes(estimator):
    """``(input image shape, output image shape)`` of a fitted skae estimator."""
    spec = getattr(estimator, "_spec", None)
    if spec is None:
        return None, None
    return spec.image_shape, spec.output_image_shape


class ReconstructionDisplay:
    """Samples next to their reconstructions (or a regressor's predictions).

    A grid with one column per sample. With image shapes, one row per kind
    of data (original and reconstruction; or input, target and prediction),
    each cell an image: grayscale for one channel, colour for 3 (RGB) or 4
    (RGBA) channels, and the mean over channels in grayscale for other
    channel counts. Every image of a row group shares the grey levels (or
    colour scaling) of its reference data (the originals, or the targets when
    given, else the predictions): grayscale images map that data's range onto
    the colour map; colour images are shown as they are when that data lies
    in [0, 1], and else rescaled linearly from its range onto [0, 1]; values
    outside are clipped. Without image shapes, feature profiles (value
    against feature index): an autoencoder's original and reconstruction
    overlaid in one row; a regressor's input in the first row, its target
    and prediction overlaid in the second.

    Parameters
    ----------
    originals : ndarray of shape (n_samples, n_features)
        The samples (a regressor's inputs).
    reconstructions : ndarray of shape (n_samples, n_outputs)
        Their reconstructions (a regressor's predictions).
    targets : ndarray of shape (n_samples, n_outputs) or None, default=None
        A regressor's targets, or None.
    image_shape : tuple of int or None, default=None
        ``(height, width, channels)`` (or ``(height, width)``) of the
        originals' rows; None for feature profiles.
    output_image_shape : tuple of int or None, default=None
        Image shape of the reconstructions and targets; None uses
        ``image_shape`` when the widths agree, else profiles.
    paired : bool, default=False
        Whether the data come from a regressor (rows named input, target and
        prediction) rather than an autoencoder (original, reconstruction).
    estimator_name : str or None, default=None
        Name of the estimator, used as the figure's title.

    Attributes
    ----------
    axes_ : ndarray of matplotlib Axes of shape (n_rows, n_samples)
        The grid.
    images_ : dict of str to list of matplotlib AxesImage
        Per kind of data (``"original"``, ``"reconstruction"``; or
        ``"input"``, ``"target"``, ``"prediction"``) drawn as images, one
        image per sample.
    lines_ : dict of str to list of matplotlib Line2D
        Per kind of data drawn as profiles, one line per sample.
    figure_ : matplotlib Figure
        The figure.
    """

    def __init__(self, *, originals, reconstructions, targets=None, image_shape=None,
                 output_image_shape=None, paired=False, estimator_name=None):
        self.originals = originals
        self.reconstructions = reconstructions
        self.targets = targets
        self.image_shape = image_shape
        self.output_image_shape = output_image_shape
        self.paired = paired
        self.estimator_name = estimator_name

    @staticmethod
    def _shape(shape, width):
        """``(H, W, C)`` for rows of ``width`` values, or None."""
        if shape is None:
            return None
        h, w = int(shape[0]), int(shape[1])
        if width % (h * w):
            return None
        return (h, w, width // (h * w))

    def _groups(self):
        """Row groups: ``(names, arrays, image shape or None, reference array)``."""
        X = _as_2d(self.originals)
        R = _as_2d(self.reconstructions)
        T = None if self.targets is None else _as_2d(self.targets)
        in_shape = self._shape(self.image_shape, X.shape[1])
        out_shape = self._shape(self.output_image_shape or self.image_shape, R.shape[1])
        if not self.paired:
            if in_shape is not None and out_shape is not None:
                return [(["original"], [X], in_shape, X),
                        (["reconstruction"], [R], out_shape, X)]
            return [(["original", "reconstruction"], [X, R], None, X)]
        outputs = [("target", T)] if T is not None else []
        outputs.append(("prediction", R))
        reference = R if T is None else T
        groups = [(["input"], [X], in_shape, X)]
        if out_shape is not None:
            groups += [([name], [data], out_shape, reference) for name, data in outputs]
        else:
            groups.append(([n for n, _ in outputs], [d for _, d in outputs], None, reference))
        return groups

    @staticmethod
    def _image(row, shape, low, high):
        """``(image, kwargs of imshow)`` of one row."""
        image = row.reshape(shape)
        if shape[2] in (3, 4):
            if low < 0 or high > 1:
                image = (image - low) / (high - low if high > low else 1.0)
            return np.clip(image, 0.0, 1.0), {}
        if shape[2] == 1:
            image = image[:, :, 0]
        else:
            image = image.mean(axis=2)
        return image, {"vmin": low, "vmax": high}

    def plot(self, ax=None, *, cmap="gray"):
        """Draw the grid.

        Parameters
        ----------
        ax : array-like of matplotlib Axes or None, default=None
            ``n_rows * n_samples`` Axes to draw on (any shape with that many,
            filled row by row); None creates a figure.
        cmap : str or matplotlib Colormap, default="gray"
            Colour map of single-channel images.

        Returns
        -------
        display : ReconstructionDisplay
            The Display, with the drawn objects as attributes.
        """
        caller = f"{type(self).__name__}.plot"
        check_matplotlib_support(caller)
        import matplotlib.pyplot as plt

        groups = self._groups()
        n_samples = _as_2d(self.originals).shape[0]
        shape = (len(groups), n_samples)
        if ax is None:
            images = all(group[2] is not None for group in groups)
            cell = (1.6, 1.6) if images else (3.2, 2.4)  # profiles need room for their axes
            fig, axes = plt.subplots(*shape, squeeze=False, layout="constrained",
                                     figsize=(cell[0] * n_samples + 1, cell[1] * len(groups)))
        else:
            axes = np.asarray(ax, dtype=object)
            if axes.size != shape[0] * shape[1]:
                raise ValueError(
                    f"{caller} draws {shape[0]} rows of {shape[1]} samples: ax must hold "
                    f"{shape[0] * shape[1]} Axes; got {axes.size}."
                )
            axes = axes.reshape(shape)
            fig = axes[0, 0].figure
        self.images_, self.lines_ = {}, {}
        for r, (names, arrays, image_shape, reference) in enumerate(groups):
            low, high = float(reference.min()), float(reference.max())
            for c in range(n_samples):
                cell = axes[r, c]
                if image_shape is not None:
                    image, kwargs = self._image(arrays[0][c], image_shape, low, high)
                    self.images_.setdefault(names[0], []).append(
                        cell.imshow(image, cmap=cmap, **kwargs))
                    cell.set_xticks([])
                    cell.set_yticks([])
                else:
                    for k, (name, data) in enumerate(zip(names, arrays)):
                        (line,) = cell.plot(np.arange(data.shape[1]), data[c], color=f"C{k}",
                                            label=name)
                        self.lines_.setdefault(name, []).append(line)
                    cell.set_xlabel("Feature")
                if c == 0:
                    cell.set_ylabel(" / ".join(names))
            if image_shape is None:
                axes[r, -1].legend(loc="best", fontsize="small")
        if self.estimator_name is not None:
            fig.suptitle(self.estimator_name)
        self.axes_, self.figure_ = axes, fig
        return self

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, n_samples=5, ax=None, cmap="gray"):
        """Plot the first samples of X next to their reconstructions.

        Parameters
        ----------
        estimator : estimator instance
            A fitted :class:`~skae.AutoencoderTransformer` or
            :class:`~skae.AutoencoderAnomalyDetector` (reconstructions), or a
            fitted :class:`~skae.AutoencoderRegressor` (predictions). Images
            are drawn when it was fitted with ``image_shape``.
        X : array-like of shape (n_samples, n_features)
            Samples; the first ``n_samples`` rows are shown.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs) or None, default=None
            A regressor's targets, drawn between inputs and predictions;
            None draws none. Must be None for an autoencoder.
        n_samples : int, default=5
            Number of samples shown (all rows of X when it has fewer).
        ax : array-like of matplotlib Axes or None, default=None
            Axes to draw on (see :meth:`plot`); None creates a figure.
        cmap : str or matplotlib Colormap, default="gray"
            Colour map of single-channel images.

        Returns
        -------
        display : ReconstructionDisplay
            The Display, with the drawn objects as attributes.
        """
        caller = f"{cls.__name__}.from_estimator"
        check_matplotlib_support(caller)
        n_samples = _check_int(n_samples, "n_samples", caller)
        from .regressor import AutoencoderRegressor

        paired = isinstance(estimator, AutoencoderRegressor)
        if not paired:
            _check_kind(estimator, ["reconstruct"], caller,
                        "an AutoencoderTransformer, AutoencoderAnomalyDetector or "
                        "AutoencoderRegressor")
            if y is not None:
                raise ValueError(f"{caller}: y is only used with an AutoencoderRegressor; "
                                 f"got y for {type(estimator).__name__}.")
        else:
            check_is_fitted(estimator)
        rows = np.arange(min(n_samples, _num_samples(X)))
        X_shown = _safe_indexing(X, rows)
        originals = check_array(_as_2d(X_shown))
        outputs = _as_2d(estimator.predict(X_shown) if paired else estimator.reconstruct(X_shown))
        targets = None
        if y is not None:
            targets = _as_2d(_safe_indexing(y, rows))
            if targets.shape != outputs.shape:
                raise ValueError(f"{caller}: y has {targets.shape[1]} outputs per sample; the "
                                 f"regressor predicts {outputs.shape[1]}.")
        image_shape, output_image_shape = _spec_shapes(estimator)
        display = cls(originals=originals, reconstructions=outputs, targets=targets,
                      image_shape=image_shape, output_image_shape=output_image_shape,
                      paired=paired, estimator_name=type(estimator).__name__)
        return display.plot(ax=ax, cmap=cmap)


# -------------------------------------------------------------------- scores
class ScoreDisplay:
    """Histogram of an outlier detector's scores with its threshold.

    Scores are ``score_samples`` (higher is more normal); the threshold is
    the detector's ``offset_`` (samples scoring below it are outliers). With
    labels, one histogram per label on shared bins. Infinite scores (e.g. -inf
    for overflowing reconstruction errors) are counted in the outermost bin on
    their side, so the histogram holds every sample.

    Parameters
    ----------
    scores : array-like of shape (n_samples,)
        The scores.
    threshold : float
        The threshold on the scores.
    y : array-like of shape (n_samples,) or None, default=None
        Known labels to split the histogram by (e.g. 1 for inliers and -1 for
        outliers), or None.
    estimator_name : str or None, default=None
        Name of the estimator, used as the title.

    Attributes
    ----------
    bars_ : list of matplotlib BarContainer
        One histogram per label, or a single one without labels.
    threshold_line_ : matplotlib Line2D
        The vertical line at the threshold.
    ax_ : matplotlib Axes
        The Axes.
    figure_ : matplotlib Figure
        The figure.
    """

    def __init__(self, *, scores, threshold, y=None, estimator_name=None):
        self.scores = scores
        self.threshold = threshold
        self.y = y
        self.estimator_name = estimator_name

    def plot(self, ax=None, *, bins=30, name=None, **kwargs):
        """Draw the histogram and the threshold.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Axes to draw on; None creates a figure.
        bins : int, default=30
            Number of bins, shared by all labels.
        name : str or None, default=None
            Title; None uses ``estimator_name``.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.hist`.

        Returns
        -------
        display : ScoreDisplay
            The Display, with the drawn objects as attributes.
        """
        caller = f"{type(self).__name__}.plot"
        bins = _check_int(bins, "bins", caller)
        ax = _new_axes(ax, caller)
        scores = np.asarray(self.scores, dtype=np.float64).ravel()
        if np.isnan(scores).any():
            raise ValueError(f"{caller}: the scores contain NaN.")
        threshold = float(self.threshold)
        finite = scores[np.isfinite(scores)]
        low = min(finite.min(), threshold) if finite.size else threshold
        high = max(finite.max(), threshold) if finite.size else threshold
        scores = np.clip(scores, low, high)
        edges = np.histogram_bin_edges(scores, bins=bins, range=(low, high))
        y = _check_labels(self.y, scores.shape[0], caller)
        if y is None:
            _, _, bars = ax.hist(scores, bins=edges, **kwargs)
            self.bars_ = [bars]
        else:
            kwargs = {"alpha": 0.6, **kwargs}
            self.bars_ = [ax.hist(scores[y == label], bins=edges, label=f"y = {label}",
                                  **kwargs)[2] for label in np.unique(y)]
        self.threshold_line_ = ax.axvline(threshold, color="k", linestyle="--",
                                          label=f"threshold ({threshold:.3g})")
        ax.set_xlabel("score_samples (lower is more abnormal)")
        ax.set_ylabel("Number of samples")
        ax.legend(loc="best")
        name = self.estimator_name if name is None else name
        if name is not None:
            ax.set_title(name)
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, bins=30, ax=None, name=None, **kwargs):
        """Plot the scores of X with the detector's threshold.

        Parameters
        ----------
        estimator : estimator instance
            A fitted :class:`~skae.AutoencoderAnomalyDetector` (or any fitted
            outlier detector with ``score_samples`` and ``offset_``, such as
            :class:`~sklearn.ensemble.IsolationForest`).
        X : array-like of shape (n_samples, n_features)
            Data to score.
        y : array-like of shape (n_samples,) or None, default=None
            Known labels to split the histogram by, or None.
        bins : int, default=30
            Number of bins.
        ax : matplotlib Axes or None, default=None
            Axes to draw on; None creates a figure.
        name : str or None, default=None
            Title; None uses the estimator's class name.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.hist`.

        Returns
        -------
        display : ScoreDisplay
            The Display, with the drawn objects as attributes.
        """
        caller = f"{cls.__name__}.from_estimator"
        check_matplotlib_support(caller)
        _check_kind(estimator, ["score_samples", "offset_"], caller,
                    "an outlier detector such as AutoencoderAnomalyDetector (an estimator "
                    "with score_samples and offset_)")
        scores = np.asarray(estimator.score_samples(X), dtype=np.float64)
        display = cls(scores=scores, threshold=float(estimator.offset_),
                      y=_check_labels(y, scores.shape[0], caller),
                      estimator_name=type(estimator).__name__)
        return display.plot(ax=ax, bins=bins, name=name, **kwargs)


# ------------------------------------------------------------ feature errors
class FeatureErrorDisplay:
    """Bar chart of one sample's reconstruction error per feature.

    Parameters
    ----------
    errors : array-like of shape (n_features,)
        The sample's error in each feature.
    feature_names : array-like of str of shape (n_features,)
        The features' names.
    estimator_name : str or None, default=None
        Name of the estimator, used as the title.

    Attributes
    ----------
    bars_ : matplotlib BarContainer
        The bars, in the order drawn.
    shown_ : ndarray of int
        Indices of the features drawn, in the order drawn.
    ax_ : matplotlib Axes
        The Axes.
    figure_ : matplotlib Figure
        The figure.
    """

    def __init__(self, *, errors, feature_names, estimator_name=None):
        self.errors = errors
        self.feature_names = feature_names
        self.estimator_name = estimator_name

    def plot(self, ax=None, *, top_k=None, name=None, **kwargs):
        """Draw the bars.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Axes to draw on; None creates a figure.
        top_k : int or None, default=None
            Draw only the ``top_k`` features of largest error, largest first
            (all features when there are fewer); None draws every feature in
            its order.
        name : str or None, default=None
            Title; None uses ``estimator_name``.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.bar`.

        Returns
        -------
        display : FeatureErrorDisplay
            The Display, with the drawn objects as attributes.
        """
        caller = f"{type(self).__name__}.plot"
        errors = np.asarray(self.errors, dtype=np.float64).ravel()
        names = np.asarray(self.feature_names, dtype=object).ravel()
        if names.shape != errors.shape:
            raise ValueError(f"{caller}: {names.shape[0]} feature names for "
                             f"{errors.shape[0]} errors.")
        if top_k is None:
            shown = np.arange(errors.shape[0])
        else:
            top_k = _check_int(top_k, "top_k", caller)
            shown = np.argsort(-errors, kind="stable")[:top_k]
        ax = _new_axes(ax, caller)
        positions = np.arange(shown.shape[0])
        self.bars_ = ax.bar(positions, errors[shown], **kwargs)
        ax.set_xticks(positions, labels=[str(n) for n in names[shown]], rotation=90)
        ax.set_xlabel("Feature")
        ax.set_ylabel("Reconstruction error")
        name = self.estimator_name if name is None else name
        if name is not None:
            ax.set_title(name)
        self.shown_ = shown
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, X, *, sample=0, top_k=None, ax=None, name=None,
                       **kwargs):
        """Plot the per-feature errors of one row of X.

        Parameters
        ----------
        estimator : estimator instance
            A fitted :class:`~skae.AutoencoderAnomalyDetector` (an estimator
            with ``feature_errors``). The bars are labelled with
            ``get_feature_names_out()``: the column names when it was fitted
            on a DataFrame, else ``x0, x1, ...``.
        X : array-like of shape (n_samples, n_features)
            Data.
        sample : int, default=0
            Position of the row of X to explain (negative counts from the
            end).
        top_k : int or None, default=None
            Draw only the ``top_k`` features of largest error, largest first;
            None draws every feature.
        ax : matplotlib Axes or None, default=None
            Axes to draw on; None creates a figure.
        name : str or None, default=None
            Title; None uses the estimator's class name and the sample.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.bar`.

        Returns
        -------
        display : FeatureErrorDisplay
            The Display, with the drawn objects as attributes.
        """
        caller = f"{cls.__name__}.from_estimator"
        check_matplotlib_support(caller)
        _check_kind(estimator, ["feature_errors"], caller,
                    "an AutoencoderAnomalyDetector (an estimator with feature_errors)")
        n = _num_samples(X)
        if (isinstance(sample, (bool, np.bool_)) or not isinstance(sample, Integral)
                or not -n <= sample < n):
            raise ValueError(f"The 'sample' parameter of {caller} must be an int in "
                             f"[-{n}, {n - 1}] (a row of X). Got {sample!r} instead.")
        errors = _as_2d(estimator.feature_errors(_safe_indexing(X, [int(sample)])))[0]
        if hasattr(estimator, "get_feature_names_out"):
            names = estimator.get_feature_names_out()
        else:
            names = np.asarray([f"x{i}" for i in range(errors.shape[0])], dtype=object)
        display = cls(errors=errors, feature_names=names,
                      estimator_name=f"{type(estimator).__name__}, sample {int(sample)}")
        return display.plot(ax=ax, top_k=top_k, name=name, **kwargs)
