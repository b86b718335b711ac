"""Pieces shared by the command-line tools: parsing, data options and logging.

The commands are thin layers over library functions. Each builds its parser
with :class:`_Parser`, so that a usage error prints one line and exits with
status 2, and catches :class:`UsageError` and :class:`ntk_np.data.DataError`
to do the same for invalid values found after parsing.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import signal
import sys
from pathlib import Path

import numpy as np

from .choices import CERTIFY_POLICIES, DEFAULT_MEMORY_BUDGET
from .data import EMBEDDED_CLASSES, DataError, load_sample

DEFAULT_N_PER_CLASS = 100
"""Images per class when ``--n-per-class`` is not given."""

# Rewrites of the messages of ntk_np.data.load_sample that name a Python
# parameter, so that command-line users read the option they typed. The
# patterns are anchored to the message wording, and any other message passes
# unchanged.
_OPTION_NAMES: tuple[tuple[str, str], ...] = (
    (r"^n_per_class=(-?\d+)", r"--n-per-class \1"),
    (r"^classes=\((-?\d+), (-?\d+)\)", r"--classes \1 \2"),
    (r"\. Pass data_dir with ", ". Pass --data-dir with "),
)


class UsageError(ValueError):
    """A request that cannot run as given (bad grid, clashing results folder)."""


def parse_int_list(text: str) -> list[int]:
    """Parse ``"100"``, ``"100,200"`` or an inclusive range ``"50:1000:50"``."""
    values = []
    for part in text.split(","):
        part = part.strip()
        if ":" in part:
            pieces = part.split(":")
            if len(pieces) not in (2, 3):
                raise argparse.ArgumentTypeError(
                    f"invalid range {part!r}; expected START:STOP or START:STOP:STEP"
                )
            try:
                start, stop, *step = (int(p) for p in pieces)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"invalid range {part!r}; expected integers"
                ) from None
            step = step[0] if step else 1
            if step < 1 or stop < start:
                raise argparse.ArgumentTypeError(
                    f"invalid range {part!r}; expected START <= STOP and STEP >= 1"
                )
            values.extend(range(start, stop + 1, step))
        else:
            try:
                values.append(int(part))
            except ValueError:
                raise argparse.ArgumentTypeError(f"invalid integer {part!r}") from None
    return values


class HelpFormatter(argparse.HelpFormatter):
    """Wrap one-paragraph text to the terminal; print text with line breaks as is.

    The commands' descriptions are single paragraphs, and their epilogs are
    examples with one command per line.
    """

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit with status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Add the options that choose the images (shared by the commands)."""
    group = parser.add_argument_group("data")
    # None marks an option not given, so that load_data_from_args can reject
    # it next to --data and fill in the default otherwise.
    group.add_argument(
        "--n-per-class",
        type=int,
        metavar="N",
        help="images per class, the first N of each in file order (default: "
        f"{DEFAULT_N_PER_CLASS})",
    )
    group.add_argument(
        "--classes",
        type=int,
        nargs=2,
        metavar=("A", "B"),
        help="the two Fashion-MNIST classes, targets 0 and 1 (default: "
        f"{EMBEDDED_CLASSES[0]} {EMBEDDED_CLASSES[1]}, T-shirt/top and Ankle boot)",
    )
    group.add_argument(
        "--data-dir",
        metavar="DIR",
        help="read the training IDX files from DIR instead of the embedded copy "
        "of classes 0 and 9",
    )
    group.add_argument(
        "--data",
        metavar="FILE.npz",
        help="use X (N x d) and y (N) from a .npz file, whole, instead of "
        "Fashion-MNIST; cannot be combined with --n-per-class or --classes",
    )


def _option_message(message: str) -> str:
    """Replace the parameter names of a `load_sample` message by option names."""
    for pattern, replacement in _OPTION_NAMES:
        message = re.sub(pattern, replacement, message, count=1)
    return message


def load_data_from_args(args) -> tuple[np.ndarray, np.ndarray, str]:
    """Load the sample that the data options select; return ``(X, y, label)``.

    Fills in the defaults of ``args.n_per_class`` and ``args.classes`` when
    they were not given.

    Raises
    ------
    UsageError
        If ``--data`` is combined with ``--data-dir``, ``--n-per-class`` or
        ``--classes``.
    DataError
        If a value is invalid or the data cannot be read. Messages name the
        command-line options, not the parameters of `load_sample`.
    """
    if args.data and args.data_dir:
        raise UsageError("--data and --data-dir cannot be used together")
    if args.data:
        given = [
            option
            for option, value in (
                ("--n-per-class", args.n_per_class),
                ("--classes", args.classes),
            )
            if value is not None
        ]
        if given:
            raise UsageError(
                f"{' and '.join(given)} cannot be used with --data {args.data}, "
                "which uses every sample of the file"
            )
    if args.n_per_class is None:
        args.n_per_class = DEFAULT_N_PER_CLASS
    if args.classes is None:
        args.classes = EMBEDDED_CLASSES
    try:
        X, y = load_sample(
            n_per_class=args.n_per_class,
            classes=tuple(args.classes),
            data_dir=args.data_dir,
            data=args.data,
        )
    except DataError as err:
        raise DataError(_option_message(str(err))) from None
    if args.data:
        label = f"{args.data} ({X.shape[0]} samples)"
    else:
        source = args.data_dir or "embedded Fashion-MNIST"
        label = (
            f"{source}, classes {args.classes[0]} and {args.classes[1]}, "
            f"first {args.n_per_class} training images of each"
        )
    return X, y, label


def count_noun(n: int, noun: str) -> str:
    """Return ``"1 kernel"`` or ``"2 kernels"``: a count with a regular plural."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def add_logging_options(
    parser: argparse.ArgumentParser,
    quiet_help: str = "print only errors and the results table",
) -> None:
    """Add ``--verbose``, ``--quiet`` and ``--no-progress``."""
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debugging details"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help=quiet_help)
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )


def ignore_sigint_in_workers(module_name: str) -> None:
    """Ignore SIGINT in a worker process whose main module is a command's.

    A spawned worker imports the main program's module as ``__mp_main__``
    before anything else of ntk_np, so a command calls this at its top: a
    Ctrl-C while the worker is still starting then prints no traceback from
    it. The main process stops the workers.
    """
    if module_name == "__mp_main__":
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def prepare_output_folder(path) -> Path:
    """Create the output folder ``path`` and its ``figures`` subfolder.

    Commands call this before they compute anything, so that an unusable
    ``--out`` fails at once.

    Raises
    ------
    UsageError
        If ``path`` exists and is not a folder, or cannot be created.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder} exists and is not a folder")
    try:
        (folder / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(
            f"cannot create output folder {folder}: {err.strerror}"
        ) from None
    return folder


class _StderrHandler(logging.StreamHandler):
    """A handler that writes each record to the current ``sys.stderr``."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


_HANDLER_NAME = "ntk_np command line"


def configure_logging(args) -> None:
    """Send the package's log records to standard error at the chosen level.

    Only the ``ntk_np`` loggers change level and gain a handler. The root
    logger is left alone, so other libraries (Matplotlib's font subsetting,
    Numba's compiler) log only warnings, as Python does by default.
    """
    if args.verbose:
        level = logging.DEBUG
    elif args.quiet:
        level = logging.WARNING
    else:
        level = logging.INFO
    logger = logging.getLogger("ntk_np")
    logger.setLevel(level)
    if not any(h.get_name() == _HANDLER_NAME for h in logger.handlers):
        handler = _StderrHandler()
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def add_certify_option(group) -> None:
    """Add ``--certify``, the policy of :func:`ntk_np.certify.certify_lambda_min`."""
    group.add_argument(
        "--certify",
        choices=CERTIFY_POLICIES,
        default="auto",
        help="when to compute lambda_min from a QR factorisation of the Jacobian, "
        "which resolves values below the eigh floor N*eps*lambda_max: never, "
        "auto (only where the eigh value is at or below the floor) or always "
        "(default: auto)",
    )


def add_memory_budget_option(group, routes: str = "--method jacobian and") -> None:
    """Add ``--memory-budget``, in MiB; read it with :func:`memory_budget_from_args`.

    ``routes`` names what uses the budget besides the qr route of ``--certify``.
    """
    group.add_argument(
        "--memory-budget",
        type=float,
        default=DEFAULT_MEMORY_BUDGET / 2**20,
        metavar="MIB",
        help=f"memory per kernel for {routes} the qr route of --certify, in MiB "
        f"(default: {DEFAULT_MEMORY_BUDGET / 2**20:g})",
    )


def memory_budget_from_args(args) -> int:
    """Return ``--memory-budget`` in bytes; raise UsageError unless positive, finite."""
    mib = args.memory_budget
    if not (math.isfinite(mib) and mib > 0):
        raise UsageError(
            f"--memory-budget must be a positive, finite number of MiB, got {mib:g}"
        )
    return int(mib * 2**20)


def add_jobs_option(group) -> None:
    """Add ``--jobs``, the number of worker processes."""
    group.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help=f"worker processes (default: the number of cores, {os.cpu_count()})",
    )
