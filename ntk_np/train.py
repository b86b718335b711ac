"""Train networks from the weights whose kernel was measured.

``python -m ntk_np.train`` draws each network with
:func:`ntk_np.make_network` and the sweep's seed, so it starts from the very
weights whose kernel the sweep measured, trains it with
:func:`ntk_np.training.train_network`, and compares the loss curve with what
the initial kernel predicts (:func:`ntk_np.training.compare_with_kernel`).

The networks are those of ``--networks`` (``ACTIVATION:WIDTH:DEPTH``), the
per-activation winners of a sweep (``--from-results DIR``), and the networks
of the kernel-drift comparison (``--drift-widths`` at ``--drift-depth`` with
``--drift-activation``, unless ``--no-drift``). Without ``--networks`` and
``--from-results`` the command trains ReLU 800x3 and Sigmoid 300x8, plus the
winners of ``results/`` if ``results/summary.csv`` exists. A network named
twice is trained once.

Into ``--out`` it writes:

``training.csv``
    One row per network and epoch: the measured loss, the run's status, the
    linearised prediction and the bounds (empty where a value does not exist).
``training_summary.csv``
    One row per network: settings, final losses, prediction gap, spectrum.
``kernel_drift.csv``
    One row per network and recorded epoch: the kernel's relative change and
    its smallest eigenvalue, with its route and error bound under
    ``--certify`` as in the sweep's ``results.csv``.
``figures/``
    Drawn by :func:`ntk_np.plot.write_training_figures`.
``report.md``
    A training section, added to the sweep's report or replacing an earlier
    training section.

Every run uses one BLAS thread, in worker processes when ``--jobs`` is above
1, so its numbers do not depend on the number of jobs.

With the default sweep's ``results/`` present, the default command trains 10
networks (two named, four winners, four more drift widths) for 100 epochs. On
a 2-core AMD EPYC virtual machine shared with other jobs (load average about
4) it took 81 s wall time and 64 s CPU time; without ``results/`` it trains 6
networks.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import multiprocessing
import os
import queue as queue_module
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from . import report as rep
from . import results as res
from .choices import (
    ACTIVATIONS,
    BOUND_NAMES,
    CERTIFY_POLICIES,
    DEFAULT_MEMORY_BUDGET,
    MODES,
    PARAMETRIZATIONS,
)
from .cli import (
    HelpFormatter,
    UsageError,
    _Parser,
    add_certify_option,
    add_data_options,
    add_jobs_option,
    add_logging_options,
    add_memory_budget_option,
    configure_logging,
    count_noun,
    ignore_sigint_in_workers,
    load_data_from_args,
    memory_budget_from_args,
    parse_int_list,
    prepare_output_folder,
)
from .data import DataError, data_fingerprint

if TYPE_CHECKING:
    from .training import KernelComparison, TrainingResult

ignore_sigint_in_workers(__name__)

logger = logging.getLogger("ntk_np.train")

DEFAULT_NETWORKS: tuple[str, ...] = ("relu:800:3", "sigmoid:300:8")
"""Networks trained when neither ``--networks`` nor ``--from-results`` is given."""

DEFAULT_DRIFT_WIDTHS: tuple[int, ...] = (50, 100, 200, 400, 800)
DEFAULT_KERNEL_EPOCHS: tuple[int, ...] = (0, 10, 50, 100)

REQUESTED, WINNER, DRIFT = "requested", "sweep winner", "kernel drift"

REPORT_BEGIN = rep.TRAINING_BEGIN
REPORT_END = rep.TRAINING_END


@dataclass(frozen=True)
class NetworkSpec:
    """An architecture as the command line names it, ``relu:800:3``."""

    activation: str
    width: int
    depth: int

    def __str__(self) -> str:
        return f"{self.activation}:{self.width}:{self.depth}"


def parse_network_spec(text: str) -> NetworkSpec:
    """Parse ``ACTIVATION:WIDTH:DEPTH``, such as ``relu:800:3``.

    Raises
    ------
    argparse.ArgumentTypeError
        Naming the spec and what is wrong with it.
    """
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(
            f"invalid network {text!r}; expected ACTIVATION:WIDTH:DEPTH such as "
            "relu:800:3"
        )
    activation, width, depth = parts
    if activation not in ACTIVATIONS:
        raise argparse.ArgumentTypeError(
            f"invalid network {text!r}: unknown activation {activation!r}; "
            f"expected one of {', '.join(ACTIVATIONS)}"
        )
    try:
        width, depth = int(width), int(depth)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid network {text!r}: width and depth must be integers"
        ) from None
    if width < 1:
        raise argparse.ArgumentTypeError(
            f"invalid network {text!r}: width must be at least 1, got {width}"
        )
    if depth < 2:
        raise argparse.ArgumentTypeError(
            f"invalid network {text!r}: depth must be at least 2, got {depth}"
        )
    return NetworkSpec(activation, width, depth)


@dataclass
class TrainingJob:
    """A network to train and why: ``requested``, ``sweep winner``, ``kernel drift``."""

    spec: NetworkSpec
    roles: list


@dataclass(eq=False)
class TrainingRun:
    """A trained network of the command, with its comparison to its kernel."""

    job: TrainingJob
    result: TrainingResult
    comparison: KernelComparison


def plan_jobs(
    requested: Sequence[NetworkSpec],
    winners: Sequence[NetworkSpec],
    drift: Sequence[NetworkSpec],
) -> list[TrainingJob]:
    """Merge the networks of each role into one job per architecture, in order."""
    jobs: dict = {}
    for role, specs in ((REQUESTED, requested), (WINNER, winners), (DRIFT, drift)):
        for spec in specs:
            job = jobs.setdefault(spec, TrainingJob(spec, []))
            if role not in job.roles:
                job.roles.append(role)
    return list(jobs.values())


def read_sweep_winners(folder: str | os.PathLike) -> tuple[list[NetworkSpec], dict]:
    """Read the per-activation winners of a sweep's results folder.

    The winners come from ``results.csv`` through
    :func:`ntk_np.results.summarize` or, without it, from ``summary.csv``.

    Returns
    -------
    winners : list of NetworkSpec
    settings : dict
        The folder's ``settings.json``, or an empty dict if it has none.

    Raises
    ------
    UsageError
        If the folder is missing, contains neither file, or a file cannot be
        read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"sweep results folder not found: {folder}")
    settings_path = folder / "settings.json"
    settings = {}
    try:
        if settings_path.is_file():
            settings = json.loads(settings_path.read_text())
        if (folder / "results.csv").is_file():
            rows = res.read_results(folder / "results.csv")
            summary = res.summarize(rows)
            seeds = sorted({row["seed"] for row in rows})
        elif (folder / "summary.csv").is_file():
            with open(folder / "summary.csv", newline="") as handle:
                summary = list(csv.DictReader(handle))
            seeds = []
        else:
            raise UsageError(
                f"results.csv and summary.csv not found in {folder}; pass a "
                "folder written by python -m ntk_np.sweep"
            )
        winners = [
            NetworkSpec(e["activation"], int(e["width"]), int(e["depth"]))
            for e in summary
        ]
    except (OSError, ValueError, KeyError) as err:
        if isinstance(err, UsageError):
            raise
        raise UsageError(f"cannot read the sweep results in {folder}: {err}") from None
    settings = dict(settings, seeds=seeds)
    return winners, settings


# ---------------------------------------------------------------------------
# Running the jobs, in this process or in worker processes.
# ---------------------------------------------------------------------------

# Worker state, set once per process by _init_worker.
_X: np.ndarray | None = None
_y: np.ndarray | None = None
_report_epoch: Callable | None = None


def _init_worker(X, y, report_epoch) -> None:
    global _X, _y, _report_epoch
    _X, _y, _report_epoch = X, y, report_epoch
    threadpool_limits(1, user_api="blas")


def _init_pool_worker(X, y, report_epoch) -> None:
    _init_worker(X, y, report_epoch)
    # Ctrl-C reaches the main process, which stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _train_job(job: TrainingJob, options: dict) -> TrainingRun:
    # Imported here, so that the parser and --help load no Numba or SciPy.
    from .network import make_network
    from .training import compare_with_kernel, train_network

    spec = job.spec
    network = make_network(
        spec.width,
        spec.depth,
        spec.activation,
        options["parametrization"],
        options["seed"],
        n_inputs=_X.shape[1],
    )

    def callback(epoch, loss):
        if _report_epoch is not None:
            _report_epoch(1)

    result = train_network(
        network,
        _X,
        _y,
        learning_rate=options["learning_rate"],
        epochs=options["epochs"],
        batch_size=options["batch_size"],
        mode=options["mode"],
        seed=options["seed"],
        kernel_epochs=options["kernel_epochs"],
        callback=callback,
        certify=options["certify"],
        memory_budget=options["memory_budget"],
    )
    return TrainingRun(job, result, compare_with_kernel(result))


def train_jobs(
    X,
    y,
    jobs: Sequence[TrainingJob],
    parametrization: str = "thesis",
    seed: int = 0,
    learning_rate: float = 1e-3,
    epochs: int = 100,
    batch_size: int = 1,
    mode: str = "sgd",
    kernel_epochs: Sequence[int] = DEFAULT_KERNEL_EPOCHS,
    workers: int = 1,
    progress: bool = False,
    certify: str = "auto",
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> list[TrainingRun]:
    """Train every job and compare it with its initial kernel.

    The kernel is recorded at epoch 0, at each of ``kernel_epochs`` and after
    the last epoch. A run that diverges stops with a status and the others
    carry on.

    Parameters
    ----------
    X : ndarray of shape (N, n_0)
    y : ndarray of shape (N,)
    jobs : sequence of TrainingJob
    parametrization, seed :
        As for :func:`ntk_np.make_network`. ``seed`` also seeds the shuffle.
    learning_rate, epochs, batch_size, mode :
        As for :func:`ntk_np.training.train_network`.
    kernel_epochs : sequence of int, default=(0, 10, 50, 100)
    workers : int, default=1
        Worker processes. Results do not depend on it.
    progress : bool, default=False
        Show a progress bar of epochs on standard error.
    certify : {'never', 'auto', 'always'}, default='auto'
        When a recorded kernel's ``lambda_min``, and with the initial one the
        bounds, comes from the QR route of
        :func:`ntk_np.certify.certify_lambda_min` instead of ``eigh``.
    memory_budget : int, default=1 GiB
        Bytes for the QR route.

    Returns
    -------
    list of TrainingRun
        In the order of ``jobs``.
    """
    if certify not in CERTIFY_POLICIES:
        raise UsageError(
            f"unknown certify policy {certify!r}; expected one of "
            + ", ".join(CERTIFY_POLICIES)
        )
    options = {
        "certify": certify,
        "memory_budget": memory_budget,
        "parametrization": parametrization,
        "seed": seed,
        "learning_rate": learning_rate,
        "epochs": epochs,
        "batch_size": batch_size,
        "mode": mode,
        "kernel_epochs": sorted(set(kernel_epochs) | {epochs}),
    }
    # The widest networks start first, so the slowest run does not start last.
    order = sorted(
        range(len(jobs)), key=lambda i: -(jobs[i].spec.width ** 2) * jobs[i].spec.depth
    )
    runs: dict = {}
    bar = tqdm(
        total=len(jobs) * epochs,
        unit="epoch",
        disable=not progress,
        dynamic_ncols=True,
    )
    with bar:
        if workers == 1 or len(jobs) == 1:
            _init_worker(X, y, bar.update)
            with threadpool_limits(1, user_api="blas"):
                for i in order:
                    run = _train_job(jobs[i], options)
                    runs[i] = run
                    bar.update(epochs - run.result.epochs_completed)
        else:
            context = multiprocessing.get_context("spawn")
            epochs_done = context.Queue()
            others = {p.pid for p in multiprocessing.active_children()}
            with ProcessPoolExecutor(
                max_workers=min(workers, len(jobs)),
                mp_context=context,
                initializer=_init_pool_worker,
                initargs=(X, y, epochs_done.put),
            ) as pool:
                try:
                    futures = {
                        pool.submit(_train_job, jobs[i], options): i for i in order
                    }
                    pending = set(futures)
                    while pending:
                        finished, pending = wait(
                            pending, timeout=0.2, return_when=FIRST_COMPLETED
                        )
                        _drain(epochs_done, bar)
                        for future in finished:
                            run = future.result()
                            runs[futures[future]] = run
                            bar.update(epochs - run.result.epochs_completed)
                except BaseException:
                    # Leaving the block would wait for the running jobs to end.
                    # Stop the workers now, on Ctrl-C as on a failed job.
                    pool.shutdown(wait=False, cancel_futures=True)
                    for process in multiprocessing.active_children():
                        if process.pid not in others:
                            process.terminate()
                    raise
            _drain(epochs_done, bar)
    return [runs[i] for i in range(len(jobs))]


def _drain(epochs_done, bar) -> None:
    while True:
        try:
            bar.update(epochs_done.get_nowait())
        except queue_module.Empty:
            return


# ---------------------------------------------------------------------------
# Files.
# ---------------------------------------------------------------------------

TRAINING_COLUMNS: tuple[str, ...] = (
    "network",
    "epoch",
    "loss",
    "status",
    "linearized_loss",
) + tuple(f"bound_{name}" for name in BOUND_NAMES)
"""Columns of ``training.csv``."""

SUMMARY_COLUMNS: tuple[str, ...] = (
    "network",
    "activation",
    "width",
    "depth",
    "parametrization",
    "roles",
    "seed",
    "mode",
    "learning_rate",
    "batch_size",
    "epochs",
    "epochs_completed",
    "status",
    "initial_loss",
    "final_loss",
    "linearized_final_loss",
    "max_relative_gap",
    "final_loss_ratio",
    "lambda_min",
    "lambda_min_method",
    "lambda_min_bound",
    "lambda_max",
    "resolution_floor",
    "below_floor",
    "max_theta_diagonal",
    "final_kernel_change",
    "seconds",
)
"""Columns of ``training_summary.csv``.

``max_relative_gap`` and ``final_loss_ratio`` are empty when the run stopped
early or the linearised prediction overflows (see :func:`gap_unavailable`).
``max_theta_diagonal`` is ``max_i Theta_0[i, i]``. A linearised SGD step of
batch size 1 on sample i scales ``r_i`` by ``1 - 2 eta Theta_0[i, i]``, which
amplifies ``r_i`` instead of shrinking it once ``2 eta Theta_0[i, i] > 2``.
"""

DRIFT_COLUMNS: tuple[str, ...] = (
    "network",
    "activation",
    "width",
    "depth",
    "epoch",
    "relative_change",
    "lambda_min",
    "lambda_max",
    "resolution_floor",
    "below_floor",
    "lambda_min_eigh",
    "lambda_min_method",
    "lambda_min_bound",
)
"""Columns of ``kernel_drift.csv``, with ``lambda_min`` as in ``results.csv``."""


def _cell(value) -> str:
    # repr keeps every digit of a float. NaN marks a value that does not exist.
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else repr(float(value))
    return str(value)


def _write_csv(path: Path, columns: Sequence[str], rows) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
    os.replace(tmp, path)


def training_rows(runs: Sequence[TrainingRun]):
    """Yield the rows of ``training.csv`` as dicts."""
    for run in runs:
        result, comparison = run.result, run.comparison
        bounds = {b.name: b.values for b in comparison.bounds}
        for epoch, loss in enumerate(result.losses):
            row = {
                "network": str(run.job.spec),
                "epoch": epoch,
                "loss": float(loss),
                "status": result.status,
                "linearized_loss": float(comparison.predicted[epoch]),
            }
            for name in BOUND_NAMES:
                values = bounds.get(name)
                row[f"bound_{name}"] = None if values is None else float(values[epoch])
            yield row


def gap_unavailable(run: TrainingRun) -> str:
    """Return why a run's prediction gap is not reported, or an empty string.

    A run that stopped early is compared only up to the stop, often at epoch 0
    alone, where the gap is 0 by construction. A prediction that overflows
    passes through values near the float64 maximum first, so its largest gap
    (such as 1e219) measures the overflow and not the network.
    """
    result = run.result
    if result.status != "ok":
        return "run stopped"
    predicted = run.comparison.predicted[: result.epochs_completed + 1]
    if not np.isfinite(predicted).all():
        return "prediction overflows"
    return ""


def summary_row(run: TrainingRun) -> dict:
    """Return the ``training_summary.csv`` row of a run."""
    result, comparison = run.result, run.comparison
    network = result.network
    spectrum = comparison.spectrum
    gap_reported = not gap_unavailable(run)
    return {
        "network": str(run.job.spec),
        "activation": network.activation,
        "width": network.width,
        "depth": network.depth,
        "parametrization": network.parametrization,
        "roles": "; ".join(run.job.roles),
        "seed": result.seed,
        "mode": result.mode,
        "learning_rate": result.learning_rate,
        "batch_size": result.batch_size,
        "epochs": result.epochs,
        "epochs_completed": result.epochs_completed,
        "status": result.status,
        "initial_loss": float(result.losses[0]),
        "final_loss": result.final_loss,
        "linearized_final_loss": float(comparison.predicted[result.epochs_completed]),
        "max_relative_gap": comparison.max_relative_gap if gap_reported else math.nan,
        "final_loss_ratio": comparison.final_ratio if gap_reported else math.nan,
        "lambda_min": comparison.lambda_min.value,
        "lambda_min_method": comparison.lambda_min.method,
        "lambda_min_bound": comparison.lambda_min.bound,
        "lambda_max": spectrum.lambda_max,
        "resolution_floor": spectrum.resolution_floor,
        "below_floor": not comparison.lambda_min.resolved,
        "max_theta_diagonal": float(np.diag(result.initial_kernel.theta).max()),
        "final_kernel_change": (
            result.kernels[-1].relative_change if result.status == "ok" else math.nan
        ),
        "seconds": result.seconds,
    }


def drift_rows(runs: Sequence[TrainingRun]):
    """Yield the rows of ``kernel_drift.csv`` as dicts."""
    for run in runs:
        network = run.result.network
        for snapshot in run.result.kernels:
            spectrum = snapshot.spectrum
            lambda_min = snapshot.lambda_min
            yield {
                "network": str(run.job.spec),
                "activation": network.activation,
                "width": network.width,
                "depth": network.depth,
                "epoch": snapshot.epoch,
                "relative_change": snapshot.relative_change,
                "lambda_min": lambda_min.value,
                "lambda_max": spectrum.lambda_max,
                "resolution_floor": spectrum.resolution_floor,
                "below_floor": not lambda_min.resolved,
                "lambda_min_eigh": spectrum.lambda_min,
                "lambda_min_method": lambda_min.method,
                "lambda_min_bound": lambda_min.bound,
            }


def _number(value: float) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.4g}"


def _prediction_text(value: float) -> str:
    # linearized_losses leaves NaN after the epoch where it overflowed.
    return _number(value) if math.isfinite(value) else "overflow"


def _lambda_text(certified) -> str:
    if not certified.resolved:
        return f"< {certified.bound:.2g} (unresolved)"
    if certified.method == "qr":
        return f"{certified.value:.4g} (qr)"
    return f"{certified.value:.4g}"


def results_table(runs: Sequence[TrainingRun]) -> tuple[list[str], list[list[str]]]:
    """Return the header and rows of the per-network table of console and report."""
    header = [
        "network",
        "status",
        "initial loss",
        "final loss",
        "linearised final",
        "max gap",
        "lambda_min",
        "kernel change",
    ]
    rows = []
    for run in runs:
        row = summary_row(run)
        status = row["status"]
        if status != "ok":
            status += f" at epoch {row['epochs_completed']}"
        reason = gap_unavailable(run)
        gap = f"n/a ({reason})" if reason else _number(row["max_relative_gap"])
        rows.append(
            [
                row["network"],
                status,
                _number(row["initial_loss"]),
                _number(row["final_loss"]),
                _prediction_text(row["linearized_final_loss"]),
                gap,
                _lambda_text(run.comparison.lambda_min),
                _number(row["final_kernel_change"]),
            ]
        )
    return header, rows


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return rows as an aligned text table for the console."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in lines
    )


def training_section(
    runs: Sequence[TrainingRun], settings: Sequence[tuple], figures, base
) -> str:
    """Return the markdown training section of ``report.md``, with its markers."""
    header, rows = results_table(runs)
    table_text = (
        "Losses are mean squared errors over the N samples. The linearised "
        "final loss is what the initial kernel predicts with the same sample "
        "order. Max gap is the largest relative difference between the "
        "measured and predicted loss over the epochs, n/a when the run "
        "stopped early or the prediction overflows. Kernel change is "
        "||Theta_t - Theta_0||_F / ||Theta_0||_F after the last epoch. A "
        "linearised SGD step of batch size 1 on sample i scales r_i by "
        "1 - 2 eta Theta_0[i, i], so the prediction overflows when that "
        "factor is below -1 for the samples (max_theta_diagonal in "
        "training_summary.csv).\n\n" + rep.markdown_table(header, rows)
    )
    figures_text = rep.figures_markdown(figures, base) if figures else "None drawn."
    body = "\n\n".join(
        [
            "## Training from the measured initial weights",
            "### Settings\n\n" + rep.markdown_table(["setting", "value"], settings),
            "### Results\n\n" + table_text,
            "### Figures\n\n" + figures_text,
            "### Data files\n\n`training.csv`, `training_summary.csv`, "
            "`kernel_drift.csv`",
        ]
    )
    return f"{REPORT_BEGIN}\n{body}\n{REPORT_END}\n"


def write_report_section(folder: Path, section: str) -> Path:
    """Add the training section to ``folder/report.md``, replacing an earlier one.

    A folder without ``report.md`` gets a new one that contains only this section.
    ``python -m ntk_np.plot`` and the sweep keep the section when they rewrite
    the report (see :func:`ntk_np.report.write_sweep_report`).
    """
    path = folder / "report.md"
    text = path.read_text() if path.is_file() else ""
    span = rep.training_section_span(text)
    if span is not None:
        start, stop = span
        text = text[:start] + section + text[stop:].lstrip("\n")
    elif text:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        text = "# Training of networks from their initial weights\n\n" + section
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------
# The command line.
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m ntk_np.train``."""
    parser = _Parser(
        prog="python -m ntk_np.train",
        description="Train networks from the weights whose NTK the sweep "
        "measured, and compare each loss curve with the prediction of its "
        "initial kernel and the bounds from its smallest eigenvalue.",
        epilog="examples:\n"
        "  python -m ntk_np.train          # relu:800:3, sigmoid:300:8, "
        "winners of results/\n"
        "  python -m ntk_np.train --networks relu:800:3 elu:200:4 --no-drift\n"
        "  python -m ntk_np.train --from-results results --mode gd "
        "--learning-rate 0.01",
        formatter_class=HelpFormatter,
    )
    _add_network_options(parser)
    _add_training_options(parser)
    _add_drift_options(parser)
    add_data_options(parser)
    run = parser.add_argument_group("run")
    run.add_argument(
        "--out",
        default="results",
        metavar="DIR",
        help="output folder (default: results)",
    )
    add_jobs_option(run)
    rep.add_figure_options(parser, shared_scale=False)
    add_logging_options(run)
    return parser


def _add_network_options(parser) -> None:
    nets = parser.add_argument_group("networks")
    nets.add_argument(
        "--networks",
        nargs="+",
        type=parse_network_spec,
        metavar="SPEC",
        help="networks as ACTIVATION:WIDTH:DEPTH, depth in weight layers "
        f"(default: {' '.join(DEFAULT_NETWORKS)}, unless --from-results is given)",
    )
    nets.add_argument(
        "--from-results",
        metavar="DIR",
        help="also train the per-activation winners of the sweep in DIR "
        "(default: results, if results/summary.csv exists and --networks is "
        "not given)",
    )
    nets.add_argument(
        "--parametrization",
        choices=PARAMETRIZATIONS,
        help="thesis: c_l = 1/sqrt(width), output 1; ntk: c_l = 1/sqrt(fan-in) "
        "(default: that of the sweep whose winners are trained, else thesis)",
    )
    nets.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="weight seed, as in the sweep, and seed of the sample order (default: 0)",
    )


def _add_training_options(parser) -> None:
    train = parser.add_argument_group("training")
    train.add_argument(
        "--learning-rate",
        type=float,
        default=1e-3,
        metavar="ETA",
        help="step size eta (default: 0.001)",
    )
    train.add_argument(
        "--epochs", type=int, default=100, metavar="N", help="epochs (default: 100)"
    )
    train.add_argument(
        "--batch-size",
        type=int,
        default=1,
        metavar="B",
        help="samples per SGD step; ignored with --mode gd (default: 1)",
    )
    train.add_argument(
        "--mode",
        choices=MODES,
        default="sgd",
        help="sgd: shuffled batches every epoch; gd: one full-batch step per "
        "epoch (default: sgd)",
    )
    add_certify_option(train)
    add_memory_budget_option(train, routes="")


def _add_drift_options(parser) -> None:
    drift = parser.add_argument_group("kernel drift")
    # None marks the option not given, so that _check_options can reject
    # explicit epochs past --epochs and drop those of the default.
    drift.add_argument(
        "--kernel-epochs",
        type=parse_int_list,
        metavar="LIST",
        help="epochs after which the kernel is recomputed, as 0,10,50 or "
        "START:STOP:STEP, each in 0..EPOCHS; the last epoch is always added "
        "(default: those of 0,10,50,100 up to --epochs)",
    )
    drift.add_argument(
        "--drift-widths",
        type=parse_int_list,
        default=list(DEFAULT_DRIFT_WIDTHS),
        metavar="LIST",
        help="widths of the networks whose kernel drift is plotted against "
        "width (default: 50,100,200,400,800)",
    )
    drift.add_argument(
        "--drift-depth",
        type=int,
        default=3,
        metavar="D",
        help="depth of the drift networks, in weight layers (default: 3)",
    )
    drift.add_argument(
        "--drift-activation",
        choices=ACTIVATIONS,
        default="relu",
        help="activation of the drift networks (default: relu)",
    )
    drift.add_argument(
        "--no-drift", action="store_true", help="train no drift networks"
    )


def _check_options(args, n_samples: int) -> None:
    """Check the option values and fill in the default of ``--kernel-epochs``."""
    if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        raise UsageError(
            f"--learning-rate must be a positive number, got {args.learning_rate}"
        )
    if args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
    if args.mode == "sgd" and not 1 <= args.batch_size <= n_samples:
        raise UsageError(
            f"--batch-size must be between 1 and the number of samples "
            f"{n_samples}, got {args.batch_size}"
        )
    if args.seed < 0:
        raise UsageError(f"--seed must be at least 0, got {args.seed}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if args.kernel_epochs is None:
        args.kernel_epochs = [e for e in DEFAULT_KERNEL_EPOCHS if e <= args.epochs]
    outside = [e for e in args.kernel_epochs if not 0 <= e <= args.epochs]
    if outside:
        raise UsageError(
            f"--kernel-epochs must be in 0..{args.epochs} (0 to --epochs), got "
            f"{rep.format_int_list(outside)}"
        )
    if not args.no_drift:
        if args.drift_depth < 2:
            raise UsageError(
                f"--drift-depth must be at least 2, got {args.drift_depth}"
            )
        if any(w < 1 for w in args.drift_widths):
            raise UsageError(
                f"--drift-widths must be at least 1, got {args.drift_widths}"
            )


def _choose_networks(args, X):
    """Return ``(jobs, parametrization)`` from the network options."""
    requested = list(args.networks or [])
    folder = args.from_results
    if folder is None and not requested and (Path("results") / "summary.csv").is_file():
        folder = "results"
    if not requested and args.from_results is None:
        requested = [parse_network_spec(s) for s in DEFAULT_NETWORKS]

    winners, parametrization = [], args.parametrization
    if folder is not None:
        winners, settings = read_sweep_winners(folder)
        swept = settings.get("parametrization")
        if swept and parametrization and swept != parametrization:
            raise UsageError(
                f"--parametrization {parametrization} differs from the "
                f"parametrization {swept} of the sweep in {folder}, whose "
                "kernels were measured with it"
            )
        parametrization = parametrization or swept
        seeds = settings.get("seeds")
        if seeds and args.seed not in seeds:
            logger.warning(
                "seed %d is not among the seeds %s of the sweep in %s, so the "
                "winners start from weights the sweep did not measure",
                args.seed,
                seeds,
                folder,
            )
        swept_data = settings.get("data_sha256")
        if swept_data is not None and swept_data != data_fingerprint(X):
            source = settings.get("data_source")
            source_text = f" ({source})" if source else ""
            raise UsageError(
                f"the sweep in {folder} used other data{source_text} than this "
                "run; pass the same data options as the sweep, or --networks "
                "without --from-results to train without its winners"
            )
        if swept_data is None and settings.get("n_samples") not in (None, X.shape[0]):
            logger.warning(
                "the sweep in %s used %s samples but this run uses %d, so its "
                "winners were chosen on other data",
                folder,
                settings["n_samples"],
                X.shape[0],
            )
        logger.info(
            "sweep winners from %s: %s", folder, " ".join(str(w) for w in winners)
        )
    drift = []
    if not args.no_drift:
        drift = [
            NetworkSpec(args.drift_activation, w, args.drift_depth)
            for w in sorted(set(args.drift_widths))
        ]
    return plan_jobs(requested, winners, drift), parametrization or "thesis"


def _settings_rows(args, label, parametrization, n_samples, seconds) -> list[tuple]:
    recorded = {e for e in args.kernel_epochs if e <= args.epochs} | {0, args.epochs}
    return [
        ("data", label),
        ("samples N", n_samples),
        ("parametrization", parametrization),
        ("seed (weights and sample order)", args.seed),
        ("mode", args.mode),
        ("learning rate eta", args.learning_rate),
        ("batch size", args.batch_size if args.mode == "sgd" else n_samples),
        ("epochs", args.epochs),
        ("kernel recorded after epochs", rep.format_int_list(recorded)),
        ("wall time (s)", f"{seconds:.1f}"),
    ]


def _write_outputs(out: Path, runs, args, label, parametrization, n_samples, seconds):
    from .plot import write_training_figures

    _write_csv(out / "training.csv", TRAINING_COLUMNS, training_rows(runs))
    _write_csv(
        out / "training_summary.csv", SUMMARY_COLUMNS, (summary_row(r) for r in runs)
    )
    _write_csv(out / "kernel_drift.csv", DRIFT_COLUMNS, drift_rows(runs))
    curve_runs = [(r.result, r.comparison) for r in runs if r.job.roles != [DRIFT]]
    drift_results = [r.result for r in runs if DRIFT in r.job.roles]
    run_label = f"{parametrization} parametrisation, N = {n_samples}"
    figures = write_training_figures(
        curve_runs, drift_results, out / "figures", run_label, args.format
    )
    settings = _settings_rows(args, label, parametrization, n_samples, seconds)
    section = training_section(runs, settings, figures, out)
    return figures, write_report_section(out, section)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the training command and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args)
    prog = parser.prog
    started = time.perf_counter()
    interrupted = f"{prog}: interrupted before any results were written to {args.out}/"
    try:
        # Loaded once the arguments have been parsed, like the computing modules.
        from .certify import check_memory_budget, qr_memory_needed
        from .kernel import MemoryBudgetError
        from .network import architecture_sizes
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    try:
        X, y, label = load_data_from_args(args)
        _check_options(args, X.shape[0])
        jobs, parametrization = _choose_networks(args, X)
        memory_budget = memory_budget_from_args(args)
        # The network that needs the most memory is checked first, so that
        # the message gives the budget every network fits in.
        all_sizes = [
            architecture_sizes(X.shape[1], j.spec.width, j.spec.depth) for j in jobs
        ]
        for sizes in sorted(all_sizes, key=lambda s: -qr_memory_needed(X.shape[0], s)):
            check_memory_budget(memory_budget, X.shape[0], sizes, certify=args.certify)
        out = prepare_output_folder(args.out)
        logger.info("data: %s, %d samples of %d features", label, *X.shape)
        logger.info(
            "training %s: %s",
            count_noun(len(jobs), "network"),
            " ".join(str(j.spec) for j in jobs),
        )
        runs = train_jobs(
            X,
            y,
            jobs,
            parametrization=parametrization,
            seed=args.seed,
            learning_rate=args.learning_rate,
            epochs=args.epochs,
            batch_size=args.batch_size,
            mode=args.mode,
            kernel_epochs=args.kernel_epochs,
            workers=args.jobs,
            certify=args.certify,
            memory_budget=memory_budget,
            progress=not (args.no_progress or args.quiet),
        )
        seconds = time.perf_counter() - started
        figures, report = _write_outputs(
            out, runs, args, label, parametrization, X.shape[0], seconds
        )
    except (UsageError, DataError, MemoryBudgetError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # NOTE: results are written only once every network is trained, so an
        # interrupted run leaves none and starts over when run again.
        print(interrupted, file=sys.stderr)
        return 130
    print(format_table(*results_table(runs)))
    if not args.quiet:
        print(
            f"\n{count_noun(len(runs), 'network')} in {seconds:.1f} s; "
            f"{count_noun(len(figures), 'figure')} in {out / 'figures'}/; "
            f"report {report}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
