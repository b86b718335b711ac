"""Tests for the command ``python -m ntk_np.train``, called through ``main()``.

Runs use the embedded Fashion-MNIST sample with 5 images per class (N = 10)
and a few epochs, so each call takes a few seconds, about half of it drawing
the figures.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import spawned_workers

import ntk_np
from ntk_np import run_sweep
from ntk_np.train import (
    DRIFT_COLUMNS,
    REPORT_BEGIN,
    REPORT_END,
    REQUESTED,
    SUMMARY_COLUMNS,
    TRAINING_COLUMNS,
    TrainingJob,
    TrainingRun,
    main,
    parse_network_spec,
    results_table,
    summary_row,
    train_jobs,
    write_report_section,
)
from ntk_np.training import prediction_gap

QUICK = ["--n-per-class", "5", "--epochs", "2", "--no-progress", "--quiet"]


def run(argv) -> int:
    """Return main's exit status, also when argparse exits."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as exit_:
        return exit_.code


def read_csv(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def summary(out) -> dict:
    return {row["network"]: row for row in read_csv(out / "training_summary.csv")}


@pytest.fixture(scope="module")
def basic_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "out"
    argv = [
        "--networks",
        "relu:20:3",
        "sigmoid:10:3",
        "--drift-widths",
        "10,20",
        "--kernel-epochs",
        "1",
        "--jobs",
        "1",
        "--out",
        out,
        *QUICK,
    ]
    return run(argv), out


def test_main_succeeds(basic_run):
    status, _ = basic_run
    assert status == 0


def test_training_csv(basic_run):
    _, out = basic_run
    rows = read_csv(out / "training.csv")
    assert tuple(rows[0]) == TRAINING_COLUMNS
    networks = [r["network"] for r in rows]
    # relu:20:3 is also a drift network and is trained once.
    assert sorted(set(networks)) == ["relu:10:3", "relu:20:3", "sigmoid:10:3"]
    assert len(rows) == 3 * 3
    assert {r["status"] for r in rows} == {"ok"}


def test_summary_csv(basic_run):
    _, out = basic_run
    rows = summary(out)
    assert tuple(next(iter(rows.values()))) == SUMMARY_COLUMNS
    assert rows["relu:20:3"]["roles"] == "requested; kernel drift"
    assert rows["relu:10:3"]["roles"] == "kernel drift"
    assert float(rows["sigmoid:10:3"]["final_loss"]) < float(
        rows["sigmoid:10:3"]["initial_loss"]
    )


def test_kernel_drift_csv(basic_run):
    _, out = basic_run
    rows = read_csv(out / "kernel_drift.csv")
    assert tuple(rows[0]) == DRIFT_COLUMNS
    epochs = sorted(int(r["epoch"]) for r in rows if r["network"] == "relu:10:3")
    assert epochs == [0, 1, 2]
    for row in rows:
        assert row["lambda_min_method"] == "eigh"
        assert row["lambda_min"] == row["lambda_min_eigh"]


def test_kernel_drift_csv_certifies(tmp_path):
    # Sigmoid 4x14 kernels are below eigh's floor at every epoch, so each
    # drift row takes lambda_min from the QR route.
    out = tmp_path / "deep"
    argv = [*QUICK, "--networks", "sigmoid:4:14", "--drift-widths", "4"]
    argv += ["--drift-activation", "sigmoid", "--drift-depth", "14"]
    assert run([*argv, "--kernel-epochs", "0,1,2", "--out", str(out)]) == 0
    rows = read_csv(out / "kernel_drift.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for row in rows:
        assert row["lambda_min_method"] == "qr"
        assert row["below_floor"] == "false"
        assert float(row["lambda_min"]) > float(row["lambda_min_bound"])
        assert float(row["lambda_min_eigh"]) <= float(row["resolution_floor"])


def test_figures_written(basic_run):
    _, out = basic_run
    names = sorted(p.name for p in (out / "figures").iterdir())
    assert names == [
        "kernel_drift.png",
        "training_losses.png",
        "training_relu-w20-d3.png",
        "training_sigmoid-w10-d3.png",
    ]


def test_report_section(basic_run):
    _, out = basic_run
    text = (out / "report.md").read_text()
    assert text.count(REPORT_BEGIN) == 1
    assert text.count(REPORT_END) == 1
    assert "figures/training_losses.png" in text


def test_report_keeps_earlier_text(tmp_path):
    (tmp_path / "report.md").write_text("# Sweep\n\nearlier text\n")
    argv = ["--networks", "relu:10:2", "--no-drift", "--out", tmp_path, *QUICK]
    assert run(argv) == 0
    text = (tmp_path / "report.md").read_text()
    assert text.startswith("# Sweep\n\nearlier text\n\n" + REPORT_BEGIN)
    assert text.count(REPORT_BEGIN) == 1


def test_report_section_replaced(tmp_path):
    (tmp_path / "report.md").write_text("# Sweep\n")
    write_report_section(tmp_path, f"{REPORT_BEGIN}\nfirst\n{REPORT_END}\n")
    write_report_section(tmp_path, f"{REPORT_BEGIN}\nsecond\n{REPORT_END}\n")
    text = (tmp_path / "report.md").read_text()
    assert text == f"# Sweep\n\n{REPORT_BEGIN}\nsecond\n{REPORT_END}\n"


@pytest.fixture(scope="module")
def divergent_runs(tmp_path_factory):
    """relu:50:3 diverges at learning rate 0.05; sigmoid:5:2 trains."""
    base = tmp_path_factory.mktemp("divergent")
    common = ["--networks", "relu:50:3", "sigmoid:5:2", "--learning-rate", "0.05"]
    common += ["--no-drift", *QUICK]
    statuses = [run([*common, "--jobs", jobs, "--out", base / jobs]) for jobs in "12"]
    return statuses, base


def test_divergent_network_does_not_stop_others(divergent_runs):
    statuses, base = divergent_runs
    assert statuses == [0, 0]
    rows = summary(base / "1")
    assert rows["relu:50:3"]["status"] in ("diverged", "non-finite")
    assert rows["sigmoid:5:2"]["status"] == "ok"
    assert rows["sigmoid:5:2"]["epochs_completed"] == "2"


def test_stopped_run_has_no_gap(divergent_runs):
    _, base = divergent_runs
    rows = summary(base / "1")
    assert rows["relu:50:3"]["max_relative_gap"] == ""
    assert rows["relu:50:3"]["final_loss_ratio"] == ""
    assert rows["sigmoid:5:2"]["max_relative_gap"] != ""
    assert "| n/a (run stopped) |" in (base / "1" / "report.md").read_text()


def test_overflowing_prediction_has_no_gap():
    X, y = ntk_np.load_sample(n_per_class=5)
    job = TrainingJob(parse_network_spec("relu:10:2"), [REQUESTED])
    (run,) = train_jobs(X, y, [job], epochs=3, kernel_epochs=(0,))
    # What linearized_losses returns when the linear dynamics overflow during
    # epoch 3: huge values first, then inf.
    predicted = run.comparison.predicted.copy()
    predicted[2:] = (1e219, math.inf)
    gap, ratio = prediction_gap(run.result.losses, predicted)
    comparison = dataclasses.replace(
        run.comparison, predicted=predicted, max_relative_gap=gap, final_ratio=ratio
    )
    overflowed = TrainingRun(run.job, run.result, comparison)

    row = summary_row(overflowed)
    header, cells = results_table([overflowed])
    assert math.isnan(row["max_relative_gap"])
    assert math.isnan(row["final_loss_ratio"])
    assert cells[0][header.index("max gap")] == "n/a (prediction overflows)"


@pytest.mark.parametrize("quiet", [False, True])
def test_console_output(tmp_path, capsys, quiet):
    argv = ["--networks", "relu:10:2", "--no-drift", "--out", tmp_path]
    argv += ["--n-per-class", "5", "--epochs", "1", "--no-progress"]
    assert run([*argv, *(["--quiet"] if quiet else [])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("network")
    assert lines[2].startswith("relu:10:2")
    if quiet:
        assert len(lines) == 3
    else:
        assert lines[-1].startswith("1 network in ")
        assert "; 2 figures in " in lines[-1]


def test_jobs_do_not_change_numbers(divergent_runs):
    _, base = divergent_runs
    single = (base / "1" / "training.csv").read_text()
    parallel = (base / "2" / "training.csv").read_text()
    assert single == parallel


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory):
    import ntk_np

    folder = tmp_path_factory.mktemp("sweep") / "results"
    X, _ = ntk_np.load_sample(n_per_class=5)
    run_sweep(
        X, widths=(10, 20), depths=(2, 3), activations=("relu", "sigmoid"), out=folder
    )
    return folder


def test_from_results_trains_winners(sweep_folder, tmp_path):
    argv = ["--from-results", sweep_folder, "--no-drift", "--out", tmp_path, *QUICK]
    assert run(argv) == 0
    rows = summary(tmp_path)
    assert len(rows) == 2
    for row in rows.values():
        assert row["roles"] == "sweep winner"


def test_from_results_other_data(sweep_folder, tmp_path, capsys):
    # Swapping the classes keeps N = 10 but changes the data.
    argv = ["--from-results", sweep_folder, "--classes", "9", "0", "--out", tmp_path]
    assert run([*argv, *QUICK]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"the sweep in {sweep_folder} used other data" in err
    assert "pass the same data options as the sweep" in err
    assert not (tmp_path / "training.csv").exists()


def test_default_adds_winners_of_results(sweep_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(sweep_folder.parent)
    argv = ["--no-drift", "--n-per-class", "5", "--epochs", "1", "--no-progress"]
    assert run([*argv, "--quiet", "--out", tmp_path]) == 0
    rows = summary(tmp_path)
    assert rows["relu:800:3"]["roles"] == "requested"
    assert rows["sigmoid:300:8"]["roles"] == "requested"
    assert len(rows) == 4


def test_parametrization_conflict(sweep_folder, tmp_path, capsys):
    argv = [
        "--from-results",
        sweep_folder,
        "--parametrization",
        "ntk",
        "--out",
        tmp_path,
    ]
    assert run([*argv, *QUICK]) == 2
    assert "differs from the parametrization thesis" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--networks", "relu:0:3"], "'relu:0:3'"),
        (["--networks", "tanh:10:2"], "'tanh:10:2'"),
        (["--networks", "relu:10"], "'relu:10'"),
        (["--networks", "relu:ten:2"], "'relu:ten:2'"),
        (["--networks", "relu:10:1"], "'relu:10:1'"),
        (["--learning-rate", "-1"], "--learning-rate"),
        (["--batch-size", "11"], "--batch-size"),
        (["--epochs", "0"], "--epochs"),
        (["--from-results", "no-such-folder"], "no-such-folder"),
        (
            ["--kernel-epochs", "3"],
            "--kernel-epochs must be in 0..2 (0 to --epochs), got 3",
        ),
        (["--kernel-epochs", "0,500"], "got 500"),
        (["--kernel-epochs", "-1"], "got -1"),
        (["--data", "x.npz"], "--n-per-class cannot be used with --data x.npz"),
        (["--classes", "0", "0"], "--classes 0 0 is invalid"),
        (["--memory-budget", "inf"], "finite number of MiB, got inf"),
        (
            ["--networks", "sigmoid:30:8", "--certify", "always"]
            + ["--memory-budget", "0.01"],
            "too small",
        ),
    ],
)
def test_usage_errors_exit_2(tmp_path, capsys, argv, message):
    assert run([*QUICK, *argv, "--out", tmp_path]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_parse_network_spec():
    spec = parse_network_spec("leaky_relu:300:8")
    assert (spec.activation, spec.width, spec.depth) == ("leaky_relu", 300, 8)
    assert str(spec) == "leaky_relu:300:8"


def test_out_file_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    argv = [*QUICK, "--networks", "relu:5:2", "--no-drift", "--out", blocker]
    assert run(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"python -m ntk_np.train: error: --out {blocker} exists and is not a folder"
    ]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_interrupt_stops_workers(tmp_path):
    # SIGINT to the main process only, as `kill -INT` or `timeout` send it:
    # without the handling, leaving the pool waited for the running jobs and
    # the command ended in a traceback.
    argv = "--networks relu:800:3 relu:700:3 --no-drift --epochs 200 --jobs 2 -q"
    process = subprocess.Popen(
        [sys.executable, "-m", "ntk_np.train", *argv.split(), "--out", "t"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        workers = []
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.1)
            workers = spawned_workers(process.pid)
        assert len(workers) == 2
        time.sleep(2)  # into training
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130
    assert err.strip().splitlines() == [
        "python -m ntk_np.train: interrupted before any results were written to t/"
    ]
    time.sleep(0.5)
    assert [pid for pid in workers if Path(f"/proc/{pid}").exists()] == []


def test_budget_message_names_largest_need(tmp_path, capsys):
    # relu 800x3 comes first but sigmoid 300x8 needs more memory for the qr
    # route; the message must give the budget that fits both.
    argv = [*QUICK, "--networks", "relu:800:3", "sigmoid:300:8", "--no-drift"]
    argv += ["--certify", "always", "--memory-budget", "0.3", "--out", tmp_path]
    assert run(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "width 300, depth 8" in err[0]
