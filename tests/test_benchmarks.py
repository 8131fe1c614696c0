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
