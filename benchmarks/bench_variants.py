"""What each regularized autoencoder variant of skae does, and what it costs.

All sections use MNIST digits (``images/mnist_test.npz`` in the data folder:
the 10,000 images of the MNIST test set, scaled to [0, 1] and flattened to
784 features). Models are fitted on the first 5000 images and evaluated on
the last 1000 images; the two sets are disjoint. Every estimator and noise
draw is seeded.

a. Denoising: PSNR against the clean test image of the corrupted input, a
   denoising autoencoder, the same autoencoder trained without noise, and
   PCA reconstruction, for additive Gaussian noise (not clipped) and for
   masking noise (a fraction of the pixels set to 0).
b. Sparsity: KL sparsity on a sigmoid code (mean activation of each unit
   against the target) and L1 sparsity on a ReLU code (share of near-zero
   activations), each against the same network without the penalty, with
   the held-out reconstruction MSE.
c. Contractive: held-out mean squared Frobenius norm of the encoder
   Jacobian, by autograd (``torch.func.vmap(torch.func.jacrev(encoder))``),
   with and without ``contractive_weight``, and the reconstruction MSE.
d. Stacked: a deep sigmoid network trained from scratch against greedy
   layer-wise pretraining plus fine-tuning, with the same number of epochs.
e. Cost: seconds per training epoch of each regularizer against the plain
   autoencoder, timed interleaved in the same process.
f. Tied weights: parameters, training loss and held-out MSE, tied against
   untied.
g. Overcomplete: a code wider than the input, with and without a
   regularizer: whether skae warns, and what it does to noisy inputs.

Results go to ``benchmarks/results/variants.md`` (``variants_quick.md`` with
``--quick``) with the command, date and versions at the top; figures go to
``docs/variants/img/`` (a temporary folder with ``--quick``).

Examples
--------
python benchmarks/bench_variants.py            # full run: about 10 minutes on one core
python benchmarks/bench_variants.py --quick    # smoke test: tiny subsets, 1-2 epochs
python benchmarks/bench_variants.py --only denoising,cost
"""

import argparse
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from torch.func import jacrev, vmap  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import skae  # noqa: E402
from skae import AutoencoderTransformer  # noqa: E402
from skae._nets.activations import derivative  # noqa: E402
from skae._objective import contractive_penalty  # noqa: E402

SECTIONS = ("denoising", "sparsity", "contractive", "stacked", "cost", "tied",
            "overcomplete")

#: The network of sections a, b, e and f: 784-256-64-256-784, sigmoid output,
#: binary cross-entropy, minibatches of 64.
BASE = dict(hidden_layer_sizes=(256,), output_activation="sigmoid", loss="bce", batch_size=64)
CODE = 64


@dataclass
class Config:
    """Sizes and budgets of one run.

    Parameters
    ----------
    n_train, n_test : int
        Training images (the first ones) and test images (the last ones).
    epochs : int
        ``max_iter`` of the fits in sections a, b, c, f and g.
    n_jacobian : int
        Held-out samples on which the Jacobian norm is measured.
    stage_epochs, finetune_epochs : int
        Section d: epochs per greedy pretraining stage and of fine-tuning;
        the network from scratch gets ``n_stages * stage_epochs +
        finetune_epochs`` epochs.
    stacked_seeds : tuple of int
        Seeds of section d.
    cost_epochs, cost_repeats : int
        Section e: ``max_iter`` of each timed fit, and interleaved repeats.
    n_show : int
        Digits in the denoising figure.
    """

    n_train: int = 5000
    n_test: int = 1000
    epochs: int = 20
    n_jacobian: int = 500
    stage_epochs: int = 4
    finetune_epochs: int = 20
    stacked_seeds: tuple = (0, 1, 2)
    cost_epochs: int = 3
    cost_repeats: int = 5
    n_show: int = 8


QUICK = Config(n_train=500, n_test=200, epochs=2, n_jacobian=50, stage_epochs=1,
               finetune_epochs=1, stacked_seeds=(0,), cost_epochs=1, cost_repeats=1)


# ----------------------------------------------------------------- utilities
def load_mnist(data_dir):
    """Load the MNIST test images as float32 rows in [0, 1].

    Parameters
    ----------
    data_dir : Path
        Folder holding ``images/mnist_test.npz`` (key ``images``, uint8,
        10000 x 28 x 28).

    Returns
    -------
    X : ndarray of shape (10000, 784), dtype float32
        One image per row, pixel values / 255.
    """
    path = Path(data_dir) / "images" / "mnist_test.npz"
    if not path.exists():
        raise SystemExit(f"{path} not found: pass --data or set SKAE_DATA.")
    with np.load(path) as data:
        images = data["images"]
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def psnr(clean, other, per_image=False):
    """Peak signal-to-noise ratio in dB, with peak 1.

    Parameters
    ----------
    clean, other : ndarray of shape (n_images, n_pixels)
        Reference images and the images to score.
    per_image : bool, default=False
        If False, ``10 log10(1 / MSE)`` with the MSE over all pixels of all
        images; if True, the mean over images of each image's PSNR.

    Returns
    -------
    psnr : float
        In dB.
    """
    if per_image:
        return float(np.mean(10 * np.log10(1.0 / np.mean((clean - other) ** 2, axis=1))))
    return float(10 * np.log10(1.0 / np.mean((clean - other) ** 2)))


def mse(a, b):
    """Mean squared difference over all entries.

    Parameters
    ----------
    a, b : ndarray
        Arrays of the same shape.

    Returns
    -------
    mse : float
        ``mean((a - b) ** 2)``.
    """
    return float(np.mean((a - b) ** 2))


def fit(X, *, seed=0, **params):
    """Fit an ``AutoencoderTransformer``; also return the wall time.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Training data.
    seed : int, default=0
        ``random_state`` of the estimator.
    **params
        Other estimator parameters.

    Returns
    -------
    model : AutoencoderTransformer
        The fitted estimator.
    seconds : float
        Wall time of ``fit``.
    """
    model = AutoencoderTransformer(random_state=seed, **params)
    start = time.perf_counter()
    model.fit(X)
    return model, time.perf_counter() - start


class Placeholder(str):
    """A string shown without quotes in :func:`describe` (e.g. ``λ``)."""

    def __repr__(self):
        """Return the string itself, unquoted."""
        return str(self)


LAMBDA, SEED = Placeholder("λ"), Placeholder("seed")


def describe(params):
    """Render estimator parameters as a call, for the report.

    Parameters
    ----------
    params : dict
        Estimator parameters; ``n_components`` becomes the positional argument.

    Returns
    -------
    call : str
        E.g. ``AutoencoderTransformer(64, max_iter=20)``.
    """
    args = [repr(params["n_components"])] if "n_components" in params else []
    args += [f"{k}={v!r}" for k, v in params.items() if k != "n_components"]
    return f"AutoencoderTransformer({', '.join(args)})"


def shown_path(path):
    """Show a path relative to the repository when it is inside it.

    Parameters
    ----------
    path : str or Path
        A file or folder.

    Returns
    -------
    path : Path
        Relative to the repository root, or absolute when outside it.
    """
    path = Path(path).resolve()
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def table(header, rows):
    """Render a markdown table.

    Parameters
    ----------
    header : list of str
        Column titles; a title ending in ``>`` is right-aligned (the ``>`` is
        dropped).
    rows : list of list
        Cells; floats are written as given by the caller (pre-formatted).

    Returns
    -------
    lines : list of str
        The table's lines.
    """
    titles = [h.rstrip(">") for h in header]
    align = ["---:" if h.endswith(">") else "---" for h in header]
    lines = ["| " + " | ".join(titles) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def image_grid(rows, labels, path, shape=(28, 28), title=None):
    """Save rows of images as one figure, one labelled row per method.

    Parameters
    ----------
    rows : list of ndarray of shape (n_images, n_pixels)
        One array per figure row.
    labels : list of str
        Row labels.
    path : Path
        Output PNG.
    shape : tuple of int, default=(28, 28)
        Image shape.
    title : str or None, default=None
        Figure title.
    """
    n_rows, n_cols = len(rows), rows[0].shape[0]
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.1 * n_cols + 1.2, 1.15 * n_rows))
    for r, (images, label) in enumerate(zip(rows, labels)):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.imshow(images[c].reshape(shape), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------- a. denoising
def gaussian_noisy(test, sigma=0.3, seed=0):
    """Add Gaussian noise to the test images of sections a and g, without clipping.

    Parameters
    ----------
    test : ndarray of shape (n, 784)
        Clean images.
    sigma : float, default=0.3
        Noise standard deviation.
    seed : int, default=0
        Seed of the noise.

    Returns
    -------
    noisy : ndarray of shape (n, 784), dtype float32
        ``test + sigma * N(0, 1)``.
    """
    return (test + sigma * np.random.RandomState(seed).normal(size=test.shape)).astype(np.float32)


def run_denoising(cfg, train, test, img_dir):
    """Section a: PSNR of denoising against baselines, Gaussian and masking noise.

    Parameters
    ----------
    cfg : Config
        Sizes and budgets of the run.
    train, test : ndarray of shape (n, 784)
        Clean training and test images in [0, 1].
    img_dir : Path
        Where ``denoising.png`` and ``denoising_masking.png`` go.

    Returns
    -------
    lines : list of str
        Markdown of the section.
    """
    params = dict(n_components=CODE, **BASE, max_iter=cfg.epochs)
    noises = [
        # (skae noise, level, corrupt(test, rng) -> noisy test, figure)
        ("gaussian", 0.3, lambda x, rng: gaussian_noisy(x, 0.3, seed=0), "denoising.png"),
        ("masking", 0.3, lambda x, rng: np.where(rng.uniform(size=x.shape) < 0.3, 0.0, x),
         "denoising_masking.png"),
    ]
    plain, plain_s = fit(train, **params)
    pca = PCA(CODE, random_state=0).fit(train)
    lines = [
        "## a. Denoising",
        "",
        f"Fit on {len(train)} clean training images, scored on {len(test)} held-out test images "
        "corrupted once with a fixed seed. PSNR = 10 log10(1 / MSE) against the clean test "
        "image (peak 1), the MSE over all pixels of all test images; the last column is the "
        "mean of the per-image PSNRs. Autoencoder outputs are in (0, 1) (sigmoid); the PCA "
        "reconstruction is clipped to [0, 1].",
        "",
        f"- plain autoencoder: `{describe(dict(params, random_state=0))}`, "
        f"fit in {plain_s:.1f} s",
        f"- PCA: `PCA({CODE})` fit on the clean training images",
    ]
    for seed, (kind, level, corrupt, figure) in enumerate(noises):
        rng = np.random.RandomState(seed)
        noisy = corrupt(test, rng).astype(np.float32)
        dae_params = dict(params, noise=kind, noise_level=level)
        dae, dae_s = fit(train, **dae_params)
        outputs = {
            "noisy input": noisy,
            "noisy input clipped to [0, 1]": np.clip(noisy, 0, 1),
            "denoising autoencoder": dae.reconstruct(noisy),
            "plain autoencoder": plain.reconstruct(noisy),
            f"PCA({CODE})": np.clip(pca.inverse_transform(pca.transform(noisy)), 0, 1),
        }
        clean_inputs = {
            "denoising autoencoder": dae.reconstruct(test),
            "plain autoencoder": plain.reconstruct(test),
            f"PCA({CODE})": np.clip(pca.inverse_transform(pca.transform(test)), 0, 1),
        }
        rows = [
            [name, f"{psnr(test, out):.2f}",
             f"{psnr(test, clean_inputs[name]):.2f}" if name in clean_inputs else "",
             f"{psnr(test, out, per_image=True):.2f}"]
            for name, out in outputs.items()
        ]
        if kind == "gaussian":
            longer = dict(dae_params, max_iter=2 * cfg.epochs)
            dae_long, _ = fit(train, **longer)
            rows.append([f"denoising autoencoder, max_iter={2 * cfg.epochs}",
                         f"{psnr(test, dae_long.reconstruct(noisy)):.2f}",
                         f"{psnr(test, dae_long.reconstruct(test)):.2f}",
                         f"{psnr(test, dae_long.reconstruct(noisy), per_image=True):.2f}"])
            what = f"additive Gaussian noise, sigma = {level}, not clipped (seed {seed})"
        else:
            what = f"masking noise: each pixel set to 0 with probability {level} (seed {seed})"
        lines += [
            "",
            f"### {kind.capitalize()} noise",
            "",
            f"Test corruption: {what}. Denoising autoencoder: "
            f"`{describe(dict(dae_params, random_state=0))}`, fit in {dae_s:.1f} s.",
            "",
            *table(["output", "PSNR (dB)>", "PSNR on clean input (dB)>",
                    "mean per-image PSNR (dB)>"], rows),
        ]
        show = slice(0, cfg.n_show)
        image_grid(
            [test[show], np.clip(noisy[show], 0, 1), outputs["denoising autoencoder"][show],
             outputs["plain autoencoder"][show], outputs[f"PCA({CODE})"][show]],
            ["clean", "noisy", "DAE", "plain AE", f"PCA({CODE})"],
            img_dir / figure,
            title=f"{what.split(' (seed')[0]}; first {cfg.n_show} held-out digits",
        )
        lines += ["", f"Figure: `{shown_path(img_dir / figure)}`."]
    return lines


# -------------------------------------------------------------- b. sparsity
def run_sparsity(cfg, train, test, img_dir):
    """Section b: KL sparsity on a sigmoid code and L1 sparsity on a ReLU code.

    Parameters
    ----------
    cfg : Config
        Sizes and budgets of the run.
    train, test : ndarray of shape (n, 784)
        Clean training and test images in [0, 1].
    img_dir : Path
        Where ``sparsity.png`` goes.

    Returns
    -------
    lines : list of str
        Markdown of the section.
    """
    rho, kl_weight, l1_weight = 0.05, 0.1, 1e-3
    common = dict(n_components=CODE, **BASE, max_iter=cfg.epochs)
    kl_none = dict(common, latent_activation="sigmoid")
    kl_on = dict(kl_none, sparsity="kl", sparsity_weight=kl_weight, sparsity_target=rho)
    l1_none = dict(common, latent_activation="relu")
    l1_on = dict(l1_none, sparsity="l1", sparsity_weight=l1_weight)
    models = {name: fit(train, **p)[0] for name, p in
              [("kl_none", kl_none), ("kl_on", kl_on), ("l1_none", l1_none), ("l1_on", l1_on)]}
    codes = {name: m.transform(train) for name, m in models.items()}
    codes_test = {name: m.transform(test) for name, m in models.items()}
    test_mse = {name: mse(test, m.reconstruct(test)) for name, m in models.items()}

    kl_rows = []
    for name, label in [("kl_none", "none"), ("kl_on", f"KL, weight {kl_weight}")]:
        dev = np.abs(codes[name].mean(0) - rho)
        dev_test = np.abs(codes_test[name].mean(0) - rho)
        kl_rows.append([label, f"{codes[name].mean():.4f}", f"{dev.min():.4f}",
                        f"{dev.max():.4f}", f"{dev.mean():.4f}", f"{dev_test.max():.4f}",
                        f"{test_mse[name]:.4f}"])
    l1_rows = []
    for name, label in [("l1_none", "none"), ("l1_on", f"L1, weight {l1_weight}")]:
        z = codes[name]
        dead = int(np.sum(np.all(np.abs(z) < 1e-3, axis=0)))
        l1_rows.append([label, f"{np.mean(np.abs(z) < 1e-3):.3f}",
                        f"{np.mean(np.abs(codes_test[name]) < 1e-3):.3f}",
                        f"{np.mean(np.sum(np.abs(z) >= 1e-3, axis=1)):.1f}", f"{dead}",
                        f"{np.abs(z).sum(1).mean():.2f}", f"{test_mse[name]:.4f}"])

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    bins = np.linspace(0, 1, 51)
    ax = axes[0]
    ax.hist(codes["kl_none"].ravel(), bins=bins, histtype="step", lw=1.5, label="no penalty")
    ax.hist(codes["kl_on"].ravel(), bins=bins, histtype="step", lw=1.5,
            label=f"KL, ρ={rho}, λ={kl_weight}")
    ax.set_yscale("log")
    ax.set_xlabel("code activation (sigmoid)")
    ax.set_ylabel("count (training images x units)")
    ax.set_title("KL sparsity: activations")
    ax.legend(fontsize=8)
    ax = axes[1]
    units = np.arange(1, CODE + 1)
    ax.plot(units, np.sort(codes["kl_none"].mean(0)), "o", ms=3, label="no penalty")
    ax.plot(units, np.sort(codes["kl_on"].mean(0)), "o", ms=3, label="KL penalty")
    ax.axhline(rho, color="k", lw=0.8, ls="--", label=f"target ρ={rho}")
    ax.set_yscale("log")
    ax.set_xlabel("code unit (sorted)")
    ax.set_ylabel(r"mean activation $\hat{\rho}_j$ (log scale)")
    ax.set_title("KL sparsity: mean activation per unit")
    ax.legend(fontsize=8)
    ax = axes[2]
    top = max(codes["l1_none"].max(), codes["l1_on"].max())
    bins = np.linspace(0, top, 51)
    ax.hist(codes["l1_none"].ravel(), bins=bins, histtype="step", lw=1.5, label="no penalty")
    ax.hist(codes["l1_on"].ravel(), bins=bins, histtype="step", lw=1.5,
            label=f"L1, λ={l1_weight}")
    ax.set_yscale("log")
    ax.set_xlabel("code activation (ReLU)")
    ax.set_title("L1 sparsity: activations")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(img_dir / "sparsity.png", dpi=110)
    plt.close(fig)

    return [
        "## b. Sparsity",
        "",
        f"Codes of the {len(train)} training images; reconstruction MSE (per pixel) on the "
        f"{len(test)} held-out images.",
        "",
        f"### KL sparsity, sigmoid code, target ρ = {rho}",
        "",
        f"- with: `{describe(dict(kl_on, random_state=0))}`",
        "- without: the same with no `sparsity`",
        "",
        *table(["penalty", "mean activation>", "min abs(ρ̂_j - ρ)>", "max abs(ρ̂_j - ρ)>",
                "mean abs(ρ̂_j - ρ)>", "max abs(ρ̂_j - ρ), test>", "test MSE>"], kl_rows),
        "",
        "ρ̂_j: mean activation of code unit j over the training images (the last-but-one "
        "column over the test images).",
        "",
        "### L1 sparsity, ReLU code",
        "",
        f"- with: `{describe(dict(l1_on, random_state=0))}`",
        "- without: the same with no `sparsity`",
        "",
        *table(["penalty", "share of activations < 1e-3>", "same, test>",
                "active units per image>", "dead units>", "mean sum abs(a)>", "test MSE>"],
               l1_rows),
        "",
        "Dead units: code units below 1e-3 on every training image.",
        "",
        f"Figure: `{shown_path(img_dir / 'sparsity.png')}`.",
    ]


# ----------------------------------------------------------- c. contractive
def jacobian_sq_norms(encoder, X):
    """Squared Frobenius norm of the encoder Jacobian at each sample, by autograd.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps a sample of shape ``(n_features,)`` to its code.
    X : ndarray of shape (n_samples, n_features)
        Points at which the Jacobian is taken.

    Returns
    -------
    norms : ndarray of shape (n_samples,)
        ``||J(x_i)||_F^2`` for each sample.
    """
    x = torch.as_tensor(X, dtype=torch.float32)
    out = []
    with torch.no_grad():
        for chunk in torch.split(x, 100):
            out.append(vmap(jacrev(encoder))(chunk).square().sum((1, 2)))
    return torch.cat(out).numpy()


def skae_penalty(net, X):
    """Evaluate skae's closed-form contractive penalty ``(1/m) sum_i ||J(x_i)||_F^2``.

    Parameters
    ----------
    net : skae._nets.mlp.MLPAutoencoder
        A fitted ``module_``.
    X : ndarray of shape (m, n_features)
        Points at which the Jacobian is taken.

    Returns
    -------
    penalty : float
        Mean squared Frobenius norm over ``X`` of the Jacobian of
        ``net.encoder`` (with respect to the raw inputs, as
        :func:`jacobian_sq_norms` takes it).
    """
    with torch.no_grad():
        x = torch.as_tensor(X, dtype=torch.float32)
        if net.standardizer is not None:
            x = net.standardizer(x)
        output = net.forward_standardized(x, keep_activations=True)
        layers = net.encoder_layers
        derivatives = [derivative(layer.activation, pre, post)
                       for layer, pre, post in zip(layers, output.pre_activations,
                                                   output.activations)]
        weights = [layer.linear.weight for layer in layers]
        if net.standardizer is not None:  # chain rule through (x - shift) / scale
            weights[0] = weights[0] / net.standardizer.scale.to(weights[0].dtype)
        return float(contractive_penalty(weights, derivatives))


def run_contractive(cfg, train, test):
    """Section c: held-out Jacobian norm with and without the contractive term.

    Parameters
    ----------
    cfg : Config
        Sizes and budgets of the run.
    train, test : ndarray of shape (n, 784)
        Clean training and test images in [0, 1].

    Returns
    -------
    lines : list of str
        Markdown of the section.
    """
    weights = (0.0, 1e-3, 1e-2)
    common = dict(n_components=CODE, **BASE, activation="sigmoid", latent_activation="sigmoid",
                  max_iter=cfg.epochs)
    held_out = test[: cfg.n_jacobian]
    rows, max_rel_diff = [], 0.0
    for weight in weights:
        params = dict(common, contractive_weight=weight) if weight else common
        model, seconds = fit(train, **params)
        enc = model.module_.encoder
        norms = jacobian_sq_norms(enc, held_out)
        exact = skae_penalty(model.module_, held_out)
        max_rel_diff = max(max_rel_diff, abs(exact - norms.mean()) / norms.mean())
        rows.append([f"{weight:g}", f"{norms.mean():.3f}", f"{np.median(norms):.3f}",
                     f"{jacobian_sq_norms(enc, train[: cfg.n_jacobian]).mean():.3f}",
                     f"{mse(test, model.reconstruct(test)):.4f}",
                     f"{seconds / model.n_iter_:.2f}"])
    return [
        "## c. Contractive",
        "",
        f"`{describe(dict(common, contractive_weight=LAMBDA, random_state=0))}` for each "
        "λ (λ = 0: no contractive term). ‖J‖²: squared Frobenius norm of the encoder "
        "Jacobian ∂h/∂x (64 x 784) at a sample, computed by autograd "
        f"(`torch.func.vmap(jacrev(encoder))`) on the first {len(held_out)} held-out test "
        f"images (and the first {min(cfg.n_jacobian, len(train))} training images). "
        f"Test MSE over all {len(test)} held-out images.",
        "",
        *table(["contractive_weight λ", "mean ‖J‖², test>", "median ‖J‖², test>",
                "mean ‖J‖², train>", "test MSE>", "s / epoch>"], rows),
        "",
        "Cross-check: skae's closed-form penalty (`skae._objective.contractive_penalty`) on the "
        "same held-out images agrees with the autograd value to a relative difference of "
        f"{max_rel_diff:.1e} at most.",
    ]


# --------------------------------------------------------------- d. stacked
def run_stacked(cfg, train, test, img_dir):
    """Section d: deep sigmoid network from scratch against greedy pretraining.

    Parameters
    ----------
    cfg : Config
        Sizes and budgets of the run.
    train, test : ndarray of shape (n, 784)
        Clean training and test images in [0, 1].
    img_dir : Path
        Where ``stacked.png`` goes.

    Returns
    -------
    lines : list of str
        Markdown of the section.
    """
    hidden = (256, 128, 64, 32)
    n_stages = len(hidden) + 1
    common = dict(n_components=16, hidden_layer_sizes=hidden, activation="sigmoid",
                  output_activation="sigmoid", loss="mse", learning_rate_init=1e-2,
                  batch_size=64, tol=0.0)
    scratch_params = dict(common, max_iter=n_stages * cfg.stage_epochs + cfg.finetune_epochs)
    greedy_params = dict(common, max_iter=cfg.finetune_epochs, pretraining="greedy",
                         pretraining_max_iter=cfg.stage_epochs)
    rows, curves = [], {}
    summary = {"scratch": [], "greedy": []}
    for seed in cfg.stacked_seeds:
        for name, params in [("scratch", scratch_params), ("greedy", greedy_params)]:
            model, seconds = fit(train, seed=seed, **params)
            test_mse = mse(test, model.reconstruct(test))
            summary[name].append((model.loss_curve_[-1], test_mse))
            rows.append([seed, name, f"{model.loss_curve_[-1]:.4f}", f"{test_mse:.4f}",
                         f"{seconds:.1f}"])
            if seed == cfg.stacked_seeds[0]:
                curves[name] = model
    mean_rows = [[name, f"{np.mean([v[0] for v in vals]):.4f}",
                  f"{np.mean([v[1] for v in vals]):.4f}"] for name, vals in summary.items()]

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    pre = n_stages * cfg.stage_epochs
    scratch_curve = curves["scratch"].loss_curve_
    ax.plot(np.arange(1, len(scratch_curve) + 1), scratch_curve, label="from scratch")
    tune = curves["greedy"].loss_curve_
    ax.plot(np.arange(pre + 1, pre + len(tune) + 1), tune, label="greedy: fine-tuning")
    ax.axvspan(0.5, pre + 0.5, color="0.9",
               label=f"greedy: pretraining ({n_stages} stages x {cfg.stage_epochs} epochs)")
    ax.set_xlabel("epoch of the budget")
    ax.set_ylabel("training loss (MSE)")
    ax.set_yscale("log")
    ax.set_title(f"784-{'-'.join(map(str, hidden))}-16, sigmoid (seed {cfg.stacked_seeds[0]})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(img_dir / "stacked.png", dpi=110)
    plt.close(fig)

    return [
        "## d. Stacked (greedy layer-wise pretraining)",
        "",
        f"- from scratch: `{describe(dict(scratch_params, random_state=SEED))}`",
        f"- greedy: `{describe(dict(greedy_params, random_state=SEED))}`",
        "",
        f"Same epoch budget: {n_stages} pretraining stages x {cfg.stage_epochs} epochs + "
        f"{cfg.finetune_epochs} fine-tuning epochs = {scratch_params['max_iter']} epochs; a "
        "pretraining epoch trains one shallow layer pair and costs less than an epoch of the "
        "whole network. Training loss: mean MSE of the last epoch. Test MSE on the held-out "
        "images. `tol=0` so that every fit runs its full budget.",
        "",
        *table(["seed>", "training", "final training loss>", "test MSE>", "fit seconds>"],
               rows),
        "",
        f"Mean over seeds {list(cfg.stacked_seeds)}:",
        "",
        *table(["training", "final training loss>", "test MSE>"], mean_rows),
        "",
        f"Figure: `{shown_path(img_dir / 'stacked.png')}`.",
    ]


# ------------------------------------------------------------------ e. cost
def run_cost(cfg, train):
    """Section e: seconds per epoch of each regularizer, timed interleaved.

    Parameters
    ----------
    cfg : Config
        Sizes and budgets of the run.
    train : ndarray of shape (n, 784)
        Clean training images in [0, 1].

    Returns
    -------
    lines : list of str
        Markdown of the section.
    """
    common = dict(n_components=CODE, **BASE, max_iter=cfg.cost_epochs, tol=0.0)
    shallow = dict(hidden_layer_sizes=())
    # (name, extra parameters, the variant it is compared with)
    variants = [
        ("plain", {}, "plain"),
        ("sparsity='l1'", dict(sparsity="l1", sparsity_weight=1e-3), "plain"),
        ("sparsity='kl' (sigmoid code)",
         dict(latent_activation="sigmoid", sparsity="kl", sparsity_weight=0.1), "plain"),
        ("noise='gaussian'", dict(noise="gaussian", noise_level=0.3), "plain"),
        ("noise='masking'", dict(noise="masking", noise_level=0.3), "plain"),
        ("noise='salt_and_pepper'", dict(noise="salt_and_pepper", noise_level=0.3), "plain"),
        ("contractive_weight=0.01", dict(contractive_weight=1e-2), "plain"),
        ("tied_weights=True", dict(tied_weights=True), "plain"),
        ("shallow (784-64): plain", shallow, "shallow (784-64): plain"),
        ("shallow (784-64): contractive_weight=0.01", dict(shallow, contractive_weight=1e-2),
         "shallow (784-64): plain"),
    ]
    fit(train, **dict(common, max_iter=1))  # warm-up, not timed
    times = {name: [] for name, _, _ in variants}
    for _ in range(cfg.cost_repeats):
        for name, extra, _ in variants:
            model, seconds = fit(train, **dict(common, **extra))
            times[name].append(seconds / model.n_iter_)
    median = {name: statistics.median(t) for name, t in times.items()}
    fastest = {name: min(t) for name, t in times.items()}
    rows = [[name, f"{median[name]:.3f}", f"{median[name] / median[base]:.2f}",
             f"{fastest[name]:.3f}", f"{fastest[name] / fastest[base]:.2f}",
             " ".join(f"{v:.3f}" for v in times[name])] for name, _, base in variants]
    return [
        "## e. Cost per epoch",
        "",
        f"`{describe(dict(common, random_state=0))}` on {len(train)} images "
        f"({-(-len(train) // BASE['batch_size'])} minibatches per epoch), plus each "
        "regularizer; the last two rows use a shallow network (`hidden_layer_sizes=()`, "
        "784-64-784) and are compared with each other. Each fit is timed whole and divided "
        f"by its {cfg.cost_epochs} epochs; the variants run interleaved, {cfg.cost_repeats} "
        "rounds, after one untimed warm-up fit. The machine is shared with other jobs, "
        "which can only add time: the fastest round is the least disturbed one, so the "
        "ratio of the fastest rounds is given next to the ratio of the medians.",
        "",
        *table(["variant", "s / epoch, median>", "ratio to plain, medians>",
                "s / epoch, fastest>", "ratio to plain, fastest>", "all rounds (s / epoch)"],
               rows),
    ]


# ---------------------------------------------------------- f. tied weights
def run_tied(cfg, train, test):
    """Section f: tied against untied decoder weights, same network and budget.

    Parameters
    ----------
    cfg : Config
        Sizes and budgets of the run.
    train, test : ndarray of shape (n, 784)
        Clean training and test images in [0, 1].

    Returns
    -------
    lines : list of str
        Markdown of the section.
    """
    params = dict(n_components=CODE, **BASE, max_iter=cfg.epochs)
    rows = []
    for tied in (False, True):
        model, seconds = fit(train, **dict(params, tied_weights=tied))
        n_params = sum(p.numel() for p in model.module_.parameters())
        rows.append([str(tied), f"{n_params:,}", f"{model.loss_curve_[-1]:.4f}",
                     f"{mse(test, model.reconstruct(test)):.4f}", f"{seconds:.1f}"])
    return [
        "## f. Tied weights",
        "",
        f"`{describe(dict(params, tied_weights=Placeholder('tied'), random_state=0))}`. "
        "Training loss: mean BCE of the last epoch; test MSE per pixel on the held-out images.",
        "",
        *table(["tied_weights", "parameters>", "final training loss (BCE)>", "test MSE>",
                "fit seconds>"], rows),
    ]


# ---------------------------------------------------------- g. overcomplete
def run_overcomplete(cfg, train, test):
    """Section g: an overcomplete code with and without a regularizer.

    A 784-1024-784 shallow network can represent the identity map. The PSNR
    of its reconstructions of clean and of noisy held-out digits shows how much
    of the noise it passes through, without and with a regularizer. Also
    records whether skae warned about the identity map.

    Parameters
    ----------
    cfg : Config
        Sizes and budgets of the run.
    train, test : ndarray of shape (n, 784)
        Clean training and test images in [0, 1].

    Returns
    -------
    lines : list of str
        Markdown of the section.
    """
    width = 1024
    params = dict(n_components=width, hidden_layer_sizes=(), output_activation="sigmoid",
                  loss="bce", batch_size=64, max_iter=cfg.epochs)
    noisy = gaussian_noisy(test)
    variants = [
        ("none", {}),
        ("noise='gaussian', noise_level=0.3", dict(noise="gaussian", noise_level=0.3)),
        ("contractive_weight=0.001", dict(contractive_weight=1e-3)),
        ("sparsity='l1', sparsity_weight=0.0001", dict(sparsity="l1", sparsity_weight=1e-4)),
    ]
    rows = []
    for name, extra in variants:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            model, seconds = fit(train, **dict(params, **extra))
        warned = any("can learn the identity" in str(w.message) for w in caught)
        rows.append([name, "yes" if warned else "no", f"{psnr(test, model.reconstruct(test)):.2f}",
                     f"{psnr(test, model.reconstruct(noisy)):.2f}", f"{seconds:.1f}"])
    return [
        "## g. Overcomplete code",
        "",
        f"`{describe(dict(params, random_state=0))}` ({width} code units for 784 pixels), "
        "with no regularizer and with three of them. PSNR against the clean held-out images of "
        "the reconstruction of the clean images, and of the Gaussian-noise images of section "
        f"a (sigma 0.3, not clipped; the noisy input itself scores "
        f"{psnr(test, noisy):.2f} dB, {psnr(test, np.clip(noisy, 0, 1)):.2f} dB clipped).",
        "",
        *table(["regularizer", "identity warning", "PSNR, clean input (dB)>",
                "PSNR, noisy input (dB)>", "fit seconds>"], rows),
    ]


# --------------------------------------------------------------------- main
def versions():
    """Describe the library versions and the git commit in one line.

    Returns
    -------
    line : str
        Versions of skae (with the git commit), torch, scikit-learn, numpy, python.
    """
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"],
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return (f"skae {skae.__version__} (git {commit}), torch {torch.__version__}, "
            f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, "
            f"python {platform.python_version()}")


def default_data_dir():
    """Return the default data folder.

    Returns
    -------
    path : Path
        ``$SKAE_DATA``, else ``<repo>/../shared/datasets``.
    """
    return Path(os.environ.get("SKAE_DATA", REPO.parent / "shared" / "datasets"))


def main(argv=None):
    """Run the selected sections and write the report.

    Parameters
    ----------
    argv : list of str or None, default=None
        Command-line arguments; None reads ``sys.argv``.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir(),
                        help="data folder holding images/mnist_test.npz "
                             "(default: $SKAE_DATA or <repo>/../shared/datasets)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny subsets and 1-2 epochs: a smoke test")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections among {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=None,
                        help="report path (default: benchmarks/results/variants.md, "
                             "variants_quick.md with --quick)")
    parser.add_argument("--img-dir", type=Path, default=None,
                        help="figure folder (default: docs/variants/img, a temporary "
                             "folder with --quick)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv

    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose among {SECTIONS}")
    cfg = QUICK if args.quick else Config()
    out = args.out or REPO / "benchmarks" / "results" / (
        "variants_quick.md" if args.quick else "variants.md")
    img_dir = args.img_dir or (Path(tempfile.gettempdir()) / "skae_bench_variants_quick"
                               if args.quick else REPO / "docs" / "variants" / "img")
    img_dir.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    X = load_mnist(args.data)
    train, test = X[: cfg.n_train], X[len(X) - cfg.n_test:]
    assert cfg.n_train + cfg.n_test <= len(X), "training and test images must be disjoint"

    started = datetime.datetime.now(datetime.timezone.utc)
    command = shlex.join(["python", "benchmarks/bench_variants.py", *argv])
    lines = [
        "# Regularized autoencoder variants" + (": quick smoke run" if args.quick else ""),
        "",
        f"- command: `{command}`",
        f"- date: {started.isoformat(timespec='seconds')}",
        f"- versions: {versions()}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), "
        f"torch threads {torch.get_num_threads()}",
        f"- data: MNIST test set (`images/mnist_test.npz`), pixels / 255; train = first "
        f"{len(train)} images, test = last {len(test)} images (disjoint)",
        "- see the docstring of `benchmarks/bench_variants.py` for the protocol",
    ]
    runners = {
        "denoising": lambda: run_denoising(cfg, train, test, img_dir),
        "sparsity": lambda: run_sparsity(cfg, train, test, img_dir),
        "contractive": lambda: run_contractive(cfg, train, test),
        "stacked": lambda: run_stacked(cfg, train, test, img_dir),
        "cost": lambda: run_cost(cfg, train),
        "tied": lambda: run_tied(cfg, train, test),
        "overcomplete": lambda: run_overcomplete(cfg, train, test),
    }
    for name in sections:
        start = time.perf_counter()
        print(f"[{name}] running ...", flush=True)
        section = runners[name]()
        elapsed = time.perf_counter() - start
        print("\n".join(section), flush=True)
        print(f"[{name}] done in {elapsed:.0f} s", flush=True)
        lines += ["", *section, "", f"_Section run time: {elapsed:.0f} s._"]
    total = (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()
    lines += ["", f"Total run time: {total:.0f} s. Figures in `{shown_path(img_dir)}/`."]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out} and figures in {img_dir}")


if __name__ == "__main__":
    main()
