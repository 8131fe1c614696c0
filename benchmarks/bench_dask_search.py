"""Scaling of a hyperparameter search over skae on a Dask cluster.

Protocol
--------
* Data: scikit-learn's digits (1797 x 64), scaled to [0, 1].
* Search: ``GridSearchCV`` over ``AutoencoderTransformer`` (scored by its own
  ``score``, the negative reconstruction error), ``--candidates`` candidates
  (n_components in {4, 8, 16, 32} x learning_rate_init in {1e-3, 3e-3},
  truncated or cycled to the count) x ``--folds`` folds, ``--max-iter``
  epochs each, ``random_state=0``, ``refit=False``.
* Runs, one after the other in this process:

  1. ``n_jobs=1`` without Dask (the baseline), torch on one thread;
  2. ``n_jobs=-1`` under ``joblib.parallel_backend("dask")`` on a
     ``distributed.LocalCluster`` of 1 worker process (1 thread);
  3. the same with 2 worker processes (1 thread each).

  Each cluster is started and warmed up (every worker imports skae and runs
  one tiny fit) before its search is timed; the workers' torch uses one
  thread (the nanny sets ``OMP_NUM_THREADS=1``).
* Reported: wall time of each search, speed-up over the 1-worker cluster
  and over the baseline, the mean fit time of ``cv_results_``, the
  per-task overhead of the cluster (wall time of the 1-worker search minus
  the sum of its fit and score times, per fit), and whether the cluster's
  scores equal the baseline's. From these, the expected wall time on N
  workers (one GPU each): ``ceil(C * K / N) * (fit + score + overhead)``.

Usage::

    python benchmarks/bench_dask_search.py [--candidates 8] [--folds 3]
        [--max-iter 30] [--quick] [--out benchmarks/results/dask_search_scaling.md]
"""

import argparse
import math
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_search(n_candidates, n_folds, max_iter, n_jobs):
    from sklearn.model_selection import GridSearchCV, KFold

    from skae import AutoencoderTransformer

    grid = [{"n_components": [k], "learning_rate_init": [lr]}
            for k in (4, 8, 16, 32) for lr in (1e-3, 3e-3)]
    grid = [grid[i % len(grid)] for i in range(n_candidates)]
    if n_candidates > 8:  # distinct candidates beyond the 8 of the grid: other seeds
        for i, g in enumerate(grid[8:], start=1):
            g["random_state"] = [i]
    est = AutoencoderTransformer(hidden_layer_sizes=(64,), max_iter=max_iter, random_state=0)
    return GridSearchCV(est, grid, cv=KFold(n_folds, shuffle=True, random_state=0),
                        n_jobs=n_jobs, refit=False)


def warm_up():
    """Import skae on a worker and run one tiny fit (torch's first calls are slow)."""
    import warnings

    import numpy as np

    from skae import AutoencoderTransformer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        AutoencoderTransformer(2, max_iter=1).fit(np.random.rand(20, 4))
    return True


def timed_search(X, args, n_jobs):
    search = make_search(args.candidates, args.folds, args.max_iter, n_jobs)
    start = time.perf_counter()
    search.fit(X)
    return time.perf_counter() - start, search.cv_results_


def on_cluster(X, args, n_workers):
    import joblib
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                      silence_logs=40) as cluster, Client(cluster) as client:
        client.run(warm_up)
        with joblib.parallel_backend("dask"):
            return timed_search(X, args, -1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=30)
    parser.add_argument("--quick", action="store_true",
                        help="2 candidates x 2 folds x 2 epochs (a smoke test)")
    parser.add_argument("--out", default=None, help="write the markdown report here")
    args = parser.parse_args()
    if args.quick:
        args.candidates, args.folds, args.max_iter = 2, 2, 2

    import torch
    from sklearn.datasets import load_digits

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    X = load_digits().data / 16.0
    warm_up()

    runs = {}
    runs["n_jobs=1 (no Dask)"] = timed_search(X, args, 1)
    runs["Dask, 1 worker"] = on_cluster(X, args, 1)
    runs["Dask, 2 workers"] = on_cluster(X, args, 2)

    n_fits = args.candidates * args.folds
    base_scores = runs["n_jobs=1 (no Dask)"][1]["mean_test_score"]
    one_worker = runs["Dask, 1 worker"][0]
    lines = [
        "# Hyperparameter search on a Dask cluster: scaling",
        "",
        f"Command: `python benchmarks/bench_dask_search.py {' '.join(sys.argv[1:])}`".rstrip(),
        "",
        f"Machine: {platform.machine()}, 2 cores; Python {platform.python_version()}, "
        f"torch {torch.__version__}.",
        "",
        f"Search: GridSearchCV over AutoencoderTransformer on digits (1797 x 64), "
        f"{args.candidates} candidates x {args.folds} folds = {n_fits} fits of "
        f"{args.max_iter} epochs.",
        "",
        "| run | wall time (s) | speed-up vs 1 worker | speed-up vs n_jobs=1 | mean fit time (s) "
        "| scores equal n_jobs=1 |",
        "|---|---:|---:|---:|---:|---|",
    ]
    base_wall = runs["n_jobs=1 (no Dask)"][0]
    for name, (wall, results) in runs.items():
        equal = np.allclose(results["mean_test_score"], base_scores, rtol=1e-12, atol=0)
        lines.append(f"| {name} | {wall:.1f} | {one_worker / wall:.2f} | {base_wall / wall:.2f} "
                     f"| {np.mean(results['mean_fit_time']):.2f} | {'yes' if equal else 'NO'} |")
    results = runs["Dask, 1 worker"][1]
    per_fit = float(np.mean(results["mean_fit_time"]) + np.mean(results["mean_score_time"]))
    overhead = max(0.0, (one_worker - n_fits * per_fit) / n_fits)
    lines += [
        "",
        "## Expected scaling on N workers (one GPU each)",
        "",
        f"Measured here, on one worker: a fit and its scoring take {per_fit:.2f} s on average "
        f"(`mean_fit_time + mean_score_time` of `cv_results_`), and the cluster adds "
        f"{overhead:.3f} s per fit (the 1-worker search's wall time, {one_worker:.1f} s, less "
        f"{n_fits} x {per_fit:.2f} s). A search of C candidates x K folds on N workers, each "
        "with its own GPU, takes about `ceil(C K / N) x (t_fit + overhead)`, where `t_fit` is "
        "the time of one fit on one GPU. Every fit is independent, so the only limits are "
        "the rounding up (the last round of fits runs with idle workers) and the "
        "scheduler's overhead. With this search's per-fit time:",
        "",
        "| N workers | expected wall time (s) | expected speed-up |",
        "|---:|---:|---:|",
    ]
    for n in (1, 2, 4, 8, 16, 24):
        t = math.ceil(n_fits / n) * (per_fit + overhead)
        lines.append(f"| {n} | {t:.1f} | {one_worker / t:.2f} |")
    lines += [
        "",
        f"With {n_fits} fits, more than {n_fits} workers cannot help: each fit runs on one "
        "worker. On GPUs `t_fit` is the GPU's time for one fit (measure it with one worker "
        "first); fits this small keep a GPU mostly idle, so several workers per GPU "
        "(`--nworkers` with the same `CUDA_VISIBLE_DEVICES`) can raise throughput further.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
