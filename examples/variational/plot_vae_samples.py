"""
Sampling from a variational autoencoder
=======================================

A variational autoencoder is a generative model: ``sample`` draws codes
from the prior and decodes them. The variational guide shows samples of a
model trained on MNIST; here the model is trained on the 8x8 digits.
"""

import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer

warnings.simplefilter("ignore", ConvergenceWarning)

X = load_digits().data / 16.0
vae = AutoencoderTransformer(
    n_components=8, hidden_layer_sizes=(128, 128), activation="tanh", variational=True,
    loss="bce", output_activation="sigmoid", batch_size=64, max_iter=100, random_state=0,
).fit(X)
print(f"held-in log-likelihood: {vae.score(X):.2f} nats per image")

# %%
grid = vae.sample(64, random_state=0).reshape(8, 8, 8, 8)
fig, ax = plt.subplots(figsize=(5, 5))
ax.imshow(grid.transpose(0, 2, 1, 3).reshape(8 * 8, 8 * 8), cmap="gray_r")
ax.set_axis_off()
ax.set_title("64 samples")
