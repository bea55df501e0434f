"""MNIST, Fashion-MNIST and CIFAR-10 from files on disk, laid out as torchvision expects.

Files are read by `dlrun.data.formats` (no unrestricted unpickling); torchvision is used
only to download and checksum them, and only when `data.download=true`. Pixels stay uint8
until `make_dataset` turns each split into float32 (N, C, H, W), standardized per channel
with training statistics (so dividing by 255 first would change nothing); the datasets'
own test sets are the test split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlrun.data import shifts
from dlrun.data.dataset import Dataset, make_dataset
from dlrun.data.formats import load_array_pickle, read_idx
from dlrun.errors import UserError

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def _download_failed(name: str, where: Path, error: Exception) -> UserError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return UserError(
        f"data={name} data.download=true could not fetch the files into {where} ({reason}); "
        f"copy them there yourself, or point data.root at a folder that has them."
    )


def _missing(name: str, where: Path, files: tuple[str, ...], layout: str, suffix="") -> UserError:
    return UserError(
        f"data={name}: no {', '.join(files)} in {where}{suffix}; add data.download=true to fetch them "
        f"(needs internet), or set data.root=DIR where DIR/{layout} holds them."
    )


# --- MNIST and Fashion-MNIST: IDX files under <root>/<Class>/raw ---------------------


def _idx_path(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _download_idx(name: str, torchvision_class: str, folder: Path) -> None:
    from torchvision import datasets
    from torchvision.datasets.utils import download_and_extract_archive

    cls = getattr(datasets, torchvision_class)
    for filename, md5 in cls.resources:
        if _idx_path(folder, filename.removesuffix(".gz")) is not None:
            continue
        errors = []
        for mirror in cls.mirrors:
            try:
                download_and_extract_archive(mirror + filename, folder, filename=filename, md5=md5)
                break
            except Exception as error:  # network, HTTP or checksum: try the next mirror
                errors.append(error)
        else:
            raise _download_failed(name, folder, errors[-1])


def _idx_dataset(name, torchvision_class, *, seed, root, download, split) -> Dataset:
    folder = Path(root).expanduser().resolve() / torchvision_class / "raw"
    paths = [_idx_path(folder, stem) for stem in IDX_FILES]
    if None in paths and download:
        _download_idx(name, torchvision_class, folder)
        paths = [_idx_path(folder, stem) for stem in IDX_FILES]
    if None in paths:
        missing = tuple(stem for stem, path in zip(IDX_FILES, paths) if path is None)
        raise _missing(name, folder, missing, f"{torchvision_class}/raw", " (plain or .gz)")
    x, y, x_test, y_test = (read_idx(path) for path in paths)
    for images, labels, path in ((x, y, paths[0]), (x_test, y_test, paths[2])):
        if images.ndim != 3 or len(images) != len(labels):
            raise UserError(
                f"{path}: {images.shape} images do not match {len(labels)} labels; fetch the files again."
            )
    return make_dataset(
        name,
        x[:, None],
        y,
        task="multiclass",
        seed=seed,
        n_classes=10,
        test=(x_test[:, None], y_test),
        standardize="channel",
        shifts=shifts.IMAGE,
        **split,
    )


def mnist(*, seed: int, root: str = "data", download: bool = False, **split) -> Dataset:
    """70,000 28x28 handwritten digits (60k train, 10k test), 10 classes."""
    return _idx_dataset("mnist", "MNIST", seed=seed, root=root, download=download, split=split)


def fashion_mnist(*, seed: int, root: str = "data", download: bool = False, **split) -> Dataset:
    """70,000 28x28 clothing images (60k train, 10k test), 10 classes."""
    return _idx_dataset(
        "fashion_mnist", "FashionMNIST", seed=seed, root=root, download=download, split=split
    )


# --- CIFAR-10: pickled batches under <root>/cifar-10-batches-py ----------------------


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = load_array_pickle(path)
    data = batch.get("data") if isinstance(batch, dict) else None
    labels = batch.get("labels") if isinstance(batch, dict) else None
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
        or labels is None
        or len(labels) != len(data)
    ):
        raise UserError(
            f"{path} is not a CIFAR-10 batch (expected 'data': uint8 N x 3072 and N 'labels'); "
            "fetch the files again."
        )
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def cifar10(*, seed: int, root: str = "data", download: bool = False, **split) -> Dataset:
    """60,000 32x32 colour images (50k train, 10k test) of 10 object classes."""
    base = Path(root).expanduser().resolve()
    folder = base / CIFAR_FOLDER
    if download and not all((folder / f).is_file() for f in CIFAR_FILES):
        from torchvision.datasets import CIFAR10
        from torchvision.datasets.utils import download_and_extract_archive

        try:  # checksummed archive; extracting it never unpickles anything
            download_and_extract_archive(
                CIFAR10.url, base, filename=CIFAR10.filename, md5=CIFAR10.tgz_md5
            )
        except Exception as error:
            raise _download_failed("cifar10", base, error) from None
    missing = tuple(f for f in CIFAR_FILES if not (folder / f).is_file())
    if missing:
        raise _missing("cifar10", folder, missing, CIFAR_FOLDER)
    batches = [_cifar_batch(folder / f) for f in CIFAR_FILES]
    x = np.concatenate([b[0] for b in batches[:-1]])
    y = np.concatenate([b[1] for b in batches[:-1]])
    x_test, y_test = batches[-1]
    return make_dataset(
        "cifar10",
        x,
        y,
        task="multiclass",
        seed=seed,
        n_classes=10,
        test=(x_test, y_test),
        standardize="channel",
        shifts=shifts.IMAGE,
        **split,
    )
