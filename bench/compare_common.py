"""Argument types and timing shared by ``compare_torch.py`` and ``compare_nt.py``.

Importing this module also puts the repository root first on ``sys.path``, so
that ``python bench/compare_*.py`` measures the checkout it sits in, as
``python -m pytest bench/`` does, and not a copy installed elsewhere.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))


def best_of(fn, repeats: int) -> tuple[float, object]:
    """Call ``fn`` ``repeats`` times; return the least time and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def positive_int(text: str) -> int:
    """Parse an argument that must be a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def network_case(text: str) -> str:
    """Parse ``WIDTHxDEPTH`` with a width of at least 1 and a depth of at least 2."""
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 2:
        raise argparse.ArgumentTypeError(
            f"invalid network {text!r}; expected WIDTHxDEPTH with width >= 1 and "
            "depth >= 2, such as 1000x10"
        )
    return text


def add_compare_options(parser, cases, threads_help: str, repeats_help: str) -> None:
    """Add ``--cases``, ``--threads`` and ``--repeats`` to a comparison's parser."""
    parser.add_argument(
        "--cases",
        nargs="+",
        type=network_case,
        default=list(cases),
        metavar="WIDTHxDEPTH",
        help="ReLU networks to compare (default: " + " ".join(cases) + ")",
    )
    parser.add_argument(
        "--threads", type=positive_int, default=1, help=f"{threads_help} (default: 1)"
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=3,
        help=f"timed repeats, best kept (default: 3); {repeats_help}",
    )
