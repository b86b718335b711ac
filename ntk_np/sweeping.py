"""Kernels and spectra over a grid of widths, depths, activations and seeds.

:func:`run_sweep` computes the kernel and spectrum of every network of a grid.
The study's grid (widths 50 to 1000 in steps of 50, depths 2 to 10, four
activations) has 720 kernels of 200 Fashion-MNIST images. Results go to a
folder as they are computed (see :mod:`ntk_np.results`); a rerun with the same
folder resumes where it stopped. The command ``python -m ntk_np.sweep`` (see
:mod:`ntk_np.sweep`) is a thin layer over it.

Every kernel is computed with one BLAS thread, in worker processes when
``jobs > 1``, so its value does not depend on the number of jobs: multithreaded
BLAS sums in a different order and changes the last bits.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from . import results as res
from .activations import activation_code
from .certify import (
    certified_lambda_min,
    check_memory_budget,
    eigh_lambda_min,
    qr_needed,
)
from .choices import (
    ACTIVATIONS,
    CERTIFY_POLICIES,
    DEFAULT_DEPTHS,
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_WIDTHS,
    METHODS,
    PARAMETRIZATIONS,
)
from .cli import UsageError
from .data import data_fingerprint
from .kernel import MemoryBudgetError, _ntk_over_depths, empirical_ntk
from .network import (
    _check_int,
    architecture_sizes,
    draw_hidden_layers,
    make_network,
)
from .spectrum import kernel_spectrum

logger = logging.getLogger("ntk_np.sweep")


@dataclass
class SweepResult:
    """Kernels, spectra and summary of a sweep, as :func:`run_sweep` returns them.

    Attributes
    ----------
    rows : list of dict
        One per kernel of the grid, with the keys of ``results.COLUMNS``, in
        the order of ``results.sort_key``.
    summary : list of dict
        Per activation, see :func:`ntk_np.results.summarize`.
    spectra : dict of str to ndarray
        Ascending eigenvalues keyed by ``results.kernel_key``.
    out : Path or None
        The results folder, if one was written.
    seconds : float
        Wall time of the call.
    n_computed : int
        Kernels computed by this call; the others were read from ``out``.
    """

    rows: list
    summary: list
    spectra: dict = field(repr=False)
    out: Path | None
    seconds: float
    n_computed: int = 0


def _check_grid(name, values, minimum):
    values = list(values)
    if not values:
        raise UsageError(f"{name} must not be empty")
    checked = []
    for value in values:
        try:
            checked.append(_check_int(name[:-1], value, minimum))
        except (TypeError, ValueError) as err:
            raise UsageError(str(err)) from None
    return tuple(sorted(set(checked)))


# Worker state, set once per process by _init_worker.
_X: np.ndarray | None = None
_RESULTS = None  # the queue that carries each kernel's row to the main process


def _set_data(X: np.ndarray) -> None:
    global _X
    _X = X


def _init_worker(X: np.ndarray, results) -> None:
    global _RESULTS
    _set_data(X)
    _RESULTS = results
    threadpool_limits(1, user_api="blas")
    # Ctrl-C reaches the main process, which stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _compute_group(task, emit) -> int:
    """Compute the kernels of one (width, seed) for several activations and depths.

    ``task[2]`` is a tuple of ``(activation, depths)``. With the layerwise
    route the hidden layers are drawn once for all of them: every network of
    one seed and width takes its hidden layers from the same stream. Each
    kernel's row and eigenvalues go to ``emit(row, eigenvalues)`` as soon as
    they are known, so that an interrupted task loses at most one kernel.
    Returns the number of kernels computed.
    """
    width, seed, plan, parametrization, method, budget, certify = task
    X = _X
    count = 0
    # A row's seconds run from the end of the previous row, so the first row
    # also counts drawing the shared hidden layers.
    start = time.perf_counter()
    hidden = None
    if method == "layerwise":
        deepest = max(max(depths) for _, depths in plan)
        hidden = draw_hidden_layers(X.shape[1], width, deepest - 1, seed)
    for activation, depths in plan:
        if method == "layerwise":
            kernels = _ntk_over_depths(
                X, width, sorted(depths), activation, parametrization, seed, hidden
            )
        else:
            kernels = (
                (
                    d,
                    empirical_ntk(
                        make_network(
                            width, d, activation, parametrization, seed, X.shape[1]
                        ),
                        X,
                        method=method,
                        memory_budget=budget,
                    ),
                )
                for d in depths
            )
        for depth, theta in kernels:
            spectrum = kernel_spectrum(theta)
            lambda_min = eigh_lambda_min(spectrum)
            if qr_needed(spectrum, certify):
                network = make_network(
                    width, depth, activation, parametrization, seed, X.shape[1]
                )
                lambda_min = certified_lambda_min(network, X, memory_budget=budget)
            now = time.perf_counter()
            row = {
                "activation": activation,
                "width": width,
                "depth": depth,
                "seed": seed,
                "parametrization": parametrization,
                "n_samples": X.shape[0],
                "lambda_min": lambda_min.value,
                "lambda_max": spectrum.lambda_max,
                "trace": spectrum.trace,
                "resolution_floor": spectrum.resolution_floor,
                "below_floor": not lambda_min.resolved,
                "seconds": now - start,
                "lambda_min_eigh": spectrum.lambda_min,
                "lambda_min_method": lambda_min.method,
                "lambda_min_bound": lambda_min.bound,
            }
            start = now
            emit(row, spectrum.eigenvalues)
            count += 1
    return count


def _compute_group_in_worker(task) -> int:
    return _compute_group(
        task, lambda row, eigenvalues: _RESULTS.put((row, eigenvalues))
    )


class WorkerError(RuntimeError):
    """A worker process of the sweep ended before its task was done."""


def _run_in_workers(X, tasks, jobs: int, record) -> None:
    """Run ``tasks`` in spawned worker processes, recording each kernel on arrival.

    The workers send every kernel through a queue as soon as it is computed,
    and each task returns its count of kernels, so the loop ends once all
    tasks are done and that many kernels have arrived. A task's exception is
    raised here as soon as the task fails.

    Raises
    ------
    WorkerError
        If a worker process ends, for example killed for lack of memory. The
        pool would start a new worker but never finish the lost task.
    """
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    others = {p.pid for p in multiprocessing.active_children()}
    pool = None
    try:
        pool = context.Pool(
            processes=min(jobs, len(tasks)),
            initializer=_init_worker,
            initargs=(X, results),
        )
        workers = {p.pid for p in multiprocessing.active_children()} - others
        pending = [
            pool.apply_async(_compute_group_in_worker, (task,)) for task in tasks
        ]
        expected = None
        received = 0
        while expected is None or received < expected:
            try:
                row, eigenvalues = results.get(timeout=0.1)
            except queue.Empty:
                pass
            else:
                record(row, eigenvalues)
                received += 1
                continue
            for task_result in pending:
                if task_result.ready() and not task_result.successful():
                    task_result.get()  # raises the worker's exception
            alive = {p.pid for p in multiprocessing.active_children()}
            if not workers <= alive:
                raise WorkerError(
                    f"a worker process (pid {min(workers - alive)}) ended before "
                    "its kernels were done, perhaps killed for lack of memory"
                )
            if expected is None and all(r.ready() for r in pending):
                expected = sum(r.get() for r in pending)
    finally:
        # Terminating the workers at once lets an error or Ctrl-C stop the
        # sweep. A Ctrl-C inside the constructor leaves no pool to terminate,
        # but the workers it started are children of this process.
        if pool is not None:
            pool.terminate()
        else:
            for process in multiprocessing.active_children():
                if process.pid not in others:
                    process.terminate()


def _check_memory_budget(budget, shape, width, depth, method, certify) -> None:
    """Raise UsageError before any work if the widest, deepest network cannot fit."""
    n_samples, n_inputs = shape
    sizes = architecture_sizes(n_inputs, width, depth)
    try:
        check_memory_budget(budget, n_samples, sizes, method, certify)
    except MemoryBudgetError as err:
        raise UsageError(str(err)) from None


def _prepare_folder(
    out: Path, settings: dict, data_source: str, overwrite: bool
) -> dict:
    """Create or reopen a results folder; return the rows already computed.

    Only the keys of ``settings`` must match for earlier rows to be reused.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "spectra").mkdir(exist_ok=True)
    except OSError as err:
        raise UsageError(
            f"cannot create results folder {out}: {err.strerror}"
        ) from None
    settings_path = out / "settings.json"
    results_path = out / "results.csv"
    done = {}
    if settings_path.exists() and results_path.exists() and not overwrite:
        try:
            old = json.loads(settings_path.read_text())
        except (OSError, ValueError) as err:
            raise UsageError(
                f"cannot read {settings_path}: {err}; repair it or pass --overwrite"
            ) from None
        changed = [k for k in settings if old.get(k) != settings[k]]
        if changed:
            raise UsageError(
                f"{out} contains results for other settings (changed: "
                f"{', '.join(changed)}); choose another --out folder or pass "
                "--overwrite"
            )
        for row in res.read_results(results_path):
            key = res.kernel_key(
                row["activation"], row["width"], row["depth"], row["seed"]
            )
            if (out / "spectra" / f"{key}.npy").exists():
                done[key] = row
    meta = {**settings, "data_source": data_source}
    settings_path.write_text(json.dumps(meta, indent=2) + "\n")
    res.write_results(results_path, sorted(done.values(), key=res.sort_key))
    return done


def run_sweep(
    X,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    depths: Sequence[int] = DEFAULT_DEPTHS,
    activations: Sequence[str] = ACTIVATIONS,
    seeds: Sequence[int] = (0,),
    parametrization: str = "thesis",
    method: str = "layerwise",
    certify: str = "auto",
    out: str | os.PathLike | None = None,
    jobs: int = 1,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    overwrite: bool = False,
    progress: bool = False,
    data_source: str = "",
) -> SweepResult:
    """Compute the kernel and spectrum of every network of a grid.

    Parameters
    ----------
    X : array_like of shape (N, d)
        Inputs, such as :func:`ntk_np.load_sample` returns.
    widths, depths, seeds : sequence of int
        Grid; widths at least 1, depths at least 2, seeds at least 0.
    activations : sequence of str
        Names from :data:`ntk_np.ACTIVATIONS`.
    parametrization : {'thesis', 'ntk'}, default='thesis'
    method : {'layerwise', 'jacobian'}, default='layerwise'
    certify : {'never', 'auto', 'always'}, default='auto'
        When to compute ``lambda_min`` by the ``qr`` route of
        :mod:`ntk_np.certify` instead of taking the ``eigh`` value: never,
        only when the ``eigh`` value is at or below its resolution floor, or
        for every kernel.
    out : path, optional
        Results folder. Rows are appended as kernels finish; kernels already
        in the folder (same settings) are not computed again. At the end,
        ``summary.csv`` and ``spectra.npz`` cover every kernel in the folder,
        which may be more than the returned result covers.
    jobs : int, default=1
        Worker processes. Results do not depend on it.
    memory_budget : int, default=1 GiB
        Bytes per kernel for ``method='jacobian'`` and for the ``qr`` route.
    overwrite : bool, default=False
        Discard results in ``out`` computed with other settings instead of
        raising.
    progress : bool, default=False
        Show a progress bar on standard error.
    data_source : str, optional
        Description of the data, stored in ``settings.json``.

    Returns
    -------
    SweepResult

    Raises
    ------
    UsageError
        For an invalid grid or a results folder holding other settings.
    """
    started = time.perf_counter()
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2:
        raise UsageError(f"X must have shape (N, d) with N >= 2, got {X.shape}")
    widths = _check_grid("widths", widths, 1)
    depths = _check_grid("depths", depths, 2)
    seeds = _check_grid("seeds", seeds, 0)
    activations = list(dict.fromkeys(activations))
    if not activations:
        raise UsageError("activations must not be empty")
    for name in activations:
        try:
            activation_code(name)
        except ValueError as err:
            raise UsageError(str(err)) from None
    if parametrization not in PARAMETRIZATIONS:
        raise UsageError(
            f"unknown parametrization {parametrization!r}; expected one of "
            + ", ".join(PARAMETRIZATIONS)
        )
    if method not in METHODS:
        raise UsageError(
            f"unknown method {method!r}; expected one of " + ", ".join(METHODS)
        )
    if certify not in CERTIFY_POLICIES:
        raise UsageError(
            f"unknown certify policy {certify!r}; expected one of "
            + ", ".join(CERTIFY_POLICIES)
        )
    try:
        jobs = _check_int("jobs", jobs, 1)
        memory_budget = _check_int("memory_budget", memory_budget, 1)
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None

    _check_memory_budget(
        memory_budget, X.shape, max(widths), max(depths), method, certify
    )

    settings = {
        "parametrization": parametrization,
        "method": method,
        "certify": certify,
        "n_samples": int(X.shape[0]),
        "n_inputs": int(X.shape[1]),
        "data_sha256": data_fingerprint(X),
    }
    out_path = Path(out) if out is not None else None
    done = {}
    if out_path is not None:
        done = _prepare_folder(out_path, settings, data_source, overwrite)

    rows: dict = {}
    spectra: dict = {}
    groups: dict = {}
    for activation in activations:
        for width in widths:
            for seed in seeds:
                todo = []
                for depth in depths:
                    key = res.kernel_key(activation, width, depth, seed)
                    if key in done:
                        rows[key] = done[key]
                        spectra[key] = np.load(out_path / "spectra" / f"{key}.npy")
                    else:
                        todo.append(depth)
                if todo:
                    plan = groups.setdefault((width, seed), [])
                    plan.append((activation, tuple(todo)))
    # One task per (width, seed) draws its hidden layers once for every
    # activation; with fewer such tasks than jobs, one per activation instead.
    plans = [(key, tuple(plan)) for key, plan in groups.items()]
    if len(plans) < jobs:
        plans = [(key, (entry,)) for key, plan in plans for entry in plan]
    tasks = [
        (width, seed, plan, parametrization, method, memory_budget, certify)
        for (width, seed), plan in plans
    ]
    n_total = len(activations) * len(widths) * len(depths) * len(seeds)
    n_todo = n_total - len(rows)
    logger.info("data: %s, %d samples of %d features", data_source or "X", *X.shape)
    if rows:
        logger.info(
            "resuming: %d of %d kernels already in %s", len(rows), n_total, out_path
        )
    # Widest networks first, so the slowest tasks do not start last.
    tasks.sort(key=lambda t: -t[0] * t[0] * sum(max(d) for _, d in t[2]))

    def record(row, eigenvalues):
        key = res.kernel_key(row["activation"], row["width"], row["depth"], row["seed"])
        rows[key] = row
        spectra[key] = eigenvalues
        if out_path is not None:
            np.save(out_path / "spectra" / f"{key}.npy", eigenvalues)
            res.append_result(out_path / "results.csv", row)
        bar.update(1)

    bar = tqdm(
        total=n_todo,
        unit="kernel",
        disable=not progress or n_todo == 0,
        dynamic_ncols=True,
    )
    with bar:
        if jobs == 1 or len(tasks) <= 1:
            _set_data(X)
            with threadpool_limits(1, user_api="blas"):
                for task in tasks:
                    _compute_group(task, record)
        else:
            _run_in_workers(X, tasks, jobs, record)

    ordered = sorted(rows.values(), key=res.sort_key)
    from_qr = [row for row in ordered if row["lambda_min_method"] == "qr"]
    if from_qr:
        logger.info(
            "lambda_min of %d kernel(s) from the qr route, %d of them resolved",
            len(from_qr),
            sum(not row["below_floor"] for row in from_qr),
        )
    summary = res.summarize(ordered)
    if out_path is not None:
        # The folder's files cover every kernel in it, also those of an
        # earlier, larger grid that this call did not request.
        everything = sorted(
            res.read_results(out_path / "results.csv"), key=res.sort_key
        )
        res.write_results(out_path / "results.csv", everything)
        folder_spectra = {}
        for row in everything:
            key = res.kernel_key(
                row["activation"], row["width"], row["depth"], row["seed"]
            )
            if key not in spectra:
                spectra_file = out_path / "spectra" / f"{key}.npy"
                folder_spectra[key] = np.load(spectra_file)
            else:
                folder_spectra[key] = spectra[key]
        np.savez(out_path / "spectra.npz", **folder_spectra)
        res.write_summary(out_path / "summary.csv", res.summarize(everything))
    return SweepResult(
        rows=ordered,
        summary=summary,
        spectra=spectra,
        out=out_path,
        seconds=time.perf_counter() - started,
        n_computed=n_todo,
    )
