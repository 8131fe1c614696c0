"""Autoencoder as a scikit-learn outlier detector."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import OutlierMixin

from . import _distributed, _inference, _neighbors
from ._base import _BaseAutoencoder, _ReconstructMixin
from ._blocks import BlockReader, is_dask_array
from ._compat import Interval, StrOptions, _fit_context
from ._data import dense_rows
from ._output import _FeatureOutputMixin
from ._weights import weighted_quantile

#: Widest data for which ``residual_covariance="auto"`` is ``"full"``: its
#: whitening matrix holds ``n_features ** 2`` floats (32 MiB at 2048).
AUTO_FULL_RESIDUAL_MAX_FEATURES = 2048

#: Largest float64 copy of the training residuals the full residual
#: covariance and ``n_neighbors`` keep between their passes (in-memory data
#: only); beyond it, or for out-of-core data, the network runs again for
#: each pass.
RESIDUAL_CACHE_BYTES = 256 * 2**20


def _resolved_code_distance(code_distance, kind):
    """``code_distance`` with ``"auto"`` resolved for a network of ``kind``."""
    if code_distance == "auto":
        return "add" if kind == "mlp" else None
    return code_distance


class _OutlierScoresMixin:
    """``decision_function`` and ``predict`` from ``score_samples`` and ``offset_``.

    For the detectors: each has ``score_samples``, ``offset_`` and ``_lazy``.
    """

    def decision_function(self, X):
        """Shifted score: negative for outliers, positive for inliers.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
            A lazy Dask array, computed block by block, for a Dask ``X``.
        """
        if is_dask_array(X):
            return self._lazy("decision_function", X)
        scores = self.score_samples(X)
        # in float64, so that no finite offset_ overflows float32 scores;
        # -inf scores stay -inf
        with np.errstate(over="ignore"):
            return (scores.astype(np.float64) - self.offset_).astype(scores.dtype)

    def predict(self, X):
        """Label each sample as inlier (+1) or outlier (-1).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to label.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 where ``decision_function(X) < 0``, else +1.
            A lazy Dask array, computed block by block, for a Dask ``X``.
        """
        if is_dask_array(X):
            return self._lazy("predict", X, dtype=np.int64)
        decision = self.decision_function(X)
        return np.where(decision >= 0, 1, -1)


class AutoencoderAnomalyDetector(
    _OutlierScoresMixin, _FeatureOutputMixin, OutlierMixin, _ReconstructMixin, _BaseAutoencoder
):
    """Anomaly detector scoring samples by their autoencoder reconstruction error.

    An autoencoder learns to reconstruct the (mostly normal) training data;
    samples it reconstructs badly are anomalous. Follows scikit-learn's outlier
    conventions, as :class:`~sklearn.ensemble.IsolationForest` does:
    ``score_samples`` is higher for more normal samples, ``decision_function``
    is negative for outliers, and ``predict`` returns +1 for inliers and -1 for
    outliers. :meth:`feature_errors` tells which features make a sample
    anomalous.

    Parameters
    ----------
    n_components : "auto", int or None, default="auto"
        Size of the code (bottleneck). ``"auto"`` gives ``min(8, n_features -
        1)`` (at least 1): 8, or one fewer than the number of features on data
        with at most 8 features, so that the code stays narrower than the
        input; it is resolved from the number of features at ``fit``. See
        the anomaly detection guide for how this default was chosen.
        With ``architecture="conv"`` and ``hidden_layer_sizes=()``, None makes
        the code the last convolutional stage's feature map itself (no dense
        layer; its size is ``channels * height * width`` of that stage,
        flattened channels first): a spatial code, as fully convolutional
        autoencoders have.

    contamination : "auto" or float, default=0.1
        Expected share of outliers in the training data, in (0, 0.5]: the
        threshold ``offset_`` is set so that this share of training samples is
        flagged. With ``"auto"``, no share is assumed: a sample is flagged when
        the logarithm of its reconstruction error exceeds the median over the
        training data by more than 3 scaled median absolute deviations (a robust
        "3 sigma" rule); with ``variational=True``, when its negative
        log-likelihood does (already a log scale). Only ``predict`` and
        ``decision_function`` depend on it, not ``score_samples``.

    trim_fraction : float, default=0.3
        Robust training: in every batch, the ``trim_fraction`` of samples with
        the largest reconstruction error are left out of the loss (a trimmed
        mean), so that anomalies in the training data are not learned. In
        [0, 1); 0 trains on every sample.

    relative_errors : bool, default=False
        Measure each feature's reconstruction error relative to that
        feature's mean error over the training data
        (``feature_error_scale_``), so that the features the autoencoder
        reconstructs poorly even on normal data do not dominate the score,
        and a feature that is usually reconstructed well counts fully when it
        is not. Changes ``score_samples``, ``decision_function``, ``predict``
        and ``feature_errors``; training is the same. Suited to novelty
        detection (training data without anomalies), where it scored higher
        on ADBench; on contaminated training data it scored lower (see the
        anomaly detection guide). Needs ``variational=False``.

    code_distance : {"auto", "add", "multiply"} or None, default="auto"
        Also score how unusual a sample's code is. An autoencoder
        reconstructs well a sample that is extreme along the directions its
        code keeps; such a sample stands out by its code instead. The score
        then combines ``m``, the squared Mahalanobis distance of the
        sample's code to the mean of the training codes under their
        covariance (``code_mean_``, ``code_whitening_``), and ``r``, the
        sample's reconstruction error divided by the mean error of the
        training samples (``error_scale_``) with
        ``residual_covariance="spherical"``, or its residual's squared
        Mahalanobis distance divided by ``n_features`` with ``"full"`` (the
        default where it may be used). ``"add"``: ``score_samples =
        -(n_features * r + code_weight * m)``; with ``code_weight=1`` this
        is, up to a constant, twice the negative log-likelihood of a
        Gaussian on the code plus Gaussian noise around the reconstruction
        (isotropic with ``"spherical"``, as in probabilistic PCA).
        ``"multiply"``: ``score_samples = -r * m``. The statistics are
        those of the training samples left once the ``trim_fraction`` with
        the largest errors are set aside (as the trimmed loss does), so that
        anomalies in the training data do not widen them. None: the
        reconstruction error alone. ``"auto"``: ``"add"`` for the MLP
        network, the choice of the out-of-sample selection on ADBench's
        tabular data (see the anomaly detection guide); None for the
        variational kind and for ``architecture="conv"``, whose image codes
        (often wider than the training set is large, and never measured
        with the distance) keep the reconstruction error.
        :meth:`feature_errors` is unchanged (it no longer averages to
        ``-score_samples``). ``"add"`` and
        ``"multiply"`` need ``variational=False``, whose likelihood already
        scores the code.

    code_weight : float, default=1.0
        Weight of the code distance in ``code_distance="add"``:
        ``score_samples = -(n_features * r + code_weight * m)``. 1 is the
        Gaussian likelihood (see ``code_distance`` and
        ``residual_covariance``), the choice of the out-of-sample selection
        on ADBench's tabular data (see the anomaly detection guide); a
        larger weight trusts the code's distance more than the
        reconstruction error. Positive. Not used by ``"multiply"`` (a factor
        does not change its ranking) nor without the code distance.

    std_offset : "auto" or float, default="auto"
        With ``standardize=True``, each feature is divided by its standard
        deviation plus ``std_offset`` times a share of its range: ``std_j +
        std_offset * rho * (max_j - min_j)`` over the training data, where
        ``rho`` is the median over the features of ``std_k / (max_k -
        min_k)``. A feature that is near-constant but for a few extreme
        values (a standard deviation small for its range) then no longer
        weighs far more than the others in the reconstruction error, while
        the scale still follows each feature's own units (multiplying a
        column by a constant leaves the scores unchanged). 0 is plain
        standardization. ``"auto"``: 2.0 for the MLP network, the choice of
        the out-of-sample selection on ADBench's tabular data (see the
        anomaly detection guide); 0 for the variational kind and for
        ``architecture="conv"``, where it was not measured. Constant
        features keep scale 1. Ignored with ``standardize=False``.

    residual_covariance : {"auto", "full", "spherical"}, default="auto"
        How the score weighs the reconstruction residual (the reconstruction
        minus the standardized input) when it uses the code distance.
        ``"spherical"``: every feature's squared residual alike, ``n_features
        * r`` with ``r`` the mean squared error over the mean of the
        training samples' (isotropic Gaussian noise, as in probabilistic
        PCA). ``"full"``: the squared Mahalanobis distance of the residual
        under the mean and covariance of the training samples' residuals
        (``residual_mean_``, ``residual_whitening_``), the covariance shrunk
        towards a multiple of the identity by Ledoit and Wolf's formula, so
        that residuals which usually go together (or a feature that is
        always reconstructed poorly) count less than a residual normal data
        does not show. With ``code_weight=1`` the ``"add"`` score is then,
        up to a constant, twice the negative log-likelihood of a Gaussian on
        the code plus Gaussian noise with that covariance around the
        reconstruction. The statistics are those of the training samples the
        code statistics keep. ``"full"`` needs the code distance,
        ``loss="mse"`` and ``relative_errors=False`` (it already scales each
        feature's residual); it holds an ``n_features`` by ``n_features``
        matrix, and ``fit`` a float64 copy of the training residuals (up to
        256 MiB; beyond, and for out-of-core data, the network runs twice
        more over the training data instead).
        ``"auto"``: ``"full"`` where it may be used and the data has at most
        2048 features (the choice of the out-of-sample selection on
        ADBench's tabular data, see the anomaly detection guide), else
        ``"spherical"``.

    n_neighbors : int or None, default=None
        None: the ``"add"`` score above, the squared length of a sample's
        *embedding*, its whitened residual (``(e - residual_mean_) @
        residual_whitening_``, or with the spherical residual ``e`` over
        the square root of its usual size) next to its whitened code
        (``(z - code_mean_) @ code_whitening_``) times
        ``sqrt(code_weight)``: the squared distance to the centre of a
        Gaussian model of the training samples. An int ``k``: the squared
        Euclidean distance of the embedding to the ``k``-th nearest
        embedding of the training samples the statistics keep
        (``reference_embedding_``), a nearest-neighbour density in place of
        the Gaussian; sample weights count as frequencies there too. Suits
        clean training data (novelty detection; see the anomaly detection
        guide, where ``n_neighbors=1`` is part of the novelty setting);
        with anomalies in the training data, repeated or clustered ones
        are their own neighbours. The training scores that set ``offset_``
        leave each training sample out of its own neighbours (one unit of
        its weight). Needs ``code_distance="add"`` (or ``"auto"`` where it
        is ``"add"``) and ``loss="mse"``; keeps a float64 copy of the
        embeddings (``n_features + n_components`` numbers per kept training
        sample), and scoring compares every sample with every one of them.
        ``fit`` embeds the training samples from the residuals and codes of
        its first pass of the network, kept in float64 as the full residual
        covariance keeps them (up to 256 MiB; beyond, and for out-of-core
        data, the network runs once more).

    hidden_layer_sizes : tuple of int or int, default=(64,)
        Widths of the encoder's hidden layers, input side first. The decoder
        mirrors them. A single int means one hidden layer; ``()`` gives a
        shallow autoencoder (one linear map each way). Widths may exceed
        ``n_features`` (overcomplete).

    activation : {"relu", "tanh", "logistic", "sigmoid", "identity", "leaky_relu", "elu", "gelu"}, default="tanh"
        Activation of the hidden layers. ``"logistic"`` and ``"sigmoid"`` are
        the same function.

    latent_activation : {"relu", "tanh", "logistic", "sigmoid", "identity", "leaky_relu", "elu", "gelu"}, default="identity"
        Activation of the code (bottleneck) layer.

    output_activation : {"relu", "tanh", "logistic", "sigmoid", "identity", "leaky_relu", "elu", "gelu"}, default="identity"
        Activation of the reconstruction. Use ``"sigmoid"`` (or
        ``"logistic"``) for data in [0, 1]; ``loss="bce"`` requires it.

    loss : {"mse", "bce"}, default="mse"
        Reconstruction error per element: squared error, or binary
        cross-entropy for data in [0, 1]. Training minimizes its mean over
        samples and features.

    solver : {"adam", "adamw", "sgd"}, default="adam"
        Optimizer. ``"adamw"`` applies ``alpha`` as decoupled weight decay;
        ``"sgd"`` uses ``momentum`` and ``nesterovs_momentum``.

    alpha : float, default=0.0
        Strength of the L2 penalty on the weights (not the biases): the
        gradient of ``0.5 * alpha * ||W||^2`` is added to each update.

    batch_size : int, default=512
        Minibatch size; clipped to the number of training samples.

    learning_rate : {"constant", "adaptive"}, default="constant"
        Learning-rate schedule. ``"adaptive"`` divides the learning rate by 5
        each time training would stop for lack of progress (see ``tol`` and
        ``n_iter_no_change``), and stops once it falls below 1e-6, as
        ``MLPRegressor`` does for ``solver="sgd"``.

    learning_rate_init : float, default=3e-3
        Step size of the optimizer.

    max_iter : int, default=20
        Training budget: the number of epochs (passes over the data) per call
        to ``fit``; ``partial_fit`` runs one epoch. The detector is trained for
        a fixed number of epochs by design: a short training on the trimmed
        loss (see ``trim_fraction``) keeps the anomalies in the training data
        from being learned. Reaching ``max_iter`` is therefore the normal end of
        its training and emits no
        :class:`~sklearn.exceptions.ConvergenceWarning`. Training stops earlier
        when the loss stops improving (see ``tol`` and ``n_iter_no_change``).

    shuffle : bool, default=True
        Whether to reshuffle the samples every epoch.

    random_state : int, RandomState instance or None, default=None
        Controls weight initialization, shuffling and the validation split.
        Pass an int for reproducible results: on the CPU, the same int and data
        give identical models. No global random state is touched.

    tol : float, default=1e-4
        Minimum improvement of the training loss (or of the validation score
        with ``early_stopping``) that counts as progress.

    verbose : bool, default=False
        Show a progress bar with the running loss.

    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit`` call instead
        of starting anew (with a fresh optimizer and the same history).
        Changing a parameter that defines the network (``n_components``,
        ``hidden_layer_sizes``, ``activation``, ``latent_activation``,
        ``output_activation``, ``standardize``, ``std_offset``,
        ``tied_weights``, ``variational``; and ``loss`` of a variational model) or the
        number of features between warm-started fits (or between
        ``partial_fit`` calls) raises ValueError; set ``warm_start=False`` and
        call ``fit`` to build a new network.

    momentum : float, default=0.9
        Momentum for ``solver="sgd"``, in [0, 1].

    nesterovs_momentum : bool, default=True
        Whether ``solver="sgd"`` uses Nesterov's momentum.

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the samples, stop when the
        validation score has not improved by ``tol`` for ``n_iter_no_change``
        epochs, and restore the weights of the best epoch of that call. Warm
        starts hold out the same rows as the first fit.

    validation_fraction : float, default=0.1
        Share of the samples held out with ``early_stopping``, in (0, 1).

    beta_1 : float, default=0.9
        Decay rate of Adam's first moment estimates, in [0, 1).

    beta_2 : float, default=0.999
        Decay rate of Adam's second moment estimates, in [0, 1).

    epsilon : float, default=1e-8
        Adam's numerical stability constant.

    n_iter_no_change : int, default=10
        Epochs without improvement of ``tol`` before training stops.

    standardize : bool, default=True
        Standardize each feature inside the network (centre it, and divide
        it by its standard deviation plus the share of its range that
        ``std_offset`` sets), and measure reconstruction errors in those
        units, so that no feature dominates the error through its scale
        alone. The statistics (mean, standard deviation and range) are
        computed in float64 from the data of the first ``fit`` (the call
        that builds the network; warm starts and
        ``partial_fit`` keep them). Inputs are centred and scaled in float64
        before any cast to float32, so a feature with a large offset and a
        small spread keeps its information. A feature whose variance is within
        the rounding error of its float64 computation relative to its
        magnitude, ``var <= n * eps * var + (n * eps * |mean|) ** 2`` with
        ``n`` the number of samples and ``eps`` float64's machine epsilon
        (the bound :class:`~sklearn.preprocessing.StandardScaler` uses), is
        treated as constant (scale 1). ``reconstruct`` and ``module_`` still
        take and return data in the original units.

    sparsity : {"l1", "kl"} or None, default=None
        Sparsity penalty on the activations of ``sparsity_layers``: ``"l1"``
        adds ``sparsity_weight * (1/m) sum_i sum_j |a_ij|``; ``"kl"`` adds
        ``sparsity_weight * sum_j KL(sparsity_target || mean_i a_ij)`` and needs
        activations in (0, 1) (``"sigmoid"``) on those layers. None adds no
        penalty.

    sparsity_weight : float, default=1e-3
        Weight λ of the sparsity penalty.

    sparsity_target : float, default=0.05
        Target mean activation ρ of each unit with ``sparsity="kl"``, in
        (0, 1).

    sparsity_layers : "code", "all" or sequence of int, default="code"
        Encoder layers the sparsity penalty acts on: ``"code"``, the code
        (bottleneck); ``"all"``, every encoder layer; or a non-empty sequence
        of distinct int layer indices (0 = first hidden layer, -1 = the code;
        bools are rejected).

    noise : {"gaussian", "masking", "salt_and_pepper", "block", "watermark"} or None, \
            default=None
        Denoising: corrupt the input during training only, while the target
        stays clean. ``"gaussian"`` adds noise of standard deviation
        ``noise_level`` (in standard deviations of each feature when
        ``standardize=True``); ``"masking"`` sets a random fraction
        ``noise_level`` of the entries to 0 (to the feature's mean when
        ``standardize=True``); ``"salt_and_pepper"`` sets a fraction
        ``noise_level`` to the feature's training minimum or maximum. The
        image corruptions need ``image_shape``: ``"block"`` sets one random
        rectangle covering the fraction ``noise_level`` of each image's area
        to 0 (all channels); ``"watermark"`` blends a text overlay, at a
        random position per image, towards the brightest value of the
        training data with opacity ``noise_level``. None trains without
        corruption.

    noise_level : float, default=0.1
        Noise standard deviation, or fraction of corrupted entries (in [0, 1]).

    contractive_weight : float, default=0.0
        Weight λ of the contractive penalty ``λ (1/m) sum_i ||dh/dx(x_i)||_F^2``,
        the squared Frobenius norm of the encoder's Jacobian (computed exactly,
        with respect to the standardized input when ``standardize=True``).

    pretraining : {"greedy"} or None, default=None
        ``"greedy"``: before training the whole network, train each encoder
        layer with its mirrored decoder layer as a shallow autoencoder on the
        previous layer's codes (a stacked autoencoder), then fine-tune
        everything. Applies when ``fit`` builds a new network. None trains the
        whole network from its initialization.

    pretraining_max_iter : int or None, default=None
        Epochs per pretraining stage; None means ``max_iter``.

    tied_weights : bool, default=False
        Use the transposed encoder weights as decoder weights (the decoder
        keeps its own biases).

    variational : bool, default=False
        Train a variational autoencoder (VAE): the encoder outputs the mean
        and standard deviation of a diagonal Gaussian posterior ``q(z | x)``, codes
        are drawn from it with the reparameterization ``z = mean + sigma *
        eps``, and training maximizes the evidence lower bound (ELBO)
        ``E_q[log p(x | z)] - kl_weight * KL(q(z | x) || N(0, I))``. The
        likelihood ``p(x | z)`` follows ``loss``: Bernoulli for ``"bce"``
        (data in [0, 1]), Gaussian for ``"mse"`` with one learned variance
        shared by all features (in standardized units when
        ``standardize=True``). Needs ``latent_activation="identity"``,
        ``tied_weights=False`` and ``pretraining=None``. See the user guide's
        variational section.

    kl_weight : float, default=1.0
        Weight β of the KL term (β-VAE): 1 gives the ELBO, larger values
        favour disentangled, smoother codes, smaller ones sharper
        reconstructions. Used with ``variational=True``.

    kl_warmup : int, default=0
        KL warm-up: in the model's epoch ``t`` (counted from 1 over all its
        training) the KL weight is ``kl_weight * min(1, t / kl_warmup)``, a
        linear ramp that helps avoid posterior collapse; 0 uses
        ``kl_weight`` from the start. Training does not stop for lack of
        progress during the ramp, and ``best_loss_`` counts from its end.
        Used with ``variational=True``.

    n_importance_samples : int, default=100
        Number ``K`` of importance samples of the log-likelihood estimate
        with ``variational=True`` (``score_samples``): ``log (1/K) sum_k
        p(x, z_k) / q(z_k | x)``, a lower bound on ``log p(x)`` that tightens
        as ``K`` grows (``K=1`` is the ELBO). Inference cost grows linearly
        with ``K``.

    architecture : {"mlp", "conv"}, default="mlp"
        ``"mlp"``: dense layers only. ``"conv"``: convolutional stages before
        the dense encoder layers and after the dense decoder layers (needs
        ``image_shape``): each encoder stage is a ``kernel_size`` convolution
        with stride 2 (halving height and width, rounding up) followed by
        ``activation``, with ``conv_channels`` output channels; the decoder
        mirrors them with transposed convolutions that restore the exact
        image shape. ``hidden_layer_sizes`` then lists the dense layers
        between the last convolutional stage and the code.

    image_shape : tuple of int or None, default=None
        ``(height, width, channels)`` (or ``(height, width)`` for one
        channel) of the image each row of X holds, laid out as
        ``images.reshape(n_samples, -1)`` lays out a NumPy batch of shape
        ``(n_samples, height, width, channels)``: row-major, channels last.
        One entry may be -1, inferred from the number of features. Needed by
        ``architecture="conv"`` and the image corruptions.

    conv_channels : int or tuple of int, default=(16, 32)
        Output channels of each convolutional encoder stage (the decoder
        uses them in reverse). Used with ``architecture="conv"``.

    kernel_size : int, default=3
        Height and width of the convolution kernels; odd. Used with
        ``architecture="conv"``.

    device : "auto", "cpu", "cuda", "cuda:N" or torch.device, default="auto"
        Where to train: ``"auto"`` picks CUDA when available and the CPU
        otherwise; ``"cpu"``, ``"cuda"`` and ``"cuda:N"`` (e.g. ``"cuda:1"``)
        name a device, as does a :class:`torch.device` of type cpu or cuda.
        Other values raise ValueError. On a GPU the training data is copied to
        the device once when it takes at most half of the device's free
        memory; larger data stays in host memory and is streamed to the device
        batch by batch through pinned buffers. A fitted model pickles and
        unpickles on a machine without a GPU.

    precision : {"float32", "tf32", "bfloat16"}, default="float32"
        Arithmetic used in training. ``"float32"``: full single precision.
        ``"tf32"``: matrix products on CUDA GPUs that have TensorFloat-32
        units (Ampere and later) use it; the same as ``"float32"`` on the CPU.
        ``"bfloat16"``: mixed precision (``torch.autocast``): matrix products
        in bfloat16, weights, optimizer and loss in float32; fastest on recent
        GPUs, slower on most CPUs. Inference always runs in the input's dtype.

    Attributes
    ----------
    offset_ : float
        Threshold on ``score_samples``: ``decision_function = score_samples -
        offset_``.

    feature_error_scale_ : ndarray of shape (`n_features_in_`,) or None
        With ``relative_errors=True``, each feature's mean reconstruction
        error over the training data of the last ``fit`` or ``partial_fit``
        (weighted by ``sample_weight``), by which that feature's errors are
        divided; floored at ``1e-6`` times its mean over the features and at
        ``1e-12``, so that a feature reconstructed perfectly in training
        still gives finite relative errors. None with ``relative_errors=False``.

    error_scale_ : float or None
        When the scores use the code distance (``code_distance`` is
        ``"add"`` or ``"multiply"``, or ``"auto"`` for the MLP network), the
        mean reconstruction error (the mean over features, as
        ``-score_samples`` is without it) of the training samples the
        statistics keep, floored at ``1e-12``. Else None.

    code_mean_ : ndarray of shape (n_components,) or None
        When the scores use the code distance, the mean code of those training samples
        (weighted by ``sample_weight``). Else None.

    code_whitening_ : ndarray of shape (n_components, n_components) or None
        When the scores use the code distance, the matrix ``W`` with which the squared
        Mahalanobis distance of a code ``z`` is ``||(z - code_mean_) @ W||²``:
        the inverse square root ``V diag(1 / sqrt(λ)) Vᵀ`` of the codes'
        covariance (eigenvalues ``λ``, eigenvectors ``V``), with ``λ``
        floored at ``1e-6`` times their mean and at ``1e-12`` (a code unit
        that never varies in training still gives finite distances). Else
        None.

    residual_mean_ : ndarray of shape (n_features,) or None
        With the full residual covariance (see ``residual_covariance``), the
        mean residual of the training samples the statistics keep (weighted
        by ``sample_weight``). Else None.

    residual_whitening_ : ndarray of shape (n_features, n_features) or None
        With the full residual covariance, the upper triangular matrix ``W``
        with which the squared Mahalanobis distance of a residual ``e`` is
        ``||(e - residual_mean_) @ W||²``: ``W @ W.T`` is the inverse of the
        residuals' shrunk covariance, whose diagonal is raised by ``1e-6``
        times its mean (``1e-12`` at least) so that it is invertible. Else
        None.

    residual_shrinkage_ : float or None
        With the full residual covariance, the Ledoit-Wolf shrinkage ``s``
        of that covariance: ``(1 - s) * C + s * trace(C) / n_features * I``,
        ``C`` the empirical covariance. Else None.

    n_neighbors_ : int or None
        ``n_neighbors`` of the last ``fit`` or ``partial_fit``: the scores
        are squared distances to the ``n_neighbors_``-th nearest training
        embedding. None when they are the Gaussian score.

    reference_embedding_ : ndarray of shape (n_reference, n_features + n_components) or None
        With ``n_neighbors``, the embeddings (see ``n_neighbors``) of the
        training samples the statistics keep, in float64: those of every
        rank's rows under ``torchrun``, rank 0's first. Else None.

    reference_weights_ : ndarray of shape (n_reference,) or None
        With ``n_neighbors``, the sample weights of those rows (positive),
        or None when they all weigh 1.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit. Defined only when ``X`` has feature
        names that are all strings.

    module_ : torch.nn.Module
        The fitted network. ``module_.encoder`` maps inputs to codes and
        ``module_.decoder`` maps codes back; both are plain
        ``torch.nn.Sequential`` modules, reusable on their own.

    n_iter_ : int
        Number of epochs run (accumulated over warm starts and partial fits).

    loss_curve_ : list of float
        Mean training loss per epoch. With ``variational=True``, the
        negative ELBO (with the epoch's KL weight) in nats per sample.

    loss_terms_ : dict of str to list of float
        Mean of each term of the training loss per epoch (``"reconstruction"``,
        and one entry per regularizer). Every list has ``n_iter_`` values: a
        term is 0 in the epochs it was not part of the loss. With
        ``variational=True``, ``"reconstruction"`` is the negative
        log-likelihood ``-log p(x | z)`` and ``"kl"`` the weighted KL term, in
        nats per sample.

    best_loss_ : float
        Lowest training loss reached.

    validation_scores_ : list of float or None
        With ``early_stopping``, the score on the held-out samples per epoch:
        the negative mean reconstruction error (higher is better); with
        ``variational=True``, the ELBO in nats per sample (one code drawn per
        sample, the same draws every epoch). Else None.

    best_validation_score_ : float or None
        Best of ``validation_scores_``, whose weights were restored.

    pretraining_loss_curves_ : list of list of float or None
        With ``pretraining="greedy"``, the training loss per epoch of each
        pretraining stage, input side first. Else None.

    latent_kl_ : ndarray of shape (n_components,) or None
        With ``variational=True``, each latent unit's KL divergence from the
        prior, ``KL(q(z_k | x) || N(0, 1))``, averaged over the samples of the
        last ``fit``/``partial_fit`` call, in nats: units near 0 carry no
        information (inactive). When every unit is below 0.01 nats after
        ``fit``, a :class:`~skae.PosteriorCollapseWarning` is emitted. Else
        None.

    See Also
    --------
    sklearn.ensemble.IsolationForest : Tree-based anomaly detector.
    AutoencoderTransformer : The same network as a transformer.

    Notes
    -----
    Scale: with the default ``standardize=True`` every feature is standardized
    inside the network with the training mean and standard deviation (plus a
    share of its range, see ``std_offset``), and the reconstruction error is
    measured in those units, so a feature with large values cannot dominate
    the score. Features that should count more or
    less can still be rescaled by the user before fitting with
    ``standardize=False``. Heavy-tailed features are best transformed first
    (e.g. ``QuantileTransformer`` or a log).

    Non-finite scores: NaN or infinite input raises ValueError. A finite sample
    whose reconstruction error overflows (e.g. values near float32's largest
    value in float32 input) gets ``score_samples = -inf``, the most anomalous
    score, ``decision_function = -inf`` and ``predict = -1``. No method returns
    NaN.

    Failures: ``fit`` and ``partial_fit`` are transactional. If they raise
    (e.g. FloatingPointError when the loss, the weights or the optimizer state
    become non-finite), the estimator is left exactly as it was before the
    call, and unfitted after a failed first fit. Ctrl-C (KeyboardInterrupt)
    stops the whole fit, greedy pretraining included, with a UserWarning, and
    keeps the weights reached so far (with ``early_stopping``, those of the
    best epoch). Pickling keeps the optimizer state, so ``partial_fit`` on an
    unpickled estimator resumes exactly where training stopped.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoencoderAnomalyDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(500, 5))
    >>> X[:5] += 8  # five outliers
    >>> det = AutoencoderAnomalyDetector(n_components=2, contamination=0.01,
    ...                                  max_iter=20, random_state=0).fit(X)
    >>> det.predict(X[:5])
    array([-1, -1, -1, -1, -1])
    """

    _parameter_constraints: dict = {
        **_BaseAutoencoder._parameter_constraints,
        "n_components": [*_BaseAutoencoder._parameter_constraints["n_components"],
                         StrOptions({"auto"})],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "trim_fraction": [Interval(Real, 0, 1, closed="left")],
        "relative_errors": ["boolean"],
        "code_distance": [StrOptions({"auto", "add", "multiply"}), None],
        "code_weight": [Interval(Real, 0, None, closed="neither")],
        "std_offset": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "residual_covariance": [StrOptions({"auto", "full", "spherical"})],
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), None],
    }

    # The detector trains on a fixed budget of epochs by design: reaching
    # max_iter is the normal end of its training.
    _warn_on_max_iter = False

    def __init__(
        self,
        n_components="auto",
        *,
        contamination=0.1,
        trim_fraction=0.3,
        relative_errors=False,
        code_distance="auto",
        code_weight=1.0,
        std_offset="auto",
        residual_covariance="auto",
        n_neighbors=None,
        hidden_layer_sizes=(64,),
        activation="tanh",
        latent_activation="identity",
        output_activation="identity",
        loss="mse",
        solver="adam",
        alpha=0.0,
        batch_size=512,
        learning_rate="constant",
        learning_rate_init=3e-3,
        max_iter=20,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        standardize=True,
        sparsity=None,
        sparsity_weight=1e-3,
        sparsity_target=0.05,
        sparsity_layers="code",
        noise=None,
        noise_level=0.1,
        contractive_weight=0.0,
        pretraining=None,
        pretraining_max_iter=None,
        tied_weights=False,
        variational=False,
        kl_weight=1.0,
        kl_warmup=0,
        n_importance_samples=100,
        architecture="mlp",
        image_shape=None,
        conv_channels=(16, 32),
        kernel_size=3,
        device="auto",
        precision="float32",
    ):
        super().__init__(
            n_components,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            latent_activation=latent_activation,
            output_activation=output_activation,
            loss=loss,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            standardize=standardize,
            sparsity=sparsity,
            sparsity_weight=sparsity_weight,
            sparsity_target=sparsity_target,
            sparsity_layers=sparsity_layers,
            noise=noise,
            noise_level=noise_level,
            contractive_weight=contractive_weight,
            pretraining=pretraining,
            pretraining_max_iter=pretraining_max_iter,
            tied_weights=tied_weights,
            variational=variational,
            kl_weight=kl_weight,
            kl_warmup=kl_warmup,
            n_importance_samples=n_importance_samples,
            architecture=architecture,
            image_shape=image_shape,
            conv_channels=conv_channels,
            kernel_size=kernel_size,
            device=device,
            precision=precision,
        )
        self.contamination = contamination
        self.trim_fraction = trim_fraction
        self.relative_errors = relative_errors
        self.code_distance = code_distance
        self.code_weight = code_weight
        self.std_offset = std_offset
        self.residual_covariance = residual_covariance
        self.n_neighbors = n_neighbors

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Train the autoencoder on X and set the outlier threshold.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, assumed mostly normal; labels are not used.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights, as frequencies: a sample of weight ``k`` trains
            exactly as ``k`` copies of it would, one of weight 0 as if it
            were absent; None weights every sample 1. They weight the
            standardization statistics and every mean in the loss and, for the
            threshold, the training scores.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        with self._transaction():
            self._check_scoring()
            self._set_scores(*self._fit(X, sample_weight=sample_weight))
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Run one epoch of training on X, then reset the threshold on X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights, as frequencies: a sample of weight ``k`` trains
            exactly as ``k`` copies of it would, one of weight 0 as if it
            were absent; None weights every sample 1. They weight the
            standardization statistics and every mean in the loss and, for the
            threshold, the training scores.

        Returns
        -------
        self : object
            Updated estimator.
        """
        with self._transaction():
            self._check_scoring()
            self._set_scores(*self._fit(X, incremental=True, sample_weight=sample_weight))
        return self

    def _check_scoring(self):
        if self.relative_errors and self.variational:
            raise ValueError(
                f"{type(self).__name__}: relative_errors=True needs variational=False: a "
                "variational model scores by likelihood, whose per-feature terms are not "
                "errors to divide (they may be negative)."
            )
        if self.code_distance in ("add", "multiply") and self.variational:
            raise ValueError(
                f"{type(self).__name__}: code_distance={self.code_distance!r} needs "
                "variational=False: a variational model scores by likelihood, which already "
                "accounts for the code's (prior) likelihood."
            )
        kind = "variational" if self.variational else self.architecture
        code_distance = _resolved_code_distance(self.code_distance, kind)
        needs = {}
        if self.residual_covariance == "full":
            needs["residual_covariance='full'"] = [
                ("a code distance (code_distance='add' or 'multiply'; 'auto' is None for "
                 "the variational kind and architecture='conv')", code_distance is None),
                ("loss='mse' (a residual is a difference)", self.loss != "mse"),
                ("relative_errors=False (the covariance already scales each feature's "
                 "residual)", bool(self.relative_errors))]
        if self.n_neighbors is not None:
            needs[f"n_neighbors={self.n_neighbors!r}"] = [
                ("code_distance='add' (or 'auto' where it is 'add': not for the variational "
                 "kind nor architecture='conv'): the neighbours are those of the additive "
                 "score's embedding", code_distance != "add"),
                ("loss='mse' (the embedding holds residuals, a difference)", self.loss != "mse")]
        for setting, requirements in needs.items():
            for need, missing in requirements:
                if missing:
                    raise ValueError(f"{type(self).__name__}: {setting} needs {need}.")

    def _set_scores(self, X, spec, weights=None):
        """Set what scoring learns from the (validated) training data.

        The statistics of ``code_distance`` (and of the residuals, with the
        full residual covariance), then the threshold ``offset_`` from the
        training scores; in a distributed fit, every rank's rows count.
        """
        collective = _distributed.current(spec.device, spec.owner)
        self.feature_error_scale_ = None
        if self.relative_errors:
            self.feature_error_scale_ = self._feature_error_scale(X, spec, weights, collective)
        self._code_distance = _resolved_code_distance(self.code_distance, spec.kind)
        self._code_weight = float(self.code_weight)
        self.error_scale_ = self.code_mean_ = self.code_whitening_ = None
        self.residual_mean_ = self.residual_whitening_ = self.residual_shrinkage_ = None
        self.n_neighbors_ = self.reference_embedding_ = self.reference_weights_ = None
        self._residual_covariance = self.residual_covariance
        if self._residual_covariance == "auto":
            full = (self._code_distance is not None and spec.loss == "mse"
                    and not self.relative_errors
                    and spec.n_features <= AUTO_FULL_RESIDUAL_MAX_FEATURES)
            self._residual_covariance = "full" if full else "spherical"
        if self._code_distance is None:
            scores = self._score_samples(X)
        else:
            residuals = None  # in-memory data: kept from the first pass for the others
            if ((self._residual_covariance == "full" or self.n_neighbors is not None)
                    and not isinstance(X, BlockReader)
                    and X.shape[0] * X.shape[1] * 8 <= RESIDUAL_CACHE_BYTES):
                residuals = np.empty(X.shape, dtype=np.float64)
            errors, codes = self._errors_and_codes(X, residuals)
            kept = self._set_code_statistics(errors, codes, spec, weights, collective, X,
                                             residuals)
            if self.n_neighbors is not None:
                if residuals is None:  # a pass more
                    embeddings = np.concatenate(list(self._embeddings(X)))
                else:
                    embeddings = self._embed(residuals, codes)
                residuals = None  # freed before the distances
                scores = self._set_reference(embeddings, kept, collective, X.dtype)
            else:
                if self.residual_whitening_ is not None:  # the residuals' distances
                    if residuals is None:  # a pass more
                        errors, codes = self._errors_and_codes(X)
                    else:
                        errors = _inference.residual_distances(
                            residuals, self.residual_mean_, self.residual_whitening_)
                scores = self._combine(errors, codes, X.dtype)
        self.offset_ = outlier_threshold(scores, weights, spec.contamination, spec.variational,
                                         X.dtype, collective)

    def _set_code_statistics(self, errors, codes, spec, weights, collective, X, residuals):
        """Set ``error_scale_``, ``code_*`` and ``residual_*`` (see the class doc).

        Returns the rows' weights in them: their sample weights (1 without),
        0 for the rows left out.
        """
        errors = errors.astype(np.float64)
        w = np.ones(len(errors)) if weights is None else np.asarray(weights, np.float64)
        keep = np.isfinite(errors) & np.isfinite(codes).all(1)
        if spec.trim_fraction > 0:
            # the samples the trimmed loss keeps: all but the trim_fraction
            # (by weight) with the largest errors, over every rank's rows
            kept_errors, kept_weights = _every_rank(errors[keep], w[keep], collective)
            if kept_errors.size:
                cutoff = weighted_quantile(kept_errors, kept_weights, 1.0 - spec.trim_fraction)
                keep &= errors <= cutoff
        w = np.where(keep, w, 0.0)
        codes = np.where(keep[:, None], codes, 0.0)
        sums = np.concatenate([[w.sum(), w @ np.where(keep, errors, 0.0)], w @ codes])
        if collective is not None:
            sums = collective.all_reduce(sums)
        total = float(sums[0])
        if not total > 0:
            raise ValueError(
                f"{type(self).__name__}: code_distance={self._code_distance!r} needs training "
                "samples with a finite reconstruction error and code; every one overflows."
            )
        mean = sums[2:] / total
        centered = np.where(keep[:, None], codes - mean, 0.0)
        covariance = (centered * w[:, None]).T @ centered
        if collective is not None:
            covariance = collective.all_reduce(covariance)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance / total)
        eigenvalues = np.maximum(eigenvalues, max(1e-6 * eigenvalues.mean(), 1e-12))
        self.error_scale_ = max(float(sums[1]) / total, 1e-12)
        self.code_mean_ = mean
        self.code_whitening_ = (eigenvectors / np.sqrt(eigenvalues)) @ eigenvectors.T
        if self._residual_covariance == "full":
            sums = _inference.residual_moments(self.module_, X, spec.max_width, w, residuals)
            if collective is not None:
                sums = collective.all_reduce(sums)
            self.residual_mean_, self.residual_whitening_, self.residual_shrinkage_ = (
                _inference.residual_gaussian(sums, spec.n_features))
        return w

    def _set_reference(self, embeddings, kept, collective, dtype):
        """Set ``n_neighbors_`` and ``reference_*``; return the training scores.

        ``embeddings``: those of the training rows; ``kept``: each row's
        weight in the statistics (0 if left out). The scores are
        leave-one-out: a row's own embedding gives up one unit of its weight.
        """
        k = int(self.n_neighbors)
        mine = kept > 0
        reference, weights = embeddings[mine], kept[mine]
        first = 0  # this rank's first row in the reference
        if collective is not None:
            counts = collective.all_gather(np.array([[len(weights)]], dtype=np.float64))[:, 0]
            first = int(counts[:collective.rank].sum())
            gathered = collective.all_gather(np.column_stack([reference, weights]))
            reference, weights = gathered[:, :-1], gathered[:, -1]
        total = float(weights.sum())
        if not total >= k + 1:
            n = len(weights)
            raise ValueError(
                f"{type(self).__name__}: n_neighbors={k} needs the training samples the "
                f"statistics keep (after trim_fraction) to weigh n_neighbors + 1 = {k + 1} at "
                f"least, so that each has n_neighbors others; got {n} sample"
                f"{'' if n == 1 else 's'} of total weight {total:g}."
            )
        self.n_neighbors_ = k
        self.reference_embedding_ = np.ascontiguousarray(reference)
        self.reference_weights_ = None if (weights == 1.0).all() else weights
        own = np.full(len(kept), -1)
        own[mine] = first + np.arange(int(mine.sum()))
        return _negated(_neighbors.kth_distances(
            embeddings, self.reference_embedding_, self.reference_weights_, k, own), dtype)

    def _embedding_maps(self):
        """``(residual_mean, residual_map, code_mean, code_map)``: the embedding's maps.

        The embedding (see ``n_neighbors``) of a residual ``e`` and code
        ``z`` is ``[(e - residual_mean) @ residual_map, (z - code_mean) @
        code_map]``; with the spherical residual, ``residual_mean`` is None
        and ``residual_map`` the vector ``e`` is multiplied by, ``1 /
        sqrt(error_scale_ * feature_error_scale_)`` (the latter 1 without
        relative errors). ``code_map`` is ``code_whitening_`` times
        ``sqrt(code_weight)``.
        """
        code_map = self.code_whitening_ * np.sqrt(self._code_weight)
        if self.residual_whitening_ is not None:
            return self.residual_mean_, self.residual_whitening_, self.code_mean_, code_map
        scale = np.full(self._spec.n_features, self.error_scale_)
        if self.feature_error_scale_ is not None:
            scale = scale * self.feature_error_scale_
        return None, 1.0 / np.sqrt(scale), self.code_mean_, code_map

    def _embed(self, residuals, codes):
        """The embeddings (see ``n_neighbors``) of rows' residuals and codes, in float64."""
        residual_mean, residual_map, code_mean, code_map = self._embedding_maps()
        with np.errstate(over="ignore", invalid="ignore"):
            if residual_mean is None:
                white = residuals * residual_map
            else:
                white = _inference.whitened_residuals(residuals, residual_mean, residual_map)
            return np.hstack([white, (codes - code_mean) @ code_map])

    def _embeddings(self, X):
        """Yield the embeddings of X's rows, block by block, from the network."""
        spec = self._spec
        width = spec.n_features + spec.n_components
        n_reference = 0 if self.reference_embedding_ is None else len(self.reference_embedding_)
        step = _neighbors.block_rows(n_reference, width)
        for a in range(0, X.shape[0], step):
            rows = dense_rows(X, a, min(a + step, X.shape[0]))
            residuals = np.empty(rows.shape, dtype=np.float64)
            codes = np.empty((rows.shape[0], spec.n_components))
            self._errors(rows, False, codes=codes, residuals=residuals)
            yield self._embed(residuals, codes)

    def _neighbor_scores(self, X):
        """``score_samples`` with ``n_neighbors``: minus the squared ``k``-th distances."""
        distances = [_neighbors.kth_distances(z, self.reference_embedding_,
                                              self.reference_weights_, self.n_neighbors_)
                     for z in self._embeddings(X)]
        return _negated(np.concatenate(distances), X.dtype)

    def _errors_and_codes(self, X, residuals=None):
        """Residual terms and codes of X, from one pass of the network.

        The mean reconstruction errors; with the full residual covariance
        fitted, the residuals' squared Mahalanobis distances instead.
        ``residuals`` (float64, X's shape), when given, receives the
        residuals too.
        """
        codes = np.empty((X.shape[0], self._spec.n_components))
        residual = getattr(self, "residual_whitening_", None)
        if residual is not None:
            residual = (self.residual_mean_, residual)
        return self._errors(X, False, codes=codes, residual=residual, residuals=residuals), codes

    def _combine(self, errors, codes, dtype):
        """``score_samples`` from ``_errors_and_codes``, with ``code_distance``.

        In float64, then cast to ``dtype``; an overflow (or NaN from one) is
        the most anomalous score, -inf.
        """
        n_features = self._spec.n_features
        with np.errstate(over="ignore", invalid="ignore"):
            if getattr(self, "residual_whitening_", None) is None:  # spherical
                relative = errors.astype(np.float64) / self.error_scale_
                residual = n_features * relative
            else:  # the residuals' squared Mahalanobis distances
                residual = errors.astype(np.float64)
                relative = residual / n_features
            distance = np.square((codes - self.code_mean_) @ self.code_whitening_).sum(1)
            if self._code_distance == "add":
                total = residual + self._code_weight * distance
            else:
                total = relative * distance
            total = np.nan_to_num(total, nan=np.inf, posinf=np.inf)
            return (-total).astype(dtype)

    def _feature_error_scale(self, X, spec, weights, collective):
        """Mean training error of every feature (over every rank's rows), floored."""
        sums = _inference.feature_error_sums(self.module_, X, spec.loss, spec.max_width,
                                             weights)
        total = float(X.shape[0] if weights is None else np.sum(weights, dtype=np.float64))
        if collective is not None:
            sums, total = np.split(collective.all_reduce(np.append(sums, total)), [-1])
            total = float(total[0])
        means = sums / total
        return np.maximum(means, max(1e-6 * means.mean(), 1e-12))

    def _errors(self, X, per_feature, **outputs):
        """``_inference.reconstruction_errors`` of X (``outputs``: its ``codes``, ``residual*``)."""
        return _inference.reconstruction_errors(
            self.module_, X, self._spec.loss, self._spec.max_width, per_feature,
            scale=getattr(self, "feature_error_scale_", None), **outputs,
        )

    def _score_samples(self, X):
        if self._spec.variational:
            return self._log_likelihood(X)
        if getattr(self, "_code_distance", None) is None:
            return -self._errors(X, per_feature=False)
        if getattr(self, "n_neighbors_", None) is not None:
            return self._neighbor_scores(X)
        return self._combine(*self._errors_and_codes(X), X.dtype)

    def score_samples(self, X):
        """Opposite of the anomaly score: the lower, the more abnormal.

        The opposite of the combination ``code_distance`` makes of the
        reconstruction residual's term (see ``residual_covariance``) and the
        code's Mahalanobis distance (by default), or of the reconstruction error alone
        (``code_distance=None``). With ``variational=True``, the estimated
        log-likelihood instead (the opposite of the negative log-likelihood).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``-(n_features * r + code_weight * m)`` (``code_distance="add"``,
            the default)
            or ``-r * m`` (``"multiply"``), where ``r =
            feature_errors(X).mean(axis=1) / error_scale_`` with
            ``residual_covariance="spherical"``, the residual's squared
            Mahalanobis distance divided by ``n_features`` with ``"full"``,
            and ``m`` is the code's squared Mahalanobis distance (see the
            class doc);
            ``-feature_errors(X).mean(axis=1)`` with ``code_distance=None``;
            -inf where it overflows. With ``variational=True``,
            ``log p(x)`` in nats, in the units of X: the importance-weighted
            estimate with ``n_importance_samples`` samples, whose random draws
            are fixed at ``fit`` (deterministic, and each sample's score
            independent of the others); -inf where the estimate is not
            finite.
            A lazy Dask array, computed block by block, for a Dask ``X``.
        """
        if is_dask_array(X):
            return self._lazy("score_samples", X)
        return self._score_samples(self._validate_X(X))

    def feature_errors(self, X):
        """Reconstruction error of every sample in every feature.

        Says which features make a sample anomalous.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to explain.

        Returns
        -------
        errors : ndarray or DataFrame of shape (n_samples, n_features)
            A pandas or polars DataFrame, with columns
            :meth:`get_feature_names_out` (and ``X``'s index for a pandas
            ``X`` with pandas output), when :meth:`set_output` or
            ``sklearn.set_config(transform_output=...)`` asks for one.
            Elementwise ``loss`` between each sample and its reconstruction,
            in standard deviations of the training data when
            ``standardize=True``; with ``relative_errors=True``, divided by
            ``feature_error_scale_`` (1 is the feature's mean training
            error). Higher is more anomalous. Its mean over features is
            ``-score_samples(X)`` with ``code_distance=None``, and otherwise
            ``error_scale_`` times the relative error ``r`` that
            :meth:`score_samples` combines with the code distance. With
            ``variational=True``, the
            negative log-likelihood ``-log p(x_j | z)`` of each feature given
            the posterior mean code ``z`` (standardized units when
            ``standardize=True``): it tells which features are unlikely, but
            does not add up to ``-score_samples(X)``, which also accounts for
            the code's own likelihood. A lazy Dask array (no column names),
            computed block by block, for a Dask ``X``.
        """
        if is_dask_array(X):
            return self._lazy("_feature_error_array", X, self.n_features_in_)
        return self._wrap_features(self._feature_error_array(X), X)

    def _feature_error_array(self, X):
        """:meth:`feature_errors` as an ndarray."""
        X = self._validate_X(X)
        if self._spec.variational:
            return self._feature_nll(X)
        return self._errors(X, per_feature=True)


def _negated(distances, dtype):
    """Scores from squared distances: their opposites in ``dtype`` (an overflow is -inf)."""
    with np.errstate(over="ignore"):
        return (-distances).astype(dtype)


def _every_rank(values, weights, collective):
    """``values`` and their ``weights`` (None: all 1) of every rank's rows.

    Outside a distributed fit, those given. In one, every rank receives all
    of them (two float64 numbers per row of the union of the shards), and
    the weights are None again when they are all 1.
    """
    if collective is None:
        return values, weights
    column = np.ones_like(values) if weights is None else weights
    values, weights = collective.all_gather(np.column_stack([values, column])).T
    return values, None if (weights == 1.0).all() else weights


def outlier_threshold(scores, weights, contamination, log_scale, dtype, collective=None):
    """The threshold ``offset_`` on ``score_samples`` set by the training scores.

    ``weights`` are the rows' sample weights (None for equal weights):
    every median and quantile is then that of the rows repeated as often
    as their weights say. Scores of -inf (overflowing errors) count as
    the lowest finite score, so the threshold is always finite.

    Parameters
    ----------
    scores : ndarray of shape (n_samples,)
        ``score_samples`` of the training rows.
    weights : ndarray of shape (n_samples,) or None
    contamination : "auto" or float
        The share of training rows to flag, or ``"auto"``: the median plus
        3 scaled median absolute deviations of the anomaly scores, on a log
        scale (of the errors; or the scores themselves when ``log_scale``).
    log_scale : bool
        Whether the scores already are on a log scale (log-likelihoods).
    dtype : numpy dtype
        The training data's: the threshold is representable in it.
    collective : skae._distributed collective or None
        In a distributed fit, the threshold is that of every rank's training
        scores: each rank receives all of them, with their weights (two
        float64 numbers per training row of the union of the shards).

    Returns
    -------
    offset : float
    """
    scores = np.maximum(scores, np.finfo(dtype).min).astype(np.float64)
    scores, weights = _every_rank(scores, weights, collective)

    def median(values):
        return weighted_quantile(values, weights, 0.5)

    if contamination == "auto" and log_scale:
        # Negative log-likelihoods are already on a log scale: the median
        # plus 3 scaled median absolute deviations of the scores.
        center = median(scores)
        mad = 1.4826 * median(np.abs(scores - center))
        offset = center - 3.0 * mad
    elif contamination == "auto":
        # Flag errors far above the typical training error, on a log scale
        # where squared errors are close to symmetric: the median plus 3
        # scaled median absolute deviations of log(error).
        log_errors = np.log(np.maximum(-scores, np.finfo(scores.dtype).tiny))
        center = median(log_errors)
        mad = 1.4826 * median(np.abs(log_errors - center))
        with np.errstate(over="ignore"):
            offset = -np.exp(center + 3.0 * mad)
    else:
        offset = weighted_quantile(scores, weights, contamination)
    info = np.finfo(dtype)  # representable in the training data's dtype
    return float(np.clip(offset, info.min, info.max))
