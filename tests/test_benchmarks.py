"""The benchmark scripts run end to end and print what the README's speed claims rest on.

These check that the scripts work and report their table, machine and BLAS; they assert
nothing about speed (speed is what the scripts measure, not what the tests check).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test runs a benchmark script in a subprocess
ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str, timeout: int = 300) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_bench_step_prints_the_table_the_ratios_and_the_machine(tmp_path):
    table = tmp_path / "table.md"
    out = _run("bench_step.py", "--quick", "--rounds", "1", "--configs", "C1,C2", "--markdown", str(table))
    for expected in ("BLAS (NumPy's): ", " threads", "| GEMM floor |", "| hand-tuned NumPy |", "| handgrad |",
                     "| handgrad five calls |", "| spread (slowest round / fastest round) |",
                     "| PyTorch eager |", "| handgrad / GEMM floor |", "| PyTorch eager / handgrad |",
                     "C1 20→100→50 b10", "C2 1→64→1 b32", "load average"):
        assert expected in out, expected
    written = table.read_text(encoding="utf-8")
    assert "| handgrad |" in written and "BLAS (NumPy's): " in written


def test_bench_step_times_a_baseline_tree_in_the_same_run():
    out = _run("bench_step.py", "--quick", "--rounds", "1", "--configs", "C2", "--skip",
               "PyTorch eager,JAX jit,scikit-learn partial_fit", "--baseline", str(ROOT / "src"), "--stat", "min")
    for expected in ("| baseline handgrad |", "| baseline five calls |", "| baseline handgrad / handgrad |"):
        assert expected in out, expected


def test_bench_step_refuses_an_unknown_configuration():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_step.py"), "--configs", "C9"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2 and "unknown configuration(s) ['C9']" in done.stderr


def test_bench_deep_prints_the_closure_the_per_layer_calls_and_pytorch():
    out = _run("bench_deep.py", "--rounds", "1", "--threads", "1")
    for expected in ("BLAS: ", "| handgrad |", "| handgrad per-layer calls |", "| PyTorch eager |",
                     "| handgrad per-layer calls / handgrad |", "D1 20→100→100→50 b10", "D3 784→256→128→10 b64"):
        assert expected in out, expected


def test_bench_epoch_prints_epoch_steps_gathering_and_memory():
    out = _run("bench_epoch.py", "--quick")
    for expected in ("60000 x 784 float32", "one step (batch 64)", "sum of an epoch's steps",
                     "whole epoch, batches gathered as new arrays", "whole epoch, batches gathered into reused buffers",
                     "handgrad.train.fit, one epoch",
                     "epoch / sum of steps", "shuffling + gathering into buffers alone", "spread",
                     "peak memory above the data"):
        assert expected in out, expected


def test_bench_data_prints_time_and_peak_against_pandas():
    out = _run("bench_data.py", "--rows", "2000", "--rounds", "1", "--train", "--parquet")
    for expected in ("| rows |", "| 2,000 |", "| / pandas |", "| handgrad-f32 |", "| numpy |", "| parquet-f32 |",
                     "peak / float32 size", "whole process, read + fit", "load average"):
        assert expected in out, expected
