"""Model files and checkpoints: round trips, atomic writes, and every bad file refused (robustness 2.4, 2.5)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import re
import struct
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import handgrad as hg
from handgrad import io as hio
from handgrad.errors import ModelFileError
from handgrad.io import Checkpoint, load_checkpoint, load_model, read_metadata, save_checkpoint, save_model
from handgrad.train import predict


def _net(rng, dtype=np.float32, f="5relu", g="identity"):
    return hg.MLP(4, [8], 3, f=f, g=g, seed=rng, dtype=dtype)


def _saved(tmp_path, rng, name="model.safetensors", **kw):
    net = _net(rng, **kw)
    path = tmp_path / name
    save_model(path, net, {"task": "regression"})
    return net, path


def _sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _craft(path, arrays, arch, **doc_overrides):
    """Write a safetensors file with handgrad metadata around arbitrary arrays (checksums consistent)."""
    from safetensors.numpy import save

    doc = {"format": "handgrad", "format_version": 1, "kind": "model", "architecture": arch, "dtype": "float32",
           "metadata": {}, "arrays": {k: {"shape": list(a.shape), "dtype": a.dtype.name, "sha256": _sha(a)}
                                      for k, a in arrays.items()}}
    doc.update(doc_overrides)
    arrays = {k: np.ascontiguousarray(a) for k, a in arrays.items()}  # safetensors writes the memory order as is
    path.write_bytes(save(arrays, metadata={"handgrad": json.dumps(doc)}))
    return path


def _raw(path, header: dict, data: bytes):
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)
    return path


def _temps(directory: Path):
    return [p for p in directory.iterdir() if p.name.endswith(".tmp")]


# ====================================================================== round trips
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("f,g", [("5relu", "identity"), ("tanh", "sigmoid"), ("gelu", "softmax"), ("leaky_relu", "identity")])
def test_save_load_predict_bitwise(tmp_path, rng, dtype, f, g):
    net = _net(rng, dtype=dtype, f=f, g=g)
    X = rng.standard_normal((10, 4))
    meta = {"task": "classification", "class_labels": ["a", "b", "c"], "feature_names": list("wxyz"),
            "preprocessing": {"mean": np.arange(4.0), "std": np.ones(4)}}
    path = tmp_path / "model.safetensors"
    assert save_model(path, net, meta) == path
    loaded, meta2 = load_model(path)
    assert loaded.config() == net.config()
    for k, v in net.params.items():
        assert loaded.params[k].dtype == v.dtype
        np.testing.assert_array_equal(loaded.params[k], v)
    np.testing.assert_array_equal(predict(loaded, X), predict(net, X))
    assert meta2["class_labels"] == ["a", "b", "c"] and meta2["preprocessing"]["mean"] == [0.0, 1.0, 2.0, 3.0]


def test_file_is_plain_safetensors_with_float_arrays_only(tmp_path, rng):
    from safetensors.numpy import load

    net, path = _saved(tmp_path, rng)
    arrays = load(path.read_bytes())
    assert set(arrays) == {"W1", "b1", "W2", "b2"}
    assert all(a.dtype == np.float32 for a in arrays.values())
    doc = read_metadata(path)
    assert doc["format"] == "handgrad" and doc["format_version"] == hio.FORMAT_VERSION and doc["kind"] == "model"
    assert doc["arrays"]["W1"]["sha256"] == _sha(net.params["W1"])


def test_exact_path_without_suffix_and_overwrite(tmp_path, rng):
    net = _net(rng)
    path = tmp_path / "model"  # no suffix: written exactly here (np.savez would append .npz)
    save_model(path, net)
    assert path.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    other = _net(rng)
    save_model(path, other)  # documented: overwrites atomically
    np.testing.assert_array_equal(load_model(path)[0].params["W1"], other.params["W1"])


def test_torch_backend_net_round_trip(tmp_path, rng):
    pytest.importorskip("torch")
    net = _net(rng, dtype=np.float64).to("torch")
    path = tmp_path / "m.safetensors"
    save_model(path, net)
    loaded, _ = load_model(path, backend="torch")
    assert loaded.backend.name == "torch"
    for k, v in net.params.items():
        np.testing.assert_array_equal(loaded.params[k].numpy(), v.numpy())


def test_save_refuses_non_finite_weights_and_non_json_metadata(tmp_path, rng):
    net = _net(rng)
    with pytest.raises(ValueError, match="plain JSON data"):
        save_model(tmp_path / "m", net, {"f": object()})
    with pytest.raises(ValueError, match="plain JSON data"):
        save_model(tmp_path / "m", net, {"x": float("nan")})
    net.params["W2"][0, 0] = np.inf
    with pytest.raises(ValueError, match=r"non-finite.*'W2'|'W2'.*non-finite"):
        save_model(tmp_path / "m", net)
    assert not list(tmp_path.iterdir())


# ====================================================================== F1-F10: bad model files
def test_F3_empty_file(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty.safetensors: file is empty"):
        load_model(path)


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.99])
def test_F1_truncated_file(tmp_path, rng, cut):
    _, path = _saved(tmp_path, rng)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        load_model(path)


def test_F1_cut_inside_length_prefix(tmp_path, rng):
    _, path = _saved(tmp_path, rng)
    path.write_bytes(path.read_bytes()[:5])
    with pytest.raises(ModelFileError, match="only 5 bytes"):
        load_model(path)


def test_F2_flipped_payload_byte_caught_by_checksum(tmp_path, rng):
    _, path = _saved(tmp_path, rng)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum mismatch for array 'b2'"):
        load_model(path)


@pytest.mark.parametrize("content,reason", [
    (b"hello, this is a text file\n" * 4, "not a handgrad model file"),
    (bytes(range(256)) * 4, "not a handgrad model file"),
    (b"\x93NUMPY\x01\x00" + b"x" * 100, "NumPy .npy"),
])
def test_F4_not_a_handgrad_file(tmp_path, content, reason):
    path = tmp_path / "x.bin"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=reason):
        load_model(path)


def test_F4_npz_and_foreign_safetensors_refused(tmp_path, rng):
    from safetensors.numpy import save

    npz = tmp_path / "w.npz"
    np.savez(npz, W1=np.zeros((8, 4)))
    with pytest.raises(ModelFileError, match="zip archive"):
        load_model(npz)
    st = tmp_path / "foreign.safetensors"
    st.write_bytes(save({"W1": np.zeros((8, 4), np.float32)}))
    with pytest.raises(ModelFileError, match="without handgrad metadata"):
        load_model(st)


class _Payload:
    """Unpickling this would create the marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_F5_pickle_payload_refused_and_never_run(tmp_path):
    marker = tmp_path / "PWNED"
    pkl = tmp_path / "model.safetensors"
    pkl.write_bytes(pickle.dumps({"W1": _Payload(str(marker))}))
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(pkl)
    npz = tmp_path / "obj.npz"
    np.savez(npz, W1=np.array([_Payload(str(marker))], dtype=object))
    with pytest.raises(ModelFileError):
        load_model(npz)
    assert not marker.exists()
    pickle.loads(pkl.read_bytes())  # the control: unpickling does run it
    assert marker.exists()


def test_F6_oversized_header_refused(tmp_path):
    path = tmp_path / "big.safetensors"
    path.write_bytes(struct.pack("<Q", 10**10) + b"{}")
    with pytest.raises(ModelFileError, match="header claims 10000000000 bytes"):
        load_model(path)
    path.write_bytes(struct.pack("<Q", hio.MAX_HEADER_BYTES + 1) + b" " * (hio.MAX_HEADER_BYTES + 1))
    with pytest.raises(ModelFileError, match="limit"):
        load_model(path)


def test_F7_gigantic_shape_refused_before_allocation(tmp_path, rng):
    net = _net(rng)
    arch = net.config()
    doc = {"format": "handgrad", "format_version": 1, "kind": "model", "architecture": arch,
           "arrays": {"W1": {"shape": [100000, 100000], "dtype": "float32", "sha256": "0"}}}
    header = {"__metadata__": {"handgrad": json.dumps(doc)},
              "W1": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 4 * 10**10]}}
    path = _raw(tmp_path / "huge.safetensors", header, b"\0" * 128)
    tracemalloc.start()
    with pytest.raises(ModelFileError, match="corrupt or truncated: array 'W1' of shape"):
        load_model(path)
    # an architecture claiming huge layers, with small consistent weights: shapes compared before building
    big = {"type": "Sequential", "layers": [{"type": "Linear", "in_features": 100000, "out_features": 100000}]}
    _craft(tmp_path / "arch.safetensors", {"W1": np.zeros((2, 2), np.float32), "b1": np.zeros(2, np.float32)}, big)
    with pytest.raises(ModelFileError, match=r"'W1': expected shape \(100000, 100000\), found \(2, 2\)"):
        load_model(tmp_path / "arch.safetensors")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 1024 * 1024


def test_F8_wrong_architecture_lists_every_mismatch(tmp_path, rng):
    net = _net(rng)
    arch = net.config()
    arch["layers"][0]["out_features"] = 16
    arch["layers"][2]["in_features"] = 16
    arrays = {k: np.array(v) for k, v in net.params.items()}
    arrays["extra"] = np.zeros(3, np.float32)
    del arrays["b2"]
    _craft(tmp_path / "m", arrays, arch)
    with pytest.raises(ModelFileError) as info:
        load_model(tmp_path / "m")
    msg = str(info.value)
    for part in ["'W1': expected shape (16, 4), found (8, 4)", "'b1': expected shape (16,), found (8,)",
                 "'W2': expected shape (3, 16), found (3, 8)", "missing keys ['b2']", "unexpected keys ['extra']"]:
        assert part in msg, msg


def test_F9_non_finite_weights_refused(tmp_path, rng):
    net = _net(rng)
    arrays = {k: np.array(v) for k, v in net.params.items()}
    arrays["W2"][0, :2] = [np.nan, np.inf]
    _craft(tmp_path / "m", arrays, net.config())
    with pytest.raises(ModelFileError, match=r"non-finite values in 'W2' \(2 entries\)"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.bool_, np.int64])
def test_F10_bad_dtypes_refused(tmp_path, rng, dtype):
    net = _net(rng)
    arrays = {k: np.array(v).astype(dtype) for k, v in net.params.items()}
    _craft(tmp_path / "m", arrays, net.config())
    with pytest.raises(ModelFileError, match="has dtype '.*'; handgrad files hold float32"):
        load_model(tmp_path / "m")


def test_F10_newer_format_version_refused(tmp_path, rng):
    net = _net(rng)
    arrays = {k: np.array(v) for k, v in net.params.items()}
    _craft(tmp_path / "m", arrays, net.config(), format_version=99)
    with pytest.raises(ModelFileError, match="format version 99 is newer"):
        load_model(tmp_path / "m")


def test_unknown_layer_type_in_architecture_is_refused(tmp_path, rng):
    net = _net(rng)
    arch = net.config()
    arch["layers"][1] = {"type": "os.system", "command": "echo hi"}
    _craft(tmp_path / "m", {k: np.array(v) for k, v in net.params.items()}, arch)
    with pytest.raises(ModelFileError, match="bad architecture: unknown layer type 'os.system'"):
        load_model(tmp_path / "m")


def test_checkpoint_is_not_a_model(tmp_path, rng):
    net = _net(rng)
    save_checkpoint(tmp_path / "c", Checkpoint(net=net, epoch=1))
    with pytest.raises(ModelFileError, match="is a handgrad 'checkpoint' file, expected a 'model' file"):
        load_model(tmp_path / "c")


# ====================================================================== F18-F20: paths
def test_F18_directory_paths(tmp_path, rng):
    with pytest.raises(ModelFileError, match="is a directory"):
        load_model(tmp_path)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        save_model(tmp_path, _net(rng))
    assert list(tmp_path.iterdir()) == []  # no surprise sibling file


def test_F19_missing_paths(tmp_path, rng):
    with pytest.raises(ModelFileError, match=r"nope.safetensors: no such file"):
        load_model(tmp_path / "nope.safetensors")
    with pytest.raises(FileNotFoundError, match="parent directory does not exist") as info:
        save_model(tmp_path / "missing" / "m.safetensors", _net(rng))
    assert info.value.errno == errno.ENOENT and "missing" in str(info.value)
    assert not (tmp_path / "missing").exists()


def test_F19_permission_denied(tmp_path, rng, monkeypatch):
    _, path = _saved(tmp_path, rng)
    path.chmod(0)
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # root ignores permissions: simulate the refusal

        def denied(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(hio, "open", denied, raising=False)
    try:
        with pytest.raises(ModelFileError, match=r"cannot be read \(Permission denied, errno 13\)"):
            load_model(path)
    finally:
        path.chmod(0o644)


def test_type_of_path_checked(rng):
    with pytest.raises(TypeError, match="path must be"):
        save_model(3, _net(rng))
    with pytest.raises(TypeError, match="path must be"):
        load_model(None)


# ====================================================================== T4-T6, T9: atomic writes
def _failing_write(exc):
    def write(f, data):
        f.write(data[: len(data) // 2])
        raise exc
    return write


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left on device")])
def test_T4_T5_failure_during_save_keeps_the_old_file(tmp_path, rng, monkeypatch, exc):
    _, path = _saved(tmp_path, rng)
    before = path.read_bytes()
    monkeypatch.setattr(hio, "_write_all", _failing_write(exc))
    with pytest.raises(type(exc)) as info:
        save_model(path, _net(rng))
    if isinstance(exc, OSError):
        assert info.value.errno == errno.ENOSPC and str(path) in str(info.value)
    assert path.read_bytes() == before
    assert _temps(tmp_path) == []


def test_T4_failure_during_first_save_leaves_nothing(tmp_path, rng, monkeypatch):
    monkeypatch.setattr(hio, "_write_all", _failing_write(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        save_model(tmp_path / "m", _net(rng))
    assert list(tmp_path.iterdir()) == []


def test_failure_in_fsync_or_replace_also_cleans_up(tmp_path, rng, monkeypatch):
    _, path = _saved(tmp_path, rng)
    before = path.read_bytes()

    def bad_replace(a, b):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(hio.os, "replace", bad_replace)
    with pytest.raises(OSError, match="I/O error"):
        save_model(path, _net(rng))
    assert path.read_bytes() == before and _temps(tmp_path) == []


def test_T6_stale_temp_files_removed_at_next_save(tmp_path, rng):
    stale = tmp_path / ".model.safetensors.abc123.tmp"
    fresh = tmp_path / ".model.safetensors.def456.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"in progress")
    old = time.time() - 2 * hio.STALE_TEMP_SECONDS
    os.utime(stale, (old, old))
    _saved(tmp_path, rng)
    assert not stale.exists() and fresh.exists()


def test_T9_concurrent_writers_never_interleave(tmp_path, rng):
    path = tmp_path / "m.safetensors"
    nets = [_net(np.random.default_rng(i)) for i in range(4)]
    errors = []

    def writer(net):
        try:
            for _ in range(5):
                save_model(path, net)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in nets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    loaded, _ = load_model(path)
    assert any(np.array_equal(loaded.params["W1"], n.params["W1"]) for n in nets)
    assert _temps(tmp_path) == []


# ====================================================================== corruption fuzz (property 23)
def test_corruption_fuzz_only_model_file_errors_or_good_weights(tmp_path, rng):
    net, path = _saved(tmp_path, rng)
    good = path.read_bytes()
    shapes = {k: v.shape for k, v in net.params.items()}
    target = tmp_path / "fuzz.safetensors"
    outcomes = {"refused": 0, "loaded": 0}
    for trial in range(300):
        data = bytearray(good)
        kind = trial % 3
        if kind == 0:
            data = data[: int(rng.integers(0, len(good)))]
        else:
            for _ in range(int(rng.integers(1, 4))):
                data[int(rng.integers(0, len(data)))] ^= int(rng.integers(1, 256))
        target.write_bytes(bytes(data))
        try:
            loaded, _ = load_model(target)
        except ModelFileError:
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        for k, v in loaded.params.items():
            assert v.shape == shapes[k] and np.isfinite(v).all()
    assert outcomes["refused"] > 200


# ====================================================================== checkpoints
def test_checkpoint_round_trip(tmp_path, rng):
    from handgrad.optim import Adam

    net = _net(rng)
    opt = Adam(net, lr=0.01)
    for _, layer, _, g in net.parameter_slots():
        layer.grads[g][...] = rng.standard_normal(layer.grads[g].shape)
    opt.step()
    gen = np.random.default_rng(5)
    gen.random(3)
    best = {k: np.array(v) * 2 for k, v in net.params.items()}
    ckpt = Checkpoint(net=net, epoch=7, optimizer_state=opt.state_dict(), rng_state=gen.bit_generator.state,
                      history={"records": [{"epoch": 1, "loss": 0.5}]}, hyperparameters={"batch_size": 32},
                      best_params=best, state={"wait": 2}, metadata={"note": "x"})
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, ckpt)
    back = load_checkpoint(path)
    assert back.epoch == 7 and back.state == {"wait": 2} and back.hyperparameters == {"batch_size": 32}
    assert back.history["records"][0]["loss"] == 0.5 and back.metadata == {"note": "x"}
    for k, v in net.params.items():
        np.testing.assert_array_equal(back.net.params[k], v)
        np.testing.assert_array_equal(back.best_params[k], best[k])
    g2 = np.random.default_rng()
    g2.bit_generator.state = back.rng_state
    assert g2.random() == gen.random()
    opt2 = Adam(back.net, lr=0.01)
    opt2.load_state_dict(back.optimizer_state)
    assert opt2.t == 1
    for key, arr in opt.state_dict()["buffers"].items():
        np.testing.assert_array_equal(back.optimizer_state["buffers"][key], arr)


def test_checkpoint_with_mismatched_buffer_refused(tmp_path, rng):
    net = _net(rng)
    path = tmp_path / "c"
    state = {"type": "sgd", "hyperparameters": {"lr": 0.1, "momentum": 0.9}, "t": 1,
             "buffers": {"velocity.W1": np.zeros((5, 5), np.float32)}}
    save_checkpoint(path, Checkpoint(net=net, epoch=1, optimizer_state=state))
    with pytest.raises(ModelFileError, match=r"'optimizer.velocity.W1' of shape \(5, 5\) matches no parameter"):
        load_checkpoint(path)
    with pytest.raises(ModelFileError, match="no such file"):
        load_checkpoint(tmp_path / "absent")


def test_files_are_standard_safetensors_written_without_the_library(tmp_path):
    """handgrad writes the safetensors layout itself; the reference library reads it back."""
    st = pytest.importorskip("safetensors.numpy")
    net = hg.MLP(3, [4], 2, seed=0)
    path = tmp_path / "m.safetensors"
    save_model(path, net, {"task": "regression"})
    arrays = st.load_file(str(path))
    assert set(arrays) == {"W1", "b1", "W2", "b2"}
    for k, v in arrays.items():
        np.testing.assert_array_equal(v, net.params[k])
    assert (len(path.read_bytes()) - 8) % 4 == 0


# ====================================================================== the metadata under the checksum, and its schema
FIXTURES = Path(__file__).parent / "fixtures"


def _edit_doc(src, dst, edit, *, keep_digest=True):
    """Rewrite the handgrad JSON document of ``src`` into ``dst`` (the arrays untouched)."""
    data = Path(src).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    doc = json.loads(header["__metadata__"]["handgrad"])
    edit(doc)
    if keep_digest and doc.get("format_version", 1) >= 2:
        doc["doc_sha256"] = hio._doc_digest(doc)
    header["__metadata__"]["handgrad"] = json.dumps(doc)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    Path(dst).write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n:])
    return dst


@pytest.mark.parametrize("name", ["model_format1_classifier", "model_format1_regressor"])
def test_model_files_of_format_1_still_load(name):
    from handgrad.inference import load_predictor

    model = load_predictor(FIXTURES / f"{name}.safetensors")
    X = np.array([[0.0, 1.0], [1.0, 1.0]])
    assert model.predict(X).shape[0] == 2
    assert read_metadata(FIXTURES / f"{name}.safetensors")["format_version"] == 1


def test_checkpoint_of_format_1_still_loads():
    assert load_checkpoint(FIXTURES / "checkpoint_format1.safetensors").epoch == 2


def test_one_bit_flip_in_the_metadata_is_caught_by_the_checksum(tmp_path):
    from handgrad.inference import load_predictor

    path = tmp_path / "m.safetensors"
    load_predictor(FIXTURES / "model_format1_classifier.safetensors").save(path)
    assert read_metadata(path)["format_version"] == hio.FORMAT_VERSION == 2

    def flip_mean(doc):
        doc["metadata"]["preprocessing"]["x"]["mean"][0] += 1e-3

    for edit in (flip_mean, lambda doc: doc["metadata"].__setitem__("class_labels", [1, 0])):
        _edit_doc(path, tmp_path / "t.safetensors", edit, keep_digest=False)
        with pytest.raises(ModelFileError, match=r"t\.safetensors: is corrupt: checksum mismatch for the metadata"):
            load_model(tmp_path / "t.safetensors")


@pytest.mark.parametrize("edit, field, fact", [
    (lambda m: m.__setitem__("class_labels", [0, 1, 2]), "class_labels", "3 entries, but the network needs 2"),
    (lambda m: m.__setitem__("task", "banana"), "task", "unknown value"),
    (lambda m: m.__setitem__("task", "regression"), "output", "does not fit task"),
    (lambda m: m.__setitem__("feature_names", ["a", "a"]), "feature_names", "repeat"),
    (lambda m: m.__setitem__("feature_names", "ab"), "feature_names", "wrong type"),
    (lambda m: m["preprocessing"]["x"].__setitem__("scale", [1.0, -1.0]), "preprocessing.x", "positive"),
    (lambda m: m.__setitem__("loss", 3), "loss", "not a name"),
    (lambda m: m.__setitem__("g", "rleu"), "g", "unknown activation"),
    (lambda m: m.__setitem__("epochs_run", -1), "epochs_run", "out of range"),
    (lambda m: m.__setitem__("split", {"seed": 0, "val_fraction": 1.5, "test_fraction": 0.2, "rule": "r"}),
     "split.val_fraction", r"got 1\.5"),
    (lambda m: m.__setitem__("split", [0.2, 0.2]), "split", "wrong type"),
    (lambda m: m.__setitem__("categories", {"colour": ["red", "red"]}), "categories", "repeat"),
    (lambda m: m.__setitem__("categories", {"colour": "red"}), "categories", "wrong type"),
])
def test_hand_edited_metadata_is_refused_naming_file_and_field(tmp_path, edit, field, fact):
    src = FIXTURES / "model_format1_classifier.safetensors"
    path = _edit_doc(src, tmp_path / "edited.safetensors", lambda doc: edit(doc["metadata"]))
    with pytest.raises(ModelFileError, match=rf"edited\.safetensors: metadata field '{field}'.*{fact}"):
        load_model(path)


def test_save_refuses_metadata_that_load_would_refuse(tmp_path, rng):
    net = _net(rng)  # 3 outputs
    with pytest.raises(ValueError, match=r"metadata field 'class_labels'.*2 entries, but the network needs 3"):
        save_model(tmp_path / "m.safetensors", net, {"task": "classification", "class_labels": ["a", "b"]})
    save_model(tmp_path / "m.safetensors", net, {"task": "regression", "anything_else": [1, 2]})  # unknown keys pass


@pytest.mark.parametrize("edit, field", [
    (lambda c: c.__setitem__("epoch", 10**30), "epoch"),
    (lambda c: c.__setitem__("epoch", "3"), "epoch"),
    (lambda c: c.__setitem__("rng_state", [1, 2]), "rng_state"),
    (lambda c: c.__setitem__("rng_state", {"bit_generator": "os.system", "state": {}}), "rng_state"),
    (lambda c: c["optimizer"].__setitem__("t", "x"), "optimizer.t"),
    (lambda c: c["optimizer"].__setitem__("t", -1), "optimizer.t"),
    (lambda c: c["state"].__setitem__("best_value", "abc"), "state.best_value"),
    (lambda c: c["state"].__setitem__("wait", 1.5), "state.wait"),
    (lambda c: c.__setitem__("history", {"records": 5}), "history"),
])
def test_tampered_checkpoint_records_name_file_and_field(tmp_path, edit, field):
    src = FIXTURES / "checkpoint_format1.safetensors"
    path = _edit_doc(src, tmp_path / "ck.safetensors", lambda doc: edit(doc["checkpoint"]))
    with pytest.raises(ModelFileError, match=rf"ck\.safetensors: checkpoint record field '{re.escape(field)}'"):
        load_checkpoint(path)


def test_an_unknown_loss_name_is_refused_by_the_predictor_naming_the_file(tmp_path):
    from handgrad.inference import load_predictor

    path = _edit_doc(FIXTURES / "model_format1_classifier.safetensors", tmp_path / "l.safetensors",
                     lambda doc: doc["metadata"].__setitem__("loss", "hinge"))
    with pytest.raises(ModelFileError, match=r"l\.safetensors: metadata field 'loss': unknown loss 'hinge'"):
        load_predictor(path)


def test_library_save_never_replaces_a_device_or_follows_a_link(tmp_path, rng):
    import os

    net = _net(rng)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for node in ("/dev/null", fifo):
        with pytest.raises(ValueError, match="not a regular file"):
            save_model(node, net)
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"keep")
    link = tmp_path / "m.safetensors"
    link.symlink_to(outside)
    save_model(link, net)  # the link itself is replaced by the file
    assert outside.read_bytes() == b"keep" and link.is_file() and not link.is_symlink()
