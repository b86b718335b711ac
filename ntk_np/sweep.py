"""The command ``python -m ntk_np.sweep``: kernels and spectra over a grid.

It runs :func:`ntk_np.run_sweep` on the study's grid by default: widths 50 to
1000 in steps of 50, depths 2 to 10, four activations, 720 kernels of 200
Fashion-MNIST images. Results go to a folder as they are computed (see
:mod:`ntk_np.results`); a rerun with the same folder resumes where it stopped.
At the end the command draws the figures into ``figures/`` and writes
``report.md`` (see :func:`ntk_np.plot.render_results`), unless
``--no-figures`` is given.

Building the parser loads no Numba, SciPy or Matplotlib, so ``--help`` and
usage errors print at once. The computing modules load when a sweep starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import results as res
from .choices import (
    ACTIVATIONS,
    DEFAULT_DEPTHS,
    DEFAULT_WIDTHS,
    METHODS,
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
)
from .data import DataError
from .report import add_figure_options

ignore_sigint_in_workers(__name__)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m ntk_np.sweep``."""
    parser = _Parser(
        prog="python -m ntk_np.sweep",
        description="Compute the empirical NTK and its eigenvalues for every "
        "network of a grid of widths, depths and activations, and print per "
        "activation the greatest smallest eigenvalue.",
        epilog="examples:\n"
        "  python -m ntk_np.sweep                      # the full 720-kernel grid\n"
        "  python -m ntk_np.sweep --widths 100:500:100 --depths 2,3 "
        "--activations relu sigmoid\n"
        "  python -m ntk_np.sweep --seeds 0:4 --out results-5seeds",
        formatter_class=HelpFormatter,
    )
    grid = parser.add_argument_group("grid")
    grid.add_argument(
        "--widths",
        type=parse_int_list,
        default=list(DEFAULT_WIDTHS),
        metavar="LIST",
        help="hidden-layer widths in units, as 100,200 or START:STOP:STEP "
        "(inclusive) (default: 50:1000:50)",
    )
    grid.add_argument(
        "--depths",
        type=parse_int_list,
        default=list(DEFAULT_DEPTHS),
        metavar="LIST",
        help="numbers of weight layers, at least 2, same syntax (default: 2:10)",
    )
    grid.add_argument(
        "--activations",
        nargs="+",
        choices=ACTIVATIONS,
        default=list(ACTIVATIONS),
        metavar="NAME",
        help="activations among " + ", ".join(ACTIVATIONS) + " (default: all four)",
    )
    grid.add_argument(
        "--seeds",
        type=parse_int_list,
        default=[0],
        metavar="LIST",
        help="weight seeds, same syntax; the summary averages over them (default: 0)",
    )
    grid.add_argument(
        "--parametrization",
        choices=PARAMETRIZATIONS,
        default="thesis",
        help="thesis: c_l = 1/sqrt(width), output 1; ntk: c_l = 1/sqrt(fan-in) "
        "(default: thesis)",
    )
    grid.add_argument(
        "--method",
        choices=METHODS,
        default="layerwise",
        help="kernel route; both agree to rounding (default: layerwise)",
    )
    add_memory_budget_option(grid)
    add_certify_option(grid)
    add_data_options(parser)
    run = parser.add_argument_group("run")
    run.add_argument(
        "--out",
        default="results",
        metavar="DIR",
        help="results folder; a rerun skips the kernels it contains (default: results)",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="discard results in --out computed with other settings",
    )
    add_jobs_option(run)
    add_logging_options(run)
    figures = add_figure_options(parser)
    figures.add_argument(
        "--no-figures",
        action="store_true",
        help="write no figures and no report.md",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep command; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args)
    prog = parser.prog
    try:
        # The computing modules load once the arguments have been parsed.
        from . import sweeping
        from .kernel import MemoryBudgetError
    except KeyboardInterrupt:
        _report_stop(f"{prog}: interrupted", args.out)
        return 130
    try:
        X, _, label = load_data_from_args(args)
        _check_options(args)
        result = sweeping.run_sweep(
            X,
            widths=args.widths,
            depths=args.depths,
            activations=args.activations,
            seeds=args.seeds,
            parametrization=args.parametrization,
            method=args.method,
            certify=args.certify,
            out=args.out,
            jobs=args.jobs,
            memory_budget=memory_budget_from_args(args),
            overwrite=args.overwrite,
            progress=not (args.no_progress or args.quiet),
            data_source=label,
        )
        if not args.no_figures:
            # Imported here so that worker processes start without matplotlib.
            from .plot import render_results

            _, report = render_results(result.out, args.format, args.shared_scale)
    except (UsageError, DataError, MemoryBudgetError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except sweeping.WorkerError as err:
        _report_stop(f"{prog}: error: {err}", args.out)
        return 1
    except KeyboardInterrupt:
        _report_stop(f"{prog}: interrupted", args.out)
        return 130
    print(res.format_summary(result.summary))
    if not args.quiet:
        reused = len(result.rows) - result.n_computed
        print(
            f"\n{count_noun(len(result.rows), 'kernel')} ({result.n_computed} "
            f"computed, {reused} already in the folder) in {result.seconds:.1f} s; "
            f"results in {result.out}/"
        )
        if not args.no_figures:
            print(f"figures in {result.out / 'figures'}/; report {report}")
    in_folder = _count_saved(result.out)
    if in_folder > len(result.rows):
        print(
            f"The table covers the {count_noun(len(result.rows), 'kernel')} "
            "requested; "
            f"summary.csv, spectra.npz and the report cover all {in_folder} "
            f"kernels in {result.out}/."
        )
    return 0


def _check_options(args) -> None:
    """Raise UsageError, naming the option, for values the parser cannot check."""
    for option, values, minimum in (
        ("--widths", args.widths, 1),
        ("--depths", args.depths, 2),
        ("--seeds", args.seeds, 0),
    ):
        if values and min(values) < minimum:
            raise UsageError(f"{option} must be at least {minimum}, got {min(values)}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    memory_budget_from_args(args)


def _report_stop(reason: str, out: str) -> None:
    """Print one line: why the sweep stopped, and how many kernels are saved."""
    saved = _count_saved(Path(out))
    print(
        f"{reason}; {saved} kernels are saved in {out}/. "
        "Run the same command again to resume.",
        file=sys.stderr,
    )


def _count_saved(out: Path) -> int:
    try:
        return len(res.read_results(out))
    except (OSError, ValueError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
