"""Scaling of a hyperparameter search over skae on a Dask cluster.

Protocol
--------
* Data: ``--dataset mnist`` (default): the first ``--samples`` training
  images of ``$SKAE_DATA/images/mnist.npz`` (default
  ``../shared/datasets/images``), pixels scaled to [0, 1], 784 columns;
  ``--dataset digits``: scikit-learn's ``load_digits`` (1797 x 64, pixels
  / 16), the first ``--samples`` rows.
* Search: ``GridSearchCV`` over ``AutoencoderTransformer(hidden_layer_sizes=
  (--hidden,), max_iter=--epochs, batch_size=256, random_state=0)`` with
  ``n_components`` in (8, 16, 32, 64) x ``learning_rate_init`` in
  (1e-3, 3e-3), the first ``--candidates`` of these 8 candidates, scored by
  the transformer's own ``score`` on ``KFold(--folds, shuffle=True,
  random_state=0)``; ``refit=False`` (the refit runs in the calling
  process and does not scale with workers). ``tol=0`` and
  ``n_iter_no_change=--epochs`` make every fit run exactly ``--epochs``
  epochs.
* Runs, in one process, one after the other: ``n_jobs=1`` without Dask (the
  baseline; torch on one intra-op thread, as in a worker), then for each
  count in ``--workers`` a fresh ``distributed.LocalCluster`` of that many
  worker processes with one thread each and ``n_jobs=-1`` under
  ``joblib.parallel_backend("dask")``. The workers' nannies set
  ``OMP_NUM_THREADS=1``, so torch trains on one thread in each. Before the
  timed search, every worker imports skae and fits once (torch's first
  optimizer imports ``torch._dynamo``, seconds); cluster start and this
  warm-up are reported apart.
* Timed: the wall time of ``search.fit``. From ``cv_results_``: the mean fit
  time and mean score time of one candidate on one split. The per-task
  overhead (scheduling, sending arguments and results, joblib) is the rest:
  ``wall / ceil(C * K / N) - (fit + score)`` for ``N`` workers running
  ``C * K`` fits, one at a time each.
* Check: every run's test scores equal the baseline's (``rtol=1e-12``).

The "expected scaling on N GPUs" paragraph applies
``ceil(C * K / N) * (fit + score + overhead)`` with the fit and score times
and the overhead measured here. Run with ``--device cuda`` on a GPU machine
for GPU fit times: the local cluster's workers then share the machine's
visible GPU, so its own speed-up is not the multi-GPU one; the paragraph
is (one worker per GPU, as ``docs/dask.md`` deploys them).

Usage::

    python benchmarks/bench_dask_search.py [--dataset mnist] [--samples 10000]
        [--epochs 5] [--workers 1 2] [--device cpu]
        [--out benchmarks/results/dask_search_scaling.md]
    python benchmarks/bench_dask_search.py --quick   # seconds, digits, smoke
"""

import argparse
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRID = {"n_components": [8, 16, 32, 64], "learning_rate_init": [1e-3, 3e-3]}


def data_dir():
    """Directory of the benchmark data: ``$SKAE_DATA``, else ``<repo>/../shared/datasets``."""
    return Path(os.environ.get("SKAE_DATA", ROOT.parent / "shared" / "datasets"))


def load(dataset, samples):
    """The first ``samples`` rows of ``dataset``, float32 in [0, 1].

    Parameters
    ----------
    dataset : {"mnist", "digits"}
    samples : int

    Returns
    -------
    X : ndarray of shape (samples, n_features)
    """
    if dataset == "digits":
        from sklearn.datasets import load_digits

        X = load_digits().data / 16.0
    else:
        path = data_dir() / "images" / "mnist.npz"
        if not path.exists():
            raise SystemExit(f"{path} not found: set SKAE_DATA, or use --dataset digits.")
        images = np.load(path)["X_train"][:samples]
        X = images.reshape(len(images), -1) / 255.0
    return np.ascontiguousarray(X[:samples], dtype=np.float32)


def candidates(n):
    """The first ``n`` candidates of :data:`GRID`, as a list of one-point grids.

    Parameters
    ----------
    n : int

    Returns
    -------
    grid : list of dict
    """
    from sklearn.model_selection import ParameterGrid

    return [{k: [v] for k, v in point.items()} for point in list(ParameterGrid(GRID))[:n]]


def make_search(args):
    """The benchmarked search, unfitted, ``n_jobs=1``."""
    from sklearn.model_selection import GridSearchCV, KFold

    from skae import AutoencoderTransformer

    estimator = AutoencoderTransformer(
        hidden_layer_sizes=(args.hidden,), max_iter=args.epochs, batch_size=256, tol=0.0,
        n_iter_no_change=args.epochs, random_state=0, device=args.device,
    )
    return GridSearchCV(estimator, candidates(args.candidates), refit=False,
                        cv=KFold(args.folds, shuffle=True, random_state=0))


def warm_up(device):
    """Import skae and fit once (run on each worker before the timed search).

    Parameters
    ----------
    device : str
    """
    from skae import AutoencoderTransformer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        AutoencoderTransformer(max_iter=1, device=device).fit(np.eye(8, dtype=np.float32))


def expected_seconds(n_tasks, n_devices, per_task):
    """Wall time of ``n_tasks`` independent fits on ``n_devices``, one fit at a time each.

    Parameters
    ----------
    n_tasks : int
        Candidates times folds.
    n_devices : int
    per_task : float
        Seconds per fit: fit, score and per-task overhead.

    Returns
    -------
    seconds : float
    """
    return math.ceil(n_tasks / n_devices) * per_task


def summarize(name, workers, seconds, search, n_tasks):
    """One row of the table: times from the wall clock and from ``cv_results_``."""
    fit = float(np.mean(search.cv_results_["mean_fit_time"]))
    score = float(np.mean(search.cv_results_["mean_score_time"]))
    rounds = math.ceil(n_tasks / workers)
    return dict(name=name, workers=workers, seconds=seconds, fit=fit, score=score,
                overhead=seconds / rounds - (fit + score),
                scores=search.cv_results_["mean_test_score"])


def run_baseline(args, X, n_tasks):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        search = make_search(args)
        warm_up(args.device)
        start = time.perf_counter()
        search.fit(X)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return summarize("n_jobs=1, no Dask", 1, seconds, search, n_tasks)


def run_dask(args, X, n_workers, n_tasks):
    import distributed
    import joblib

    start = time.perf_counter()
    with distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, silence_logs=40,
    ) as cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(n_workers)
        started = time.perf_counter() - start
        start = time.perf_counter()
        client.run(warm_up, args.device)
        warmed = time.perf_counter() - start
        threads = sorted(set(client.run(lambda: __import__("torch").get_num_threads()).values()))
        search = make_search(args).set_params(n_jobs=-1)
        start = time.perf_counter()
        with joblib.parallel_backend("dask"):
            search.fit(X)
        seconds = time.perf_counter() - start
    row = summarize(f"Dask, {n_workers} worker{'s' * (n_workers > 1)}", n_workers, seconds,
                    search, n_tasks)
    return dict(row, started=started, warmed=warmed, threads=threads)


def report(args, argv, X, rows, n_tasks):
    """The markdown report."""
    import torch

    dask_rows = [r for r in rows if r["name"].startswith("Dask")]
    one = next((r for r in dask_rows if r["workers"] == 1), None)
    lines = [
        "# Hyperparameter search on a Dask cluster: scaling with workers",
        "",
        "Command: `python benchmarks/bench_dask_search.py " + " ".join(argv) + "`",
        "",
        f"Machine: {platform.machine()}, {platform.system()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, torch {torch.__version__}, device `{args.device}`.",
        "",
        f"Data: {args.dataset}, {X.shape[0]} x {X.shape[1]}. Search: `GridSearchCV` over "
        f"`AutoencoderTransformer(hidden_layer_sizes=({args.hidden},), max_iter={args.epochs}, "
        f"batch_size=256)`, {args.candidates} candidates (`n_components`, "
        f"`learning_rate_init`) x {args.folds} folds = {n_tasks} fits, `refit=False`; one "
        "thread per worker, one torch thread per worker.",
        "",
        "| run | workers | wall time | speed-up vs 1 worker | mean fit time | mean score time "
        "| per-task overhead | cluster start + warm-up |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        speedup = f"{one['seconds'] / r['seconds']:.2f}x" if one else "-"
        start = (f"{r['started']:.1f} s + {r['warmed']:.1f} s" if "started" in r else "-")
        lines.append(
            f"| {r['name']} | {r['workers']} | {r['seconds']:.2f} s | {speedup} | "
            f"{r['fit']:.3f} s | {r['score']:.3f} s | {r['overhead']:.3f} s | {start} |"
        )
    same = all(np.allclose(r["scores"], rows[0]["scores"], rtol=1e-12, atol=0) for r in rows)
    gap = max(float(np.max(np.abs(r["scores"] / rows[0]["scores"] - 1))) for r in rows)
    lines += [
        "",
        f"Test scores of every run equal the baseline's (rtol 1e-12): {'yes' if same else 'NO'} "
        f"(largest relative difference {gap:.1e}). "
        "Torch threads in the workers: "
        + ", ".join(f"{r['threads']}" for r in dask_rows) + ".",
        "",
        "The per-task overhead is the wall time per round of fits (one fit per worker) less "
        "the mean fit and score times; it includes scheduling, sending each fit's arguments "
        "and result, and the wait for the slowest fit of a round.",
        "",
    ]
    if dask_rows:
        widest = max(dask_rows, key=lambda r: r["workers"])
        fit = widest["fit"] + widest["score"]
        overhead = max(0.0, widest["overhead"])
        per_task = fit + overhead
        devices = (1, 2, 4, 8, 16)
        lines += [
            "## Expected scaling on N GPUs",
            "",
            f"A search of C candidates x K folds takes about ceil(C*K/N) x (fit + score + "
            f"overhead) on N devices with one worker each. Measured here ({args.device}, "
            f"{widest['workers']} workers): fit + score = {fit:.3f} s per fit, per-task "
            f"overhead = {overhead:.3f} s; so {per_task:.3f} s per fit and round. For this "
            f"search (C*K = {n_tasks}):",
            "",
            "| N | expected wall time | speed-up vs N=1 |",
            "| --- | --- | --- |",
        ]
        for n in devices:
            seconds = expected_seconds(n_tasks, n, per_task)
            lines.append(f"| {n} | {seconds:.1f} s | "
                         f"{expected_seconds(n_tasks, 1, per_task) / seconds:.2f}x |")
        lines += [
            "",
            "This assumes one fit at a time per device, fits that do not slow each other down "
            "(each worker has its own CPU cores and memory bandwidth), the data already on "
            "the workers, and N <= C*K: beyond C*K devices nothing more runs in parallel. The "
            "fit time is the one measured on this run's device; a GPU fit time comes from a "
            "run with `--device cuda`.",
            "",
        ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=["mnist", "digits"], default="mnist")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--candidates", type=int, default=8, choices=range(1, 9),
                        metavar="{1..8}")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true",
                        help="digits, 300 rows, 2 candidates x 2 folds, 1 epoch: a smoke run")
    parser.add_argument("--out", type=Path, default=None)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.quick:
        args.dataset, args.samples, args.hidden = "digits", 300, 32
        args.epochs, args.candidates, args.folds = 1, 2, 2

    X = load(args.dataset, args.samples)
    n_tasks = args.candidates * args.folds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of the short fits
        rows = [run_baseline(args, X, n_tasks)]
        print(rows[-1]["name"], f"{rows[-1]['seconds']:.2f} s", flush=True)
        for n_workers in args.workers:
            rows.append(run_dask(args, X, n_workers, n_tasks))
            print(rows[-1]["name"], f"{rows[-1]['seconds']:.2f} s", flush=True)
    text = report(args, argv, X, rows, n_tasks)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return rows


if __name__ == "__main__":
    main()
