"""Readers for on-disk dataset formats that never run code from the file.

IDX (MNIST, Fashion-MNIST) is parsed byte by byte. CIFAR-10's "python version" is a
pickle; `load_array_pickle` reads it with an unpickler that can build only numpy
arrays, dtypes, and plain containers, so a crafted file cannot import or call
anything else (torchvision's own CIFAR10 class would `pickle.load` it unrestricted).
"""

from __future__ import annotations

import codecs
import gzip
import importlib
import math
import pickle
import struct
from pathlib import Path

import numpy as np

from dlrun.errors import UserError

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped): 2 zero bytes, a type code, the rank, big-endian sizes, data."""
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise UserError(
            f"{path} is not an IDX file (bad magic number); delete it and fetch it again."
        )
    rank = raw[3]
    header = 4 + 4 * rank
    shape = struct.unpack(f">{rank}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    if len(raw) - header != math.prod(shape) * dtype.itemsize:
        raise UserError(f"{path} is truncated: its header promises shape {shape}; fetch it again.")
    return (
        np.frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def _latin1_encode(text, encoding="utf-8"):
    """What Python 3 pickles of bytes call (`_codecs.encode(str, 'latin1')`), and nothing else."""
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _numpy(module: str, name: str):
    # Python 2 / numpy 1 pickles name numpy.core.*, numpy 2 renamed it numpy._core.*
    for candidate in (module.replace("numpy.core", "numpy._core"), module):
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"numpy has no {module}.{name}")


class _ArraysOnly(pickle.Unpickler):
    """Admits only the globals a pickled numpy array needs."""

    NUMPY = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.NUMPY:
            return _numpy(module, name)
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: only numpy arrays are allowed"
        )


def load_array_pickle(path: Path):
    """Unpickle a file that may hold only dicts, lists, strings, numbers and numpy arrays."""
    with open(path, "rb") as f:
        try:
            return _ArraysOnly(f, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
            raise UserError(
                f"{path} is not a CIFAR-style batch of numpy arrays ({error}); "
                "delete it and fetch it again, e.g. with data.download=true."
            ) from None
