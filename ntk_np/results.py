"""Reading and writing sweep results: ``results.csv``, spectra and the summary.

A results folder holds:

``settings.json``
    What every kernel in the folder depends on besides its grid point: the
    parametrisation, the kernel route, the certify policy for ``lambda_min``
    (:mod:`ntk_np.certify`), and a fingerprint of the data.
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
import io
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .choices import ACTIVATIONS

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
    "lambda_min_eigh",
    "lambda_min_method",
    "lambda_min_bound",
    "seconds",
)
"""Columns of ``results.csv``, in order.

``lambda_min`` is the value of the route named in ``lambda_min_method``
(``eigh`` or ``qr``, see :mod:`ntk_np.certify`), and ``lambda_min_bound`` is
its error bound. ``below_floor`` is true when ``lambda_min`` does not exceed
that bound. ``resolution_floor`` is always the ``eigh`` floor ``N * eps *
lambda_max``, and ``lambda_min_eigh`` the ``eigh`` value.
"""

CERTIFY_COLUMNS: tuple[str, ...] = (
    "lambda_min_eigh",
    "lambda_min_method",
    "lambda_min_bound",
)
"""Columns that files written before the ``qr`` route lack; read as ``eigh``."""

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
_FLOAT_COLUMNS = (
    "lambda_min",
    "lambda_max",
    "trace",
    "resolution_floor",
    "seconds",
    "lambda_min_eigh",
    "lambda_min_bound",
)


def _with_eigh_defaults(row: dict) -> dict:
    """Fill missing :data:`CERTIFY_COLUMNS` as for a row of the ``eigh`` route."""
    if all(name in row for name in CERTIFY_COLUMNS):
        return row
    row = dict(row)
    row.setdefault("lambda_min_eigh", row["lambda_min"])
    row.setdefault("lambda_min_method", "eigh")
    row.setdefault("lambda_min_bound", row["resolution_floor"])
    return row


def kernel_key(activation: str, width: int, depth: int, seed: int) -> str:
    """Return the name of a kernel's spectrum, such as ``relu-w800-d3-s0``."""
    return f"{activation}-w{width}-d{depth}-s{seed}"


def _format_value(value) -> str:
    # repr keeps every digit of a float, so a CSV round trip is exact.
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def format_row(row: dict) -> list[str]:
    """Return a result row as CSV fields, floats with full precision.

    A row without :data:`CERTIFY_COLUMNS` is written as an ``eigh`` row.
    """
    row = _with_eigh_defaults(row)
    return [_format_value(row[name]) for name in COLUMNS]


def parse_row(record: dict) -> dict:
    """Convert a row read by :class:`csv.DictReader` to typed values."""
    row = _with_eigh_defaults(dict(record))
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
        If its header lacks a column of :data:`COLUMNS` other than
        :data:`CERTIFY_COLUMNS`.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "results.csv"
    rows = []
    with open(path, newline="") as handle:
        text = handle.read()
    if not text.endswith("\n"):
        # Every complete row ends with a line break; an unfinished one is dropped.
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text))
    missing = [
        c
        for c in COLUMNS
        if c not in (reader.fieldnames or ()) and c not in CERTIFY_COLUMNS
    ]
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
    seed's ``lambda_min`` is at or under its error bound (the ``below_floor``
    column) is marked ``below_floor``. Such a point can still be the greatest,
    but only if every point is.

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


def read_spectra(
    folder: str | os.PathLike, keys: Iterable[str] | None = None
) -> dict[str, np.ndarray]:
    """Read ascending eigenvalues from a results folder.

    A spectrum is taken from ``spectra/KEY.npy`` if that file exists, otherwise
    from ``spectra.npz``: ``spectra/`` contains every spectrum computed in the
    folder, but ``spectra.npz`` only those of the last run's grid.

    Parameters
    ----------
    folder : path
        The results folder.
    keys : iterable of str, optional
        Names from :func:`kernel_key`; by default every spectrum found.

    Returns
    -------
    dict of str to ndarray of shape (N,)
        The spectra found; keys without a spectrum are left out.
    """
    folder = Path(folder)
    archive_path = folder / "spectra.npz"
    archive = np.load(archive_path) if archive_path.is_file() else None
    try:
        if keys is None:
            found = {p.stem for p in (folder / "spectra").glob("*.npy")}
            found.update(archive.files if archive is not None else ())
            keys = sorted(found)
        spectra = {}
        for key in keys:
            path = folder / "spectra" / f"{key}.npy"
            if path.is_file():
                spectra[key] = np.load(path)
            elif archive is not None and key in archive.files:
                spectra[key] = archive[key]
        return spectra
    finally:
        if archive is not None:
            archive.close()
