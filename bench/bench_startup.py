"""Benchmarks of start-up: the sweep command's ``--help`` and a bare interpreter.

``help_sweep``
    ``python -m ntk_np.sweep --help`` in a new process, output discarded.
``python_startup``
    ``python -c pass`` in a new process: what every command pays before it
    imports anything of ntk_np.
``import_kernel``
    ``python -c "import ntk_np.kernel"``: the interpreter plus NumPy, Numba
    and SciPy, which a command loads once it starts computing. Not timed for
    ``--help``.

The target is ``help_sweep`` under 1 s; the ratio to ``python_startup`` shows
how much of it is ntk_np's own imports.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = {
    "help_sweep": [sys.executable, "-m", "ntk_np.sweep", "--help"],
    "python_startup": [sys.executable, "-c", "pass"],
    "import_kernel": [sys.executable, "-c", "import ntk_np.kernel"],
}


def _run(command):
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)


@pytest.mark.quick
@pytest.mark.parametrize("name", list(COMMANDS))
def test_startup(benchmark, name):
    benchmark.group = "start-up"
    benchmark.extra_info["id"] = name
    benchmark.pedantic(_run, (COMMANDS[name],), rounds=7, iterations=1, warmup_rounds=1)
