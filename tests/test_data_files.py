"""Data from files: CSV and NPZ round trips and errors; MNIST/Fashion-MNIST IDX files and
CIFAR-10 python batches written here in their real on-disk formats."""

from __future__ import annotations

import gzip
import json
import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose, train
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from dlrun.config import validate
from dlrun.errors import UserError


def load(*overrides: str, seed: int = 0):
    """The dataset `dlrun <overrides>` would train on; a UserError comes out as the CLI shows it."""
    cfg = compose(*overrides)
    validate(cfg)
    try:
        return instantiate(cfg.data, seed=seed)
    except InstantiationException as error:
        if isinstance(error.__cause__, UserError):
            raise error.__cause__ from None
        raise


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# --- CSV -----------------------------------------------------------------------------


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def table(tmp_path) -> tuple[Path, np.ndarray, np.ndarray]:
    """60 rows: two features, a 3-class label in the middle column, a regression target last."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2)).round(4)
    label = np.arange(60) % 3
    target = (x[:, 0] * 2 + 1).round(4)
    rows = [[x[i, 0], label[i], x[i, 1], target[i]] for i in range(60)]
    return write_csv(tmp_path / "table.csv", ["a", "label", "b", "price"], rows), x, label


def test_csv_round_trip(table):
    path, x, label = table
    data = load("data=csv", f"data.path={path}", "data.target=label", "data.task=multiclass")
    assert data.task == "multiclass" and data.n_classes == 3 and data.input_shape == (3,)
    assert sum(len(data.split(s)[1]) for s in ("train", "val", "test")) == 60
    labels = torch.cat([data.split(s)[1] for s in ("train", "val", "test")])
    assert sorted(labels.tolist()) == sorted(label.tolist())
    # the default target is the last column; regression: a linear function of column a
    reg = load("data=csv", f"data.path={path}", "data.task=regression")
    assert reg.task == "regression" and reg.input_shape == (3,) and reg.y_train.shape[1] == 1
    a = reg.x_train[:, 0].double().numpy()
    assert abs(np.corrcoef(a, reg.y_train[:, 0].double().numpy())[0, 1]) > 0.9999
    shifted = load(
        "data=csv", f"data.path={path}", "data.task=regression", "data.test_shift=offset"
    )
    assert torch.equal(shifted.x_val, reg.x_val) and not torch.equal(shifted.x_test, reg.x_test)


def test_csv_with_another_delimiter_and_binary_task(tmp_path):
    rows = [[i / 10, i % 2] for i in range(40)]
    path = tmp_path / "semi.csv"
    path.write_text("x;y\n" + "\n".join(f"{a};{b}" for a, b in rows) + "\n\n")
    data = load("data=csv", f"data.path={path}", "data.delimiter=';'", "data.task=binary")
    assert data.task == "binary" and data.out_features == 1 and data.input_shape == (1,)


@pytest.mark.parametrize(("target", "task", "said"), [
    ("label", "multiclass", "data.task=multiclass (inferred from table.csv's column 'label': labels 0, 1, 2)"),
    ("price", "regression", "data.task=regression (inferred from table.csv's column 'price': 60 distinct values)"),
    ("odd", "binary", "data.task=binary (inferred from table.csv's column 'odd': labels 0, 1)"),
])
def test_csv_task_is_inferred_from_the_target(table, capsys, target, task, said):
    """Problem 10: the target column makes the task obvious, said in one line; data.task wins."""
    path, _, label = table
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",odd", *(f"{line},{i % 2}" for i, line in
                                                     enumerate(lines[1:]))]) + "\n")
    data = load("data=csv", f"data.path={path}", f"data.target={target}", "data.task=null")
    assert data.task == task
    assert capsys.readouterr().err.strip() == f"dlrun: {said}; set data.task=regression|binary|multiclass to choose"
    forced = load("data=csv", f"data.path={path}", f"data.target={target}", "data.task=regression")
    assert forced.task == "regression" and capsys.readouterr().err == ""


def test_npz_task_is_inferred(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    np.savez(tmp_path / "arrays.npz", x=x, y=np.arange(40) % 4)
    data = load("data=npz", f"data.path={tmp_path / 'arrays.npz'}", "data.task=null")
    assert data.task == "multiclass" and data.n_classes == 4
    assert "data.task=multiclass (inferred from arrays.npz's 'y'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("edit", "overrides", "message"),
    [
        (None, ["data.path=nowhere.csv"], r"data.path=nowhere.csv: no such file \(.*nowhere.csv\)"),
        (None, ["data.path=null"], "data=csv needs a file: add data.path="),
        (
            None,
            ["data.target=prise"],
            "data.target=prise is not a column of .*; did you mean data.target=price",
        ),
        (
            None,
            ["data.target=zzz"],
            "data.target=zzz is not a column of .*columns: a, label, b, price",
        ),
        (
            None,
            ["data.target=label", "data.task=binary"],
            r"lines 4, 7, 10, 13, 16 and 15 more hold labels outside the class range \(2\); data.task=binary needs 0 or 1",
        ),
        (
            None,
            ["data.target=label", "data.task=multiclass", "data.n_classes=2"],
            r"labels outside the class range \(2\); data.task=multiclass needs integers 0..1",
        ),
        (None, ["data.target=a", "data.task=multiclass"], "labels outside the class range"),
        ({5: [1.0, 0, 1.0, ""]}, [], r"target column 'price' is empty or not a number on lines 7;"),
        ({5: [1.0, 0, 1.0, "cheap"], 9: [1, 0, 1, "?"]}, [], "not a number on lines 7, 11;"),
        (
            {3: [1.0, 0, "nan", 1.0], 8: [float("inf"), 0, 1, 1]},
            [],
            "lines 5, 10 hold NaN or infinite features",
        ),
        ({3: ["red", 0, 1.0, 1.0]}, [], "column 'a' holds 'red' on line 5, not a number"),
        ({3: [1.0, 0, 1.0]}, [], "line 5 has 3 fields but the header has 4"),
    ],
)
def test_csv_errors_are_one_line(table, edit, overrides, message):
    path, _, _ = table
    if edit is not None:
        lines = path.read_text().splitlines()
        for row, values in edit.items():
            lines[row + 1] = ",".join(str(v) for v in values)
        path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError) as error:
        load("data=csv", f"data.path={path}", "data.task=regression", *overrides)
    assert re.search(message, one_line(error)), str(error.value)


def test_csv_with_fewer_rows_than_the_splits_need(tmp_path):
    path = write_csv(tmp_path / "tiny.csv", ["x", "y"], [[1, 0.5], [2, 0.7]])
    with pytest.raises(
        UserError, match="tiny has 1 examples, too few to hold out a fraction of 0.2"
    ):
        load("data=csv", f"data.path={path}", "data.task=regression")
    header_only = tmp_path / "empty.csv"
    header_only.write_text("x,y\n")
    with pytest.raises(UserError, match="has no data rows under a header line"):
        load("data=csv", f"data.path={header_only}", "data.task=regression")


# --- NPZ -----------------------------------------------------------------------------


def test_npz_round_trip_with_and_without_its_own_test_split(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(100, 5, 3)).astype(np.float32), np.arange(100) % 4
    np.savez(tmp_path / "seq.npz", x=x, y=y)
    data = load(
        "data=npz",
        f"data.path={tmp_path / 'seq.npz'}",
        "data.task=multiclass",
        "data.standardize=last",
    )
    assert data.input_shape == (5, 3) and data.n_classes == 4
    assert sum(len(data.split(s)[0]) for s in ("train", "val", "test")) == 100
    assert data.x_train.reshape(-1, 3).mean(0).abs().max() < 1e-5  # per feature over steps
    np.savez(tmp_path / "own.npz", x=x, y=y, x_test=x[:7] + 100, y_test=y[:7])
    own = load(
        "data=npz",
        f"data.path={tmp_path / 'own.npz'}",
        "data.task=multiclass",
        "data.standardize=null",
    )
    assert torch.equal(own.x_test, torch.from_numpy(x[:7] + 100))
    assert len(own.x_train) + len(own.x_val) == 100
    np.savez(tmp_path / "reg.npz", x=x[:, 0], y=x[:, 1, :2])  # two regression targets
    reg = load("data=npz", f"data.path={tmp_path / 'reg.npz'}", "data.task=regression")
    assert reg.out_features == 2 and reg.input_shape == (3,)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"x": np.array([{"a": 1}] * 20, dtype=object), "y": np.zeros(20)},
            "cannot be read as an .npz of numeric arrays",
        ),
        (
            {"inputs": np.zeros((20, 2)), "y": np.zeros(20)},
            "holds arrays inputs, y; it needs 'x' and 'y'",
        ),
        ({"x": np.zeros((20, 2)), "y": np.zeros(19)}, "'x' has 20 rows but 'y' has 19"),
        (
            {"x": np.where(np.arange(40).reshape(20, 2) == 13, np.nan, 0.0), "y": np.zeros(20)},
            "'x' rows 6 hold NaN or infinite features",
        ),
        ({"x": np.zeros((20, 2)), "y": np.arange(20) - 1.0}, "'y' rows 0 hold labels outside"),
        ({"x": np.array(["a"] * 20), "y": np.zeros(20)}, "'x' has dtype <U1"),
    ],
)
def test_npz_errors_are_one_line(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(UserError) as error:
        load("data=npz", f"data.path={path}", "data.task=multiclass")
    assert message in one_line(error)


def test_npz_never_unpickles(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.array([{"a": 1}] * 20, dtype=object), y=np.zeros(20))
    with pytest.raises(UserError, match="allow_pickle=False"):
        load("data=npz", f"data.path={path}", "data.task=regression")


def test_own_files_train_end_to_end(table, tmp_path, run_dir):
    path, _, _ = table
    train(
        run_dir,
        "data=csv",
        f"data.path={path}",
        "data.target=label",
        "data.task=multiclass",
        "model=mlp",
        "trainer.checkpoint=false",
        "diagnose=off",
    )
    row = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 <= row["test_acc"] <= 1
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(80, 3)), y=rng.normal(size=80))
    other = tmp_path / "run2"
    train(
        other,
        "data=npz",
        f"data.path={tmp_path / 'd.npz'}",
        "data.task=regression",
        "model=mlp",
        "trainer.checkpoint=false",
        "diagnose=off",
    )
    assert "test_mae" in json.loads((other / "metrics.jsonl").read_text().splitlines()[-1])


# --- MNIST / Fashion-MNIST: IDX files in <root>/<Class>/raw ----------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX format: 0, 0, type 0x08 (unsigned byte), rank, big-endian sizes, then the data."""
    return (
        bytes([0, 0, 0x08, array.ndim])
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.tobytes()
    )


def write_mnist(root: Path, folder: str, n_train: int = 50, n_test: int = 20, gz: bool = False):
    """Tiny MNIST-format files; image i is filled with its label so the pairs can be checked."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = np.repeat(labels * 20, 28 * 28).reshape(n, 28, 28).astype(np.uint8)
        images[:, 0, 0] = 255  # not constant: standardization has something to do
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                with gzip.open(raw / f"{name}.gz", "wb") as f:
                    f.write(idx_bytes(array))
            else:
                (raw / name).write_bytes(idx_bytes(array))
    return raw


@pytest.mark.parametrize(
    ("name", "folder", "gz"), [("mnist", "MNIST", False), ("fashion_mnist", "FashionMNIST", True)]
)
def test_idx_loaders_read_the_real_layout(tmp_path, name, folder, gz):
    write_mnist(tmp_path, folder, gz=gz)
    data = load(f"data={name}", f"data.root={tmp_path}")
    assert data.input_shape == (1, 28, 28) and data.n_classes == 10 and data.task == "multiclass"
    assert len(data.x_test) == 20 and len(data.x_train) + len(data.x_val) == 50
    for split in ("train", "val", "test"):
        x, y = data.split(split)
        # the pixel at (5, 5) encodes the label; standardized, it is still ordered by label
        order = torch.argsort(y)
        assert (x[order, 0, 5, 5].diff() >= -1e-5).all()
    rotated = load(f"data={name}", f"data.root={tmp_path}", "data.test_shift=rotate")
    assert torch.equal(rotated.x_val, data.x_val) and not torch.equal(rotated.x_test, data.x_test)


def test_missing_image_files_say_where_and_how(tmp_path):
    with pytest.raises(UserError) as error:
        load("data=mnist", f"data.root={tmp_path / 'nothing'}")
    message = one_line(error)
    assert str(tmp_path / "nothing" / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "data.download=true" in message
    raw = write_mnist(tmp_path, "FashionMNIST")
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(
        UserError, match=r"no t10k-labels-idx1-ubyte in .*FashionMNIST/raw \(plain or .gz\)"
    ):
        load("data=fashion_mnist", f"data.root={tmp_path}")
    with pytest.raises(UserError) as error:
        load("data=cifar10", f"data.root={tmp_path}")
    assert str(tmp_path / "cifar-10-batches-py") in one_line(error) and "data_batch_1" in str(
        error.value
    )


def test_a_failed_download_is_one_line(tmp_path, monkeypatch):
    from urllib.error import URLError

    from torchvision.datasets import utils

    def offline(url, *args, **kwargs):
        raise URLError("no network here")

    monkeypatch.setattr(utils, "download_and_extract_archive", offline)
    for name in ("mnist", "cifar10"):
        with pytest.raises(UserError) as error:
            load(f"data={name}", f"data.root={tmp_path}", "data.download=true")
        assert "data.download=true could not fetch the files" in one_line(error)
        assert "no network here" in str(error.value)


def test_a_damaged_idx_file_is_reported(tmp_path):
    raw = write_mnist(tmp_path, "MNIST")
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x08\x03\x00\x00garbage")
    with pytest.raises(UserError, match="is not an IDX file"):
        load("data=mnist", f"data.root={tmp_path}")
    (raw / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((50, 28, 28), np.uint8))[:-10])
    with pytest.raises(UserError, match="is truncated"):
        load("data=mnist", f"data.root={tmp_path}")


# --- CIFAR-10: python batches in <root>/cifar-10-batches-py ---------------------------


def _py2_str(value) -> bytes:
    raw = value if isinstance(value, bytes) else value.encode("latin1")
    if len(raw) < 256:
        return b"U" + bytes([len(raw)]) + raw  # SHORT_BINSTRING
    return b"T" + struct.pack("<i", len(raw)) + raw  # BINSTRING


def _py2_int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)  # BININT


def py2_cifar_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch as the real files are: a Python 2 cPickle (protocol 2) of a dict whose 'data' is
    a numpy.core.multiarray._reconstruct'ed uint8 array with its bytes as a py2 str."""
    dtype = (
        b"cnumpy\ndtype\n"
        + _py2_str("u1")
        + _py2_int(0)
        + _py2_int(1)
        + b"\x87R("
        + _py2_int(3)
        + _py2_str("|")
        + b"NNN"
        + _py2_int(-1)
        + _py2_int(-1)
        + _py2_int(0)
        + b"tb"
    )
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        + _py2_int(0)
        + b"\x85"
        + _py2_str("b")
        + b"\x87R("
        + _py2_int(1)
        + b"("
        + b"".join(_py2_int(d) for d in data.shape)
        + b"t"
        + dtype
        + b"\x89"
        + _py2_str(data.tobytes())
        + b"tb"
    )
    items = (
        _py2_str("batch_label")
        + _py2_str("training batch")
        + _py2_str("labels")
        + b"]("
        + b"".join(_py2_int(v) for v in labels)
        + b"e"
        + _py2_str("data")
        + array
        + _py2_str("filenames")
        + b"]("
        + b"".join(_py2_str(f"img_{i}.png") for i in labels)
        + b"e"
    )
    return b"\x80\x02}(" + items + b"u."


def write_cifar(root: Path, per_batch: int = 6, python2: bool = True) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate([*(f"data_batch_{b}" for b in range(1, 6)), "test_batch"]):
        labels = [(i + j) % 10 for j in range(per_batch)]
        data = np.repeat(np.array(labels, dtype=np.uint8) * 25, 3072).reshape(per_batch, 3072)
        data[:, :1024] //= 2  # colour channels differ
        if python2:
            (folder / name).write_bytes(py2_cifar_batch(data, labels))
        else:
            with open(folder / name, "wb") as f:
                pickle.dump({"data": data, "labels": labels, "batch_label": "b"}, f)
    return folder


@pytest.mark.parametrize("python2", [True, False])
def test_cifar10_reads_python_batches(tmp_path, python2):
    write_cifar(tmp_path, python2=python2)
    data = load("data=cifar10", f"data.root={tmp_path}")
    assert data.input_shape == (3, 32, 32) and data.n_classes == 10
    assert len(data.x_test) == 6 and len(data.x_train) + len(data.x_val) == 30
    x, y = data.x_test, data.y_test
    assert y.tolist() == [(5 + j) % 10 for j in range(6)]
    assert (x[torch.argsort(y), 1, 0, 0].diff() > 0).all()  # pixels follow the labels
    for channel in range(3):  # standardized per colour channel with training statistics
        assert data.x_train[:, channel].mean().abs() < 1e-4


def test_cifar10_refuses_pickles_that_would_run_code(tmp_path):
    folder = write_cifar(tmp_path)
    victim = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            import os

            return os.mkdir, (str(victim),)

    with open(folder / "data_batch_3", "wb") as f:
        pickle.dump({"data": Payload(), "labels": []}, f)
    with pytest.raises(UserError) as error:
        load("data=cifar10", f"data.root={tmp_path}")
    assert "refusing to load" in one_line(error) and "data_batch_3" in str(error.value)
    assert not victim.exists()
    with open(folder / "data_batch_3", "wb") as f:
        pickle.dump({"data": np.zeros((2, 10), np.uint8), "labels": [0, 1]}, f)
    with pytest.raises(UserError, match="is not a CIFAR-10 batch"):
        load("data=cifar10", f"data.root={tmp_path}")
