"""
Denoising images with a convolutional autoencoder
=================================================

A convolutional denoising autoencoder with a spatial code
(``n_components=None``) is trained on corrupted digits and restores
held-out ones: rows of noisy, restored and clean images, for Gaussian noise
and salt-and-pepper noise. The images guide shows the same on MNIST and
Fashion-MNIST.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer, corrupt

warnings.simplefilter("ignore", ConvergenceWarning)

X = (load_digits().data / 16.0).astype(np.float32)
train, test = X[:1500], X[1500:]


def psnr(clean, restored):
    return 10 * np.log10(1.0 / np.mean((np.clip(restored, 0, 1) - clean) ** 2))


def triplets(rows, titles, n=8):
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 1.1, len(rows) * 1.25))
    for i, (images, title) in enumerate(zip(rows, titles)):
        for j in range(n):
            axes[i, j].imshow(np.clip(images[j], 0, 1).reshape(8, 8), cmap="gray",
                              vmin=0, vmax=1)
            axes[i, j].axis("off")
        axes[i, 0].set_title(title, fontsize=8, loc="left")
    fig.tight_layout()


def denoise(noise, level):
    dae = AutoencoderTransformer(
        n_components=None, hidden_layer_sizes=(), architecture="conv", image_shape=(8, 8, 1),
        conv_channels=(16, 32), output_activation="sigmoid", noise=noise, noise_level=level,
        max_iter=40, random_state=0,
    ).fit(train)
    noisy = corrupt(test, noise, level, random_state=1)
    restored = dae.reconstruct(noisy)
    print(f"noisy {psnr(test, noisy):.2f} dB, restored {psnr(test, restored):.2f} dB")
    triplets([noisy, restored, test], [f"noisy ({noise} {level})", "restored", "clean"])


# %%
# Gaussian noise
# --------------
denoise("gaussian", 0.2)

# %%
# Salt-and-pepper noise
# ---------------------
denoise("salt_and_pepper", 0.1)
