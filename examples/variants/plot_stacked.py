"""
Stacked autoencoder: greedy pretraining
=======================================

The training loss of a deep sigmoid autoencoder trained from scratch, and of
the same network fine-tuned after greedy layer-wise pretraining
(``pretraining="greedy"``), on the same budget of epochs. The stacked guide
shows the same on MNIST.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer

warnings.simplefilter("ignore", ConvergenceWarning)

X = load_digits().data / 16.0
hidden = (48, 32, 16)
n_stages, stage_epochs, finetune_epochs = len(hidden) + 1, 10, 40
common = dict(n_components=8, hidden_layer_sizes=hidden, activation="sigmoid",
              output_activation="sigmoid", learning_rate_init=1e-2, batch_size=64, tol=0.0,
              random_state=0)
scratch = AutoencoderTransformer(max_iter=n_stages * stage_epochs + finetune_epochs,
                                 **common).fit(X)
greedy = AutoencoderTransformer(max_iter=finetune_epochs, pretraining="greedy",
                                pretraining_max_iter=stage_epochs, **common).fit(X)
print(f"final training loss: from scratch {scratch.loss_curve_[-1]:.4f}, "
      f"greedy {greedy.loss_curve_[-1]:.4f}")

# %%
fig, ax = plt.subplots(figsize=(6.4, 3.8))
pre = n_stages * stage_epochs
ax.plot(np.arange(1, len(scratch.loss_curve_) + 1), scratch.loss_curve_, label="from scratch")
ax.plot(np.arange(pre + 1, pre + len(greedy.loss_curve_) + 1), greedy.loss_curve_,
        label="greedy: fine-tuning")
ax.axvspan(0.5, pre + 0.5, color="0.9",
           label=f"greedy: pretraining ({n_stages} stages x {stage_epochs} epochs)")
ax.set(xlabel="epoch of the budget", ylabel="training loss (MSE)", yscale="log",
       title=f"64-{'-'.join(map(str, hidden))}-8, sigmoid")
ax.legend(fontsize=8)
fig.tight_layout()
