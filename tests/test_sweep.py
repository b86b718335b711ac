"""Tests for ntk_np.results, ntk_np.sweep.run_sweep and the sweep command.

The sweeps here use the grid widths 20, 40 x depths 2, 3 x relu, sigmoid on the
first 5 images of each class (N = 10): 8 kernels, well under a second.
"""

from __future__ import annotations

import csv
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import EPS, spawned_workers
from numpy.testing import assert_array_equal
from threadpoolctl import threadpool_info, threadpool_limits

import ntk_np
from ntk_np import results as res
from ntk_np import run_sweep, sweeping
from ntk_np.cli import UsageError, parse_int_list
from ntk_np.sweep import build_parser, main

HEADER = (
    "activation,width,depth,seed,parametrization,n_samples,lambda_min,lambda_max,"
    "trace,resolution_floor,below_floor,lambda_min_eigh,lambda_min_method,"
    "lambda_min_bound,seconds"
)
GRID = {"widths": (20, 40), "depths": (2, 3), "activations": ("relu", "sigmoid")}
KEYS = sorted(
    res.kernel_key(a, w, d, 0)
    for a in GRID["activations"]
    for w in GRID["widths"]
    for d in GRID["depths"]
)
# Figures (ntk_np.plot) are not under test here; skip them where the command
# offers that, to keep these runs fast.
NO_FIGURES = ["--no-figures"] if "--no-figures" in build_parser().format_help() else []
SMALL_CLI = [
    *"--widths 20,40 --depths 2:3 --activations relu sigmoid".split(),
    *"--n-per-class 5 --jobs 1 --no-progress".split(),
    *NO_FIGURES,
]


# ------------------------------------------------------------------ helpers


def make_row(**changes) -> dict:
    row = {
        "activation": "relu",
        "width": 20,
        "depth": 2,
        "seed": 0,
        "parametrization": "thesis",
        "n_samples": 10,
        "lambda_min": 12.92202521236282,
        "lambda_max": 1714.0720256124569,
        "trace": 2632.8651090041185,
        "resolution_floor": 3.806004457401661e-12,
        "below_floor": False,
        "lambda_min_eigh": 12.92202521236282,
        "lambda_min_method": "eigh",
        "lambda_min_bound": 3.806004457401661e-12,
        "seconds": 0.000981432000003224,
    }
    row.update(changes)
    return row


def same_float(a: float, b: float) -> bool:
    """Bitwise equality, with NaN equal to NaN."""
    return float(a).hex() == float(b).hex()


def assert_rows_equal(rows, expected, columns=res.COLUMNS):
    assert len(rows) == len(expected)
    for row, other in zip(rows, expected):
        for name in columns:
            if isinstance(other[name], float):
                assert same_float(row[name], other[name]), (name, row, other)
            else:
                assert row[name] == other[name], (name, row, other)


def mtimes(folder: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in (folder / "spectra").iterdir()}


def cut_last_line(path: Path, where) -> str:
    """Cut results.csv inside its last line at ``where(line)`` characters."""
    lines = path.read_text().splitlines(keepends=True)
    last = lines[-1]
    path.write_text("".join(lines[:-1]) + last[: where(last)])
    return last


def after_field(k: int, extra: int = 0):
    """A cut position: ``extra`` characters after the k-th comma (k >= 1)."""

    def where(line: str) -> int:
        position = -1
        for _ in range(k):
            position = line.index(",", position + 1)
        return position + 1 + extra

    return where


def run_main(argv) -> int:
    """Call main; return its status, also when argparse exits."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


# --------------------------------------------------------- results module


def test_columns():
    assert ",".join(res.COLUMNS) == HEADER


def test_round_trip_is_exact_for_floats(tmp_path):
    tricky = [
        0.1,
        1 / 3,
        2 / 3 * 1e-300,
        5e-324,
        1.7976931348623157e308,
        -0.0,
        1e16 + 2,
        float("inf"),
        float("nan"),
        12.92202521236282,
    ]
    rows = [
        make_row(lambda_min=v, trace=-v, seconds=v, width=i, below_floor=i % 2 == 0)
        for i, v in enumerate(tricky)
    ]
    path = tmp_path / "results.csv"
    res.write_results(path, rows)
    assert path.read_text().splitlines()[0] == HEADER
    assert_rows_equal(res.read_results(path), rows)
    assert_rows_equal(res.read_results(tmp_path), rows)  # a folder works too


def test_round_trip_numpy_scalars(tmp_path):
    # Spectra are NumPy arrays, so np.float64 / np.bool_ values are natural in
    # a row. Today np.float64 is written as "np.float64(...)" (NumPy 2 repr)
    # and the row is silently dropped; np.bool_ is written "True" and read
    # back as False.
    row = make_row(
        width=np.int64(20),
        lambda_min=np.float64(0.1),
        lambda_max=np.float64(1 / 3),
        trace=np.float64(2.5),
        resolution_floor=np.float64(1e-300),
        below_floor=np.bool_(True),
        seconds=np.float64(0.25),
    )
    path = tmp_path / "results.csv"
    res.write_results(path, [row])
    back = res.read_results(path)
    assert len(back) == 1, path.read_text()
    assert_rows_equal(
        back, [{k: v.item() if hasattr(v, "item") else v for k, v in row.items()}]
    )


def test_append_result(tmp_path):
    path = tmp_path / "results.csv"
    res.write_results(path, [make_row()])
    res.append_result(path, make_row(depth=3, lambda_min=0.5))
    back = res.read_results(path)
    assert [r["depth"] for r in back] == [2, 3]
    assert back[1]["lambda_min"] == 0.5


@pytest.mark.parametrize(
    "where",
    [
        lambda line: 3,
        after_field(2, 0),  # just before depth
        after_field(6, 4),  # inside lambda_min
        after_field(10, 0),  # just before below_floor
        after_field(10, 3),  # inside below_floor
        after_field(11, 0),  # just before seconds
        after_field(11, 5),  # inside seconds: "0.000" of "0.000981432000003224"
    ],
    ids=[
        "in-activation",
        "before-depth",
        "in-lambda_min",
        "before-below_floor",
        "in-below_floor",
        "before-seconds",
        "in-seconds",
    ],
)
def test_truncated_last_line_is_skipped(tmp_path, where):
    # read_results documents: "A last line cut short by an interrupted run is
    # skipped" -- wherever the cut falls, the row must not be read.
    rows = [make_row(depth=d) for d in (2, 3, 4)]
    path = tmp_path / "results.csv"
    res.write_results(path, rows)
    cut_last_line(path, where)
    assert not path.read_text().endswith("\n")
    assert_rows_equal(res.read_results(path), rows[:2])


def test_results_file_without_columns(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("activation,width\nrelu,20\n")
    with pytest.raises(ValueError, match="missing"):
        res.read_results(path)
    with pytest.raises(FileNotFoundError):
        res.read_results(tmp_path / "nothing.csv")


def summary_rows():
    return [
        # sigmoid first: the summary orders activations as ACTIVATIONS does.
        make_row(activation="sigmoid", width=20, lambda_min=3.0, below_floor=True),
        make_row(activation="sigmoid", width=40, lambda_min=9.0, below_floor=True),
        make_row(width=20, seed=0, lambda_min=5.0),
        make_row(width=20, seed=1, lambda_min=7.0),
        make_row(width=40, seed=0, lambda_min=6.5),
        make_row(width=40, seed=1, lambda_min=5.0),
        # Greatest mean, but one seed is under the floor: not preferred.
        make_row(width=40, depth=3, seed=0, lambda_min=100.0),
        make_row(width=40, depth=3, seed=1, lambda_min=1.0, below_floor=True),
    ]


def test_summarize_max_mean_over_seeds_prefers_resolved():
    summary = res.summarize(summary_rows())
    assert [e["activation"] for e in summary] == ["relu", "sigmoid"]
    relu, sigmoid = summary
    assert set(relu) == set(res.SUMMARY_COLUMNS)
    assert (relu["width"], relu["depth"], relu["n_seeds"]) == (20, 2, 2)
    assert relu["lambda_min"] == 6.0
    assert math.isclose(relu["lambda_min_std"], math.sqrt(2), rel_tol=1e-15)
    assert relu["below_floor"] is False
    # Every sigmoid point is under the floor: the greatest is still reported.
    assert (sigmoid["width"], sigmoid["lambda_min"]) == (40, 9.0)
    assert sigmoid["below_floor"] is True
    assert sigmoid["lambda_min_std"] == 0.0
    assert sigmoid["n_seeds"] == 1


def test_summary_file_and_table(tmp_path):
    summary = res.summarize(summary_rows())
    res.write_summary(tmp_path / "summary.csv", summary)
    with open(tmp_path / "summary.csv", newline="") as handle:
        records = list(csv.DictReader(handle))
    assert list(records[0]) == list(res.SUMMARY_COLUMNS)
    assert [r["activation"] for r in records] == ["relu", "sigmoid"]
    assert float(records[0]["lambda_min_std"]) == summary[0]["lambda_min_std"]
    table = res.format_summary(summary)
    lines = table.splitlines()
    assert lines[0].split() == [
        "activation",
        "max",
        "mean",
        "lambda_min",
        "std",
        "seeds",
        "width",
        "depth",
    ]
    assert lines[2].split() == ["relu", "6", "1.4", "2", "20", "2"]
    assert "9 (unresolved)" in lines[3]


# -------------------------------------------------------------- run_sweep


@pytest.fixture(scope="module")
def sweep_one(tmp_path_factory, X):
    out = tmp_path_factory.mktemp("sweep") / "jobs1"
    return run_sweep(X, **GRID, out=out, jobs=1)


@pytest.fixture(scope="module")
def sweep_two(tmp_path_factory, X):
    out = tmp_path_factory.mktemp("sweep") / "jobs2"
    return run_sweep(X, **GRID, out=out, jobs=2)


def test_sweep_files(sweep_one):
    out = sweep_one.out
    assert sorted(p.name for p in out.iterdir()) == [
        "results.csv",
        "settings.json",
        "spectra",
        "spectra.npz",
        "summary.csv",
    ]
    lines = (out / "results.csv").read_text().splitlines()
    assert lines[0] == HEADER
    assert len(lines) == 9
    assert sorted(p.stem for p in (out / "spectra").iterdir()) == KEYS
    with np.load(out / "spectra.npz") as archive:
        assert sorted(archive.files) == KEYS
        for key in KEYS:
            assert_array_equal(archive[key], np.load(out / "spectra" / f"{key}.npy"))
            assert_array_equal(archive[key], sweep_one.spectra[key])
    rows = res.read_results(out)
    assert_rows_equal(rows, sweep_one.rows)
    assert [(r["activation"], r["width"], r["depth"]) for r in rows] == [
        (a, w, d) for a in GRID["activations"] for w in (20, 40) for d in (2, 3)
    ]
    for row in rows:
        assert (row["seed"], row["parametrization"], row["n_samples"]) == (
            0,
            "thesis",
            10,
        )
        assert row["seconds"] >= 0
    with open(out / "summary.csv", newline="") as handle:
        summary = list(csv.DictReader(handle))
    assert [s["activation"] for s in summary] == ["relu", "sigmoid"]
    for entry in summary:
        best = max(
            (r for r in rows if r["activation"] == entry["activation"]),
            key=lambda r: r["lambda_min"],
        )
        assert float(entry["lambda_min"]) == best["lambda_min"]
        assert (int(entry["width"]), int(entry["depth"])) == (
            best["width"],
            best["depth"],
        )


def test_sweep_equals_direct_computation(sweep_one, X):
    # The sweep computes each kernel with one BLAS thread; so does this check.
    with threadpool_limits(1, user_api="blas"):
        for row in sweep_one.rows:
            net = ntk_np.make_network(
                row["width"], row["depth"], row["activation"], "thesis", row["seed"]
            )
            spectrum = ntk_np.kernel_spectrum(ntk_np.empirical_ntk(net, X))
            key = res.kernel_key(row["activation"], row["width"], row["depth"], 0)
            assert_array_equal(sweep_one.spectra[key], spectrum.eigenvalues)
            assert row["lambda_min"] == spectrum.lambda_min
            assert row["lambda_max"] == spectrum.lambda_max
            assert row["trace"] == spectrum.trace
            assert row["resolution_floor"] == 10 * EPS * spectrum.lambda_max
            assert row["below_floor"] is spectrum.below_floor is False


def test_jobs_do_not_change_results(sweep_one, sweep_two):
    assert_rows_equal(sweep_two.rows, sweep_one.rows, columns=res.COLUMNS[:-1])
    assert sweep_two.spectra.keys() == sweep_one.spectra.keys()
    for key, eigenvalues in sweep_one.spectra.items():
        assert_array_equal(sweep_two.spectra[key], eigenvalues)

    def without_seconds(folder):
        return [
            line.rsplit(",", 1)[0]
            for line in (folder / "results.csv").read_text().splitlines()
        ]

    assert without_seconds(sweep_two.out) == without_seconds(sweep_one.out)
    assert (sweep_two.out / "summary.csv").read_bytes() == (
        sweep_one.out / "summary.csv"
    ).read_bytes()


def test_jacobian_method_agrees(X):
    layerwise = run_sweep(X, widths=[20], depths=[2, 3], activations=["elu"])
    jacobian = run_sweep(
        X,
        widths=[20],
        depths=[2, 3],
        activations=["elu"],
        method="jacobian",
        memory_budget=1 << 20,
    )
    for a, b in zip(layerwise.rows, jacobian.rows):
        assert math.isclose(a["lambda_max"], b["lambda_max"], rel_tol=1e-12)
        assert abs(a["lambda_min"] - b["lambda_min"]) < 1e-11 * a["lambda_max"]
    assert layerwise.out is None


def test_seeds_and_ntk_parametrization(X):
    result = run_sweep(
        X,
        widths=[20],
        depths=[2],
        activations=["leaky_relu"],
        seeds=[0, 2],
        parametrization="ntk",
    )
    assert [r["seed"] for r in result.rows] == [0, 2]
    for row in result.rows:
        net = ntk_np.make_network(20, 2, "leaky_relu", "ntk", row["seed"])
        spectrum = ntk_np.kernel_spectrum(ntk_np.empirical_ntk(net, X))
        assert math.isclose(row["lambda_min"], spectrum.lambda_min, rel_tol=1e-10)
    (entry,) = result.summary
    assert entry["n_seeds"] == 2
    assert entry["lambda_min"] == np.mean([r["lambda_min"] for r in result.rows])


def test_resume_computes_nothing_new(sweep_one, tmp_path, X):
    out = tmp_path / "copy"
    shutil.copytree(sweep_one.out, out)
    before = mtimes(out)
    again = run_sweep(X, **GRID, out=out, jobs=1)
    assert mtimes(out) == before
    assert_rows_equal(again.rows, sweep_one.rows)  # seconds included
    assert_rows_equal(res.read_results(out), sweep_one.rows)


def test_resume_extended_grid_computes_only_new_kernels(sweep_one, tmp_path, X):
    out = tmp_path / "copy"
    shutil.copytree(sweep_one.out, out)
    before = mtimes(out)
    grid = {**GRID, "widths": (20, 40, 60), "depths": (2, 3, 4)}
    extended = run_sweep(X, **grid, out=out, jobs=1)
    after = mtimes(out)
    assert {k: after[k] for k in before} == before
    assert len(after) == 2 * 3 * 3
    assert len(extended.rows) == 18
    old = {
        res.kernel_key(r["activation"], r["width"], r["depth"], 0): r
        for r in sweep_one.rows
    }
    for row in extended.rows:
        key = res.kernel_key(row["activation"], row["width"], row["depth"], 0)
        if key in old:
            assert_rows_equal([row], [old[key]])
    assert len(res.read_results(out)) == 18
    with np.load(out / "spectra.npz") as archive:
        assert len(archive.files) == 18


def test_full_resume_draws_no_progress_bar(sweep_one, tmp_path, X, capsys):
    out = tmp_path / "copy"
    shutil.copytree(sweep_one.out, out)
    capsys.readouterr()
    run_sweep(X, **GRID, out=out, jobs=1, progress=True)
    assert capsys.readouterr().err == ""


def test_subset_rerun_keeps_folder_files_whole(sweep_one, tmp_path, X):
    out = tmp_path / "copy"
    shutil.copytree(sweep_one.out, out)
    subset = run_sweep(X, **{**GRID, "widths": (20,)}, out=out, jobs=1)
    assert len(subset.rows) == 4
    assert subset.n_computed == 0
    assert len(res.read_results(out)) == 8
    with np.load(out / "spectra.npz") as archive:
        assert sorted(archive.files) == KEYS
    with open(out / "summary.csv", newline="") as handle:
        summary = list(csv.DictReader(handle))
    expected = {e["activation"]: e for e in sweep_one.summary}
    for entry in summary:
        assert int(entry["width"]) == expected[entry["activation"]]["width"]
        assert float(entry["lambda_min"]) == expected[entry["activation"]]["lambda_min"]


def test_cli_subset_rerun_says_folder_is_larger(tmp_path, capsys):
    out = tmp_path / "r"
    assert main([*SMALL_CLI, "--out", str(out)]) == 0
    capsys.readouterr()
    subset = [*SMALL_CLI, "--widths", "20", "--out", str(out)]
    assert main(subset) == 0
    printed = capsys.readouterr().out
    assert "The table covers the 4 kernels requested" in printed
    assert "cover all 8 kernels" in printed


def test_resume_recovers_truncated_line(sweep_one, tmp_path, X):
    out = tmp_path / "copy"
    shutil.copytree(sweep_one.out, out)
    last = cut_last_line(out / "results.csv", after_field(7, 4))  # in lambda_max
    assert last.startswith("sigmoid,40,3,")
    before = mtimes(out)
    resumed = run_sweep(X, **GRID, out=out, jobs=1)
    after = mtimes(out)
    changed = sorted(k for k in after if after[k] != before[k])
    assert changed == ["sigmoid-w40-d3-s0.npy"]
    rows = res.read_results(out)
    assert_rows_equal(rows, sweep_one.rows, columns=res.COLUMNS[:-1])
    assert_rows_equal(resumed.rows, sweep_one.rows, columns=res.COLUMNS[:-1])
    assert (out / "results.csv").read_text().endswith("\n")


def test_interrupt_keeps_finished_kernels(sweep_one, tmp_path, X, monkeypatch):
    # One task per (width, seed) computes 4 kernels here; an interrupt in its
    # third keeps the two before it.
    out = tmp_path / "stopped"
    real_spectrum = sweeping.kernel_spectrum
    calls = []

    def interrupt_third(theta):
        calls.append(theta)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_spectrum(theta)

    monkeypatch.setattr(sweeping, "kernel_spectrum", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(X, **GRID, out=out, jobs=1)
    saved = res.read_results(out / "results.csv")
    assert len(saved) == 2
    assert len(list((out / "spectra").iterdir())) == 2

    monkeypatch.setattr(sweeping, "kernel_spectrum", real_spectrum)
    resumed = run_sweep(X, **GRID, out=out, jobs=1)
    assert resumed.n_computed == 6
    assert_rows_equal(resumed.rows, sweep_one.rows, columns=res.COLUMNS[:-1])


def test_resume_missing_spectrum_is_recomputed(sweep_one, tmp_path, X):
    out = tmp_path / "copy"
    shutil.copytree(sweep_one.out, out)
    (out / "spectra" / "relu-w20-d2-s0.npy").unlink()
    resumed = run_sweep(X, **GRID, out=out, jobs=1)
    assert (out / "spectra" / "relu-w20-d2-s0.npy").exists()
    assert_rows_equal(resumed.rows, sweep_one.rows, columns=res.COLUMNS[:-1])
    assert len(res.read_results(out)) == 8


@pytest.mark.parametrize(
    "change, pattern",
    [
        ({"parametrization": "ntk"}, "parametrization"),
        ({"method": "jacobian"}, "method"),
        ({"X": "fewer"}, "n_samples"),
        ({"X": "other"}, "data_sha256"),
    ],
)
def test_folder_with_other_settings(sweep_one, tmp_path, X, change, pattern):
    out = tmp_path / "copy"
    shutil.copytree(sweep_one.out, out)
    content = (out / "results.csv").read_bytes()
    kwargs = {**GRID, "out": out, **change}
    if change.get("X") == "fewer":
        kwargs["X"] = X[:8]
    elif change.get("X") == "other":
        kwargs["X"] = X[::-1]
    else:
        kwargs["X"] = X
    with pytest.raises(UsageError, match=rf"other settings \(changed: {pattern}"):
        run_sweep(**kwargs)
    assert (out / "results.csv").read_bytes() == content
    fresh = run_sweep(**kwargs, overwrite=True)
    assert len(res.read_results(out)) == 8
    assert_rows_equal(res.read_results(out), fresh.rows)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"widths": [0]}, "width must be at least 1, got 0"),
        ({"widths": []}, "widths must not be empty"),
        ({"depths": [2, 1]}, "depth must be at least 2, got 1"),
        ({"depths": [2.5]}, "depth must be an integer, got 2.5"),
        ({"seeds": [-1]}, "seed must be at least 0, got -1"),
        ({"activations": ["relu", "tanh"]}, "unknown activation 'tanh'"),
        ({"activations": []}, "activations must not be empty"),
        ({"parametrization": "mup"}, "unknown parametrization 'mup'"),
        ({"method": "qr"}, "unknown method 'qr'"),
        ({"jobs": 0}, "jobs must be at least 1, got 0"),
        ({"memory_budget": 0}, "memory_budget must be at least 1, got 0"),
        ({"X": np.zeros((1, 784))}, r"N >= 2, got \(1, 784\)"),
    ],
)
def test_run_sweep_rejects_bad_grid_before_writing(tmp_path, X, kwargs, pattern):
    args = {"X": X, "widths": [5], "depths": [2], "activations": ["relu"], **kwargs}
    with pytest.raises(UsageError, match=pattern):
        run_sweep(**args, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_run_sweep_leaves_blas_threads_alone(X):
    # A library call must not change the caller's BLAS thread count; today
    # jobs=1 calls threadpool_limits(1) without restoring it.
    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    with threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        run_sweep(X, widths=[5], depths=[2], activations=["relu"], jobs=1)
        assert blas_threads() == before


def test_run_sweep_is_exported():
    # README ("Python API") and the package docstring call ntk_np.run_sweep.
    assert getattr(ntk_np, "run_sweep", None) is run_sweep


# -------------------------------------------------------------------- CLI


def test_parse_int_list():
    assert parse_int_list("100") == [100]
    assert parse_int_list("100,200") == [100, 200]
    assert parse_int_list("50:200:50") == [50, 100, 150, 200]
    assert parse_int_list("2:4, 7") == [2, 3, 4, 7]
    assert parse_int_list("50:1000:50") == list(range(50, 1001, 50))


def test_parser_defaults_are_the_study_grid():
    args = build_parser().parse_args([])
    assert args.widths == list(range(50, 1001, 50))
    assert args.depths == list(range(2, 11))
    assert args.activations == ["relu", "elu", "leaky_relu", "sigmoid"]
    # The data defaults (100 per class, classes 0 and 9) are filled in after
    # parsing, so that an explicit value next to --data can be rejected.
    assert (args.n_per_class, args.classes) == (None, None)
    assert (args.parametrization, args.method, args.seeds) == (
        "thesis",
        "layerwise",
        [0],
    )
    assert args.memory_budget == 1024


def test_cli_end_to_end(tmp_path, capsys, sweep_one):
    out = tmp_path / "cli"
    assert run_main([*SMALL_CLI, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split() == ["activation", "max", "lambda_min", "width", "depth"]
    assert set(lines[1]) == {"-", " "}
    relu = lines[2].split()
    best = sweep_one.summary[0]
    assert relu == [
        "relu",
        f"{best['lambda_min']:.4g}",
        str(best["width"]),
        str(best["depth"]),
    ]
    assert lines[3].split()[0] == "sigmoid"
    assert lines[4] == ""
    assert re.fullmatch(
        rf"8 kernels \(8 computed, 0 already in the folder\) in \d+\.\d s; "
        rf"results in {re.escape(str(out))}/",
        lines[5],
    )
    assert "Traceback" not in captured.err
    assert (out / "results.csv").read_text().splitlines()[0] == HEADER
    assert_rows_equal(res.read_results(out), sweep_one.rows, columns=res.COLUMNS[:-1])
    settings = (out / "settings.json").read_text()
    assert "embedded Fashion-MNIST" in settings
    assert "first 5" in settings
    # Rerun: resumes, prints the same table.
    before = mtimes(out)
    assert run_main([*SMALL_CLI, "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[:4] == lines[:4]
    assert mtimes(out) == before


def test_cli_other_settings_exit_2(tmp_path, capsys, sweep_one):
    out = tmp_path / "copy"
    shutil.copytree(sweep_one.out, out)
    argv = [*SMALL_CLI, "-q", "--out", str(out), "--parametrization", "ntk"]
    assert run_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "parametrization" in err
    assert "--overwrite" in err
    assert run_main([*argv, "--overwrite"]) == 0
    assert {r["parametrization"] for r in res.read_results(out)} == {"ntk"}


def test_cli_help(capsys):
    assert run_main(["--help"]) == 0
    text = capsys.readouterr().out
    for phrase in (
        "in units",
        "MiB",
        "(default: 50:1000:50)",
        "(default: 2:10)",
        "(default: 100)",
        "(default: thesis)",
        "(default: 1024)",
        "examples:",
    ):
        assert phrase in text, phrase


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("bad")
    corrupt = folder / "corrupt.npz"
    np.savez(corrupt, X=np.zeros((4, 3)), y=np.zeros(4))
    corrupt.write_bytes(corrupt.read_bytes()[:60])  # zip cut short
    valid = folder / "valid.npz"
    np.savez(valid, X=np.zeros((4, 3)), y=np.zeros(4))
    return {
        "missing": folder / "missing.npz",
        "corrupt": corrupt,
        "valid": valid,
        "dir": folder,
    }


# (id, extra arguments, text the one-line message must contain)
USAGE_ERRORS = [
    ("activation", ["--activations", "tanh"], "'tanh'"),
    ("width-0", ["--widths", "0"], "--widths must be at least 1, got 0"),
    ("depth-1", ["--depths", "1"], "--depths must be at least 2, got 1"),
    ("seed-negative", ["--seeds", "-1"], "--seeds must be at least 0, got -1"),
    ("n-per-class-7000", ["--n-per-class", "7000"], "--n-per-class 7000"),
    ("missing-data", ["--data", "{missing}"], "{missing}"),
    ("corrupt-data", ["--data", "{corrupt}"], "{corrupt}"),
    ("range-reversed", ["--widths", "10:5"], "'10:5'"),
    ("range-four-parts", ["--depths", "2:3:1:1"], "'2:3:1:1'"),
    ("not-integer", ["--widths", "20,x"], "'x'"),
    (
        "data-and-data-dir",
        ["--data", "{valid}", "--data-dir", "{dir}"],
        "--data and --data-dir",
    ),
    ("jobs-0", ["--jobs", "0"], "--jobs must be at least 1, got 0"),
    ("memory-budget", ["--memory-budget", "-1"], "--memory-budget"),
    ("memory-budget-inf", ["--memory-budget", "inf"], "finite number of MiB, got inf"),
    ("classes", ["--classes", "0", "0"], "--classes 0 0"),
]
SUBPROCESS_ERRORS = [  # run for real: the cases README and the brief name
    case
    for case in USAGE_ERRORS
    if case[0]
    not in ("range-four-parts", "not-integer", "jobs-0", "memory-budget", "classes")
]


def usage_argv(extra, files, out):
    extra = [a.format(**files) for a in extra]
    base = list(SMALL_CLI)
    if "--data" in extra:
        # --n-per-class does not apply to --data, so leave it out there.
        at = base.index("--n-per-class")
        del base[at : at + 2]
    return [*base, "--out", str(out), *extra]


def check_usage_error(code, out, err, expected, files, folder):
    expected = expected.format(**files)
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.endswith("\n"), err
    assert err.count("\n") == 1, err
    assert err.startswith("python -m ntk_np.sweep: error: "), err
    assert expected in err, err
    assert not folder.exists()  # nothing written


@pytest.mark.parametrize(
    "extra, expected", [c[1:] for c in USAGE_ERRORS], ids=[c[0] for c in USAGE_ERRORS]
)
def test_cli_usage_errors(tmp_path, capsys, bad_files, extra, expected):
    out = tmp_path / "out"
    code = run_main(usage_argv(extra, bad_files, out))
    captured = capsys.readouterr()
    check_usage_error(code, captured.out, captured.err, expected, bad_files, out)


def subprocess_env() -> dict:
    env = dict(os.environ)
    # The package under test, wherever this process imported it from.
    package_root = str(Path(ntk_np.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(
        [package_root, *filter(None, [env.get("PYTHONPATH")])]
    )
    return env


@pytest.fixture(scope="module")
def subprocess_usage_errors(tmp_path_factory, bad_files) -> dict:
    """Run every case of SUBPROCESS_ERRORS at once, as real processes."""
    root = tmp_path_factory.mktemp("cli-errors")
    running = {}
    for name, extra, _ in SUBPROCESS_ERRORS:
        argv = usage_argv(extra, bad_files, root / name)
        running[name] = subprocess.Popen(
            [sys.executable, "-m", "ntk_np.sweep", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=root,
            env=subprocess_env(),
        )
    finished = {}
    for name, process in running.items():
        out, err = process.communicate(timeout=120)
        finished[name] = (process.returncode, out, err, root / name)
    return finished


@pytest.mark.parametrize(
    "name, expected",
    [(c[0], c[2]) for c in SUBPROCESS_ERRORS],
    ids=[c[0] for c in SUBPROCESS_ERRORS],
)
def test_cli_usage_errors_subprocess(
    subprocess_usage_errors, bad_files, name, expected
):
    # A real process configures logging, so any log record would show on stderr.
    code, out, err, folder = subprocess_usage_errors[name]
    check_usage_error(code, out, err, expected, bad_files, folder)


def test_cli_subprocess_end_to_end(tmp_path):
    out = tmp_path / "out"
    argv = [
        "--widths",
        "20",
        "--depths",
        "2,3",
        "--activations",
        "elu",
        "--n-per-class",
        "5",
        "--jobs",
        "1",
        "--no-progress",
        "--out",
        str(out),
        *NO_FIGURES,
    ]
    done = subprocess.run(
        [sys.executable, "-m", "ntk_np.sweep", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=subprocess_env(),
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["activation", "max", "lambda_min", "width", "depth"]
    assert lines[2].split()[0] == "elu"
    assert lines[3] == ""
    assert lines[4].startswith("2 kernels (2 computed")
    rows = res.read_results(out)
    assert [(r["activation"], r["width"], r["depth"]) for r in rows] == [
        ("elu", 20, 2),
        ("elu", 20, 3),
    ]
    assert sorted(p.name for p in (out / "spectra").iterdir()) == [
        "elu-w20-d2-s0.npy",
        "elu-w20-d3-s0.npy",
    ]


def test_cli_memory_budget_too_small_exit_2(tmp_path, capsys):
    argv = [*SMALL_CLI, "--method", "jacobian", "--memory-budget", "0.001"]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "memory budget of 1048 bytes (0.000999 MiB) is too small" in err


def test_cli_memory_budget_checked_before_work(tmp_path, capsys):
    argv = [*SMALL_CLI, "--certify", "always", "--memory-budget", "0.001"]
    argv[argv.index("--jobs") + 1] = "2"
    out = tmp_path / "r"
    assert main([*argv, "--out", str(out)]) == 2
    assert "too small for the QR route at width 40, depth 3" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "method, certify", [("jacobian", "never"), ("layerwise", "always")]
)
def test_memory_check_matches_routes(method, certify):
    # The up-front check must accept exactly the budget the routes accept.
    X, _ = ntk_np.load_sample(n_per_class=5)
    sizes = (784, 40, 40, 1)
    if method == "jacobian":
        need = ntk_np.kernel.jacobian_memory_needed(10, sizes)
    else:
        need = ntk_np.certify.qr_memory_needed(10, sizes)
    grid = {"widths": [40], "depths": [3], "activations": ["sigmoid"]}
    run_sweep(X, **grid, method=method, certify=certify, memory_budget=need)
    with pytest.raises(UsageError, match="too small"):
        run_sweep(X, **grid, method=method, certify=certify, memory_budget=need - 1)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_cli_killed_worker_stops_sweep(tmp_path):
    # Without the check, the pool starts a new worker and the sweep waits for
    # the lost task forever; communicate() would time out.
    out = tmp_path / "r"
    argv = "--widths 600:1000:100 --depths 2:10 --activations sigmoid relu"
    argv += " --certify always --jobs 2 --quiet --no-figures"
    process = subprocess.Popen(
        [sys.executable, "-m", "ntk_np.sweep", *argv.split(), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(),
    )
    try:
        results = out / "results.csv"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if results.exists() and len(results.read_text().splitlines()) > 1:
                break
            time.sleep(0.05)

        workers = spawned_workers(process.pid)
        assert workers
        os.kill(workers[0], signal.SIGKILL)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert f"worker process (pid {workers[0]}) ended" in lines[0]
    assert "Run the same command again to resume." in lines[0]
    assert 1 <= len(res.read_results(results)) < 90


def test_cli_interrupt_is_one_line(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    assert main([*SMALL_CLI, "--out", str(out)]) == 0
    capsys.readouterr()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweeping, "run_sweep", interrupted)
    assert main([*SMALL_CLI, "--out", str(out)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "interrupted; 8 kernels are saved" in err[0]


def test_cli_reports_reused_kernels(tmp_path, capsys):
    out = tmp_path / "r"
    assert main([*SMALL_CLI, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main([*SMALL_CLI, "--out", str(out)]) == 0
    assert "(0 computed, 8 already in the folder)" in capsys.readouterr().out
