"""
Compression: rate and distortion
================================

``compress`` quantizes each component of the code to ``n_bits`` bits and packs
them into bytes; ``decompress`` decodes them. Fewer components or fewer bits
give fewer bytes per image and a lower PSNR. The curves compare a
convolutional autoencoder with PCA quantized the same way, on held-out
digits; the images guide shows the same on MNIST and Fashion-MNIST.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer

warnings.simplefilter("ignore", ConvergenceWarning)

X = (load_digits().data / 16.0).astype(np.float32)
train, test = X[:1500], X[1500:]


def psnr(clean, restored):
    return 10 * np.log10(1.0 / np.mean((np.clip(restored, 0, 1) - clean) ** 2))


def envelope(points):
    """The points that no point with at most as many bytes beats."""
    best, out = -np.inf, []
    for n_bytes, value in sorted(points, key=lambda p: (p[0], -p[1])):
        if value > best:
            out.append((n_bytes, value))
            best = value
    return out


curves = {"skae conv AE": [], "PCA": []}
for k in (4, 8, 16):
    ae = AutoencoderTransformer(
        n_components=k, hidden_layer_sizes=(), architecture="conv", image_shape=(8, 8, 1),
        conv_channels=(16, 32), output_activation="sigmoid", max_iter=40, random_state=0,
    ).fit(train)
    pca = PCA(k).fit(train)
    Z = pca.transform(train)
    low, high = Z.min(0), Z.max(0)
    for bits in (2, 4, 6, 8):
        data = ae.compress(test, n_bits=bits)
        curves["skae conv AE"].append((len(data[0]), psnr(test, ae.decompress(data, n_bits=bits))))
        # PCA codes quantized the same way: `bits` per component in the training range
        levels = 2**bits - 1
        q = np.rint((np.clip(pca.transform(test), low, high) - low) / (high - low) * levels)
        restored = pca.inverse_transform(low + q / levels * (high - low))
        curves["PCA"].append((int(np.ceil(k * bits / 8)), psnr(test, restored)))

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.8))
for name, points in curves.items():
    best = envelope(points)
    ax.plot([p[0] for p in best], [p[1] for p in best], marker="o", ms=3, label=name)
ax.set(xscale="log", xlabel="bytes per image", ylabel="PSNR (dB)",
       title="Rate-distortion, held-out digits")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
