"""The command ``python -m ntk_np.inspect``: one network up close.

It draws one network (by default ReLU, width 800, depth 3), computes its
empirical NTK on the sample with :func:`ntk_np.inspection.inspect_network` and
writes to a folder:

- ``figures/kernel.*``, the kernel as an image, samples in data order;
- ``figures/spectrum.*``, the sorted eigenvalues on a log axis with the
  smallest eigenvalue and the resolution floor marked;
- ``figures/trace_shares.*`` and ``trace_shares.csv``, the share of the trace
  that each layer's weights and biases contribute;
- ``eigenvalues.csv`` and ``report.md``.

With ``--certify auto`` (the default), a smallest eigenvalue at or below the
resolution floor is also computed from a QR factorisation of the Jacobian
(:mod:`ntk_np.certify`) and printed with its error bound. The files show the
``eigh`` values only.

The library code lives in :mod:`ntk_np.inspection` and loads once the
arguments have been parsed, so that ``--help`` and usage errors print without
loading Numba and SciPy.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .choices import ACTIVATIONS, METHODS, PARAMETRIZATIONS
from .cli import (
    HelpFormatter,
    UsageError,
    _Parser,
    add_certify_option,
    add_data_options,
    add_logging_options,
    add_memory_budget_option,
    configure_logging,
    load_data_from_args,
    memory_budget_from_args,
    prepare_output_folder,
)
from .data import CLASS_NAMES, DataError
from .report import add_figure_options

if TYPE_CHECKING:
    from .certify import CertifiedEigenvalue
    from .inspection import InspectResult
    from .network import Network

# Not __name__, which is "__main__" under python -m ntk_np.inspect.
logger = logging.getLogger("ntk_np.inspect")


def format_numbers(
    result: InspectResult, lambda_min: CertifiedEigenvalue | None = None
) -> str:
    """Return the spectrum's key numbers as aligned lines for the console.

    ``lambda_min`` from the ``qr`` route of :mod:`ntk_np.certify`, if given,
    is shown below the ``eigh`` value and sets the condition number.
    """
    spectrum = result.spectrum
    n_under = int((spectrum.eigenvalues <= spectrum.resolution_floor).sum())
    from_qr = lambda_min is not None and lambda_min.method == "qr"
    if from_qr and lambda_min.resolved:
        condition = f"{spectrum.lambda_max / lambda_min.value:.4g}"
    elif spectrum.below_floor:
        condition = "inf (lambda_min is unresolved)"
    else:
        condition = f"{spectrum.condition_number:.4g}"
    lines = [("smallest eigenvalue", spectrum.format_lambda_min())]
    if from_qr:
        lines.append(("smallest eigenvalue, QR", lambda_min.format()))
    lines += [
        ("largest eigenvalue", f"{spectrum.lambda_max:.6g}"),
        ("condition number", condition),
        ("resolution floor", f"{spectrum.resolution_floor:.3g} (N * eps * lambda_max)"),
        ("eigenvalues <= floor", f"{n_under} of {len(spectrum.eigenvalues)}"),
        ("trace", f"{spectrum.trace:.6g}"),
    ]
    width = max(len(name) for name, _ in lines)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in lines)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m ntk_np.inspect``."""
    parser = _Parser(
        prog="python -m ntk_np.inspect",
        description="Compute the empirical NTK of one network and write its "
        "kernel image, spectrum, trace by layer and a report.",
        epilog="examples:\n"
        "  python -m ntk_np.inspect                     # relu, width 800, depth 3\n"
        "  python -m ntk_np.inspect --activation sigmoid --width 300 --depth 8\n"
        "  python -m ntk_np.inspect --parametrization ntk --format pdf --out ntk-800x3",
        formatter_class=HelpFormatter,
    )

    net = parser.add_argument_group("network")
    net.add_argument(
        "--activation",
        choices=ACTIVATIONS,
        default="relu",
        help="activation of the hidden layers (default: relu)",
    )
    net.add_argument(
        "--width",
        type=int,
        default=800,
        metavar="N",
        help="units per hidden layer, at least 1 (default: 800)",
    )
    net.add_argument(
        "--depth",
        type=int,
        default=3,
        metavar="D",
        help="number of weight layers, at least 2 (default: 3)",
    )
    net.add_argument(
        "--parametrization",
        choices=PARAMETRIZATIONS,
        default="thesis",
        help="thesis: c_l = 1/sqrt(width), output 1; ntk: c_l = 1/sqrt(fan-in) "
        "(default: thesis)",
    )
    net.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="weight seed, at least 0 (default: 0)",
    )
    net.add_argument(
        "--method",
        choices=METHODS,
        default="layerwise",
        help="kernel route; both agree to rounding (default: layerwise)",
    )
    add_certify_option(net)
    add_memory_budget_option(net)

    add_data_options(parser)
    add_figure_options(parser, shared_scale=False)

    run = parser.add_argument_group("run")
    run.add_argument(
        "--out",
        default="inspect-results",
        metavar="DIR",
        help="output folder (default: inspect-results)",
    )
    add_logging_options(run, quiet_help="log only warnings and errors")
    return parser


def _network_from_args(args, n_inputs: int) -> Network:
    if args.width < 1:
        raise UsageError(f"--width must be at least 1, got {args.width}")
    if args.depth < 2:
        raise UsageError(f"--depth must be at least 2, got {args.depth}")
    if args.seed < 0:
        raise UsageError(f"--seed must be at least 0, got {args.seed}")
    from .network import make_network

    return make_network(
        args.width,
        args.depth,
        args.activation,
        args.parametrization,
        args.seed,
        n_inputs,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the inspect command; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args)
    # The computing modules load once the arguments have been parsed.
    from .certify import certify_lambda_min, check_memory_budget
    from .inspection import inspect_network, write_inspection
    from .kernel import MemoryBudgetError

    try:
        X, y, label = load_data_from_args(args)
        network = _network_from_args(args, X.shape[1])
        memory_budget = memory_budget_from_args(args)
        check_memory_budget(
            memory_budget, X.shape[0], network.layer_sizes, args.method, args.certify
        )
        prepare_output_folder(args.out)
        class_names = None
        if not args.data:
            class_names = tuple(CLASS_NAMES[c] for c in args.classes)
        logger.info(
            "computing the kernel of %s, seed %d, on %d samples",
            network.describe(),
            args.seed,
            X.shape[0],
        )
        result = inspect_network(
            network,
            X,
            y=y,
            method=args.method,
            class_names=class_names,
            data_source=label,
            memory_budget=memory_budget,
        )
        lambda_min = certify_lambda_min(
            result.spectrum, network, X, args.certify, memory_budget=memory_budget
        )
        figures, report = write_inspection(result, args.out, args.format, lambda_min)
    except (UsageError, DataError, MemoryBudgetError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    print(
        f"{network.describe()}, seed {args.seed}, N = {X.shape[0]}, "
        f"{args.method} kernel"
    )
    print(format_numbers(result, lambda_min))
    print(f"\n{len(figures)} figures and {report.name} in {report.parent}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
