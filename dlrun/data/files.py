"""The user's own data: a CSV table or an .npz archive of arrays.

Both are checked before training, and every problem is one line that names the file,
the rows or column at fault, and what to do about it.
"""

from __future__ import annotations

import csv as csv_format
import difflib
import sys
import zipfile
from pathlib import Path

import numpy as np

from dlrun.data import shifts
from dlrun.data.dataset import STANDARDIZE, TASKS, Dataset, make_dataset
from dlrun.errors import UserError


def _existing(path: str | None, kind: str) -> Path:
    if path is None:
        raise UserError(f"data={kind} needs a file: add data.path=PATH/TO/FILE.{kind}.")
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(
            f"data.path={path}: no such file ({file.resolve()}); pass an existing .{kind} file."
        )
    return file


def _listed(items, limit: int = 5) -> str:
    items = [f"{i:g}" if isinstance(i, float | np.floating) else str(i) for i in items]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def inferred_task(y: np.ndarray) -> str:
    """The task the targets make obvious, by scikit-learn's `type_of_target`: class labels
    (non-negative integers, at most 100 distinct values) are binary (0/1) or multiclass;
    anything else is regression."""
    from sklearn.utils.multiclass import type_of_target

    flat = np.asarray(y, dtype=np.float64).ravel()  # per-step labels: every step's label
    kind = type_of_target(flat)
    values = np.unique(flat)
    labels = kind in ("binary", "multiclass") and values.min() >= 0 and len(values) <= 100
    if not labels:
        return "regression"
    return "binary" if set(values.tolist()) <= {0, 1} else "multiclass"


def _task(y, task: str | None, source, what: str) -> str:
    """`data.task` when given; else the inferred one, said in one line."""
    if task is not None:
        return task
    task = inferred_task(y)
    values = np.unique(np.asarray(y).ravel())
    seen = f"{len(values)} distinct values" if task == "regression" else f"labels {_listed(values)}"
    print(f"dlrun: data.task={task} (inferred from {source}'s {what}: {seen}); "
          "set data.task=regression|binary|multiclass to choose", file=sys.stderr)
    return task


def _checked_targets(y, task, n_classes, source, rows, what) -> None:
    """Check the task, and the labels against it (per-step labels: any step of a row)."""
    if task not in TASKS:
        raise UserError(f"data.task={task} is unknown; choose regression, binary or multiclass.")
    if task == "regression":
        return
    limit = 2 if task == "binary" else n_classes
    bad = (y < 0) | (y != np.round(y))
    if limit is not None:
        bad |= y >= limit
    if bad.any():
        labels = np.unique(y[bad])
        bad = bad.reshape(len(y), -1).any(axis=1)
        if task == "binary":
            allowed = "0 or 1"
        else:
            allowed = f"integers 0..{limit - 1}" if limit else "integers >= 0"
        raise UserError(
            f"{source}: {what} {_listed(np.asarray(rows)[bad])} hold labels outside the class range "
            f"({_listed(labels)}); data.task={task} needs {allowed}, "
            "so relabel them or choose another data.task."
        )


def _finite_features(x, source, rows, what) -> None:
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        raise UserError(
            f"{source}: {what} {_listed(np.asarray(rows)[bad])} hold NaN or infinite features; "
            "fill or drop them."
        )


# --- CSV ----------------------------------------------------------------------------


def _read_table(file: Path, delimiter: str) -> tuple[list[str], list[int], list[list[str]]]:
    """Header, file line numbers of the data rows, and the rows (blank lines skipped)."""
    with open(file, newline="", encoding="utf-8-sig") as f:
        reader = csv_format.reader(f, delimiter=delimiter)
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise UserError(
            f"{file} has no data rows under a header line; a CSV needs a header, then rows."
        )
    header = [name.strip() for name in rows[0][1]]
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise UserError(
                f"{file}: line {line} has {len(row)} fields but the header has {len(header)}; "
                f"fix that line (or the delimiter: data.delimiter='{delimiter}')."
            )
    return header, [line for line, _ in rows[1:]], [row for _, row in rows[1:]]


def _numbers(cells: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Values of one column, and a mask of the cells that are empty or not numbers."""
    values = np.full(len(cells), np.nan)
    bad = np.zeros(len(cells), dtype=bool)
    for i, cell in enumerate(cells):
        try:
            values[i] = float(cell)
        except ValueError:
            bad[i] = True
    return values, bad


def csv(
    *,
    seed: int,
    path: str | None = None,
    target: str | None = None,
    task: str | None = None,
    n_classes: int | None = None,
    delimiter: str = ",",
    **split,
) -> Dataset:
    """A table with a header line: `data.target` (default: the last column) is the label,
    every other column a numeric feature. Test shifts: offset, scale, noise."""
    file = _existing(path, "csv")
    delimiter = {"\\t": "\t", "tab": "\t"}.get(delimiter, delimiter)
    header, lines, rows = _read_table(file, delimiter)
    target = header[-1] if target is None else target
    if target not in header:
        close = difflib.get_close_matches(target, header, n=1)
        hint = f"did you mean data.target={close[0]}? " if close else ""
        raise UserError(
            f"data.target={target} is not a column of {file}; {hint}columns: {_listed(header, 10)}."
        )
    column = header.index(target)
    lines_array = np.asarray(lines)
    try:  # the fast path: every cell is a number
        table = np.array(rows, dtype=np.float64)
    except ValueError:
        table = None
    if table is None:
        columns = list(zip(*rows))
        y, bad = _numbers(list(columns[column]))
        if bad.any():
            raise UserError(
                f"{file}: target column '{target}' is empty or not a number on lines "
                f"{_listed(lines_array[bad])}; fill or drop those rows."
            )
        for name, cells in zip(header, columns):
            _, bad = _numbers(list(cells))
            if bad.any():
                first = int(np.argmax(bad))
                raise UserError(
                    f"{file}: column '{name}' holds '{cells[first]}' on line {lines[first]}, not a number; "
                    "encode it as numbers or drop the column."
                )
        table = np.array([[float(cell) for cell in row] for row in rows])
    y = table[:, column]
    x = np.delete(table, column, axis=1)
    if not np.isfinite(y).all():
        raise UserError(
            f"{file}: target column '{target}' is NaN or infinite on lines "
            f"{_listed(lines_array[~np.isfinite(y)])}; fill or drop those rows."
        )
    _finite_features(x, file, lines, "lines")
    task = _task(y, task, file.name, f"column '{target}'")
    _checked_targets(y, task, n_classes, file, lines, "lines")
    return make_dataset(
        file.stem, x, y, task=task, seed=seed, n_classes=n_classes, shifts=shifts.TABULAR, **split
    )


# --- NPZ ----------------------------------------------------------------------------


def npz(
    *,
    seed: int,
    path: str | None = None,
    task: str | None = None,
    n_classes: int | None = None,
    standardize: str | None = "feature",
    **split,
) -> Dataset:
    """Arrays `x` (N, ...) and `y` (N,) or (N, k), optionally `x_test` and `y_test` as the
    test split. Read with allow_pickle=False. Test shifts: offset, scale, noise."""
    file = _existing(path, "npz")
    if standardize is not None and standardize not in STANDARDIZE:
        raise UserError(
            f"data.standardize={standardize} is unknown; choose from: {', '.join(STANDARDIZE)}, or null."
        )
    try:
        with np.load(file, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise UserError(
            f"{file} cannot be read as an .npz of numeric arrays ({error}); "
            "save it with np.savez(path, x=..., y=...)."
        ) from None
    if "x" not in arrays or "y" not in arrays or ("x_test" in arrays) != ("y_test" in arrays):
        raise UserError(
            f"{file} holds arrays {_listed(sorted(arrays), 10) or 'none'}; it needs 'x' and 'y' "
            "(and optionally both 'x_test' and 'y_test'): np.savez(path, x=..., y=...)."
        )
    parts = [("x", "y")] + ([("x_test", "y_test")] if "x_test" in arrays else [])
    for x_name, y_name in parts:
        x, y = arrays[x_name], arrays[y_name]
        for name, a in ((x_name, x), (y_name, y)):
            if a.dtype.kind not in "biuf" or a.ndim == 0:
                raise UserError(
                    f"{file}: '{name}' has dtype {a.dtype} and shape {a.shape}; it must be a numeric array."
                )
        if len(x) != len(y):
            raise UserError(
                f"{file}: '{x_name}' has {len(x)} rows but '{y_name}' has {len(y)}; they must match."
            )
        _finite_features(x.astype(np.float64), file, np.arange(len(x)), f"'{x_name}' rows")
        if not np.isfinite(y).all():
            raise UserError(
                f"{file}: '{y_name}' holds NaN or infinite targets; fill or drop those rows."
            )
        task = _task(y, task, file.name, f"'{y_name}'")
        _checked_targets(y, task, n_classes, file, np.arange(len(y)), f"'{y_name}' rows")
        if task != "regression" and y.ndim != 1 and not (y.ndim == 2 and x.ndim == 3):
            raise UserError(
                f"{file}: class labels '{y_name}' must have shape (N,) (or (N, T) for sequences)."
            )
    test = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
    return make_dataset(
        file.stem,
        arrays["x"],
        arrays["y"],
        task=task,
        seed=seed,
        n_classes=n_classes,
        test=test,
        standardize=standardize,
        shifts=shifts.TABULAR,
        **split,
    )
