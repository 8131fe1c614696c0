"""Smoke tests of the benchmark scripts' quick modes (they never assert speed)."""

import importlib.util
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # seconds of timing loops: run with -m slow
def test_speed_benchmark_quick_mode_reports_a_ratio(capsys):
    results = load("bench_speed").main(["--quick"])
    ratio = results[256]["skae"]
    assert math.isfinite(ratio) and ratio > 0
    assert "ratio" in capsys.readouterr().out


def test_speed_benchmark_gpu_rows_run(capsys):
    """The rows of the GPU table (``--device cuda``) run, here on the CPU."""
    bench = load("bench_speed")
    X = bench.make_data(600, 32)
    for name, run in bench.GPU_IMPLEMENTATIONS.items():
        predict = run(X, 128, 1)
        assert math.isfinite(bench.final_mse(predict, X)), name


def test_vae_benchmark_peers_agree_on_the_same_weights():
    """The minimal VAE's hand-written likelihood estimate agrees with skae's on one network."""
    import numpy as np
    import torch

    from skae import AutoencoderTransformer

    bench = load("bench_vae")
    rng = np.random.RandomState(0)
    X = (rng.uniform(size=(300, 12)) < 0.3).astype(np.float32)
    vae = AutoencoderTransformer(
        n_components=3, hidden_layer_sizes=(8, 8), activation="tanh", variational=True,
        loss="bce", output_activation="sigmoid", max_iter=5, n_importance_samples=50000,
        random_state=0,
    ).fit(X)
    minimal = bench.MinimalVAE(12, (8, 8), 3)
    net = vae.module_
    linears = [layer.linear for layer in net.hidden_layers] + [net.posterior]
    mins = [m for m in minimal.enc if isinstance(m, torch.nn.Linear)]
    mins += [m for m in minimal.dec if isinstance(m, torch.nn.Linear)]
    linears += [layer.linear for layer in net.decoder_layers]
    with torch.no_grad():
        for theirs, ours in zip(mins, linears):
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
    ours = vae.score_samples(X[:20])
    theirs = bench.minimal_log_likelihood(minimal, X[:20], 50000)
    # independent draws: equal up to the estimates' noise (about 0.02 nats here)
    np.testing.assert_allclose(theirs, ours, atol=0.05)
    trained = bench.train_minimal(X, (8, 8), 3, epochs=1, batch_size=50, lr=1e-3, seed=0)
    assert np.isfinite(bench.minimal_log_likelihood(trained, X[:5], 10)).all()


def test_sparse_benchmark_corpus():
    """The synthetic TF-IDF corpus: CSR of the asked shape, l2-normalized rows, fixed seed."""
    import numpy as np
    import scipy.sparse as sp

    bench = load("bench_sparse")
    X = bench.tfidf_corpus(300, 400, doc_length=20, zipf=1.1)
    assert sp.issparse(X) and X.format == "csr" and X.shape == (300, 400)
    np.testing.assert_allclose(sp.linalg.norm(X, axis=1), 1.0)
    assert bench.csr_bytes(X) == X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    assert (bench.tfidf_corpus(300, 400, doc_length=20, zipf=1.1) != X).nnz == 0


ADBENCH_DIR = Path(__import__("os").environ.get(
    "SKAE_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))) / "adbench"
needs_adbench = pytest.mark.skipif(
    not all((ADBENCH_DIR / f"{name}.npz").exists() for name in ("WBC", "vertebral", "wine")),
    reason="ADBench datasets not found (set SKAE_DATA)",
)


def test_adbench_folds_are_fixed_and_balanced():
    bench = load("adbench")
    names = [f"d{i}" for i in range(43)]
    folds = bench.assign_folds(names, 4)
    assert folds == bench.assign_folds(list(reversed(names)), 4)
    sizes = sorted(list(folds.values()).count(k) for k in range(4))
    assert sizes == [10, 11, 11, 11]


def test_adbench_chosen_datasets(tmp_path):
    import numpy as np

    bench = load("adbench")
    with pytest.raises(SystemExit, match="no .npz files"):
        bench.chosen_datasets(tmp_path)
    for name in ("odds_wbc", "wine", "WBC", "annthyroid"):
        np.savez(tmp_path / f"{name}.npz", X=np.zeros((2, 1)), y=np.zeros(2))
    assert bench.chosen_datasets(tmp_path) == ["annthyroid", "WBC", "wine", "odds_wbc"]
    assert bench.chosen_datasets(tmp_path, ["wine", "odds_wbc"]) == ["wine", "odds_wbc"]
    with pytest.raises(SystemExit, match="not found .*: nope"):
        bench.chosen_datasets(tmp_path, ["wine", "nope"])


def test_adbench_novelty_split_trains_on_normal_samples_only():
    import numpy as np

    bench = load("adbench")
    rng = np.random.RandomState(0)
    X = np.column_stack([np.arange(300.0), rng.normal(size=300)])
    y = (np.arange(300) % 10 == 0).astype(np.int64)
    X_train, X_test, y_train, y_test = bench.make_novelty_split(X, y, seed=1)
    assert not y_train.any() and y_test.sum() == y.sum()
    assert len(X_train) == 135 and len(X_test) == 165
    assert X_train.min() == 0 and X_train.max() == 1  # scaled on the training half
    # the halves are disjoint and together hold every row
    assert len(np.unique(np.round(np.concatenate([X_train[:, 0], X_test[:, 0]]), 9))) == 300
    a, b, _, _ = bench.make_novelty_split(X, y, seed=1)
    np.testing.assert_array_equal(a, X_train)
    assert not np.array_equal(bench.make_novelty_split(X, y, seed=2)[0], X_train)


#: Two quick candidates of the cross-validation tests.
QUICK_GRID = {"short": {"max_iter": 1, "noise": "masking"},
              "longer": {"max_iter": 3, "noise": "masking"}}


@pytest.fixture
def quick_grid(tmp_path):
    """:data:`QUICK_GRID` written to a JSON file; returns its path."""
    import json

    path = tmp_path / "grid.json"
    path.write_text(json.dumps(QUICK_GRID))
    return path


@needs_adbench
def test_adbench_cross_validation_quick_mode(tmp_path, quick_grid):
    """Selection by cross-validation over datasets, with cached candidates."""
    import json

    grid, grid_path = QUICK_GRID, quick_grid
    argv = [str(ADBENCH_DIR), "--quick", "--cv-folds", "2", "--grid", str(grid_path),
            "--out", str(tmp_path)]
    bench = load("adbench")
    cv = bench.main(argv)
    assert cv["shipped"] in grid and set(cv["chosen"]) == {0, 1}
    assert set(cv["chosen"].values()) <= set(grid)
    # every dataset is scored once out of sample, by the candidate of its fold
    held = cv["held_out"]
    assert sorted(held["dataset"]) == ["WBC", "vertebral"]
    for row in held.itertuples():
        fold = cv["folds"][row.dataset]
        cached = json.loads(row.params)
        assert cached == json.loads(bench.candidate_key("skae", grid[cv["chosen"][fold]]))
    assert (tmp_path / "adbench_cv2_quick.md").exists()
    cache = tmp_path / "adbench_cv2_quick_cache" / "short.csv"
    before = cache.read_text()
    again = load("adbench").main(argv)  # cached: nothing is refitted
    assert cache.read_text() == before
    assert again["held_out"]["aucroc"].tolist() == held["aucroc"].tolist()


@needs_adbench
def test_adbench_selection_by_the_mean_over_several_seeds(tmp_path, quick_grid):
    """``--selection-seeds`` chooses by the mean over those seeds; ``--cache`` holds the rows."""
    grid, grid_path = QUICK_GRID, quick_grid
    cache = tmp_path / "rows"
    bench = load("adbench")
    cv = bench.main([str(ADBENCH_DIR), "--quick", "--cv-folds", "2", "--grid", str(grid_path),
                     "--seeds", "1,2", "--selection-seeds", "1,2", "--cache", str(cache),
                     "--out", str(tmp_path / "out")])
    means = {}
    for name in grid:
        rows = bench.pd.read_csv(cache / f"{name}.csv")
        assert sorted(set(rows["seed"])) == [1, 2]
        means[name] = rows.groupby("dataset")["aucroc"].mean().mean() * 100
    for name, mean in means.items():
        assert cv["selection"].loc[name, "all"] == pytest.approx(mean)
    assert cv["shipped"] == max(means, key=means.get)
    assert not (tmp_path / "out" / "adbench_cv2_quick_cache").exists()
    assert "scored with seeds 1, 2" in (tmp_path / "out" / "adbench_cv2_quick.md").read_text()


def test_adbench_trials_feature_bagging_subsets():
    import numpy as np

    trials = load("adbench_trials")
    rng = np.random.RandomState(0)
    for d in (3, 4, 9, 30):
        sizes = set()
        for columns in trials.bagging_subsets(d, 200, rng):
            assert len(set(columns)) == len(columns) and list(columns) == sorted(columns)
            assert 0 <= columns.min() and columns.max() < d
            sizes.add(len(columns))
        assert sizes == set(range(min(max(2, d // 2), d - 1), d))  # every size, all but one
    for d in (1, 2):  # too few features to leave one out
        assert all(list(c) == list(range(d)) for c in trials.bagging_subsets(d, 3, rng))


def test_adbench_trials_two_stage_keeps_the_most_normal_rows():
    import numpy as np

    trials = load("adbench_trials")
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(270, 4)), rng.normal(8.0, 1.0, size=(30, 4))])
    rows = trials.most_normal(X, seed=0, keep=0.8, max_iter=5)
    assert rows.sum() == 240 and not rows[270:].any()


def test_adbench_trials_feature_bagging_standardizes_each_member():
    """One member on two features: its scores minus their training median, over their IQR."""
    import numpy as np

    from skae import AutoencoderAnomalyDetector

    trials = load("adbench_trials")
    rng = np.random.RandomState(0)
    X_train, X_test = rng.normal(size=(200, 2)), rng.normal(size=(20, 2)) * 3
    scores = trials.feature_bagging(X_train, X_test, 7, 1, max_iter=3)
    member = AutoencoderAnomalyDetector(
        random_state=np.random.RandomState(7).randint(2**31 - 1), max_iter=3).fit(X_train)
    q1, median, q3 = np.percentile(-member.score_samples(X_train), [25, 50, 75])
    np.testing.assert_allclose(scores, (-member.score_samples(X_test) - median) / (q3 - q1))


@needs_adbench
def test_adbench_trials_run_on_the_benchmark_splits(tmp_path):
    """The trials' defaults and IsolationForest equal adbench.py's rows on the same splits."""
    trials = load("adbench_trials")
    names = ["defaults", "iforest", "feature_bagging_4x5", "two_stage_80"]
    results = trials.main([str(ADBENCH_DIR), "--datasets", "WBC", "--seeds", "1",
                           "--trials", ",".join(names[1:]), "--out", str(tmp_path)])
    assert list(results["method"]) == names  # the defaults always run, first
    assert (results["warnings"] == 0).all() and results["aucroc"].between(0, 1).all()
    direct = load("adbench").main([str(ADBENCH_DIR), "--datasets", "WBC", "--seeds", "1",
                                   "--methods", "skae,iforest", "--out", str(tmp_path / "d")])
    by_method = results.set_index("method")["aucroc"]
    for trial, method in (("defaults", "skae"), ("iforest", "iforest")):
        assert by_method[trial] == direct.set_index("method").loc[method, "aucroc"]
    text = (tmp_path / "adbench_trials.md").read_text()
    assert all(f"| `{name}` |" in text for name in names)


@needs_adbench
def test_adbench_trials_leave_the_odds_datasets_out_by_default(tmp_path):
    import numpy as np

    data = tmp_path / "data"
    data.mkdir()
    (data / "WBC.npz").symlink_to(ADBENCH_DIR / "WBC.npz")
    rng = np.random.RandomState(0)
    np.savez(data / "odds_fake.npz", X=rng.normal(size=(60, 3)), y=np.arange(60) % 6 == 0)
    results = load("adbench_trials").main([str(data), "--seeds", "1", "--trials", "iforest",
                                           "--out", str(tmp_path / "out")])
    assert set(results["dataset"]) == {"WBC"}


def test_adbench_cache_key_holds_the_detector_defaults():
    """A cached candidate is the detector it fitted: its key changes with the defaults."""
    import json

    from skae import AutoencoderAnomalyDetector

    bench = load("adbench")
    key = json.loads(bench.candidate_key("skae", {"max_iter": 3, "n_estimators": 2}))
    defaults = AutoencoderAnomalyDetector().get_params()
    assert key["max_iter"] == 3 and key["n_estimators"] == 2
    assert key["batch_size"] == defaults["batch_size"]
    assert key["code_distance"] == defaults["code_distance"]
    assert "random_state" not in key
    assert bench.candidate_key("iforest", {}) == "{}"  # a peer: its own parameters


@pytest.mark.slow  # seconds, with pyod's peers; the default suite keeps to its time budget
@needs_adbench
def test_adbench_novelty_cross_validation_quick_mode(tmp_path):
    """Selection in novelty mode: the novelty splits, every peer, an ensemble candidate."""
    import json

    bench = load("adbench")
    grid = {"one": {"max_iter": 1}, "ensemble": {"max_iter": 1, "n_estimators": 2}}
    grid_path = tmp_path / "grid.json"
    grid_path.write_text(json.dumps(grid))
    cv = bench.main([str(ADBENCH_DIR), "--quick", "--mode", "novelty", "--cv-folds", "2",
                     "--grid", str(grid_path), "--out", str(tmp_path)])
    peers = [m for m in bench.NOVELTY_METHODS if m != "skae"
             and (bench.pyod is not None or m not in bench.PYOD_METHODS)]
    assert cv["peer_names"] == peers
    assert set(cv["peers"]["method"]) == set(peers)
    # the novelty split: the peers' rows are those of the novelty benchmark
    direct = bench.main([str(ADBENCH_DIR), "--quick", "--mode", "novelty", "--methods",
                         "lof", "--out", str(tmp_path / "direct")])
    lof = cv["peers"][cv["peers"]["method"] == "lof"].set_index("dataset")["aucroc"]
    assert lof.to_dict() == direct.set_index("dataset")["aucroc"].to_dict()
    text = (tmp_path / "adbench_novelty_cv2_quick.md").read_text()
    assert "(novelty)" in text and "| lof |" in text
    ensemble = bench.pd.read_csv(tmp_path / "adbench_novelty_cv2_quick_cache" / "ensemble.csv")
    assert len(ensemble) == 2 and ensemble["aucroc"].between(0, 1).all()


@needs_adbench
def test_adbench_novelty_quick_mode(tmp_path):
    bench = load("adbench")
    results = bench.main([str(ADBENCH_DIR), "--quick", "--mode", "novelty", "--out",
                          str(tmp_path), "--skae-params", '{"max_iter": 2}'])
    expected = set(bench.NOVELTY_METHODS)
    if bench.pyod is None:  # pyod is in the bench extra, not the test extra
        expected -= set(bench.PYOD_METHODS)
    assert set(results["method"]) == expected
    assert results["aucroc"].between(0, 1).all()
    text = (tmp_path / "adbench_novelty_quick.md").read_text()
    assert "skae wins" in text and "| lof |" in text


#: AUCROC floors (percent) of the default detector, seed 1; the defaults score
#: 98.1 on WBC and 93.5 on wine (benchmarks/results/adbench_cv4_cache, the
#: shipped candidate), IsolationForest 99.6 and 73.7.
WBC_FLOOR, WINE_FLOOR = 95.0, 87.0


@needs_adbench
def test_adbench_detector_defaults_do_not_regress(tmp_path):
    """The shipped defaults on two small ADBench datasets (seed 1), with margins.

    The defaults are those ``adbench.py --cv-folds 4`` selects
    (benchmarks/results/adbench_cv4.md); the margins tolerate small numerical
    changes, not a worse default.
    """
    bench = load("adbench")
    results = bench.main([str(ADBENCH_DIR), "--datasets", "WBC,wine", "--seeds", "1",
                          "--methods", "skae,iforest", "--out", str(tmp_path)])
    roc = results.pivot_table(index="dataset", columns="method", values="aucroc") * 100
    skae_warnings = results.loc[results["method"] == "skae", "warnings"]
    assert skae_warnings.sum() == 0  # a default fit emits no warning
    assert roc.loc["WBC", "skae"] > WBC_FLOOR
    assert roc.loc["wine", "skae"] > WINE_FLOOR
    assert roc["skae"].mean() > roc["iforest"].mean()
def test_dask_search_benchmark_expected_scaling():
    """ceil(C*K/N) rounds of fits; the grid's 8 candidates are distinct; the report's table."""
    import numpy as np

    bench = load("bench_dask_search")
    assert bench.expected_seconds(24, 1, 2.0) == 48.0
    assert bench.expected_seconds(24, 8, 2.0) == 6.0
    assert bench.expected_seconds(24, 5, 2.0) == 10.0  # 5 rounds: 4 full, 1 of 4 fits
    assert bench.expected_seconds(24, 48, 2.0) == 2.0
    grid = bench.candidates(8)
    assert len({tuple(sorted((k, v[0]) for k, v in point.items())) for point in grid}) == 8
    args = bench.argparse.Namespace(device="cpu", dataset="digits", hidden=32, epochs=1,
                                    candidates=2, folds=2)
    scores = np.array([-0.1, -0.2])
    rows = [dict(name="n_jobs=1, no Dask", workers=1, seconds=4.0, fit=0.9, score=0.1,
                 overhead=0.0, scores=scores),
            dict(name="Dask, 2 workers", workers=2, seconds=2.4, fit=1.0, score=0.1,
                 overhead=0.1, scores=scores, started=1.0, warmed=2.0, threads=[1])]
    text = bench.report(args, ["--quick"], np.zeros((300, 64)), rows, n_tasks=4)
    assert "Command: `python benchmarks/bench_dask_search.py --quick`" in text
    assert "| 2 | 2.4 s | 2.00x |" in text  # ceil(4/2) rounds of 1.2 s
    assert "rtol 1e-12): yes" in text
