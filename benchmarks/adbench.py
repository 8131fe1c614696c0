"""Benchmark ``skae.AutoencoderAnomalyDetector`` on the ADBench tabular datasets.

The protocol is that of ADBench (Han et al., "ADBench: Anomaly Detection
Benchmark", NeurIPS 2022), unsupervised setting, so that the IsolationForest
and PCA columns can be checked against the paper's Tables D4/D5. For every
dataset and every seed in (1, 2, 3):

1. Size normalisation, with ``rng = np.random.RandomState(seed)``: a dataset
   with fewer than 1000 rows is bootstrapped (drawn with replacement) to
   exactly 1000 rows, one with more than 10000 rows is subsampled without
   replacement to 10000 rows (``rng.choice``).
2. A stratified, shuffled 70/30 train/test split drawn from the same ``rng``
   (ADBench seeds NumPy's global generator and calls ``train_test_split``
   without a ``random_state``; passing the seeded ``RandomState`` instance
   reproduces the same draws without touching global state).
3. ``MinMaxScaler`` fitted on the training split, applied to both splits.
4. Each detector is fitted on the whole training split (anomalies included,
   labels unused) and scores the test split, higher = more anomalous.
5. AUCROC (``roc_auc_score``) and AUCPR (``average_precision_score``) on the
   test split. Tables report the mean over the seeds.

Before each fit NumPy's, Python's and torch's global generators are seeded
with ``seed``, as ADBench does. Methods:

``skae``
    ``skae.AutoencoderAnomalyDetector(random_state=seed)``, defaults unless
    ``--skae-params`` overrides some; score = ``-score_samples``.
``skae_vae``
    ``skae.AutoencoderAnomalyDetector(variational=True, random_state=seed)``,
    otherwise as ``skae`` (``--skae-params`` applies too); score =
    ``-score_samples``, the negative log-likelihood estimate.
``pyod_ae``
    ``pyod.models.auto_encoder.AutoEncoder(random_state=seed, verbose=0)``,
    otherwise pyod's defaults; score = ``decision_function``.
``iforest``
    ``sklearn.ensemble.IsolationForest`` with default parameters and
    ``random_state=np.random.RandomState(seed)``; score = ``-score_samples``.
    A fresh ``RandomState`` instance (rather than the integer ``seed``) gives
    the same stream as ADBench's ``pyod.models.iforest.IForest()`` fitted right
    after ``np.random.seed(seed)``, so this column should reproduce the
    published one.
``pca``
    ``pyod.models.pca.PCA(svd_solver="full")``, otherwise pyod's defaults (all
    components, standardisation, eigenvalue-weighted distances): ADBench's
    PCA. ``svd_solver="full"`` is what "auto" chose in the scikit-learn of
    ADBench's time; the "auto" of scikit-learn >= 1.5 picks the
    "covariance_eigh" solver for tall data, whose exactly-zero eigenvalues
    (constant columns of a training split) make pyod's scores infinite, e.g.
    on campaign, Cardiotocography and fault. score = ``decision_function``.
``knn``
    ``pyod.models.knn.KNN()`` (5 neighbours, distance to the farthest of
    them); score = ``decision_function``.
``lof``
    ``sklearn.neighbors.LocalOutlierFactor(novelty=True)`` (20 neighbours);
    score = ``-score_samples``.

Novelty mode (``--mode novelty``): the semi-supervised protocol of ADBench
and of DTE (Livernoche et al., ICLR 2024). Per seed, a dataset with more than
10000 rows is subsampled to 10000 rows; the detector is trained on a random
half of the normal samples only and tested on the other half together with
every anomaly (see :func:`make_novelty_split`); MinMaxScaler fitted on the
training half. Methods default to skae, iforest, knn, pca and lof.

Out-of-sample selection (``--cv-folds K``): the 43 ADBench datasets are
assigned to K folds by a seeded shuffle; every candidate configuration of
``--grid`` (a JSON object ``{name: AutoencoderAnomalyDetector overrides}``,
default ``benchmarks/adbench_grid.json``) is scored on every dataset with the
first seed (or by its mean over ``--selection-seeds``); for each fold, the
candidate with the best mean AUCROC on the other folds is evaluated on the
held-out fold with every seed. The held-out means over all datasets
estimate the performance of the selection out of sample; the candidate best
on all datasets is the one to ship, and its mean is reported next to them as
the in-sample figure, with IsolationForest on the same splits. Each candidate's rows are cached in
``<out>/adbench_<tag>_cache/<candidate>.csv`` (with its parameters; ``--cache``
names another folder), so a rerun fits only what changed.

The 43 ADBench "Classical" datasets are averaged together; the 5 ``odds_*``
datasets (ODDS versions that differ from ADBench's) are averaged separately
and have no published value.

Usage::

    python benchmarks/adbench.py [DATA_DIR] [--quick] [--methods skae,iforest]
        [--datasets WBC,wine] [--seeds 1,2,3] [--skae-params '{"max_iter": 50}']
        [--out benchmarks/results] [--tag NAME] [--threads 1]
        [--mode {unsupervised,novelty}] [--cv-folds K] [--grid GRID.json]

``DATA_DIR`` defaults to ``$SKAE_DATA/adbench`` where ``SKAE_DATA`` defaults to
``<repo root>/../shared/datasets``; the published tables are read from the
parent of ``DATA_DIR``. ``--quick`` runs two tiny datasets with one seed (a
smoke test of a few seconds). Results go to ``<out>/adbench_<tag>.csv`` (long
format, one row per dataset, seed and method, rewritten after each dataset so
that an interrupted run keeps what it finished; the ``warnings`` column counts
the warnings each fit and scoring emitted) and ``<out>/adbench_<tag>.md``; the
tag defaults to ``quick`` or ``full``, ``novelty`` with ``--mode novelty``
and ``cv<K>`` with ``--cv-folds K`` (``_quick`` appended with ``--quick``).
"""

import argparse
import datetime
import json
import os
import random
import shlex
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import LocalOutlierFactor
from sklearn.preprocessing import MinMaxScaler
from threadpoolctl import threadpool_limits

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import skae  # noqa: E402  (imported from the source tree)

try:
    import pyod
    from pyod.models.auto_encoder import AutoEncoder as PyodAutoEncoder
    from pyod.models.knn import KNN as PyodKNN
    from pyod.models.pca import PCA as PyodPCA
except ImportError:  # pragma: no cover - depends on the environment
    pyod = None

ALL_METHODS = ("skae", "skae_vae", "pyod_ae", "iforest", "pca", "knn", "lof")
PYOD_METHODS = ("pyod_ae", "pca", "knn")
NOVELTY_METHODS = ("skae", "iforest", "knn", "pca", "lof")
DEFAULT_GRID = Path(__file__).resolve().parent / "adbench_grid.json"
NOVELTY_GRID = Path(__file__).resolve().parent / "adbench_grid_novelty.json"
FOLD_SEED = 0
DEFAULT_SEEDS = (1, 2, 3)
QUICK_DATASETS = ("WBC", "vertebral")
MIN_ROWS = 1000
MAX_ROWS = 10000
TEST_SIZE = 0.3
ODDS_PREFIX = "odds_"
METRICS = ("aucroc", "aucpr")


def default_data_dir():
    """Return the default dataset folder, ``$SKAE_DATA/adbench``.

    Returns
    -------
    path : pathlib.Path
        ``SKAE_DATA`` defaults to ``<repo root>/../shared/datasets``.
    """
    root = os.environ.get("SKAE_DATA", str(REPO_ROOT.parent / "shared" / "datasets"))
    return Path(root) / "adbench"


def load_dataset(path):
    """Load one ``.npz`` dataset.

    Parameters
    ----------
    path : pathlib.Path
        File with arrays ``X`` (n_samples, n_features) and ``y`` (1 = anomaly).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype float64
        Features, cast losslessly from float32.
    y : ndarray of shape (n_samples,), dtype int64
        Labels, 1 for anomalies and 0 for normal points.
    """
    with np.load(path) as data:
        return data["X"].astype(np.float64), data["y"].astype(np.int64)


def make_split(X, y, seed):
    """Resize, split and scale one dataset as ADBench does for ``seed``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Features.
    y : ndarray of shape (n_samples,)
        Labels (1 = anomaly); used only to stratify the split.
    seed : int
        Seed of the ``RandomState`` that draws the resampling and the split.

    Returns
    -------
    X_train, X_test : ndarray
        Min-max scaled splits (scaler fitted on ``X_train``).
    y_train, y_test : ndarray
        The matching labels.
    """
    rng = np.random.RandomState(seed)
    n = len(y)
    if n < MIN_ROWS:
        idx = rng.choice(n, MIN_ROWS, replace=True)
        X, y = X[idx], y[idx]
    elif n > MAX_ROWS:
        idx = rng.choice(n, MAX_ROWS, replace=False)
        X, y = X[idx], y[idx]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, shuffle=True, stratify=y, random_state=rng
    )
    scaler = MinMaxScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def make_novelty_split(X, y, seed):
    """Split one dataset for novelty detection (training data without anomalies).

    The semi-supervised protocol of ADBench and of DTE (Livernoche et al.,
    ICLR 2024): the detector is trained on a random half of the normal
    samples only and tested on the other half together with every anomaly.
    A dataset with more than 10000 rows is first subsampled to 10000 rows,
    as in :func:`make_split`; smaller ones are not bootstrapped, since
    duplicated rows would fall on both sides of the split.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Features.
    y : ndarray of shape (n_samples,)
        Labels (1 = anomaly).
    seed : int
        Seed of the ``RandomState`` that draws the subsample and the halves.

    Returns
    -------
    X_train, X_test : ndarray
        Min-max scaled splits (scaler fitted on ``X_train``, which holds
        normal samples only).
    y_train, y_test : ndarray
        The matching labels (``y_train`` is all 0).
    """
    rng = np.random.RandomState(seed)
    if len(y) > MAX_ROWS:
        idx = rng.choice(len(y), MAX_ROWS, replace=False)
        X, y = X[idx], y[idx]
    normal = rng.permutation(np.flatnonzero(y == 0))
    half = len(normal) // 2
    train = normal[:half]
    test = np.concatenate([normal[half:], np.flatnonzero(y == 1)])
    scaler = MinMaxScaler().fit(X[train])
    return scaler.transform(X[train]), scaler.transform(X[test]), y[train], y[test]


def seed_everything(seed):
    """Seed Python's, NumPy's and torch's global generators.

    Parameters
    ----------
    seed : int
        The seed.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fit_score(method, X_train, X_test, seed, skae_params):
    """Fit one detector on ``X_train`` and score ``X_test``.

    Parameters
    ----------
    method : {"skae", "skae_vae", "pyod_ae", "iforest", "pca", "knn", "lof"}
        The detector (see the module docstring).
    X_train, X_test : ndarray
        Scaled training and test features.
    seed : int
        Seed of the run.
    skae_params : dict
        Parameters overriding ``AutoencoderAnomalyDetector``'s defaults;
        ``"n_estimators": k`` fits an ``AutoencoderEnsembleDetector`` of
        ``k`` such detectors instead.

    Returns
    -------
    scores : ndarray of shape (len(X_test),)
        Anomaly scores, higher = more anomalous.
    """
    seed_everything(seed)
    if method in ("skae", "skae_vae"):
        params = {"variational": method == "skae_vae", **skae_params}
        n_estimators = params.pop("n_estimators", None)
        if n_estimators is None:
            model = skae.AutoencoderAnomalyDetector(random_state=seed, **params)
        else:  # an ensemble of that many detectors, seeded by the run's seed
            model = skae.AutoencoderEnsembleDetector(skae.AutoencoderAnomalyDetector(**params),
                                                     n_estimators=n_estimators,
                                                     random_state=seed)
        return -model.fit(X_train).score_samples(X_test)
    if method == "iforest":
        model = IsolationForest(random_state=np.random.RandomState(seed)).fit(X_train)
        return -model.score_samples(X_test)
    if method == "pyod_ae":
        model = PyodAutoEncoder(random_state=seed, verbose=0).fit(X_train)
        return model.decision_function(X_test)
    if method == "pca":
        return PyodPCA(svd_solver="full").fit(X_train).decision_function(X_test)
    if method == "knn":
        return PyodKNN().fit(X_train).decision_function(X_test)
    if method == "lof":
        model = LocalOutlierFactor(novelty=True).fit(X_train)
        return -model.score_samples(X_test)
    raise ValueError(f"unknown method {method!r}")


def evaluate(y_test, scores):
    """Return AUCROC and AUCPR of ``scores``, or NaN if some are not finite.

    Parameters
    ----------
    y_test : ndarray of shape (n_samples,)
        True labels, 1 = anomaly.
    scores : ndarray of shape (n_samples,)
        Anomaly scores, higher = more anomalous.

    Returns
    -------
    aucroc, aucpr : float
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(scores)):
        return np.nan, np.nan
    return roc_auc_score(y_test, scores), average_precision_score(y_test, scores)


def load_published(table_dir):
    """Read ADBench's published AUCROC and AUCPR tables (percent).

    Parameters
    ----------
    table_dir : pathlib.Path
        Folder holding ``adbench_published_aucroc.tsv`` and
        ``adbench_published_aucpr.tsv``.

    Returns
    -------
    published : dict
        ``{"aucroc": df, "aucpr": df}``, each indexed by local file stem (the
        ``local_npz`` column) with one column per published method, or empty
        frames when the files are absent.
    """
    published = {}
    for metric in METRICS:
        path = table_dir / f"adbench_published_{metric}.tsv"
        if not path.exists():
            published[metric] = pd.DataFrame()
            continue
        df = pd.read_csv(path, sep="\t", na_values=["NA"], keep_default_na=False)
        df = df[df["local_npz"].astype(str).str.len() > 0]
        published[metric] = df.set_index("local_npz").drop(columns="dataset")
    return published


def run_one(name, X, y, seed, method, skae_params, split):
    """Fit and score one method on one dataset and seed.

    Parameters
    ----------
    name : str
        Dataset name, for the row.
    X, y : ndarray
        The dataset.
    seed : int
        Seed of the split and the fit.
    method : str
        The detector.
    skae_params : dict
        Overrides of ``AutoencoderAnomalyDetector``'s defaults.
    split : callable
        :func:`make_split` or :func:`make_novelty_split`.

    Returns
    -------
    row : dict
        dataset, seed, method, aucroc, aucpr, fit_score_seconds and warnings
        (the number of warnings the fit and scoring emitted).
    """
    X_train, X_test, _, y_test = split(X, y, seed)
    return scored_row(name, seed, method, X_train, X_test, y_test,
                      lambda a, b: fit_score(method, a, b, seed, skae_params))


def scored_row(name, seed, method, X_train, X_test, y_test, scores_of):
    """Time one fit and scoring, count its warnings and evaluate it.

    Parameters
    ----------
    name : str
        Dataset name, for the row.
    seed : int
        Seed of the split, for the row.
    method : str
        Name of the method, for the row.
    X_train, X_test : ndarray
        Scaled training and test features.
    y_test : ndarray
        Test labels (1 = anomaly).
    scores_of : callable
        ``scores_of(X_train, X_test)`` fits on ``X_train`` and returns the
        anomaly scores of ``X_test`` (higher = more anomalous).

    Returns
    -------
    row : dict
        dataset, seed, method, aucroc, aucpr, fit_score_seconds and warnings
        (the number of warnings the fit and scoring emitted).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tic = time.perf_counter()
        scores = scores_of(X_train, X_test)
        seconds = time.perf_counter() - tic
    aucroc, aucpr = evaluate(y_test, scores)
    if np.isnan(aucroc):
        print(f"  note: {method} gave non-finite scores on {name} "
              f"seed {seed}; recorded as NaN", flush=True)
    return {"dataset": name, "seed": seed, "method": method, "aucroc": aucroc,
            "aucpr": aucpr, "fit_score_seconds": seconds, "warnings": len(caught)}


def warm_up(methods, skae_params):
    """Fit and score each method once on small random data, untimed.

    A process's first fit pays one-time costs that no later fit pays:
    imports made on first use (torch's optimizers import ``torch._dynamo``,
    1.6-2.5 s on a 2-core machine), thread pools, memory first touched.
    ``benchmarks/bench_speed.py`` warms every implementation up the same
    way; without it, the first dataset's first method carried those costs.

    Parameters
    ----------
    methods : list of str
    skae_params : dict
        Overrides of ``AutoencoderAnomalyDetector``'s defaults.
    """
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in methods:
            fit_score(method, X[:200], X[200:], 0, skae_params)


def dataset_info(datasets, data_dir):
    """Size, dimension and anomaly ratio of each dataset.

    Parameters
    ----------
    datasets : list of str
        File stems in ``data_dir``.
    data_dir : pathlib.Path
        Folder of the ``.npz`` files.

    Returns
    -------
    info : pandas.DataFrame
        Indexed by dataset: n, d and ratio of the original data.
    """
    info = {}
    for name in datasets:
        with np.load(data_dir / f"{name}.npz") as data:
            info[name] = {"n": data["X"].shape[0], "d": data["X"].shape[1],
                          "ratio": float(data["y"].mean())}
    return pd.DataFrame.from_dict(info, orient="index")


def run(datasets, methods, seeds, skae_params, data_dir, csv_path, split=make_split):
    """Run every method on every dataset and seed; print progress.

    Parameters
    ----------
    datasets : list of str
        File stems in ``data_dir``.
    methods : list of str
        Methods to run.
    seeds : list of int
        Seeds of the repeats.
    skae_params : dict
        Overrides of ``AutoencoderAnomalyDetector``'s defaults.
    data_dir : pathlib.Path
        Folder of the ``.npz`` files.
    csv_path : pathlib.Path
        Long-format results, rewritten after each dataset.
    split : callable, default=make_split
        The protocol's split: :func:`make_split` (unsupervised) or
        :func:`make_novelty_split` (novelty).

    Returns
    -------
    results : pandas.DataFrame
        Columns dataset, seed, method, aucroc, aucpr, fit_score_seconds,
        warnings.
    info : pandas.DataFrame
        Indexed by dataset: n, d and anomaly ratio of the original data.
    """
    warm_up(methods, skae_params)
    rows = []
    for i, name in enumerate(datasets, 1):
        X, y = load_dataset(data_dir / f"{name}.npz")
        start = time.perf_counter()
        for seed in seeds:
            for method in methods:
                rows.append(run_one(name, X, y, seed, method, skae_params, split))
        results = pd.DataFrame(rows)
        results.to_csv(csv_path, index=False)
        done = results[results["dataset"] == name].groupby("method")["aucroc"].mean()
        summary = "  ".join(f"{m}={done[m]:.4f}" for m in methods)
        print(f"[{i}/{len(datasets)}] {name} (n={X.shape[0]}, d={X.shape[1]}) "
              f"{time.perf_counter() - start:.1f}s  AUCROC: {summary}", flush=True)
    return pd.DataFrame(rows), dataset_info(datasets, data_dir)


def assign_folds(datasets, n_folds, seed=FOLD_SEED):
    """Assign datasets to cross-validation folds, by a fixed seeded shuffle.

    Parameters
    ----------
    datasets : list of str
        Dataset names.
    n_folds : int
        Number of folds.
    seed : int, default=0
        Seed of the shuffle.

    Returns
    -------
    folds : dict
        ``{dataset: fold}`` with folds 0 to ``n_folds - 1`` of sizes that
        differ by at most one.
    """
    order = np.random.RandomState(seed).permutation(sorted(datasets, key=str.lower))
    return {name: i % n_folds for i, name in enumerate(order)}


def load_grid(path):
    """Read the candidate configurations of the out-of-sample protocol.

    Parameters
    ----------
    path : pathlib.Path
        JSON object ``{candidate name: {parameter: value}}``; the values
        override ``AutoencoderAnomalyDetector``'s defaults.

    Returns
    -------
    grid : dict
    """
    grid = json.loads(Path(path).read_text())
    return {name: params for name, params in grid.items() if not name.startswith("_")}


def candidate_key(method, params):
    """The cache key of a candidate: every parameter of the model it fits, as JSON.

    A candidate overrides ``AutoencoderAnomalyDetector``'s defaults, so its
    key holds the defaults too: when they change, its cached rows (computed
    with the former ones) are discarded instead of being read as the new
    configuration's. A peer's key is its (empty) overrides.

    Parameters
    ----------
    method : str
        ``"skae"`` for a grid candidate, or a peer.
    params : dict
        The candidate's overrides (``n_estimators`` for an ensemble).

    Returns
    -------
    key : str
    """
    if method != "skae":
        return json.dumps(params, sort_keys=True)
    full = skae.AutoencoderAnomalyDetector().get_params()
    del full["random_state"]  # the run's seed
    full.update(params)
    return json.dumps(full, sort_keys=True)


def cached_results(candidate, method, params, datasets, seeds, data_dir, cache_dir,
                   split=make_split):
    """Results of one candidate, computing only the rows its cache lacks.

    Parameters
    ----------
    candidate : str
        Name of the candidate; its rows are cached in
        ``<cache_dir>/<candidate>.csv`` together with its parameters (see
        :func:`candidate_key`), and the cache is discarded when they change.
    method : str
        ``"skae"`` for a grid candidate, or a peer such as ``"iforest"``.
    params : dict
        ``AutoencoderAnomalyDetector`` overrides of the candidate.
    datasets : list of str
        Datasets needed.
    seeds : list of int
        Seeds needed.
    data_dir : pathlib.Path
        Folder of the ``.npz`` files.
    cache_dir : pathlib.Path
        Folder of the cached CSVs.
    split : callable, default=make_split
        :func:`make_split` or :func:`make_novelty_split` (one cache folder
        per protocol).

    Returns
    -------
    results : pandas.DataFrame
        The candidate's rows for ``datasets`` and ``seeds``.
    """
    path = cache_dir / f"{candidate}.csv"
    key = candidate_key(method, params)
    cached = pd.DataFrame()
    if path.exists():
        cached = pd.read_csv(path)
        if not len(cached) or (cached["params"] != key).any():
            cached = pd.DataFrame()
    have = set() if not len(cached) else set(zip(cached["dataset"], cached["seed"]))
    todo = [(d, s) for d in datasets for s in seeds if (d, s) not in have]
    rows = []
    for name in dict.fromkeys(d for d, _ in todo):
        X, y = load_dataset(data_dir / f"{name}.npz")
        for seed in [s for d, s in todo if d == name]:
            rows.append({**run_one(name, X, y, seed, method, params, split), "params": key})
        cached = pd.concat([cached, pd.DataFrame(rows)], ignore_index=True)
        rows = []
        cached.to_csv(path, index=False)
    if todo:
        print(f"  {candidate}: {len(todo)} fits", flush=True)
    keep = cached["dataset"].isin(datasets) & cached["seed"].isin(seeds)
    return cached[keep].assign(method=candidate)


def cross_validate(grid, datasets, n_folds, seeds, data_dir, cache_dir, split=make_split,
                   peers=("iforest",), selection_seeds=None):
    """Choose a configuration by cross-validation over datasets.

    Every candidate is scored on every dataset with the selection seeds (the
    first seed by default), a dataset's score being its mean over them. For
    each fold, the candidate with the best mean AUCROC on the other folds'
    datasets is chosen and evaluated on the held-out fold with every seed; the
    held-out means over all datasets are the out-of-sample estimate. The
    candidate with the best mean on all datasets is the one the protocol
    ships; its mean over every seed is the in-sample figure.

    Parameters
    ----------
    grid : dict
        ``{candidate name: parameter overrides}``.
    datasets : list of str
        The datasets (the 43 ADBench ones).
    n_folds : int
        Number of folds over the datasets.
    seeds : list of int
        Seeds; all of them evaluate.
    data_dir : pathlib.Path
        Folder of the ``.npz`` files.
    cache_dir : pathlib.Path
        Folder of the per-candidate cached CSVs.
    split : callable, default=make_split
        The protocol: :func:`make_split` or :func:`make_novelty_split`.
    peers : sequence of str, default=("iforest",)
        Other methods scored on the same splits with every seed.
    selection_seeds : list of int or None, default=None
        Seeds whose mean AUCROC selects; None: the first of ``seeds``.

    Returns
    -------
    cv : dict
        ``folds`` ({dataset: fold}), ``selection`` (mean AUCROC over the selection
        seeds of every candidate on all datasets and on each fold's training folds),
        ``chosen`` (the candidate of each fold), ``shipped`` (the candidate
        chosen on all datasets), ``held_out`` (long-format rows, all seeds, of
        each dataset's held-out candidate, method ``"skae (held-out)"``),
        ``in_sample`` (the rows of the shipped candidate, method
        ``"skae (in-sample)"``) and ``peers`` (the peers' rows, in their order).
    """
    folds = assign_folds(datasets, n_folds)
    chosen_by = list(selection_seeds or seeds[:1])
    scores = {}
    for candidate, params in grid.items():
        rows = cached_results(candidate, "skae", params, datasets, chosen_by, data_dir,
                              cache_dir, split)
        scores[candidate] = rows.groupby("dataset")["aucroc"].mean()
        print(f"  {candidate}: mean AUCROC {scores[candidate].mean() * 100:.2f} (seeds "
              f"{','.join(map(str, chosen_by))})", flush=True)
    scores = pd.DataFrame(scores).loc[datasets]
    fold_of = pd.Series(folds).loc[datasets]
    selection = {"all": scores.mean() * 100}
    chosen = {}
    for fold in range(n_folds):
        train_means = scores[fold_of != fold].mean() * 100
        selection[f"without fold {fold}"] = train_means
        chosen[fold] = train_means.idxmax()  # ties: the first in the grid
    shipped = selection["all"].idxmax()
    held_out = []
    for fold, candidate in chosen.items():
        names = list(fold_of.index[fold_of == fold])
        held_out.append(cached_results(candidate, "skae", grid[candidate], names, seeds,
                                       data_dir, cache_dir, split))
    held_out = pd.concat(held_out, ignore_index=True).assign(method="skae (held-out)")
    in_sample = cached_results(shipped, "skae", grid[shipped], datasets, seeds, data_dir,
                               cache_dir, split).assign(method="skae (in-sample)")
    peer_rows = pd.concat([cached_results(peer, peer, {}, datasets, seeds, data_dir, cache_dir,
                                          split) for peer in peers], ignore_index=True)
    return {"folds": folds, "selection": pd.DataFrame(selection), "chosen": chosen,
            "shipped": shipped, "held_out": held_out, "in_sample": in_sample,
            "peers": peer_rows, "peer_names": list(peers)}


def comparison(results, methods, reference):
    """Mean, rank and wins/losses of each method, over datasets.

    Parameters
    ----------
    results : pandas.DataFrame
        Long-format rows (dataset, seed, method, aucroc, aucpr,
        fit_score_seconds).
    methods : list of str
        Methods to compare, in order.
    reference : str
        The method whose wins and losses against every other are counted.

    Returns
    -------
    summary : pandas.DataFrame
        Indexed by method: mean AUCROC and AUCPR (percent, seed means then
        dataset means), mean rank by AUCROC over datasets (1 = best, ties
        averaged), the reference's wins, ties and losses against the method
        by seed-mean AUCROC, seconds (fit+score, summed) and warnings
        (summed).
    """
    means = results.groupby(["dataset", "method"])[["aucroc", "aucpr"]].mean().unstack()
    roc, pr = means["aucroc"][methods] * 100, means["aucpr"][methods] * 100
    ranks = roc.rank(axis=1, ascending=False).mean()
    totals = results.groupby("method")[["fit_score_seconds"]].sum()
    if "warnings" in results:
        totals["warnings"] = results.groupby("method")["warnings"].sum(min_count=1)
    rows = {}
    for method in methods:
        diff = (roc[reference] - roc[method]).round(2)
        rows[method] = {
            "AUCROC": roc[method].mean(), "AUCPR": pr[method].mean(), "rank": ranks[method],
            f"{reference} wins": "" if method == reference else int((diff > 0).sum()),
            "ties": "" if method == reference else int((diff == 0).sum()),
            f"{reference} losses": "" if method == reference else int((diff < 0).sum()),
            "seconds": totals.loc[method, "fit_score_seconds"],
            "warnings": totals["warnings"].get(method, np.nan) if "warnings" in totals else np.nan,
        }
    return pd.DataFrame(rows).T


def summary_markdown(summary):
    """Render :func:`comparison`'s table as markdown.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`comparison`.

    Returns
    -------
    text : str
    """
    def cell(col, value):
        if col in ("AUCROC", "AUCPR", "rank"):
            return _fmt(value)
        if col == "seconds":
            return _fmt(value, 1)
        if isinstance(value, float) and np.isnan(value):
            return ""
        return str(int(value)) if value != "" else ""

    return _markdown_table("method", summary, cell)


def source_revision():
    """Describe the skae source tree: git commit, with ``-dirty`` if modified.

    Returns
    -------
    revision : str
        ``git describe --always --dirty`` of the repository, or "unknown".
    """
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO_ROOT,
                             capture_output=True, text=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _fmt(value, digits=2):
    """Format a number for the tables, '' for NaN."""
    return "" if pd.isna(value) else f"{value:.{digits}f}"


def metric_table(results, info, published, metric, methods):
    """Build the per-dataset table of one metric, in percent.

    Parameters
    ----------
    results : pandas.DataFrame
        Long-format results.
    info : pandas.DataFrame
        n, d, ratio per dataset.
    published : pandas.DataFrame
        Published values of ``metric`` (percent), indexed by dataset.
    metric : {"aucroc", "aucpr"}
        Metric to tabulate.
    methods : list of str
        Method columns, in order.

    Returns
    -------
    table : pandas.DataFrame
        One row per dataset, then mean rows for the ADBench datasets and the
        ``odds_*`` datasets (each mean over the values available).
    """
    wide = results.pivot_table(index="dataset", columns="method", values=metric,
                               aggfunc="mean", dropna=False) * 100
    table = info.copy()
    for method in methods:
        table[method] = wide[method]
    for col, key in (("published_iforest", "IForest"), ("published_pca", "PCA")):
        table[col] = published[key] if key in published else np.nan
    value_cols = [*methods, "published_iforest", "published_pca"]
    is_odds = table.index.str.startswith(ODDS_PREFIX)
    means = {f"{label} ({mask.sum()})": table.loc[mask, value_cols].mean()
             for label, mask in (("mean ADBench", ~is_odds), ("mean odds", is_odds))
             if mask.any()}
    return pd.concat([table, pd.DataFrame(means).T])


def to_markdown(table):
    """Render a metric table as markdown.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`metric_table`.

    Returns
    -------
    text : str
    """
    def cell(col, value):
        if col in ("n", "d"):
            return "" if pd.isna(value) else str(int(value))
        return _fmt(value, 3) if col == "ratio" else _fmt(value)

    return _markdown_table("dataset", table, cell,
                           label=lambda name: f"**{name}**" if name.startswith("mean") else name)


def _markdown_table(first, table, cell, label=str):
    """A markdown table of ``table``: a first column ``first`` of labelled index values.

    Parameters
    ----------
    first : str
        Header of the first column.
    table : pandas.DataFrame
    cell : callable
        ``cell(column, value) -> str``.
    label : callable, default=str
        ``label(index_value) -> str``, the first column's text.

    Returns
    -------
    text : str
    """
    cols = list(table.columns)
    lines = [f"| {first} | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, row in table.iterrows():
        cells = [cell(col, row[col]) for col in cols]
        lines.append(f"| {label(name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(results, info, published, methods, args, command):
    """Print the tables and write the markdown report.

    Parameters
    ----------
    results : pandas.DataFrame
        Long-format results.
    info : pandas.DataFrame
        n, d, ratio per dataset.
    published : dict
        Output of :func:`load_published`.
    methods : list of str
        Methods run.
    args : argparse.Namespace
        Parsed command line.
    command : str
        The command line, for the header.

    Returns
    -------
    text : str
        The markdown report.
    """
    tables = {m: metric_table(results, info, published[m], m, methods) for m in METRICS}
    adbench = ~info.index.str.startswith(ODDS_PREFIX)
    n_adbench = int(adbench.sum())
    roc = tables["aucroc"].loc[info.index[adbench]]
    pr = tables["aucpr"].loc[info.index[adbench]]

    missing = [d for d in info.index
               if pd.isna(tables["aucroc"].loc[d, "published_iforest"])]
    seconds = results.groupby("method")["fit_score_seconds"].sum()

    header = [
        f"# ADBench benchmark: {args.tag}",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- versions: torch {torch.__version__}, scikit-learn {sklearn.__version__}, "
        f"pyod {pyod.__version__ if pyod else 'not installed'}, numpy {np.__version__}, "
        f"python {sys.version.split()[0]}; skae source {args.revision}",
        f"- threads: {args.threads}; seeds: {', '.join(map(str, args.seeds))}; "
        f"datasets: {len(info)} ({n_adbench} ADBench, {len(info) - n_adbench} odds_*)",
        f"- skae parameters overridden: `{json.dumps(args.skae_params)}`",
        "- warnings: the number of warnings every fit and scoring of the method emitted "
        "(all seeds and datasets)",
        *([f"- {', '.join(args.reused)}: rows reused from `{args.reuse.name}`, an earlier "
           "run of this script (same protocol, seeds and splits), not rerun here"]
          if getattr(args, "reused", None) else []),
        "- protocol: ADBench unsupervised (resample to [1000, 10000] rows, stratified "
        "70/30 split, MinMaxScaler fit on train, fit on the whole train split, "
        "metrics on test, mean over seeds); see the docstring of benchmarks/adbench.py",
        "- methods: skae = AutoencoderAnomalyDetector(random_state=seed); skae_vae = the same "
        "with variational=True; pyod_ae = pyod "
        "AutoEncoder(random_state=seed, verbose=0); iforest = sklearn IsolationForest "
        "(defaults, random_state=RandomState(seed)); pca = pyod PCA(svd_solver='full'), "
        "otherwise defaults (ADBench's PCA; see the script's docstring)",
        "- published_* = ADBench paper Tables D4/D5 (pyod 0.9.8 era); values are percent",
        "",
        f"Mean over the {n_adbench} ADBench datasets (percent; a method with NaN "
        "results is averaged over the datasets it scored):",
        "",
        "| method | AUCROC | AUCPR | datasets scored | fit+score seconds | warnings |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    warned = (results.groupby("method")["warnings"].sum(min_count=1) if "warnings" in results
              else pd.Series(dtype=float))
    for method in methods:
        count = warned.get(method, np.nan)
        header.append(f"| {method} | {_fmt(roc[method].mean())} | {_fmt(pr[method].mean())} "
                      f"| {int(roc[method].notna().sum())} "
                      f"| {seconds.get(method, np.nan):.1f} "
                      f"| {'' if pd.isna(count) else int(count)} |")
    for key, label in (("published_iforest", "published IForest"),
                       ("published_pca", "published PCA")):
        header.append(f"| {label} | {_fmt(roc[key].mean())} | {_fmt(pr[key].mean())} "
                      f"| {int(roc[key].notna().sum())} | | |")
    if "iforest" in methods:
        diff = (roc["iforest"] - roc["published_iforest"]).abs()
        if diff.notna().any():
            header += ["", f"IForest vs published AUCROC: max |diff| {diff.max():.2f} "
                       f"({diff.idxmax()}), mean |diff| {diff.mean():.2f} points "
                       f"over {int(diff.notna().sum())} datasets."]
    if missing:
        header += ["", "No published value: " + ", ".join(missing)]
    nan_cells = results[results["aucroc"].isna()]
    if len(nan_cells):
        header += ["", "Non-finite scores (NaN): " + ", ".join(
            f"{r.method}/{r.dataset}/seed {r.seed}" for r in nan_cells.itertuples())]

    if "skae" in methods:
        rows = results[results["dataset"].isin(info.index[adbench])]
        header += ["", f"Rank (by AUCROC, 1 = best, over the {n_adbench} ADBench datasets) and "
                   "skae's wins, ties and losses against each method:", "",
                   summary_markdown(comparison(rows, list(methods), "skae"))]
    text = "\n".join(header)
    text += "\n\n## AUCROC (percent)\n\n" + to_markdown(tables["aucroc"])
    text += "\n\n## AUCPR (percent)\n\n" + to_markdown(tables["aucpr"]) + "\n"

    with pd.option_context("display.max_rows", None, "display.max_columns", None,
                           "display.width", 250,
                           "display.float_format", "{:.2f}".format):
        for metric in METRICS:
            print(f"\n{metric.upper()} (percent)\n{tables[metric]}")
    print("\nfit+score seconds per method:\n" + seconds.round(1).to_string())
    if missing:
        print("\nno published value: " + ", ".join(missing))
    return text


def per_dataset_markdown(results, info, methods, metric):
    """Per-dataset table of one metric (percent, seed means), with a mean row.

    Parameters
    ----------
    results : pandas.DataFrame
        Long-format rows.
    info : pandas.DataFrame
        n, d, ratio per dataset.
    methods : list of str
        Method columns, in order.
    metric : {"aucroc", "aucpr"}
        Metric to tabulate.

    Returns
    -------
    text : str
    """
    wide = results.pivot_table(index="dataset", columns="method", values=metric,
                               aggfunc="mean") * 100
    table = info.loc[[d for d in info.index if d in wide.index]].copy()
    for method in methods:
        table[method] = wide[method]
    mean = pd.DataFrame({f"mean ({len(table)})": table[methods].mean()}).T
    return to_markdown(pd.concat([table, mean]))


def header_lines(args, command, title):
    """Common header of the reports: command, date, versions, threads."""
    return [
        f"# {title}",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- versions: torch {torch.__version__}, scikit-learn {sklearn.__version__}, "
        f"pyod {pyod.__version__ if pyod else 'not installed'}, numpy {np.__version__}, "
        f"python {sys.version.split()[0]}; skae source {args.revision}",
        f"- threads: {args.threads}; seeds: {', '.join(map(str, args.seeds))}",
    ]


def cv_report(cv, grid, info, args, command):
    """Markdown report of the out-of-sample protocol.

    Parameters
    ----------
    cv : dict
        Output of :func:`cross_validate`.
    grid : dict
        The candidates.
    info : pandas.DataFrame
        n, d, ratio per dataset.
    args : argparse.Namespace
        Parsed command line.
    command : str
        The command line.

    Returns
    -------
    text : str
    """
    k = args.cv_folds
    methods = ["skae (held-out)", "skae (in-sample)", *cv["peer_names"]]
    results = pd.concat([cv["held_out"], cv["in_sample"], cv["peers"]], ignore_index=True)
    protocol = ("ADBench unsupervised (see adbench_full.md)" if args.mode == "unsupervised"
                else NOVELTY_PROTOCOL)
    summary = comparison(results, methods, "skae (held-out)")
    chosen = cv["chosen"]
    same = len(set(chosen.values())) == 1 and cv["shipped"] in chosen.values()
    folds = pd.Series(cv["folds"])
    title = "ADBench out-of-sample selection" + (" (novelty)" if args.mode == "novelty" else "")
    lines = header_lines(args, command, f"{title}: {args.tag}") + [
        f"- protocol: {protocol}; {len(info)} ADBench "
        f"datasets assigned to {k} folds by a seeded shuffle (seed {FOLD_SEED}); every "
        f"candidate of `{args.grid.name}` scored with {_seed_words(args.selection_seeds)}; "
        "for each fold "
        "the candidate with the best mean AUCROC on the other folds is evaluated on the "
        "held-out fold with every seed",
        f"- shipped default: `{cv['shipped']}` = `{json.dumps(grid[cv['shipped']])}` "
        f"(best on all {len(info)} datasets); "
        + ("every fold chose it" if same else "the folds did not all choose it"),
        *([f"- peers: {NOVELTY_PEERS}", f"- {NOVELTY_ANCHORS}"] if args.mode == "novelty"
          else []),
        "- seconds are comparable within one run only; cached rows keep the seconds of "
        "the run that computed them",
        "",
        "## Summary (mean over the datasets, percent; seeds "
        f"{', '.join(map(str, args.seeds))})",
        "",
        summary_markdown(summary),
        "",
        "`skae (held-out)`: each dataset scored by the candidate its fold's complement "
        "chose (out of sample). `skae (in-sample)`: the shipped candidate everywhere.",
        "",
        "## Folds",
        "",
        "| fold | datasets | chosen | its held-out AUCROC | its held-out AUCPR |",
        "|---:|---|---|---:|---:|",
    ]
    held = cv["held_out"].groupby("dataset")[["aucroc", "aucpr"]].mean() * 100
    for fold, candidate in chosen.items():
        names = sorted(folds.index[folds == fold], key=str.lower)
        lines.append(f"| {fold} | {', '.join(names)} | `{candidate}` "
                     f"| {_fmt(held.loc[names, 'aucroc'].mean())} "
                     f"| {_fmt(held.loc[names, 'aucpr'].mean())} |")
    selection = cv["selection"]
    lines += ["", f"## Candidates (mean AUCROC, percent, {_seed_words(args.selection_seeds)})",
              "",
              "| candidate | parameters | " + " | ".join(selection.columns) + " |",
              "|---|---|" + "---:|" * len(selection.columns)]
    for candidate, row in selection.iterrows():
        lines.append(f"| `{candidate}` | `{json.dumps(grid[candidate])}` | "
                     + " | ".join(_fmt(v) for v in row) + " |")
    for metric in METRICS:
        lines += ["", f"## {metric.upper()} per dataset (percent, seed means)", "",
                  per_dataset_markdown(results, info, methods, metric)]
    return "\n".join(lines) + "\n"


def _seed_words(seeds):
    """``"seed 1"`` or ``"seeds 1, 2, 3"``."""
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))


NOVELTY_PROTOCOL = (
    "novelty (semi-supervised): datasets over 10000 rows subsampled to 10000; training on a "
    "random half of the normal samples only; test on the other half plus every anomaly; "
    "MinMaxScaler fit on train; mean over seeds; see `make_novelty_split` in "
    "benchmarks/adbench.py")
NOVELTY_PEERS = (
    "iforest = sklearn IsolationForest (defaults); knn = pyod KNN (defaults: 5 neighbours, "
    "largest distance); pca = pyod PCA(svd_solver='full'); lof = sklearn "
    "LocalOutlierFactor(novelty=True) (defaults: 20 neighbours)")
NOVELTY_ANCHORS = (
    "published anchors for this protocol on ADBench's 57 datasets (DTE, Livernoche et al., "
    "ICLR 2024): DTE-NP 81.49, KNN 80.86, ICL 79.35, IForest 75.75 (other datasets; not "
    "comparable number for number)")


def novelty_report(results, info, methods, args, command):
    """Markdown report of the novelty (semi-supervised) protocol.

    Parameters
    ----------
    results : pandas.DataFrame
        Long-format rows.
    info : pandas.DataFrame
        n, d, ratio per dataset.
    methods : list of str
        Methods run; the first is the reference of wins and losses.
    args : argparse.Namespace
        Parsed command line.
    command : str
        The command line.

    Returns
    -------
    text : str
    """
    adbench = [d for d in info.index if not d.startswith(ODDS_PREFIX)]
    rows = results[results["dataset"].isin(adbench)]
    lines = header_lines(args, command, f"ADBench novelty detection: {args.tag}") + [
        f"- skae parameters overridden: `{json.dumps(args.skae_params)}`",
        f"- protocol: {NOVELTY_PROTOCOL}",
        f"- methods: skae = AutoencoderAnomalyDetector(random_state=seed); {NOVELTY_PEERS}",
        f"- {NOVELTY_ANCHORS}",
        "",
        f"## Summary over the {len(adbench)} ADBench datasets (percent)",
        "",
        summary_markdown(comparison(rows, methods, methods[0])),
    ]
    for metric in METRICS:
        lines += ["", f"## {metric.upper()} per dataset (percent, seed means)", "",
                  per_dataset_markdown(results, info, methods, metric)]
    return "\n".join(lines) + "\n"


def chosen_datasets(data_dir, requested=None):
    """The datasets to run: ``requested``, or every ``.npz`` file of ``data_dir``.

    Exits with a message when ``data_dir`` holds no ``.npz`` file or lacks a
    requested one.

    Parameters
    ----------
    data_dir : pathlib.Path
        Folder of the ``.npz`` files.
    requested : list of str or None, default=None
        File stems; None: all of them, the ADBench ones first, then the
        ``odds_*`` ones, each group in case-insensitive order.

    Returns
    -------
    datasets : list of str
    """
    available = sorted(p.stem for p in data_dir.glob("*.npz"))
    if not available:
        sys.exit(f"no .npz files in {data_dir}")
    absent = [d for d in requested or () if d not in available]
    if absent:
        sys.exit(f"datasets not found in {data_dir}: {', '.join(absent)}")
    return requested or sorted(available, key=lambda s: (s.startswith(ODDS_PREFIX), s.lower()))


def add_data_arguments(parser, all_datasets):
    """Add the arguments every ADBench script takes: the data, seeds, output and threads.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The script's parser.
    all_datasets : str
        What ``--datasets`` defaults to, in words.
    """
    parser.add_argument("data_dir", nargs="?", type=Path, default=default_data_dir(),
                        help="folder of the .npz files (default: $SKAE_DATA/adbench)")
    parser.add_argument("--datasets", default=None,
                        help=f"comma-separated file stems (default: {all_datasets})")
    parser.add_argument("--seeds", default=None, help="comma-separated (default: 1,2,3)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and BLAS threads (default: 1)")


def parse_data_arguments(args):
    """Turn ``--seeds`` and ``--datasets`` into lists (None where not given).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser given :func:`add_data_arguments`.
    """
    if args.seeds is not None:
        args.seeds = [int(s) for s in args.seeds.split(",")]
    if args.datasets is not None:
        args.datasets = [d for d in args.datasets.split(",") if d]


def parse_args(argv=None):
    """Parse the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments; ``sys.argv[1:]`` by default.

    Returns
    -------
    args : argparse.Namespace
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser, "all")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {', '.join(QUICK_DATASETS)}, seed 1")
    parser.add_argument("--methods", default=None,
                        help="comma-separated subset of " + ",".join(ALL_METHODS)
                        + " (default: all but knn,lof; with --mode novelty: "
                        + ",".join(NOVELTY_METHODS) + ")")
    parser.add_argument("--skae-params", default="{}", type=json.loads,
                        help="JSON dict overriding AutoencoderAnomalyDetector defaults")
    parser.add_argument("--tag", default=None, help="name of the outputs (default: quick/full)")
    parser.add_argument("--reuse", type=Path, default=None, metavar="CSV",
                        help="add the rows of methods not run here from an earlier run's CSV "
                             "(same script, so the same splits), e.g. the slow pyod_ae")
    parser.add_argument("--mode", choices=("unsupervised", "novelty"), default="unsupervised",
                        help="unsupervised: ADBench's protocol (training data with anomalies); "
                             "novelty: training on half of the normal samples only")
    parser.add_argument("--cv-folds", type=int, default=None, metavar="K",
                        help="out-of-sample selection of skae's configuration among --grid "
                             "by K-fold cross-validation over the ADBench datasets")
    parser.add_argument("--selection-seeds", default=None,
                        help="comma-separated seeds whose mean AUCROC selects among --grid "
                             "(default: the first of --seeds)")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help="folder of --cv-folds' cached candidate rows (default: "
                             "<out>/adbench_<tag>_cache)")
    parser.add_argument("--grid", type=Path, default=None,
                        help="JSON candidates of --cv-folds (default: adbench_grid.json; "
                             "with --mode novelty: adbench_grid_novelty.json)")
    args = parser.parse_args(argv)

    if args.methods is None:
        args.methods = ",".join(NOVELTY_METHODS if args.mode == "novelty"
                                else ("skae", "skae_vae", "pyod_ae", "iforest", "pca"))
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = set(args.methods) - set(ALL_METHODS)
    if unknown:
        parser.error(f"unknown methods: {sorted(unknown)}")
    parse_data_arguments(args)
    if args.seeds is None:
        args.seeds = [1] if args.quick else list(DEFAULT_SEEDS)
    if args.datasets is None and args.quick:
        args.datasets = list(QUICK_DATASETS)
    if args.tag is None:
        args.tag = "quick" if args.quick else "full"
        if args.cv_folds:
            args.tag = (("novelty_" if args.mode == "novelty" else "") + f"cv{args.cv_folds}"
                        + ("_quick" if args.quick else ""))
        elif args.mode == "novelty":
            args.tag = "novelty" + ("_quick" if args.quick else "")
    if args.grid is None:
        args.grid = NOVELTY_GRID if args.mode == "novelty" else DEFAULT_GRID
    args.selection_seeds = ([int(s) for s in args.selection_seeds.split(",")]
                            if args.selection_seeds is not None else args.seeds[:1])
    if args.cv_folds is not None and args.cv_folds < 2:
        parser.error("--cv-folds needs at least 2 folds")
    return args


def main(argv=None):
    """Run the benchmark from the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments; ``sys.argv[1:]`` by default.
    """
    args = parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    args.revision = source_revision()  # at start: the tree may change during a run
    torch.set_num_threads(args.threads)
    # Default settings are benchmarked as they are: hitting max_iter is expected.
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    # defaults are benchmarked as they are, collapsed codes included
    warnings.filterwarnings("ignore", category=skae.PosteriorCollapseWarning)

    methods = args.methods
    if pyod is None:
        skipped = [m for m in methods if m in PYOD_METHODS]
        if skipped:
            print(f"note: pyod is not installed; skipping {', '.join(skipped)}", flush=True)
        methods = [m for m in methods if m not in PYOD_METHODS]

    datasets = chosen_datasets(args.data_dir, args.datasets)

    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / f"adbench_{args.tag}.csv"
    md_path = args.out / f"adbench_{args.tag}.md"
    if args.cv_folds:
        datasets = [d for d in datasets if not d.startswith(ODDS_PREFIX)]
        grid = load_grid(args.grid)
        cache_dir = args.cache or args.out / f"adbench_{args.tag}_cache"
        cache_dir.mkdir(parents=True, exist_ok=True)
        print(f"{len(datasets)} datasets, {len(grid)} candidates, {args.cv_folds} folds",
              flush=True)
        novelty = args.mode == "novelty"
        peers = [m for m in methods if m != "skae"] if novelty else ["iforest"]
        with threadpool_limits(limits=args.threads):
            cv = cross_validate(grid, datasets, args.cv_folds, args.seeds, args.data_dir,
                                cache_dir, split=make_novelty_split if novelty else make_split,
                                peers=peers, selection_seeds=args.selection_seeds)
        results = pd.concat([cv["held_out"], cv["in_sample"], cv["peers"]],
                            ignore_index=True)
        results.drop(columns="params").to_csv(csv_path, index=False)
        text = cv_report(cv, grid, dataset_info(datasets, args.data_dir), args, command)
        md_path.write_text(text)
        print(text.split("## Folds")[0])
        print(f"wrote {csv_path} and {md_path}", flush=True)
        return cv
    if args.mode == "novelty":
        print(f"{len(datasets)} datasets, novelty, methods {','.join(methods)}, seeds "
              f"{','.join(map(str, args.seeds))}", flush=True)
        with threadpool_limits(limits=args.threads):
            results, info = run(datasets, methods, args.seeds, args.skae_params,
                                args.data_dir, csv_path, split=make_novelty_split)
        text = novelty_report(results, info, methods, args, command)
        md_path.write_text(text)
        print(text.split("## AUCROC")[0])
        print(f"wrote {csv_path} and {md_path}", flush=True)
        return results
    published = load_published(args.data_dir.parent)
    print(f"{len(datasets)} datasets, methods {','.join(methods)}, seeds "
          f"{','.join(map(str, args.seeds))}, threads {args.threads}", flush=True)

    with threadpool_limits(limits=args.threads):
        results, info = run(datasets, methods, args.seeds, args.skae_params,
                            args.data_dir, csv_path)
    if args.reuse is not None:
        earlier = pd.read_csv(args.reuse)
        earlier = earlier[~earlier["method"].isin(methods)
                          & earlier["dataset"].isin(results["dataset"])
                          & earlier["seed"].isin(args.seeds)]
        args.reused = sorted(earlier["method"].unique())
        methods = [*methods, *args.reused]
        results = pd.concat([results, earlier], ignore_index=True)
        results.to_csv(csv_path, index=False)
    text = report(results, info, published, methods, args, command)
    md_path.write_text(text)
    print(f"\nwrote {csv_path} and {md_path}", flush=True)
    return results


if __name__ == "__main__":
    main()
