"""Encoder-decoder regression from input rows to target rows (paired data)."""

from sklearn.base import RegressorMixin

from ._base import _BaseAutoencoder
from ._blocks import is_dask_array
from ._compat import _fit_context
from ._params import CONSTRAINTS


class AutoencoderRegressor(RegressorMixin, _BaseAutoencoder):
    """Encoder-decoder network trained on pairs: input rows to target rows.

    The same network, training engine and parameters as
    :class:`AutoencoderTransformer`, trained to map each input row to its
    target row instead of to itself: a corrupted image to the clean one
    (denoising, watermark removal with known clean images), a gray image to
    its colours (colorization), or any multi-output regression through a
    bottleneck. Targets may be wider or narrower than the inputs. ``predict``
    returns the decoder's output and ``score`` the coefficient of
    determination R^2, as scikit-learn's regressors do.

    Parameters
    ----------
    n_components : int or None, default=16
        Size of the code (bottleneck) between the encoder and the decoder.
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
        Error per target element: squared error, or binary cross-entropy for
        targets in [0, 1]. Training minimizes its mean over samples and
        outputs.

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
        Standardize each feature and each target inside the network (the
        targets with their own statistics, undone on the predictions), and
        measure errors in standard deviations, so that no feature
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

    noise : {"gaussian", "masking", "salt_and_pepper", "block", "watermark"} or None,             default=None
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

    architecture : {"mlp", "conv"}, default="mlp"
        ``"mlp"``: dense layers only (the decoder ends at the targets' width). ``"conv"``: convolutional stages before
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
        ``architecture="conv"``. The targets must then be images of the
        input's height and width; their channels may differ (e.g. gray to
        colour), the decoder's last stage produces as many as they have.

    skip_connections : bool, default=False
        Give each decoder layer after the first the output of the encoder
        layer that mirrors it as well (concatenated; for images, the feature
        maps of the same resolution, as in a U-Net; with
        ``architecture="conv"`` a last stride-1 convolution also reads the
        input image at full resolution). Fine detail then bypasses the
        bottleneck, which helps image-to-image tasks whose output keeps the
        input's structure (colorization, watermark removal), but the model
        is no longer an autoencoder: the code need not summarize the input.
        Off by default.

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

    n_outputs_ : int
        Number of targets (columns of ``y``).

    module_ : torch.nn.Module
        The fitted network; ``module_(X)`` returns ``(predictions, codes)``
        for a float32 tensor of inputs.

    n_iter_ : int
        Number of epochs run (accumulated over warm starts and partial fits).

    loss_curve_ : list of float
        Mean training loss per epoch.

    loss_terms_ : dict of str to list of float
        Mean of each term of the training loss per epoch (``"reconstruction"``,
        the error on the targets, and one entry per regularizer). Every list
        has ``n_iter_`` values: a term is 0 in the epochs it was not part of
        the loss.

    best_loss_ : float
        Lowest training loss reached.

    validation_scores_ : list of float or None
        With ``early_stopping``, the negative mean error on the targets of
        the held-out samples per epoch (higher is better). Else None.

    best_validation_score_ : float or None
        Best of ``validation_scores_``, whose weights were restored.

    See Also
    --------
    sklearn.neural_network.MLPRegressor : Multi-layer perceptron regressor.
    AutoencoderTransformer : The same network trained to reconstruct its input.

    Notes
    -----
    Training runs in float32; inference in the input's dtype (float64 or
    float32), in chunks of bounded memory. NaN or infinite inputs or targets
    raise ValueError, as do predictions that overflow the input's dtype.
    ``fit`` and ``partial_fit`` are transactional: when they raise, the
    estimator is left as it was before the call. ``noise`` corrupts the
    inputs only, never the targets.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoencoderRegressor
    >>> rng = np.random.RandomState(0)
    >>> gray = rng.rand(200, 8 * 8)
    >>> colour = np.repeat(gray[:, :, None], 3, axis=2).reshape(200, -1)
    >>> reg = AutoencoderRegressor(architecture="conv", image_shape=(8, 8, 1),
    ...                            max_iter=5, random_state=0).fit(gray, colour)
    >>> reg.predict(gray[:2]).shape
    (2, 192)
    """

    _parameter_constraints: dict = {
        **{k: v for k, v in CONSTRAINTS.items() if k not in (
            "pretraining", "pretraining_max_iter", "tied_weights", "variational", "kl_weight",
            "kl_warmup", "n_importance_samples", "contractive_weight")},
        "skip_connections": ["boolean"],
    }

    _paired = True

    def __init__(
        self,
        n_components=16,
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
        architecture="mlp",
        image_shape=None,
        conv_channels=(16, 32),
        kernel_size=3,
        skip_connections=False,
        device="auto",
        precision="float32",
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.latent_activation = latent_activation
        self.output_activation = output_activation
        self.loss = loss
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.standardize = standardize
        self.sparsity = sparsity
        self.sparsity_weight = sparsity_weight
        self.sparsity_target = sparsity_target
        self.sparsity_layers = sparsity_layers
        self.noise = noise
        self.noise_level = noise_level
        self.architecture = architecture
        self.image_shape = image_shape
        self.conv_channels = conv_channels
        self.kernel_size = kernel_size
        self.skip_connections = skip_connections
        self.device = device
        self.precision = precision

    def _publish(self, spec, net, state, result, rng, fresh):
        super()._publish(spec, net, state, result, rng, fresh)
        self.__dict__.pop("pretraining_loss_curves_", None)  # never pretrained
        self.n_outputs_ = spec.n_outputs

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train the network to map X to y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
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
            self._fit(X, Y=y, sample_weight=sample_weight)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Run one epoch of training on (X, y), starting a model on the first call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
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
            self._fit(X, incremental=True, Y=y, sample_weight=sample_weight)
        return self

    def predict(self, X):
        """Predict the targets of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions in X's dtype (float64 or float32); one-dimensional
            when there is one target, as scikit-learn's regressors return.
            A lazy Dask array, computed block by block, for a Dask ``X``.
        """
        if is_dask_array(X):
            return self._lazy("predict", X, None if self.n_outputs_ == 1 else self.n_outputs_)
        y = self._reconstruct(self._validate_X(X))
        return y.ravel() if self.n_outputs_ == 1 else y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
