"""Data-parallel fits under torchrun: 2 ranks on the CPU (Gloo), compared with one process.

A launch costs seconds (torchrun's agent and two workers import torch, then
meet), so one launch runs every configuration and the example script,
writing what each rank fitted to a temporary folder; the tests compare those
files with fits made here, in the test process. Two more launches check
that a failing rank ends the job and that a rank that never joins makes the
others time out. The launches take 40-50 s on 2 busy cores, so the tests
that need them are marked slow: ``pytest -m slow tests/test_distributed.py``
runs them.
"""

import inspect
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import ConvergenceWarning

import skae
from skae import AutoencoderAnomalyDetector, AutoencoderTransformer
from skae import _distributed, _inference

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "distributed" / "train_distributed.py"

#: name: (estimator, parameters, rows of rank 0 and rank 1, features, sparse).
#: The per-rank batch size is 16; shuffle=False keeps each rank's batches in
#: order, so that the 2-rank fit equals one process with batch_size=32 on the
#: ranks' batches interleaved.
BASE = dict(batch_size=16, shuffle=False, random_state=0, max_iter=6, standardize=True)
CONFIGS = {
    # hand-derived gradients (fast path); rank 1 runs out of rows before rank 0
    "fast": ("AutoencoderTransformer",
             dict(BASE, n_components=3, hidden_layer_sizes=(8,)), (48, 32), 6, False),
    # autograd (a contractive term); an unequal last batch on both ranks
    "autograd": ("AutoencoderTransformer",
                 dict(BASE, n_components=3, hidden_layer_sizes=(8,), contractive_weight=0.01,
                      solver="sgd", momentum=0.9), (40, 40), 6, False),
    "conv": ("AutoencoderTransformer",
             dict(BASE, n_components=4, hidden_layer_sizes=(), architecture="conv",
                  image_shape=(4, 4, 1), conv_channels=(3,), kernel_size=3), (48, 32), 16, False),
    "greedy": ("AutoencoderTransformer",
               dict(BASE, n_components=2, hidden_layer_sizes=(8, 4), pretraining="greedy",
                    pretraining_max_iter=3), (48, 32), 6, False),
    "sparse": ("AutoencoderTransformer",
               dict(BASE, n_components=3, hidden_layer_sizes=(8,)), (48, 32), 6, True),
    "detector": ("AutoencoderAnomalyDetector",
                 dict(BASE, n_components=3, hidden_layer_sizes=(8,), trim_fraction=0.0,
                      contamination=0.1), (48, 32), 6, False),
    "detector_auto": ("AutoencoderAnomalyDetector",
                      dict(BASE, n_components=3, hidden_layer_sizes=(8,), trim_fraction=0.0,
                           contamination="auto"), (40, 40), 6, False),
    # relative errors: each feature's mean training error over all ranks
    "detector_relative": ("AutoencoderAnomalyDetector",
                          dict(BASE, n_components=3, hidden_layer_sizes=(8,), trim_fraction=0.0,
                               relative_errors=True), (48, 32), 6, False),
    # the code distance's statistics over all ranks, its trimmed rows chosen among all
    "detector_code": ("AutoencoderAnomalyDetector",
                      dict(BASE, n_components=3, hidden_layer_sizes=(8,), trim_fraction=0.25,
                           code_distance="add"), (48, 32), 6, False),
    # nearest neighbours among every rank's kept rows, each rank's own left out
    # (the threshold at the median of the training scores depends on most of them)
    "detector_neighbors": ("AutoencoderAnomalyDetector",
                           dict(BASE, n_components=3, hidden_layer_sizes=(8,), trim_fraction=0.25,
                                n_neighbors=2, contamination=0.5), (48, 32), 6, False),
    # an ensemble: every member trained across the ranks, the threshold over all rows
    "ensemble": ("AutoencoderEnsembleDetector",
                 dict(estimator=dict(BASE, n_components=3, hidden_layer_sizes=(8,),
                                     trim_fraction=0.0, relative_errors=True),
                      n_estimators=2, random_state=0), (48, 32), 6, False),
    # paired data: targets standardized over all ranks too
    "regressor": ("AutoencoderRegressor",
                  dict(BASE, n_components=3, hidden_layer_sizes=(8,)), (40, 40), 6, False),
    # the ranks agree but draw their own noise: no one-process equivalent
    "variational": ("AutoencoderAnomalyDetector",
                    dict(BASE, n_components=2, hidden_layer_sizes=(8,), variational=True,
                         random_state=None, shuffle=True, n_importance_samples=4),
                    (48, 32), 6, False),
    "early_stopping": ("AutoencoderTransformer",
                       dict(BASE, n_components=3, hidden_layer_sizes=(8,), early_stopping=True,
                            validation_fraction=0.25, n_iter_no_change=2, tol=1e-2,
                            max_iter=200, shuffle=True), (80, 56), 6, False),
}
EQUIVALENT = ["fast", "autograd", "conv", "greedy", "sparse", "detector", "detector_auto",
              "detector_relative", "ensemble", "regressor"]

SCRIPT = """
import os, runpy, sys, warnings
from pathlib import Path
import numpy as np
import scipy.sparse as sp
import skae

warnings.simplefilter("ignore")  # convergence warnings of the short fits
CONFIGS = {configs!r}
rank = int(os.environ["RANK"])
out = Path(sys.argv[1])


def shard(name, n_rows, n_features, sparse):
    rng = np.random.RandomState(sum(map(ord, name)))
    n = sum(n_rows)
    X = np.tanh(rng.normal(size=(n, 3)) @ rng.normal(size=(3, n_features)))
    X += 0.05 * rng.normal(size=(n, n_features))
    if sparse:
        X[np.abs(X) < 0.5] = 0.0
    part = X[:n_rows[0]] if rank == 0 else X[n_rows[0]:]
    return sp.csr_matrix(part) if sparse else part


{targets}


def build(cls, params):
    if cls == "AutoencoderEnsembleDetector":
        params = dict(params, estimator=skae.AutoencoderAnomalyDetector(**params["estimator"]))
    return getattr(skae, cls)(**params)


for name, (cls, params, n_rows, n_features, sparse) in CONFIGS.items():
    X = shard(name, n_rows, n_features, sparse)
    est = build(cls, params)
    est.fit(*([X, targets(X)] if cls == "AutoencoderRegressor" else [X]))
    fitted = {{f"w{{i}}:" + k: v.numpy()
              for i, member in enumerate(getattr(est, "estimators_", [est]))
              for k, v in member.module_.state_dict().items()}}
    for attr in ("loss_curve_", "validation_scores_", "n_iter_", "offset_", "latent_kl_",
                 "feature_error_scale_", "error_scale_", "code_mean_", "code_whitening_",
                 "residual_mean_", "residual_whitening_", "residual_shrinkage_",
                 "reference_embedding_"):
        if getattr(est, attr, None) is not None:
            fitted[attr] = np.asarray(getattr(est, attr), dtype=np.float64)
    for i, member in enumerate(getattr(est, "estimators_", [])):
        fitted[f"loss_curve_{{i}}"] = np.asarray(member.loss_curve_)
        fitted[f"feature_error_scale_{{i}}"] = member.feature_error_scale_
    for i, curve in enumerate(getattr(est, "pretraining_loss_curves_", None) or ()):
        fitted[f"pretraining_{{i}}"] = np.asarray(curve)
    output = next(getattr(est, m)(X) for m in ("transform", "score_samples", "predict")
                  if hasattr(est, m))
    np.savez(out / f"{{name}}-{{rank}}.npz", X=X.toarray() if sparse else X, output=output,
             **fitted)
    if rank == 0:
        skae.save(est, out / f"{{name}}.safetensors")

# shards whose columns differ: the same error on both ranks, and no hang
X = np.ones((20, 5 if rank == 0 else 4))
try:
    skae.AutoencoderTransformer(2, max_iter=1).fit(X)
except ValueError as error:
    (out / f"mismatch-{{rank}}.txt").write_text(str(error))

# the example script, as torchrun would run it
sys.argv = [{example!r}, "--out", str(out / "example.safetensors")]
runpy.run_path({example!r}, run_name="__main__")
"""

def targets(X):
    """The regressor's targets: a function of each row."""
    return np.square(X[:, :3]) * 10.0


FAILING = """
import os
import numpy as np
import torch.distributed as dist
from skae import AutoencoderTransformer

dist.init_process_group("gloo")  # the user's own group: skae fits with it
X = np.random.RandomState(0).normal(size=(40, 5))
if int(os.environ["RANK"]) == 1:
    X[7, 2] = np.nan
AutoencoderTransformer(2, max_iter=50).fit(X)
"""


ABSENT = """
import os
import numpy as np
from skae import AutoencoderTransformer

if int(os.environ["RANK"]) == 0:  # rank 1 never calls fit, and exits without an error
    AutoencoderTransformer(2, max_iter=50).fit(np.ones((40, 5)))
"""


def torchrun(script, tmp_path, timeout, **env):
    """Run ``script`` on 2 ranks; ``(returncode, output, seconds)``."""
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore", **env}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", str(path), str(tmp_path)]
    start = time.perf_counter()
    job = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, cwd=tmp_path, start_new_session=True)
    try:
        output, _ = job.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)  # the agent and its workers
        output, _ = job.communicate()
        pytest.fail(f"torchrun still ran after {timeout} s:\n{output}")
    return job.returncode, output, time.perf_counter() - start


@pytest.fixture(scope="module")
def launch(tmp_path_factory):
    """Every configuration fitted on 2 ranks; the folder of their results and the output."""
    out = tmp_path_factory.mktemp("distributed")
    script = SCRIPT.format(configs=CONFIGS, example=str(EXAMPLE),
                           targets=inspect.getsource(targets))
    code, output, _ = torchrun(script, out, timeout=300)
    assert code == 0, output
    return out, output


def ranks(out, name):
    return [dict(np.load(out / f"{name}-{rank}.npz")) for rank in (0, 1)]


def interleaved(a, b, batch_size):
    """The rows of ``a`` and ``b`` ordered as the 2-rank fit's global batches."""
    blocks = []
    for start in range(0, max(len(a), len(b)), batch_size):
        blocks += [a[start:start + batch_size], b[start:start + batch_size]]
    return np.concatenate(blocks)


def assert_ranks_agree(first, second):
    assert first.keys() == second.keys()
    for key in first:
        if key not in ("X", "output"):
            np.testing.assert_array_equal(first[key], second[key], err_msg=key)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short fits
@pytest.mark.parametrize("name", EQUIVALENT)
def test_two_ranks_equal_one_process_with_twice_the_batch(launch, name):
    out, _ = launch
    cls, params, _, _, sparse = CONFIGS[name]
    first, second = ranks(out, name)
    assert_ranks_agree(first, second)
    member_params = params.get("estimator", params)  # an ensemble's members' parameters
    batch_size = member_params["batch_size"]
    X = interleaved(first["X"], second["X"], batch_size)
    if cls == "AutoencoderEnsembleDetector":
        member = skae.AutoencoderAnomalyDetector(**dict(member_params, batch_size=2 * batch_size))
        single = skae.AutoencoderEnsembleDetector(member, **{
            k: v for k, v in params.items() if k != "estimator"})
    else:
        single = getattr(skae, cls)(**dict(params, batch_size=2 * batch_size))
    single.fit(sp.csr_matrix(X) if sparse else X,
               *([targets(X)] if cls == "AutoencoderRegressor" else []))
    members = getattr(single, "estimators_", [single])
    for i, member in enumerate(members):
        for key, value in member.module_.state_dict().items():
            np.testing.assert_allclose(first[f"w{i}:" + key], value.numpy(), rtol=1e-5,
                                       atol=1e-6, err_msg=key)
        suffix = str(i) if member is not single else ""  # an ensemble's i-th member
        np.testing.assert_allclose(first["loss_curve_" + suffix], member.loss_curve_, rtol=1e-5)
        if getattr(member, "feature_error_scale_", None) is not None:
            np.testing.assert_allclose(first["feature_error_scale_" + suffix],
                                       member.feature_error_scale_, rtol=1e-5)
    if "n_iter_" in first:
        assert first["n_iter_"] == single.n_iter_
    for i, curve in enumerate(getattr(single, "pretraining_loss_curves_", None) or ()):
        np.testing.assert_allclose(first[f"pretraining_{i}"], curve, rtol=1e-5)
    if hasattr(single, "offset_"):
        np.testing.assert_allclose(first["offset_"], single.offset_, rtol=1e-5)


@pytest.mark.slow
def test_early_stopping_stops_every_rank_at_the_same_epoch(launch):
    out, _ = launch
    first, second = ranks(out, "early_stopping")
    assert_ranks_agree(first, second)
    n_iter = int(first["n_iter_"])
    assert n_iter < CONFIGS["early_stopping"][1]["max_iter"]
    assert first["validation_scores_"].shape == (n_iter,)


@pytest.mark.slow
def test_variational_ranks_agree_on_model_threshold_and_latent_kl(launch):
    out, _ = launch
    first, second = ranks(out, "variational")
    assert_ranks_agree(first, second)  # random_state=None: rank 0's seed and weights
    model = skae.load(out / "variational.safetensors")
    X = np.concatenate([first["X"], second["X"]])
    np.testing.assert_allclose(
        first["latent_kl_"], _inference.latent_kl(model.module_, X, model._spec.max_width),
        rtol=1e-6)
    offset = model.offset_
    model._set_scores(X, model._spec)  # here, in one process: the union's scores
    np.testing.assert_allclose(offset, model.offset_, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name, attrs", [
    ("detector_code", ("error_scale_", "code_mean_", "code_whitening_", "residual_mean_",
                       "residual_whitening_", "residual_shrinkage_", "offset_")),
    # the reference holds every rank's kept rows (60 of 80), rank 0's first
    ("detector_neighbors", ("code_whitening_", "residual_whitening_", "reference_embedding_",
                            "offset_")),
])
def test_scoring_statistics_are_those_of_every_ranks_rows(launch, name, attrs):
    """The trimmed rows, code and residual statistics, neighbours and threshold: the union's."""
    out, _ = launch
    first, second = ranks(out, name)
    assert_ranks_agree(first, second)
    model = skae.load(out / f"{name}.safetensors")
    X = np.concatenate([first["X"], second["X"]])
    model._set_scores(X, model._spec)  # here, in one process, from the same network
    assert model._residual_covariance == "full"
    for attr in attrs:
        np.testing.assert_allclose(first[attr], getattr(model, attr), rtol=1e-6, atol=1e-9,
                                   err_msg=attr)
    np.testing.assert_allclose(model.score_samples(first["X"]), first["output"], rtol=1e-6)


@pytest.mark.slow
def test_rank_0_saves_a_model_that_loads_in_one_process(launch):
    out, output = launch
    first, _ = ranks(out, "detector")
    model = skae.load(out / "detector.safetensors")
    assert isinstance(model, AutoencoderAnomalyDetector)
    np.testing.assert_allclose(model.score_samples(first["X"]), first["output"], rtol=1e-6)
    assert model.offset_ == first["offset_"]
    example = skae.load(out / "example.safetensors")
    assert isinstance(example, AutoencoderTransformer) and example.n_features_in_ == 64
    assert "rank 0 of 2" in output and "rank 1 of 2" in output


@pytest.mark.slow
def test_shards_with_different_columns_raise_on_every_rank(launch):
    out, _ = launch
    messages = [(out / f"mismatch-{rank}.txt").read_text() for rank in (0, 1)]
    assert messages[0] == messages[1]
    assert "different numbers of features: between 4 and 5" in messages[0]


@pytest.mark.slow
def test_a_failing_rank_ends_the_job(tmp_path):
    code, output, seconds = torchrun(FAILING, tmp_path, timeout=120)
    assert code != 0
    assert "ValueError: Input X contains NaN." in output
    assert seconds < 120


@pytest.mark.slow
def test_a_rank_that_never_joins_times_out(tmp_path):
    code, output, seconds = torchrun(ABSENT, tmp_path, timeout=120, SKAE_DIST_TIMEOUT="3")
    assert code != 0
    assert "timeout after 3000ms" in output
    assert seconds < 120


def test_a_single_process_fit_leaves_torch_distributed_alone(small_X, monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.warns(ConvergenceWarning):
        AutoencoderTransformer(2, max_iter=2, random_state=0).fit(small_X)
    assert not torch.distributed.is_initialized()
    assert _distributed.current("cpu", "E") is None


@pytest.mark.parametrize("value", ["ten", "0", "-5", "nan"])
def test_timeout_must_be_a_positive_number_of_seconds(value, small_X, monkeypatch):
    # torchrun's environment without torchrun: fit raises before joining any group
    env = {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1",
           "SKAE_DIST_TIMEOUT": value}
    for name, setting in env.items():
        monkeypatch.setenv(name, setting)
    message = "SKAE_DIST_TIMEOUT read by AutoencoderTransformer must be a positive"
    with pytest.raises(ValueError, match=message):
        AutoencoderTransformer(2).fit(small_X)
    assert not torch.distributed.is_initialized()
