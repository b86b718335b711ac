"""The compiled Numba functions are cached on disk and loaded, not rebuilt.

Each run is a new interpreter with its own ``NUMBA_CACHE_DIR``, so the test
does not depend on what earlier runs left in ``__pycache__``.
"""

from __future__ import annotations

import os
import subprocess
import sys

# Touches every cached function: both kernel routes, the activations, the QR
# route and an SGD epoch.
JOB = """
import ntk_np
X, y = ntk_np.load_sample(n_per_class=5)
for activation in ntk_np.ACTIVATIONS:
    net = ntk_np.make_network(10, 3, activation)
    ntk_np.empirical_ntk(net, X, method="layerwise")
    ntk_np.empirical_ntk(net, X, method="jacobian")
ntk_np.certified_lambda_min(net, X)
ntk_np.train_network(net, X, y, epochs=1, kernel_epochs=(1,))
"""


def run_job(cache_dir) -> list[str]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), "NUMBA_DEBUG_CACHE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", JOB],
        capture_output=True,
        text=True,
        env=env,
        cwd=cache_dir,
        check=True,
    )
    return run.stdout.splitlines() + run.stderr.splitlines()


def cache_files(lines, action: str) -> set[str]:
    """Return the names of the cache files that lines report as ``action``."""
    return {
        line.rsplit("/", 1)[-1].split("-")[0]
        for line in lines
        if f"data {action}" in line
    }


# Compiled only as a callee of _sgd_epoch: saved, but never loaded on its own,
# because _sgd_epoch's cached code already contains it.
CALLEES = {"training._fused_step"}


def test_second_run_compiles_nothing(tmp_path):
    first = run_job(tmp_path)
    saved = cache_files(first, "saved")
    assert "kernel._fill_weight_block" in saved
    second = run_job(tmp_path)
    assert cache_files(second, "saved") == set()
    assert cache_files(second, "loaded") == saved - CALLEES
