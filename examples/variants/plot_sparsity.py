"""
Sparse autoencoders
===================

Code activations with and without a sparsity penalty. With a sigmoid code,
the KL penalty pulls each unit's mean activation towards the target
``sparsity_target``; with a ReLU code, the L1 penalty sets more activations to
exactly zero. The sparsity guide shows the same on MNIST.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer

warnings.simplefilter("ignore", ConvergenceWarning)

X = load_digits().data / 16.0
rho, kl_weight, l1_weight = 0.05, 0.1, 1e-3
common = dict(n_components=32, hidden_layer_sizes=(128,), output_activation="sigmoid",
              batch_size=128, max_iter=30, random_state=0)
params = {
    "kl_none": dict(common, latent_activation="sigmoid"),
    "kl_on": dict(common, latent_activation="sigmoid", sparsity="kl",
                  sparsity_weight=kl_weight, sparsity_target=rho),
    "l1_none": dict(common, latent_activation="relu"),
    "l1_on": dict(common, latent_activation="relu", sparsity="l1", sparsity_weight=l1_weight),
}
codes = {name: AutoencoderTransformer(**p).fit_transform(X) for name, p in params.items()}
for name, Z in codes.items():
    print(f"{name:>8}: mean activation {Z.mean():.4f}, "
          f"share of activations below 1e-3 {np.mean(np.abs(Z) < 1e-3):.3f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
bins = np.linspace(0, 1, 51)
ax = axes[0]
ax.hist(codes["kl_none"].ravel(), bins=bins, histtype="step", lw=1.5, label="no penalty")
ax.hist(codes["kl_on"].ravel(), bins=bins, histtype="step", lw=1.5,
        label=f"KL, ρ={rho}, λ={kl_weight}")
ax.set(yscale="log", xlabel="code activation (sigmoid)", ylabel="count (images x units)",
       title="KL sparsity: activations")
ax.legend(fontsize=8)
ax = axes[1]
units = np.arange(1, codes["kl_on"].shape[1] + 1)
ax.plot(units, np.sort(codes["kl_none"].mean(0)), "o", ms=3, label="no penalty")
ax.plot(units, np.sort(codes["kl_on"].mean(0)), "o", ms=3, label="KL penalty")
ax.axhline(rho, color="k", lw=0.8, ls="--", label=f"target ρ={rho}")
ax.set(yscale="log", xlabel="code unit (sorted)", ylabel=r"mean activation $\hat{\rho}_j$",
       title="KL sparsity: mean activation per unit")
ax.legend(fontsize=8)
ax = axes[2]
bins = np.linspace(0, max(codes["l1_none"].max(), codes["l1_on"].max()), 51)
ax.hist(codes["l1_none"].ravel(), bins=bins, histtype="step", lw=1.5, label="no penalty")
ax.hist(codes["l1_on"].ravel(), bins=bins, histtype="step", lw=1.5, label=f"L1, λ={l1_weight}")
ax.set(yscale="log", xlabel="code activation (ReLU)", title="L1 sparsity: activations")
ax.legend(fontsize=8)
fig.tight_layout()
