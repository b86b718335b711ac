"""Reading and writing sweep results: ``results.csv``, spectra and the summary.

A results folder holds:

``settings.json``
    What every kernel in the folder depends on besides its grid point: the
    parametrisation, the kernel route, and a fingerprint of the data.
``results.csv``
    One row per kernel (:data:`COLUMNS`), appended as each kernel finishes.
``spectra/``
    One ``.npy`` file of ascending eigenvalues per kernel, written before its
    row, so every row has its spectrum.
``spectra.npz``
    All spectra of the grid in one file, keyed like the files in ``spectra/``.
``summary.csv``
    Per activation, the greatest smallest eigenvalue (mean over seeds) and the
    width and depth where it occurs.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .activations import ACTIVATIONS

COLUMNS: tuple[str, ...] = (
    "activation",
    "width",
    "depth",
    "seed",
    "parametrization",
    "n_samples",
    "lambda_min",
    "lambda_max",
    "trace",
    "resolution_floor",
    "below_floor",
    "seconds",
)
"""Columns of ``results.csv``, in order."""

SUMMARY_COLUMNS: tuple[str, ...] = (
    "activation",
    "lambda_min",
    "lambda_min_std",
    "width",
    "depth",
    "n_seeds",
    "below_floor",
)
"""Columns of ``summary.csv``, in order."""

_INT_COLUMNS = ("width", "depth", "seed", "n_samples")
_FLOAT_COLUMNS = ("lambda_min", "lambda_max", "trace", "resolution_floor", "seconds")


def kernel_key(activation: str, width: int, depth: int, seed: int) -> str:
    """Return the name of a kernel's spectrum, such as ``relu-w800-d3-s0``."""
    return f"{activation}-w{width}-d{depth}-s{seed}"


def _format_value(value) -> str:
    # repr keeps every digit of a float, so a CSV round trip is exact.
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def format_row(row: dict) -> list[str]:
    """Return a result row as CSV fields, floats with full precision."""
    return [_format_value(row[name]) for name in COLUMNS]


def parse_row(record: dict) -> dict:
    """Convert a row read by :class:`csv.DictReader` to typed values."""
    row = dict(record)
    for name in _INT_COLUMNS:
        row[name] = int(row[name])
    for name in _FLOAT_COLUMNS:
        row[name] = float(row[name])
    row["below_floor"] = row["below_floor"] == "true"
    return row


def read_results(path: str | os.PathLike) -> list[dict]:
    """Read ``results.csv`` (a file, or a folder holding one).

    A last line cut short by an interrupted run is skipped.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If its header lacks a column of :data:`COLUMNS`.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "results.csv"
    rows = []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path} is not a results file: missing {missing}")
        for record in reader:
            if None in record.values() or None in record:
                continue
            try:
                rows.append(parse_row(record))
            except ValueError:
                continue
    return rows


def write_results(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Write rows to a new ``results.csv``, replacing any existing file."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(format_row(row))
    os.replace(tmp, path)


def append_result(path: str | os.PathLike, row: dict) -> None:
    """Append one row to ``results.csv`` and flush it to disk."""
    with open(path, "a", newline="") as handle:
        csv.writer(handle).writerow(format_row(row))
        handle.flush()
        os.fsync(handle.fileno())


def sort_key(row: dict):
    """Order rows by activation (as in ACTIVATIONS), width, depth and seed."""
    activation = row["activation"]
    rank = ACTIVATIONS.index(activation) if activation in ACTIVATIONS else 99
    return rank, activation, row["width"], row["depth"], row["seed"]


def summarize(rows: Iterable[dict]) -> list[dict]:
    """Find, per activation, the grid point with the greatest mean ``lambda_min``.

    Rows of several seeds at one grid point are averaged. A grid point where any
    seed's ``lambda_min`` is under its resolution floor is marked
    ``below_floor``; it can still be the greatest only if every point is.

    Returns
    -------
    list of dict
        One row per activation with the keys of :data:`SUMMARY_COLUMNS`.
    """
    groups: dict = defaultdict(list)
    for row in rows:
        groups[(row["activation"], row["width"], row["depth"])].append(row)
    best: dict = {}
    for (activation, width, depth), members in groups.items():
        values = np.array([r["lambda_min"] for r in members])
        entry = {
            "activation": activation,
            "lambda_min": float(values.mean()),
            "lambda_min_std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "width": width,
            "depth": depth,
            "n_seeds": len(values),
            "below_floor": any(r["below_floor"] for r in members),
        }
        current = best.get(activation)
        rank = (not entry["below_floor"], entry["lambda_min"])
        if current is None or rank > (
            not current["below_floor"],
            current["lambda_min"],
        ):
            best[activation] = entry
    return sorted(best.values(), key=lambda e: sort_key({**e, "seed": 0}))


def write_summary(path: str | os.PathLike, summary: list[dict]) -> None:
    """Write the summary rows to ``summary.csv``."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SUMMARY_COLUMNS)
        for entry in summary:
            writer.writerow([_format_value(entry[c]) for c in SUMMARY_COLUMNS])


def format_summary(summary: list[dict]) -> str:
    """Return the summary as an aligned text table for the console."""
    with_std = any(e["n_seeds"] > 1 for e in summary)
    header = ["activation", "max lambda_min", "width", "depth"]
    if with_std:
        header[1:2] = ["max mean lambda_min", "std", "seeds"]
    lines = []
    for e in summary:
        value = f"{e['lambda_min']:.4g}"
        if e["below_floor"]:
            value += " (unresolved)"
        cells = [e["activation"], value, str(e["width"]), str(e["depth"])]
        if with_std:
            cells[2:2] = [f"{e['lambda_min_std']:.2g}", str(e["n_seeds"])]
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(header)]
    table = [header, ["-" * w for w in widths], *lines]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in table
    )
