"""
Denoising autoencoder
=====================

Clean held-out digits, the same digits corrupted, and the reconstructions of
a denoising autoencoder trained with that corruption, a plain autoencoder
and PCA with the same code size: first with Gaussian noise, then with
masking noise. The figures of the denoising guide show the same on MNIST.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer, corrupt

warnings.simplefilter("ignore", ConvergenceWarning)

X = load_digits().data / 16.0
train, test = X[:1500], X[1500:]
common = dict(n_components=16, hidden_layer_sizes=(128,), output_activation="sigmoid",
              loss="bce", batch_size=128, max_iter=40, random_state=0)


def psnr(clean, restored):
    return 10 * np.log10(1.0 / np.mean((np.clip(restored, 0, 1) - clean) ** 2))


def show(rows, title):
    fig, axes = plt.subplots(len(rows), 8, figsize=(9, 1.15 * len(rows)))
    for r, (label, images) in enumerate(rows):
        for c in range(8):
            axes[r, c].imshow(np.clip(images[c], 0, 1).reshape(8, 8), cmap="gray", vmin=0, vmax=1)
            axes[r, c].set(xticks=[], yticks=[])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()


# %%
# The plain autoencoder and PCA never see noise; each denoising autoencoder
# is trained with the corruption it then removes.
plain = AutoencoderTransformer(**common).fit(train)
pca = PCA(16).fit(train)


def compare(noise, level):
    dae = AutoencoderTransformer(noise=noise, noise_level=level, **common).fit(train)
    noisy = corrupt(test, noise, level, random_state=1)
    rows = [("clean", test), (noise, noisy), ("DAE", dae.reconstruct(noisy)),
            ("plain AE", plain.reconstruct(noisy)),
            ("PCA(16)", pca.inverse_transform(pca.transform(noisy)))]
    print(", ".join(f"{label} {psnr(test, images):.2f} dB" for label, images in rows[1:]))
    show(rows, f"{noise} noise, level {level}")


# %%
# Gaussian noise
# --------------
compare("gaussian", 0.3)

# %%
# Masking noise
# -------------
compare("masking", 0.3)
