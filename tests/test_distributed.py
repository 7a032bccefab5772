"""handgrad.distributed: data-parallel training on torch.distributed, equal to one process.

The workers run in spawned processes (gloo on 127.0.0.1); each writes its final weights
and history to a .npz/.json file that the test compares with a one-process run.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("torch.distributed")
pytestmark = pytest.mark.filterwarnings("ignore::handgrad.errors.ConvergenceWarning")  # short runs, by design

import handgrad as hg  # noqa: E402
from handgrad.distributed import DistributedError, launch  # noqa: E402
from handgrad.train import fit  # noqa: E402

# (name, optimizer, lr): SGD with momentum and weight decay, and Adam
RUNS = [("sgd", hg.optim.SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}), ("adam", hg.optim.Adam, {"lr": 0.01})]


def _data(seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(203, 3))  # 203 rows, batch 32: the last batch (11 rows) splits 5 + 6
    y = (X[:, :1] * X[:, 1:2] > 0).astype(float)
    return X[:150], y[:150], X[150:], y[150:]


def _train(name: str, distributed, epochs: int = 4, net_seed: int = 1, rows: int = 150, **kw):
    X, y, Xv, yv = _data()
    X, y = X[:rows], y[:rows]
    net = hg.MLP(3, [16, 8], 1, f="tanh", g="sigmoid", seed=net_seed, dtype=np.float64)
    _, cls, opts = next(r for r in RUNS if r[0] == name)
    history = fit(net, X, y, "bce", optimizer=cls(net, **opts), epochs=epochs, batch_size=32, seed=3,
                  validation_data=(Xv, yv), distributed=distributed, **kw)
    return net, history


def _save(path: str, net, history) -> None:
    np.savez(path + ".npz", **{k: np.asarray(v) for k, v in net.params.items()})
    with open(path + ".json", "w") as f:
        json.dump(history.to_dict() | {"epoch_seconds": []}, f)


def _load(path: str):
    with np.load(path + ".npz") as z:
        params = {k: z[k] for k in z.files}
    with open(path + ".json") as f:
        return params, json.load(f)


def _diverge(distributed) -> str:
    X, _, _, _ = _data()
    net = hg.MLP(3, [16], 1, seed=1, dtype=np.float64)
    with pytest.raises(hg.DivergenceError) as err:
        fit(net, X, X[:, :1] * 1e3, "mse", optimizer="sgd", lr=1.0, epochs=5, batch_size=32, distributed=distributed)
    return str(err.value)


def _rank_1_stops_at_epoch_3(epoch, logs):
    return os.environ["RANK"] == "1" and epoch == 3


def _equal_runs_worker(rank: int, world: int, out: str) -> None:
    """Each optimizer, then a checkpointed run stopped at epoch 2 and resumed to epoch 5."""
    for name, _, _ in RUNS:
        # rank 1 builds other initial weights: rank 0's broadcast must replace them
        net, history = _train(name, True, net_seed=1 + rank)
        if rank == 0:
            _save(os.path.join(out, name), net, history)
        else:  # every replica ends with rank 0's weights, bitwise
            _save(os.path.join(out, f"{name}-rank{rank}"), net, history)
    net, history = _train("adam", True, epochs=40, early_stopping=True, patience=2)
    _save(os.path.join(out, f"early-rank{rank}"), net, history)
    net, history = _train("sgd", True, epochs=6, callbacks=[_rank_1_stops_at_epoch_3])
    _save(os.path.join(out, f"callback-rank{rank}"), net, history)
    net, history = _train("adam", True, rows=129)  # the last batch has 1 row: rank 0's shard is empty
    if rank == 0:
        _save(os.path.join(out, "one-row-batch"), net, history)
    with open(os.path.join(out, f"diverged-rank{rank}.txt"), "w") as f:
        f.write(_diverge(True))
    ckpt = os.path.join(out, "run.ckpt")
    _train("adam", True, epochs=2, checkpoint=ckpt)
    net, history = _train("adam", True, epochs=5, checkpoint=ckpt, resume=ckpt)
    if rank == 0:
        _save(os.path.join(out, "resumed"), net, history)


def _dies_at_epoch_2(epoch, logs):
    if epoch == 2 and os.environ["RANK"] == "1":
        os._exit(3)  # a process that dies without a word


def _dies_worker(rank: int, world: int, port: int, out: str) -> None:
    """Joins the group without the launcher (which would stop rank 0), so rank 0's own error shows."""
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"})
    try:
        _train("sgd", True, epochs=50, callbacks=[_dies_at_epoch_2], checkpoint=os.path.join(out, "run.ckpt"))
    except DistributedError as exc:
        with open(os.path.join(out, f"rank{rank}.txt"), "w") as f:
            f.write(str(exc))


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("dist"))
    launch(_equal_runs_worker, 2, (out,), threads=1)
    return out


@pytest.mark.parametrize("name", [r[0] for r in RUNS])
def test_two_processes_train_to_the_weights_of_one(two_process_runs, name):
    params, history = _load(os.path.join(two_process_runs, name))
    net, ref = _train(name, False)
    assert set(params) == set(net.params)
    for k, v in net.params.items():
        np.testing.assert_allclose(params[k], v, rtol=1e-10, atol=1e-12, err_msg=f"{name}: {k}")
    for got, want in zip(history["records"], ref.records):
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), (name, key)
    # the replicas never drift: rank 1 holds rank 0's weights bitwise
    other, _ = _load(os.path.join(two_process_runs, f"{name}-rank1"))
    for k in params:
        assert np.array_equal(other[k], params[k]), k


def test_a_batch_with_fewer_rows_than_ranks_trains_as_in_one_process(two_process_runs):
    params, history = _load(os.path.join(two_process_runs, "one-row-batch"))
    net, ref = _train("adam", False, rows=129)
    for k, v in net.params.items():
        np.testing.assert_allclose(params[k], v, rtol=1e-10, atol=1e-12, err_msg=k)
    assert [r["loss"] for r in history["records"]] == pytest.approx(ref["loss"], rel=1e-9)


def test_early_stopping_stops_every_rank_where_one_process_stops(two_process_runs):
    net, ref = _train("adam", False, epochs=40, early_stopping=True, patience=2)
    assert ref.stopped_early and len(ref) < 40
    for rank in (0, 1):
        params, history = _load(os.path.join(two_process_runs, f"early-rank{rank}"))
        assert len(history["records"]) == len(ref) and history["best_epoch"] == ref.best_epoch
        assert history["stop_reason"] == ref.stop_reason
        for k, v in net.params.items():  # the best epoch's weights, restored on every rank
            np.testing.assert_allclose(params[k], v, rtol=1e-10, atol=1e-12, err_msg=k)


def test_a_stop_asked_by_one_rank_stops_all(two_process_runs):
    for rank in (0, 1):
        _, history = _load(os.path.join(two_process_runs, f"callback-rank{rank}"))
        assert len(history["records"]) == 3 and history["stopped_early"], rank
        assert "_rank_1_stops_at_epoch_3" in history["stop_reason"]


def test_divergence_stops_every_rank_at_the_step_one_process_stops(two_process_runs):
    messages = [open(os.path.join(two_process_runs, f"diverged-rank{r}.txt")).read() for r in (0, 1)]
    assert messages[0] == messages[1] == _diverge(False)
    assert "epoch 1/5, step 5/5" in messages[0]


def test_resumed_distributed_run_matches_an_uninterrupted_one(two_process_runs):
    params, history = _load(os.path.join(two_process_runs, "resumed"))
    net, ref = _train("adam", False, epochs=5)
    assert len(history["records"]) == 5
    for k, v in net.params.items():
        np.testing.assert_allclose(params[k], v, rtol=1e-10, atol=1e-12, err_msg=k)
    assert not any(n.endswith(".tmp") for n in os.listdir(two_process_runs))


@pytest.mark.slow  # two more spawned processes
def test_a_dead_process_ends_the_run_with_a_clear_error_and_the_checkpoint_resumes(tmp_path):
    import multiprocessing

    from handgrad.distributed import free_port

    ctx, port = multiprocessing.get_context("spawn"), free_port()
    procs = [ctx.Process(target=_dies_worker, args=(r, 2, port, str(tmp_path))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 3]
    message = (tmp_path / "rank0.txt").read_text()
    assert "rank 0/2: " in message and "another process died" in message, message
    assert "resume=" in message and "run.ckpt" in message, message
    # the checkpoint rank 0 wrote holds the last finished epoch and resumes in one process
    net, history = _train("sgd", False, epochs=3, resume=str(tmp_path / "run.ckpt"), checkpoint=None)
    ref, _ = _train("sgd", False, epochs=3)
    for k, v in ref.params.items():
        np.testing.assert_allclose(net.params[k], v, rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.slow  # two more spawned processes
def test_the_launcher_names_the_rank_that_died(tmp_path):
    with pytest.raises(DistributedError, match=r"rank 1 of 2 (died|failed)"):
        launch(_exits_worker, 2, (), threads=1)


def _exits_worker(rank: int, world: int) -> None:
    if rank == 1:
        raise SystemExit(5)


def test_shards_cover_each_batch_once():
    from handgrad.distributed import DataParallel

    idx = np.arange(11)
    parts = []
    for rank in range(3):
        dp = DataParallel.__new__(DataParallel)
        dp.rank, dp.world_size = rank, 3
        parts.append(dp.shard(idx))
    assert [len(p) for p in parts] == [3, 4, 4]
    assert np.array_equal(np.concatenate(parts), idx)


def test_distributed_without_a_launcher_says_what_is_missing(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(DistributedError, match="RANK"):
        _train("sgd", True, epochs=1)


def test_distributed_must_be_a_bool_or_a_dataparallel():
    with pytest.raises(TypeError, match="distributed must be"):
        _train("sgd", "yes", epochs=1)


# ====================================================================== handgrad train --nproc
@pytest.mark.slow  # spawns two processes that each train
def test_cli_nproc_2_trains_the_model_of_one_process(tmp_path, capsys):
    from handgrad.cli import main
    from handgrad.commands.common import METRICS_FILE, MODEL_FILE
    from handgrad.io import load_model

    common = ["train", "--data", "moons", "--epochs", "3", "--hidden", "8", "--batch-size", "16", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    assert main([*common, "--out", str(tmp_path / "two"), "--nproc", "2"]) == 0
    one, _ = load_model(str(tmp_path / "one" / MODEL_FILE))
    two, meta = load_model(str(tmp_path / "two" / MODEL_FILE))
    for k, v in one.params.items():  # float32 networks: float32 tolerance
        np.testing.assert_allclose(two.params[k], v, rtol=1e-4, atol=1e-5, err_msg=k)
    with open(tmp_path / "two" / METRICS_FILE) as f:
        assert json.load(f)["epochs"] == 3
    assert sorted(os.listdir(tmp_path / "two")) == sorted(os.listdir(tmp_path / "one"))


@pytest.mark.slow  # torchrun starts two processes
def test_the_train_command_runs_under_torchrun(tmp_path):
    import subprocess
    import sys

    from handgrad.commands.common import METRICS_FILE, MODEL_FILE
    from handgrad.distributed import free_port

    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(free_port()), "-m", "handgrad", "train", "--data", "moons", "--epochs", "2",
           "--hidden", "8", "--out", "run"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 2 epochs") == 1, done.stdout  # rank 0 alone prints
    assert (tmp_path / "run" / MODEL_FILE).is_file()
    with open(tmp_path / "run" / METRICS_FILE) as f:
        assert json.load(f)["epochs"] == 2


def test_cli_nproc_must_be_a_positive_count(capsys):
    from handgrad.cli import main

    assert main(["train", "--nproc", "0", "--epochs", "1"]) == 2
    assert "--nproc" in capsys.readouterr().err


def test_cli_nproc_without_torch_names_the_extra(monkeypatch, capsys):
    import sys

    from handgrad.cli import main

    monkeypatch.setitem(sys.modules, "torch.distributed", None)  # as if torch were not installed
    assert main(["train", "--nproc", "2", "--epochs", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert "pip install 'handgrad[distributed]'" in err and len(err.splitlines()) == 1, err


# ====================================================================== Dask: sweeps and grading
@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    # threads in this process: light, and the same code path a remote scheduler takes
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_and_randomized_search_run_on_dask(dask_client):
    from joblib import parallel_backend
    from sklearn.datasets import make_classification
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    from handgrad.sklearn import HandgradClassifier, HandgradRegressor

    rng = np.random.default_rng(0)
    X, y = make_classification(n_samples=120, n_features=4, random_state=0)
    grid = {"hidden_layer_sizes": [(4,), (8,)], "learning_rate_init": [1e-2, 3e-2]}
    base = HandgradClassifier(max_iter=15, random_state=0)
    local = GridSearchCV(base, grid, cv=3).fit(X, y)
    from distributed import get_task_stream

    with parallel_backend("dask"), get_task_stream(dask_client) as stream:
        on_dask = GridSearchCV(base, grid, cv=3, n_jobs=-1).fit(X, y)
    assert on_dask.best_params_ == local.best_params_
    np.testing.assert_allclose(on_dask.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])
    assert len(stream.data) >= 1  # the fits ran as tasks on the cluster's workers

    Xr = rng.normal(size=(90, 3))
    yr = Xr @ np.array([1.0, -2.0, 0.5])
    dist = {"alpha": [1e-4, 1e-3, 1e-2], "hidden_layer_sizes": [(4,), (6,)]}
    search = RandomizedSearchCV(HandgradRegressor(max_iter=10, random_state=0), dist, n_iter=3, cv=3, random_state=0)
    local_r = search.fit(Xr, yr).cv_results_["mean_test_score"]
    with parallel_backend("dask"):
        dask_r = RandomizedSearchCV(HandgradRegressor(max_iter=10, random_state=0), dist, n_iter=3, cv=3,
                                    random_state=0, n_jobs=-1).fit(Xr, yr).cv_results_["mean_test_score"]
    np.testing.assert_allclose(dask_r, local_r)


@pytest.mark.slow  # sandboxed subprocesses, one per submission, twice
def test_a_class_graded_on_dask_matches_local_grading(tmp_path, dask_client, capsys):
    import csv
    import sys

    from handgrad.cli import main

    gallery = str(os.path.join(os.path.dirname(__file__), "gallery"))
    sys.path.insert(0, gallery)
    try:
        from make_class import write_class
    finally:
        sys.path.remove(gallery)
    write_class(tmp_path / "class", 8)  # .py files, a zip and a folder
    address = dask_client.scheduler.address
    common = ["check", str(tmp_path / "class"), "--quick", "--jobs", "2"]
    assert main([*common, "--out", str(tmp_path / "local")]) == 0
    assert main([*common, "--out", str(tmp_path / "dask"), "--dask", address]) == 0
    read = lambda d: list(csv.DictReader(open(tmp_path / d / "gradebook.csv")))  # noqa: E731
    local, on_dask = read("local"), read("dask")
    assert len(local) == 8 and on_dask == local
    for name in os.listdir(tmp_path / "local" / "reports"):
        assert (tmp_path / "dask" / "reports" / name).read_text() == (tmp_path / "local" / "reports" / name).read_text()
    assert (tmp_path / "dask" / "summary.txt").read_text() == (tmp_path / "local" / "summary.txt").read_text()


def test_check_dask_without_dask_names_the_extra(tmp_path, monkeypatch, capsys):
    import sys

    from handgrad.cli import main

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if dask.distributed were not installed
    (tmp_path / "a.py").write_text("x = 1\n")
    assert main(["check", str(tmp_path / "a.py"), "--dask", "tcp://127.0.0.1:1", "--out", str(tmp_path / "g")]) == 1
    err = capsys.readouterr().err.strip()
    assert "pip install 'handgrad[distributed]'" in err and len(err.splitlines()) == 1, err


# ====================================================================== docs/scaling.md and the benchmark
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow  # spawns two processes
def test_the_scaling_page_python_example_runs(tmp_path):
    import re
    import subprocess
    import sys

    page = open(os.path.join(ROOT, "docs", "scaling.md"), encoding="utf-8").read()
    (block,) = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    (tmp_path / "train_dp.py").write_text(block)
    done = subprocess.run([sys.executable, "train_dp.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.fullmatch(r"2 processes: val_accuracy 0\.\d{3}\n", done.stdout), done.stdout
    assert (tmp_path / "dp.ckpt").is_file()


@pytest.mark.slow  # spawns processes and times them
def test_bench_distributed_prints_the_table_and_the_model(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_distributed.py"), "--quick",
                           "--nets", "small", "--no-torch"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "2 processes x 1 thread (gloo)" in out and "model of N machines" in out, out
    row = next(line for line in out.splitlines() if "(gloo)" in line)
    assert row.strip().split()[-2].endswith("%"), row  # the all-reduce's share was measured


# ====================================================================== one process, torch tensors
@pytest.fixture
def group_of_one(monkeypatch):
    import torch.distributed as dist

    from handgrad.distributed import free_port

    for k, v in {"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}.items():
        monkeypatch.setenv(k, v)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


@pytest.mark.parametrize("name", [r[0] for r in RUNS])
def test_a_torch_backend_network_trains_distributed_as_in_one_process(group_of_one, name):
    """The all-reduce path for torch tensors (the one NCCL takes on GPUs), on CPU tensors with gloo."""
    pytest.importorskip("torch")
    X, y, _, _ = _data()
    runs = []
    for distributed in (False, True):
        net = hg.MLP(3, [16, 8], 1, f="tanh", g="sigmoid", seed=1, dtype=np.float64).to("torch")
        _, cls, opts = next(r for r in RUNS if r[0] == name)
        fit(net, X, y, "bce", optimizer=cls(net, **opts), epochs=3, batch_size=32, seed=3, distributed=distributed)
        runs.append({k: v.numpy().copy() for k, v in net.params.items()})
    for k in runs[0]:
        np.testing.assert_allclose(runs[1][k], runs[0][k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_launch_under_a_launcher_runs_here_as_that_rank(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    seen = []
    launch(lambda rank, world, tag: seen.append((rank, world, tag)), 2, ("x",))
    assert seen == [(3, 4, "x")]


def test_check_dask_with_a_bad_address_names_it(tmp_path, capsys):
    pytest.importorskip("distributed")
    from handgrad.cli import main

    (tmp_path / "a.py").write_text("x = 1\n")
    assert main(["check", str(tmp_path / "a.py"), "--dask", "bogus://x", "--out", str(tmp_path / "g")]) == 1
    err = capsys.readouterr().err.strip()
    assert "cannot reach the Dask scheduler at 'bogus://x'" in err and len(err.splitlines()) == 1, err
