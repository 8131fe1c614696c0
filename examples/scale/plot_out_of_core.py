"""
Data larger than memory: memory-mapped files and Dask arrays
============================================================

``fit`` reads a memory-mapped ``.npy`` file or a Dask array one block of
rows at a time, so the data never has to fit in memory; inference on a Dask
array returns a lazy Dask array computed block by block. This example writes
a file of 100 000 rows block by block, trains a detector on the memory map,
then scores a Dask array of the same file lazily. On a cluster, create a
``distributed.Client`` first: the same calls then run on its workers.
"""

import tempfile
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score

from skae import AutoencoderAnomalyDetector

warnings.simplefilter("ignore", ConvergenceWarning)

# %%
# Write the data to disk, a block at a time: rows on a curved 4-dimensional
# manifold in 40 dimensions, the first 1% of each block shifted off it.
rng = np.random.default_rng(0)
n_rows, n_features, block = 100_000, 40, 10_000
mixing = rng.normal(size=(4, n_features))
folder = Path(tempfile.mkdtemp())
path = folder / "X.npy"
X_disk = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                   shape=(n_rows, n_features))
is_outlier = np.zeros(n_rows, dtype=bool)
for start in range(0, n_rows, block):
    rows = np.tanh(rng.normal(size=(block, 4)) @ mixing)
    rows += 0.05 * rng.normal(size=rows.shape)
    rows[: block // 100] += rng.normal(scale=1.0, size=(block // 100, n_features))
    is_outlier[start:start + block // 100] = True
    X_disk[start:start + block] = rows
X_disk.flush()
del X_disk

# %%
# Fit on the memory map: one pass checks the values (and finds each column's
# range), two compute the standardization, then each epoch reads the blocks
# in shuffled windows.
X = np.load(path, mmap_mode="r")
detector = AutoencoderAnomalyDetector(n_components=4, hidden_layer_sizes=(32,), max_iter=2,
                                      batch_size=512, contamination=0.01, random_state=0)
detector.fit(X)
print(f"{detector.n_iter_} epochs, loss {detector.loss_curve_[-1]:.3f}")

# %%
# Lazy inference: a Dask array in, a Dask array out, one task per block;
# the fitted model enters the graph once.
X_dask = da.from_array(X, chunks=(12_500, n_features))
scores = detector.score_samples(X_dask)
print(scores)
auc = roc_auc_score(is_outlier, -scores.compute())
print(f"AUROC of the shifted rows: {auc:.3f}")
flagged = (detector.predict(X_dask) == -1).sum().compute()
print(f"{flagged} rows flagged as outliers (contamination=0.01)")
