"""Docstring fragments shared by the public estimators."""

NETWORK_AND_TRAINING_PARAMETERS = """\
hidden_layer_sizes : tuple of int, default={hidden_layer_sizes}
    Widths of the encoder's hidden layers, input side first. The decoder
    mirrors them. ``()`` gives a shallow autoencoder (one linear map each
    way). Widths may exceed ``n_features`` (overcomplete).

activation : {{"relu", "tanh", "logistic", "sigmoid", "identity", \
"leaky_relu", "elu", "gelu"}}, default="relu"
    Activation of the hidden layers. ``"logistic"`` and ``"sigmoid"`` are
    the same function.

latent_activation : str, default="identity"
    Activation of the code (bottleneck) layer; same choices as
    ``activation``.

output_activation : str, default="identity"
    Activation of the reconstruction; same choices as ``activation``. Use
    ``"sigmoid"`` for data in [0, 1] (required with ``loss="bce"``).

loss : {{"mse", "bce"}}, default="mse"
    Reconstruction error per element: squared error, or binary
    cross-entropy for data in [0, 1]. Training minimizes its mean over
    samples and features.

solver : {{"adam", "adamw", "sgd"}}, default="adam"
    Optimizer. ``"adamw"`` applies ``alpha`` as decoupled weight decay;
    ``"sgd"`` uses ``momentum`` and ``nesterovs_momentum``.

alpha : float, default=0.0
    Strength of the L2 penalty on the weights (not the biases): the
    gradient of ``0.5 * alpha * ||W||^2`` is added to each update.

batch_size : int, default=256
    Minibatch size; clipped to the number of training samples.

learning_rate : {{"constant", "adaptive"}}, default="constant"
    Learning-rate schedule. ``"adaptive"`` divides the learning rate by 5
    each time training would stop for lack of progress (see ``tol`` and
    ``n_iter_no_change``), and stops once it falls below 1e-6, as
    ``MLPRegressor`` does for ``solver="sgd"``.

learning_rate_init : float, default=1e-3
    Step size of the optimizer.

max_iter : int, default={max_iter}
    Maximum number of epochs (passes over the data) per call to ``fit``.

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

momentum : float, default=0.9
    Momentum for ``solver="sgd"``.

nesterovs_momentum : bool, default=True
    Whether ``solver="sgd"`` uses Nesterov's momentum.

early_stopping : bool, default=False
    Hold out ``validation_fraction`` of the samples, stop when the
    validation score has not improved by ``tol`` for ``n_iter_no_change``
    epochs, and restore the weights of the best epoch.

validation_fraction : float, default=0.1
    Share of the samples held out with ``early_stopping``.

beta_1 : float, default=0.9
    Decay rate of Adam's first moment estimates.

beta_2 : float, default=0.999
    Decay rate of Adam's second moment estimates.

epsilon : float, default=1e-8
    Adam's numerical stability constant.

n_iter_no_change : int, default=10
    Epochs without improvement of ``tol`` before training stops.

standardize : bool, default={standardize}
    Standardize each feature inside the network (mean and standard
    deviation learned on the first ``fit``), and measure reconstruction
    errors in standard deviations, so that no feature dominates the error
    through its scale alone. ``transform``, ``inverse_transform`` and
    ``module_`` still take and return data in the original units.

sparsity : {{None, "l1", "kl"}}, default=None
    Sparsity penalty on the activations of ``sparsity_layers``: ``"l1"``
    adds ``sparsity_weight * (1/m) sum_i sum_j |a_ij|``; ``"kl"`` adds
    ``sparsity_weight * sum_j KL(sparsity_target || mean_i a_ij)`` and needs
    activations in (0, 1) (``"sigmoid"``) on those layers.

sparsity_weight : float, default=1e-3
    Weight λ of the sparsity penalty.

sparsity_target : float, default=0.05
    Target mean activation ρ of each unit with ``sparsity="kl"``.

sparsity_layers : "code", "all" or sequence of int, default="code"
    Encoder layers the sparsity penalty acts on: the code (bottleneck),
    every encoder layer, or layer indices (0 = first hidden layer,
    -1 = the code).

noise : {{None, "gaussian", "masking", "salt_and_pepper"}}, default=None
    Denoising: corrupt the input during training only, while the target
    stays clean. ``"gaussian"`` adds noise of standard deviation
    ``noise_level`` (in standard deviations of each feature when
    ``standardize=True``); ``"masking"`` sets a random fraction
    ``noise_level`` of the entries to 0 (to the feature's mean when
    ``standardize=True``); ``"salt_and_pepper"`` sets a fraction
    ``noise_level`` to the feature's training minimum or maximum.

noise_level : float, default=0.1
    Noise standard deviation, or fraction of corrupted entries (in [0, 1]).

contractive_weight : float, default=0.0
    Weight λ of the contractive penalty ``λ (1/m) sum_i ||dh/dx(x_i)||_F^2``,
    the squared Frobenius norm of the encoder's Jacobian (computed exactly,
    with respect to the standardized input when ``standardize=True``).

pretraining : {{None, "greedy"}}, default=None
    ``"greedy"``: before training the whole network, train each encoder
    layer with its mirrored decoder layer as a shallow autoencoder on the
    previous layer's codes (a stacked autoencoder), then fine-tune
    everything. Applies when ``fit`` builds a new network.

pretraining_max_iter : int or None, default=None
    Epochs per pretraining stage; None means ``max_iter``.

tied_weights : bool, default=False
    Use the transposed encoder weights as decoder weights (the decoder
    keeps its own biases).

device : str or torch.device, default="auto"
    Where to train: ``"auto"`` picks CUDA when available and the CPU
    otherwise; or ``"cpu"``, ``"cuda"``, ``"cuda:1"``. On a GPU the
    training data is copied to the device once when it takes at most half
    of the device's free memory; larger data stays in host memory and is
    streamed to the device batch by batch through pinned buffers. A fitted
    model pickles and unpickles on a machine without a GPU.

precision : {{"float32", "tf32", "bfloat16"}}, default="float32"
    Arithmetic used in training. ``"float32"``: full single precision.
    ``"tf32"``: matrix products on CUDA GPUs that have TensorFloat-32
    units (Ampere and later) use it; the same as ``"float32"`` on the CPU.
    ``"bfloat16"``: mixed precision (``torch.autocast``): matrix products
    in bfloat16, weights, optimizer and loss in float32; fastest on recent
    GPUs, slower on most CPUs. Inference always runs in the input's dtype.
"""

TRAINING_ATTRIBUTES = """\
n_features_in_ : int
    Number of features seen during fit.

feature_names_in_ : ndarray of shape (n_features_in_,)
    Names of features seen during fit, when ``X`` has string column names.

module_ : torch.nn.Module
    The fitted network. ``module_.encoder`` maps inputs to codes and
    ``module_.decoder`` maps codes back; both are plain
    ``torch.nn.Sequential`` modules, reusable on their own.

n_iter_ : int
    Number of epochs run (accumulated over warm starts and partial fits).

loss_curve_ : list of float
    Mean training loss per epoch.

loss_terms_ : dict of str to list of float
    Mean of each term of the training loss per epoch (``"reconstruction"``,
    and one entry per regularizer).

best_loss_ : float
    Lowest training loss reached.

validation_scores_ : list of float or None
    With ``early_stopping``, the score on the held-out samples per epoch:
    the negative mean reconstruction error (higher is better). Else None.

best_validation_score_ : float or None
    Best of ``validation_scores_``, whose weights were restored.

pretraining_loss_curves_ : list of list of float or None
    With ``pretraining="greedy"``, the training loss per epoch of each
    pretraining stage, input side first. Else None.
"""


def fill(template, **values):
    """Substitute ``{name}`` placeholders in a docstring template.

    Parameters
    ----------
    template : str
        Text with ``{name}`` fields; literal braces are doubled.
    **values : str
        Field values.

    Returns
    -------
    text : str
    """
    return template.format(**values)
