"""
Autoencoder versus PCA on scikit-learn's digits
===============================================

Fits PCA and an AutoencoderTransformer at a few code sizes, prints held-out
reconstruction error, k-NN accuracy on the codes and fit time, and saves a
figure (loss curve, 2-D codes coloured by digit, reconstructions) to
``examples/output/demo.png``.

Run: ``python examples/demo.py [--out DIR]`` (or ``make demo``).
"""

import argparse
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402

from skae import AutoencoderTransformer  # noqa: E402

CODE_SIZES = (2, 8, 16)
# The folder of this script (the documentation build runs it from there
# without defining __file__).
HERE = Path(__file__).parent if "__file__" in globals() else Path.cwd()


def make_autoencoder(k):
    return AutoencoderTransformer(
        k, hidden_layer_sizes=(256, 128), batch_size=64, max_iter=150,
        learning_rate="adaptive", random_state=0,
    )


def evaluate(model, X_train, X_test, y_train, y_test):
    """Fit ``model``; return (held-out MSE, k-NN accuracy on codes, fit seconds)."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train)
    seconds = time.perf_counter() - start
    Z_train, Z_test = model.transform(X_train), model.transform(X_test)
    mse = float(np.mean((model.inverse_transform(Z_test) - X_test) ** 2))
    knn = KNeighborsClassifier(5).fit(Z_train, y_train).score(Z_test, y_test)
    return mse, knn, seconds


def main():
    parser = argparse.ArgumentParser(
        description="skae demo: autoencoder versus PCA on scikit-learn's digits.")
    parser.add_argument("--out", type=Path, default=HERE / "output")
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)

    print(f"digits: {X_train.shape[0]} train / {X_test.shape[0]} held-out samples, "
          f"{X.shape[1]} features\n")
    print(f"{'k':>3} | {'model':<12} | {'held-out MSE':>12} | {'k-NN acc':>8} | {'fit s':>6}")
    print("-" * 55)
    fitted = {}
    for k in CODE_SIZES:
        for name, model in (("PCA", PCA(k)), ("autoencoder", make_autoencoder(k))):
            mse, knn, seconds = evaluate(model, X_train, X_test, y_train, y_test)
            fitted[name, k] = model
            print(f"{k:>3} | {name:<12} | {mse:>12.5f} | {knn:>8.3f} | {seconds:>6.2f}")

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "demo.png"
    plot(fitted, X_test, y_test, path)
    print(f"\nfigure saved to {path}")


def plot(fitted, X_test, y_test, path):
    ae2, pca2 = fitted["autoencoder", 2], fitted["PCA", 2]
    ae16, pca16 = fitted["autoencoder", 16], fitted["PCA", 16]
    fig = plt.figure(figsize=(13, 8))
    grid = fig.add_gridspec(2, 3)

    ax = fig.add_subplot(grid[0, 0])
    for k in CODE_SIZES:
        ax.plot(fitted["autoencoder", k].loss_curve_, label=f"k={k}")
    ax.set(yscale="log", xlabel="epoch", ylabel="training MSE", title="Autoencoder loss curves")
    ax.legend()

    for col, (model, title) in enumerate(((ae2, "Autoencoder codes (k=2)"),
                                          (pca2, "PCA codes (k=2)")), start=1):
        ax = fig.add_subplot(grid[0, col])
        Z = model.transform(X_test)
        points = ax.scatter(Z[:, 0], Z[:, 1], c=y_test, cmap="tab10", s=8)
        ax.set(title=title, xticks=[], yticks=[])
    fig.colorbar(points, ax=ax, label="digit")

    rows = (("original", X_test), ("autoencoder k=16", ae16.inverse_transform(ae16.transform(X_test))),
            ("PCA k=16", pca16.inverse_transform(pca16.transform(X_test))))
    sub = grid[1, :].subgridspec(3, 10)
    for r, (label, images) in enumerate(rows):
        for c in range(10):
            ax = fig.add_subplot(sub[r, c])
            ax.imshow(np.clip(images[c], 0, 1).reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            ax.set(xticks=[], yticks=[])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle("skae on scikit-learn's digits (held-out samples)")
    fig.savefig(path, dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
