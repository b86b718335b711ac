"""Tests for the data options that ntk_np.cli adds to the sweep, inspect and train
commands, through argparse and through each command's ``main()``."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import numpy as np
import pytest

from ntk_np import inspect as insp
from ntk_np import sweep, train
from ntk_np.cli import UsageError, add_data_options, load_data_from_args
from ntk_np.data import DataError

COMMANDS = {
    "sweep": (sweep.main, ["--widths", "5", "--depths", "2", "--no-figures"]),
    "inspect": (insp.main, ["--width", "5", "--depth", "2"]),
    "train": (train.main, ["--networks", "relu:5:2", "--no-drift", "--epochs", "1"]),
}


def parse(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_data_options(parser)
    return parser.parse_args(argv)


@pytest.fixture
def npz_file(tmp_path):
    path = tmp_path / "sample.npz"
    X = np.random.default_rng(0).random((6, 4))
    np.savez(path, X=X, y=np.repeat([0.0, 1.0], 3))
    return path


def test_defaults_filled_in():
    args = parse([])
    assert args.n_per_class is None
    assert args.classes is None
    X, y, label = load_data_from_args(args)
    assert args.n_per_class == 100
    assert tuple(args.classes) == (0, 9)
    assert X.shape == (200, 784)
    assert "classes 0 and 9, first 100 training images" in label


def test_help_states_defaults():
    parser = argparse.ArgumentParser()
    add_data_options(parser)
    text = " ".join(parser.format_help().split())
    assert "(default: 100)" in text
    assert "(default: 0 9, T-shirt/top and Ankle boot)" in text


@pytest.mark.parametrize(
    ("extra", "given"),
    [
        (["--n-per-class", "100"], "--n-per-class"),
        (["--classes", "0", "9"], "--classes"),
        (["--classes", "0", "9", "--n-per-class", "5"], "--n-per-class and --classes"),
    ],
)
def test_data_rejects_sample_options(npz_file, extra, given):
    args = parse(["--data", str(npz_file), *extra])
    with pytest.raises(UsageError) as excinfo:
        load_data_from_args(args)
    assert str(excinfo.value) == (
        f"{given} cannot be used with --data {npz_file}, which uses every sample "
        "of the file"
    )


def test_data_alone_loads_file(npz_file):
    X, y, label = load_data_from_args(parse(["--data", str(npz_file)]))
    assert X.shape == (6, 4)
    assert label == f"{npz_file} (6 samples)"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--n-per-class", "0"], "--n-per-class 0 is invalid, expected a positive"),
        (["--n-per-class", "7000"], "--n-per-class 7000 exceeds the 6000 training"),
        (["--classes", "1", "1"], "--classes 1 1 is invalid, expected two distinct"),
        (["--classes", "3", "5"], "--classes 3 5 are not in the embedded copy"),
        (["--classes", "3", "5"], ". Pass --data-dir with the Fashion-MNIST"),
    ],
)
def test_messages_name_options(argv, expected):
    with pytest.raises(DataError) as excinfo:
        load_data_from_args(parse(argv))
    message = str(excinfo.value)
    assert expected in message
    assert "n_per_class" not in message
    assert "classes=" not in message
    assert "data_dir" not in message


def test_message_keeps_path_text(tmp_path):
    folder = tmp_path / "n_per_class=3 data_dir"
    with pytest.raises(DataError) as excinfo:
        load_data_from_args(parse(["--data-dir", str(folder)]))
    assert str(excinfo.value) == f"data directory not found: {folder}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_commands_reject_classes_with_data(command, npz_file, tmp_path, capsys):
    main, argv = COMMANDS[command]
    out = tmp_path / "out"
    argv = [*argv, "--data", str(npz_file), "--classes", "0", "9"]
    assert main([*argv, "--out", str(out), "-q", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"python -m ntk_np.{command}: error: --classes cannot be used with --data "
        f"{npz_file}, which uses every sample of the file\n"
    )
    assert not out.exists()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_commands_run_with_data(command, npz_file, tmp_path):
    main, argv = COMMANDS[command]
    out = tmp_path / "out"
    assert main([*argv, "--data", str(npz_file), "--out", str(out), "-q"]) == 0
    assert out.is_dir()


# Loaded only once a command has valid arguments and starts computing.
HEAVY_MODULES = ("numba", "scipy", "matplotlib")

_IMPORT_CHECK = """
import sys
import ntk_np
{body}
print(",".join(m for m in {heavy!r} if m in sys.modules))
"""


def _heavy_modules_loaded(body: str) -> list[str]:
    code = _IMPORT_CHECK.format(body=body, heavy=HEAVY_MODULES)
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return [m for m in run.stdout.strip().split(",") if m]


def test_import_loads_no_heavy_modules():
    assert _heavy_modules_loaded("ntk_np.__version__") == []


@pytest.mark.parametrize("command", ["sweep", "inspect", "train"])
def test_help_loads_no_heavy_modules(command):
    body = f"from ntk_np import {command}\n{command}.build_parser().format_help()"
    assert _heavy_modules_loaded(body) == []


def test_first_use_of_a_name_loads_its_module():
    body = (
        "kernel = ntk_np.empirical_ntk\n"
        "assert kernel.__module__ == 'ntk_np.kernel'\n"
        "assert ntk_np.results.COLUMNS[0] == 'activation'"
    )
    assert "numba" in _heavy_modules_loaded(body)


def test_package_exports_resolve():
    import ntk_np

    for name in ntk_np.__all__:
        assert getattr(ntk_np, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        _ = ntk_np.nonexistent


def test_verbose_logs_only_ntk_np(tmp_path):
    # PDF output makes fontTools log INFO lines and -v makes Matplotlib log
    # DEBUG lines, unless only the ntk_np loggers are configured.
    argv = "--width 20 --depth 2 --n-per-class 5 --format pdf -v --no-progress"
    run = subprocess.run(
        [sys.executable, "-m", "ntk_np.inspect", *argv.split()]
        + ["--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stderr.strip().splitlines()
    assert any(line.startswith("INFO ntk_np.inspect") for line in lines)
    for line in lines:
        assert " ntk_np." in line or line.startswith("WARNING"), line


@pytest.mark.parametrize("command", ["sweep", "inspect", "train", "plot"])
def test_help_wraps_description_keeps_examples(command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    module = importlib.import_module(f"ntk_np.{command}")
    parser = module.build_parser()
    text = parser.format_help()
    assert max(len(line) for line in text.split("examples:")[0].splitlines()) <= 80
    examples = text.split("examples:\n")[1].splitlines()
    assert all(line.startswith("  python -m ntk_np.") for line in examples if line)
