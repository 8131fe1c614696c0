"""Autoencoder as a scikit-learn transformer."""

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._available_if import available_if
from sklearn.utils.validation import check_array, check_is_fitted

from ._base import _BaseAutoencoder, _ReconstructMixin
from ._blocks import is_dask_array
from ._compat import _fit_context
from ._images import check_n_bits, dequantize, n_bytes, pack, quantize, unpack


class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _ReconstructMixin, _BaseAutoencoder):
    """Autoencoder for dimensionality reduction, feature extraction and denoising.

    An MLP encoder maps each sample to a code of ``n_components`` values and a
    mirrored decoder maps the code back; both are trained with PyTorch to
    minimize the reconstruction error, on a GPU when there is one.
    ``transform`` returns the codes, ``inverse_transform`` decodes them, and
    ``score`` is the negative mean reconstruction error, so model selection
    works without labels.

    With ``hidden_layer_sizes=()``, identity activations and ``loss="mse"``,
    the autoencoder is linear and reaches the reconstruction error of
    :class:`~sklearn.decomposition.PCA` with the same ``n_components``.

    Parameters
    ----------
    n_components : int or None, default=2
        Size of the code (bottleneck).
        With ``architecture="conv"`` and ``hidden_layer_sizes=()``, None makes
        the code the last convolutional stage's feature map itself (no dense
        layer; its size is ``channels * height * width`` of that stage,
        flattened channels first): a spatial code, as fully convolutional
        autoencoders have.

    hidden_layer_sizes : tuple of int or int, default=(64,)
        Widths of the encoder's hidden layers, input side first. The decoder
        mirrors them. A single int means one hidden layer; ``()`` gives a
        shallow autoencoder (one linear map each way). Widths may exceed
        ``n_features`` (overcomplete).

    activation : {"relu", "tanh", "logistic", "sigmoid", "identity", "leaky_relu", "elu", "gelu"}, default="relu"
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

    batch_size : int, default=256
        Minibatch size; clipped to the number of training samples.

    learning_rate : {"constant", "adaptive"}, default="constant"
        Learning-rate schedule. ``"adaptive"`` divides the learning rate by 5
        each time training would stop for lack of progress (see ``tol`` and
        ``n_iter_no_change``), and stops once it falls below 1e-6, as
        ``MLPRegressor`` does for ``solver="sgd"``.

    learning_rate_init : float, default=1e-3
        Step size of the optimizer.

    max_iter : int, default=200
        Maximum number of epochs (passes over the data) per call to ``fit``;
        ``partial_fit`` runs one epoch. Training stops earlier when the loss
        stops improving (see ``tol`` and ``n_iter_no_change``); reaching
        ``max_iter`` before that emits a
        :class:`~sklearn.exceptions.ConvergenceWarning`.

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
        ``output_activation``, ``standardize``, ``tied_weights``,
        ``variational``; and ``loss`` of a variational model) or the
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

    standardize : bool, default=False
        Standardize each feature inside the network, and measure
        reconstruction errors in standard deviations, so that no feature
        dominates the error through its scale alone. The statistics (mean and
        standard deviation) are computed in float64 from the data of the first
        ``fit`` (the call that builds the network; warm starts and
        ``partial_fit`` keep them). Inputs are centred and scaled in float64
        before any cast to float32, so a feature with a large offset and a
        small spread keeps its information. A feature whose variance is within
        the rounding error of its float64 computation relative to its
        magnitude, ``var <= n * eps * var + (n * eps * |mean|) ** 2`` with
        ``n`` the number of samples and ``eps`` float64's machine epsilon
        (the bound :class:`~sklearn.preprocessing.StandardScaler` uses), is
        treated as constant (scale 1). ``transform``, ``inverse_transform``,
        ``reconstruct`` and ``module_`` still take and return data in the
        original units.

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

    code_range_ : ndarray of shape (2, n_components)
        Smallest (row 0) and largest (row 1) value of each code component over
        the training data (of ``fit``, widened by each ``partial_fit``): the
        range :meth:`compress` quantizes.

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    AutoencoderAnomalyDetector : The same network used to score anomalies.

    Notes
    -----
    Training runs in float32. Inference runs in the dtype of the input: float64
    input is encoded and decoded in float64, float32 input in float32. Inference
    processes the data in chunks, so its extra memory stays bounded for any
    number of samples.

    Non-finite values: NaN or infinite input raises ValueError. ``transform``
    and ``inverse_transform`` raise ValueError rather than return non-finite
    values when a result overflows the input's dtype (e.g. float32).

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
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> X = load_digits().data / 16
    >>> ae = AutoencoderTransformer(n_components=8, max_iter=5, random_state=0)
    >>> ae.fit_transform(X).shape
    (1797, 8)
    >>> ae.inverse_transform(ae.transform(X[:3])).shape
    (3, 64)
    """

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(64,),
        activation="relu",
        latent_activation="identity",
        output_activation="identity",
        loss="mse",
        solver="adam",
        alpha=0.0,
        batch_size=256,
        learning_rate="constant",
        learning_rate_init=1e-3,
        max_iter=200,
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
        standardize=False,
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

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Train the autoencoder on X.

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
            standardization statistics and every mean in the loss.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        with self._transaction():
            X, _, _ = self._fit(X, sample_weight=sample_weight)
            self._set_code_range(X, widen=False)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Run one epoch of training on X, starting a model on the first call.

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
            standardization statistics and every mean in the loss.

        Returns
        -------
        self : object
            Updated estimator.
        """
        with self._transaction():
            X, _, _ = self._fit(X, incremental=True, sample_weight=sample_weight)
            self._set_code_range(X, widen=True)
        return self

    def _set_code_range(self, X, widen):
        """Set ``code_range_`` from the codes of the training data X."""
        Z = self._encode(X).astype(np.float64, copy=False)
        low, high = Z.min(0), Z.max(0)
        if widen and getattr(self, "code_range_", None) is not None:
            low, high = np.minimum(low, self.code_range_[0]), np.maximum(high, self.code_range_[1])
        self.code_range_ = np.stack([low, high])

    def transform(self, X):
        """Encode X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Codes, in X's dtype (float64 or float32); with
            ``variational=True``, the posterior means.
            A lazy Dask array, computed block by block, for a Dask ``X``.
        """
        if is_dask_array(X):
            return self._lazy("transform", X, self._spec.n_components)
        return self._encode(self._validate_X(X))

    def inverse_transform(self, X):
        """Decode codes back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, as returned by :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Decoded data, in the codes' dtype (float64 or float32); with
            ``variational=True``, the mean of ``p(x | z)``.
            A lazy Dask array, computed block by block, for a Dask ``X``.
        """
        check_is_fitted(self)
        if is_dask_array(X):
            return self._lazy("inverse_transform", X, self.n_features_in_,
                              n_in=self._spec.n_components)
        Z = check_array(X, dtype=[np.float64, np.float32])
        n_components = self._spec.n_components
        if Z.shape[1] != n_components:
            raise ValueError(
                f"X has {Z.shape[1]} features, but {type(self).__name__}.inverse_transform "
                f"expects codes with n_components={n_components} features."
            )
        return self._decode(Z)

    def compress(self, X, n_bits=8):
        """Encode X into bytes: each code quantized to ``n_bits`` per component.

        Component ``k`` of the code is mapped linearly from ``code_range_[:,
        k]`` (the training codes' range) onto the integers ``0 .. 2 ** n_bits
        - 1``, rounding to the nearest (codes outside the range are clipped),
        and the ``n_components * n_bits`` bits of each row are packed
        big-endian into ``ceil(n_components * n_bits / 8)`` bytes. The fitted
        model is the codebook: :meth:`decompress` with the same ``n_bits``
        restores an approximation of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows (e.g. images as ``images.reshape(n_samples, -1)``).
        n_bits : int, default=8
            Bits per code component, in [1, 16].

        Returns
        -------
        data : list of bytes
            One ``bytes`` object per row, all of the same length.
        """
        n_bits = check_n_bits(n_bits)
        Z = self.transform(X)
        levels = quantize(Z, self.code_range_[0], self.code_range_[1], n_bits)
        return [row.tobytes() for row in pack(levels, n_bits)]

    def decompress(self, data, n_bits=8):
        """Decode the bytes of :meth:`compress` back to rows.

        Parameters
        ----------
        data : sequence of bytes
            As returned by :meth:`compress` with the same ``n_bits``.
        n_bits : int, default=8
            Bits per code component used by :meth:`compress`.

        Returns
        -------
        X_hat : ndarray of shape (n_samples, n_features)
            Decoded rows (float64).
        """
        check_is_fitted(self)
        n_bits = check_n_bits(n_bits)
        k = self._spec.n_components
        size = n_bytes(k, n_bits)
        rows = list(data)
        if any(not isinstance(r, (bytes, bytearray)) or len(r) != size for r in rows):
            raise ValueError(
                f"{type(self).__name__}.decompress expects a sequence of bytes objects of "
                f"{size} bytes each (n_components={k}, n_bits={n_bits}), as compress returns."
            )
        packed = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), size)
        Z = dequantize(unpack(packed, k, n_bits), self.code_range_[0], self.code_range_[1], n_bits)
        return self.inverse_transform(Z)

    def score_samples(self, X):
        """Score of each sample (higher is better).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Minus the mean over features of the elementwise ``loss``. With
            ``variational=True``, the estimated log-likelihood ``log p(x)`` of
            each sample, in nats, in the units of X (the standardization's
            Jacobian included): the importance-weighted bound with
            ``n_importance_samples`` samples. Its random draws are fixed at
            ``fit`` (from ``random_state``), so the result is deterministic
            and each sample's score does not depend on the other samples.
            A sample whose estimate is not finite scores -inf.
            A lazy Dask array, computed block by block, for a Dask ``X``.
        """
        if is_dask_array(X):
            return self._lazy("score_samples", X)
        X = self._validate_X(X)
        if self._spec.variational:
            return self._log_likelihood(X)
        return -self._errors(X, per_feature=False)

    def score(self, X, y=None):
        """Mean score of the samples of X (higher is better).

        The negative mean reconstruction error, or, with
        ``variational=True``, the average log-likelihood (as
        :meth:`sklearn.decomposition.PCA.score` and
        :meth:`sklearn.mixture.GaussianMixture.score` return), so that
        ``GridSearchCV`` and ``cross_val_score`` rank models without labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X)))

    def _is_variational(self):
        return bool(self.variational)

    @available_if(_is_variational)
    def sample(self, n_samples=1, random_state=None, *, from_likelihood=False):
        """Generate new samples from the fitted variational model.

        Draws codes from the prior ``N(0, I)`` and decodes them. Only with
        ``variational=True``.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to generate.
        random_state : int, RandomState instance or None, default=None
            Randomness of the draws; None uses NumPy's global random state, as
            :meth:`sklearn.neighbors.KernelDensity.sample` does.
        from_likelihood : bool, default=False
            False returns the decoder's mean ``E[x | z]`` (Bernoulli
            probabilities, or the Gaussian mean); True draws ``x ~ p(x | z)``
            (binary values, or the mean plus Gaussian noise of the learned
            variance).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Generated samples, float64.
        """
        check_is_fitted(self)
        if not self._spec.variational:
            raise AttributeError("sample is only available with variational=True.")
        if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, (int, np.integer)) \
                or n_samples < 1:
            raise ValueError(
                f"The 'n_samples' parameter of {type(self).__name__}.sample must be an int "
                f">= 1. Got {n_samples!r} instead."
            )
        rng = check_random_state(random_state)
        Z = rng.standard_normal((int(n_samples), self._spec.n_components))
        X = self._decode(Z)
        if not from_likelihood:
            return X
        net = self.module_
        if net.likelihood == "bernoulli":
            return (rng.uniform(size=X.shape) < X).astype(np.float64)
        sigma = float(net.log_noise_variance.detach().exp().sqrt())
        scale = 1.0 if net.standardizer is None else net.standardizer.scale.cpu().numpy()
        return X + sigma * scale * rng.standard_normal(X.shape)

    @property
    def _n_features_out(self):
        """Number of transformed output features (AttributeError before fit)."""
        return self._spec.n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
