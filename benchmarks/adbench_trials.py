"""Other detector designs measured on ADBench, side by side with the defaults.

Each trial is fitted and scored on the splits of ``benchmarks/adbench.py``'s
unsupervised protocol (the 43 ADBench "Classical" datasets, seeds 1, 2, 3,
contaminated training data), next to the shipped defaults of
``AutoencoderAnomalyDetector`` and scikit-learn's IsolationForest. The
trials are designs that the out-of-sample grid (``adbench_grid.json``) does
not hold:

- parameter changes of the defaults (learning rate, weight decay, epochs);
- ensembles of the defaults that differ by their seed
  (``AutoencoderEnsembleDetector``), at the defaults' cost in epochs or at
  three times it;
- feature bagging (Lazarevic and Kumar, KDD 2005): each member is the
  default detector fitted on a random subset of the features, of a size
  drawn uniformly between half of them and all but one (at least 2 features;
  every feature when there are at most 2); a member's scores are centred on
  the median of its training scores and divided by their interquartile
  range, and the ensemble scores by the mean;
- a two-stage refit: a first detector trained for 10 epochs scores the
  training samples, and the default detector is fitted on the share of them
  it scores most normal.

Results go to ``<out>/adbench_<tag>.md`` and ``.csv``; the report counts,
for every trial, its wins and losses against the defaults over the datasets.

Usage::

    python benchmarks/adbench_trials.py --threads 1
    python benchmarks/adbench_trials.py --trials defaults,feature_bagging_4x20 --seeds 1
"""

import argparse
import functools
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

import skae

sys.path.insert(0, str(Path(__file__).resolve().parent))
import adbench  # noqa: E402  (the same splits, metrics and report helpers)


def bagging_subsets(n_features, n_members, rng):
    """Random feature subsets of feature bagging, one per member.

    A subset's size is drawn uniformly from ``max(2, n_features // 2)`` to
    ``n_features - 1``; with at most 2 features, every feature.

    Parameters
    ----------
    n_features : int
        Number of features.
    n_members : int
        Number of subsets.
    rng : numpy.random.RandomState
        Draws the sizes and the features.

    Returns
    -------
    subsets : list of ndarray
        Sorted column indices, one array per member.
    """
    if n_features <= 2:
        return [np.arange(n_features) for _ in range(n_members)]
    low = min(max(2, n_features // 2), n_features - 1)
    return [np.sort(rng.choice(n_features, rng.randint(low, n_features), replace=False))
            for _ in range(n_members)]


def feature_bagging(X_train, X_test, seed, n_members, **params):
    """Mean of robustly standardized scores of detectors on random feature subsets.

    Parameters
    ----------
    X_train, X_test : ndarray
        Scaled training and test features.
    seed : int
        Seed of the subsets and of the members.
    n_members : int
        Number of members.
    **params
        Overrides of ``AutoencoderAnomalyDetector``'s defaults for every member.

    Returns
    -------
    scores : ndarray of shape (len(X_test),)
        Higher = more anomalous.
    """
    rng = np.random.RandomState(seed)
    total = np.zeros(len(X_test))
    for columns in bagging_subsets(X_train.shape[1], n_members, rng):
        member = skae.AutoencoderAnomalyDetector(random_state=rng.randint(2**31 - 1), **params)
        member.fit(X_train[:, columns])
        train = -member.score_samples(X_train[:, columns])
        q1, median, q3 = np.percentile(train, [25, 50, 75])
        total += (-member.score_samples(X_test[:, columns]) - median) / max(q3 - q1, 1e-12)
    return total / n_members


def two_stage(X_train, X_test, seed, keep, first_max_iter=10, **params):
    """The default detector refitted on the training samples a first one scores most normal.

    Parameters
    ----------
    X_train, X_test : ndarray
        Scaled training and test features.
    seed : int
        Seed of both detectors.
    keep : float
        Share of the training samples the second detector is fitted on.
    first_max_iter : int, default=10
        Epochs of the first detector.
    **params
        Overrides of ``AutoencoderAnomalyDetector``'s defaults for the second.

    Returns
    -------
    scores : ndarray of shape (len(X_test),)
        Higher = more anomalous.
    """
    rows = most_normal(X_train, seed, keep, first_max_iter)
    second = skae.AutoencoderAnomalyDetector(random_state=seed, **params).fit(X_train[rows])
    return -second.score_samples(X_test)


def most_normal(X, seed, keep, max_iter):
    """The share ``keep`` of ``X`` that a detector fitted on it scores most normal.

    Parameters
    ----------
    X : ndarray
        Training features.
    seed : int
        Seed of the detector.
    keep : float
        Share of the rows kept.
    max_iter : int
        Epochs of the detector.

    Returns
    -------
    rows : ndarray of bool
        True for the kept rows.
    """
    detector = skae.AutoencoderAnomalyDetector(random_state=seed, max_iter=max_iter)
    normality = detector.fit(X).score_samples(X)
    return normality >= np.quantile(normality, 1.0 - keep)


def parameters(**params):
    """A trial that overrides the defaults (``n_estimators``: an ensemble of them)."""
    return lambda X_train, X_test, seed: adbench.fit_score("skae", X_train, X_test, seed,
                                                           params)


#: name: (what it is, scores(X_train, X_test, seed)).
TRIALS = {
    "defaults": ("AutoencoderAnomalyDetector()", parameters()),
    "iforest": ("IsolationForest()", lambda a, b, seed: adbench.fit_score("iforest", a, b,
                                                                          seed, {})),
    "lr_1e-2": ("learning_rate_init=1e-2", parameters(learning_rate_init=1e-2)),
    "lr_5e-3": ("learning_rate_init=5e-3", parameters(learning_rate_init=5e-3)),
    "alpha_1e-4": ("alpha=1e-4 (weight decay)", parameters(alpha=1e-4)),
    "alpha_1e-3": ("alpha=1e-3 (weight decay)", parameters(alpha=1e-3)),
    "epochs_10": ("max_iter=10", parameters(max_iter=10)),
    "epochs_50": ("max_iter=50", parameters(max_iter=50)),
    "seeds_2x10": ("ensemble of 2 seeds, max_iter=10 each (the defaults' epochs)",
                   parameters(n_estimators=2, max_iter=10)),
    "seeds_3x20": ("ensemble of 3 seeds of the defaults (3 times their epochs)",
                   parameters(n_estimators=3)),
    "feature_bagging_4x5": ("feature bagging, 4 members of 5 epochs (the defaults' epochs)",
                            lambda a, b, seed: feature_bagging(a, b, seed, 4, max_iter=5)),
    "feature_bagging_4x20": ("feature bagging, 4 members of 20 epochs",
                             lambda a, b, seed: feature_bagging(a, b, seed, 4)),
    "two_stage_80": ("refit on the 80% most normal by a 10-epoch detector",
                     lambda a, b, seed: two_stage(a, b, seed, keep=0.8)),
    "two_stage_90_trim0.2": ("refit on the 90% most normal, trim_fraction=0.2",
                             lambda a, b, seed: two_stage(a, b, seed, keep=0.9,
                                                          trim_fraction=0.2)),
}


def run_trials(trials, datasets, seeds, data_dir, csv_path):
    """Fit and score every trial on every dataset and seed.

    Parameters
    ----------
    trials : list of str
        Names in :data:`TRIALS`.
    datasets : list of str
        File stems in ``data_dir``.
    seeds : list of int
        Seeds of the splits and fits.
    data_dir : pathlib.Path
        Folder of the ``.npz`` files.
    csv_path : pathlib.Path
        Long-format results, rewritten after each dataset.

    Returns
    -------
    results : pandas.DataFrame
        Columns dataset, seed, method, aucroc, aucpr, fit_score_seconds, warnings.
    """
    adbench.warm_up(["skae", "iforest"], {})
    rows = []
    for i, name in enumerate(datasets, 1):
        X, y = adbench.load_dataset(data_dir / f"{name}.npz")
        for seed in seeds:
            X_train, X_test, _, y_test = adbench.make_split(X, y, seed)
            for trial in trials:
                scores_of = functools.partial(TRIALS[trial][1], seed=seed)
                rows.append(adbench.scored_row(name, seed, trial, X_train, X_test, y_test,
                                               scores_of))
        pd.DataFrame(rows).to_csv(csv_path, index=False)
        print(f"[{i}/{len(datasets)}] {name}", flush=True)
    return pd.DataFrame(rows)


def report(results, trials, args, command):
    """Markdown report: every trial against the defaults.

    Parameters
    ----------
    results : pandas.DataFrame
        Output of :func:`run_trials`.
    trials : list of str
        The trials run, ``"defaults"`` among them.
    args : argparse.Namespace
        Parsed command line.
    command : str
        The command line.

    Returns
    -------
    text : str
    """
    summary = adbench.comparison(results, trials, "defaults")
    roc = results.groupby(["dataset", "method"])["aucroc"].mean().unstack()[trials] * 100
    baseline = summary.loc["defaults", "AUCROC"]
    lines = adbench.header_lines(args, command, f"ADBench trials: {args.tag}") + [
        f"- protocol: ADBench unsupervised (see adbench_full.md), {len(roc)} datasets; every "
        "trial on the same splits; `defaults wins` counts the datasets where the defaults' "
        "seed-mean AUCROC is above the trial's",
        "- seconds are comparable within one run only",
        "",
        "## Summary (mean over the datasets, percent)",
        "",
        "| trial | what it is | AUCROC | AUCPR | AUCROC - defaults | defaults wins | ties "
        "| defaults losses | seconds | warnings |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for trial, row in summary.iterrows():
        cells = [adbench._fmt(row["AUCROC"]), adbench._fmt(row["AUCPR"]),
                 "" if trial == "defaults" else f"{row['AUCROC'] - baseline:+.2f}",
                 *("" if row[c] == "" else str(int(row[c]))
                   for c in ("defaults wins", "ties", "defaults losses")),
                 adbench._fmt(row["seconds"], 1), str(int(row["warnings"]))]
        lines.append(f"| `{trial}` | {TRIALS[trial][0]} | " + " | ".join(cells) + " |")
    lines += ["", "## AUCROC per dataset (percent, seed means)", "",
              "| dataset | " + " | ".join(f"`{t}`" for t in trials) + " |",
              "|---|" + "---:|" * len(trials)]
    for name, row in roc.iterrows():
        lines.append(f"| {name} | " + " | ".join(adbench._fmt(v, 1) for v in row) + " |")
    return "\n".join(lines) + "\n"


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
    adbench.add_data_arguments(parser, "the 43 ADBench ones")
    parser.add_argument("--trials", default=",".join(TRIALS),
                        help="comma-separated subset of " + ",".join(TRIALS)
                        + " (default: all; the defaults are always run)")
    parser.add_argument("--tag", default="trials", help="name of the outputs (default: trials)")
    args = parser.parse_args(argv)
    trials = [t for t in args.trials.split(",") if t]
    unknown = set(trials) - set(TRIALS)
    if unknown:
        parser.error(f"unknown trials: {sorted(unknown)}")
    args.trials = ["defaults", *(t for t in trials if t != "defaults")]
    adbench.parse_data_arguments(args)
    args.seeds = args.seeds or list(adbench.DEFAULT_SEEDS)
    return args


def main(argv=None):
    """Run the trials from the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments; ``sys.argv[1:]`` by default.

    Returns
    -------
    results : pandas.DataFrame
        Output of :func:`run_trials`.
    """
    args = parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    args.revision = adbench.source_revision()
    torch.set_num_threads(args.threads)
    datasets = [d for d in adbench.chosen_datasets(args.data_dir, args.datasets)
                if args.datasets or not d.startswith(adbench.ODDS_PREFIX)]
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / f"adbench_{args.tag}.csv"
    with threadpool_limits(limits=args.threads):
        results = run_trials(args.trials, datasets, args.seeds, args.data_dir, csv_path)
    text = report(results, args.trials, args, command)
    (args.out / f"adbench_{args.tag}.md").write_text(text)
    print(text.split("## AUCROC")[0])
    return results


if __name__ == "__main__":
    main()
