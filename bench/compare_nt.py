"""Compare ntk_np's layerwise kernel with neural-tangents' structured derivatives.

neural-tangents (JAX) is not a dependency of ntk_np and lives in its own
environment, so one run of this script has two sides:

1. Under the project's Python, it draws each network of ``--cases`` (ReLU,
   ``thesis`` parametrisation, seed 0), times :func:`ntk_np.layerwise_ntk` on
   the N = 200 images, and writes the weights, the images and ntk_np's kernel
   to a ``.npz`` file.
2. It then runs itself under ``--nt-python`` with ``--nt-side FILE``. That side
   builds a JAX ``apply_fn`` of the same network from the file and times
   ``nt.empirical_ntk_fn(apply_fn, vmap_axes=0, trace_axes=(),
   implementation=STRUCTURED_DERIVATIVES)`` under ``jax.jit`` (compiled and
   warmed up before timing), in float64, checks it against ntk_np's kernel and
   prints the ratio.

Each side also times its own forward pass of the same batch (``apply_fn``
under ``jax.jit``, :func:`ntk_np.forward`), and the JAX side counts the dot
products in the compiled kernel: those with an (N, width) result are the GEMMs
of the forward and backward pass, and those with an (N, N) result are Gram
matrices. Kernel time over forward time shows how much work beyond one forward
pass each implementation does.

ntk_np is timed again after the JAX side and the best of both is kept, so
that a burst of load on a shared machine does not favour either side. With
``--threads 1`` (the default, the BLAS setting of the sweep) both run on one
thread, XLA limited through ``XLA_FLAGS``. With more, ntk_np's BLAS uses that
many threads and JAX one per core. Run::

    python bench/compare_nt.py
    python bench/compare_nt.py --nt-python /path/to/venv/bin/python --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from compare_common import add_compare_options, best_of

CASES = ("200x3", "1000x4", "1000x10")
DEFAULT_NT_PYTHON = "/work/nt-venv/bin/python"


# ---------------------------------------------------------------------------
# The neural-tangents side, run under the JAX environment.
# ---------------------------------------------------------------------------


def _import_neural_tangents():
    # neural-tangents 0.6.5 reads two attributes that JAX 0.4.26 removed from
    # jax.interpreters.ad; they are restored before it is imported. It reads
    # ad.config.jax_enable_checks, an attribute of the jax.config object (not
    # of the jax._src.config module).
    import jax
    import jax.interpreters.ad as ad
    from jax._src import source_info_util

    ad.source_info_util = source_info_util
    ad.config = jax.config

    jax.config.update("jax_enable_x64", True)
    import neural_tangents as nt

    return jax, nt


def _count_dots(hlo_text: str) -> dict:
    """Count the dot instructions of compiled HLO text by result shape."""
    counts: dict = {}
    for match in re.finditer(r"= f64\[([0-9,]*)\]\{[0-9,]*\} dot\(", hlo_text):
        shape = "x".join(match.group(1).split(","))
        counts[shape] = counts.get(shape, 0) + 1
    return counts


def nt_side(path: str, repeats: int) -> int:
    jax, nt = _import_neural_tangents()
    import jax.numpy as jnp

    data = np.load(path)
    X = jnp.asarray(data["X"])
    results = []
    for case in json.loads(str(data["cases"])):
        depth = case["depth"]
        # Each weight matrix is passed as W(l)^T, of shape (n_{l-1}, n_l), and
        # applied as x @ W(l)^T. The kernel sums over all parameters, so their
        # layout does not change it. neural-tangents 0.6.5 takes ~60 times as
        # long with x @ W.T in apply_fn (9.8 s against 0.16 s for ReLU 1000x4,
        # one thread): the transpose hides the structure it exploits.
        params = [
            (
                jnp.asarray(data[f"{case['name']}_W{l}"].T),
                jnp.asarray(data[f"{case['name']}_b{l}"]),
            )
            for l in range(depth)
        ]
        multipliers = case["multipliers"]

        def apply_fn(params, x, multipliers=multipliers):
            last = len(params) - 1
            for l, (W_t, b) in enumerate(params):
                x = multipliers[l] * (x @ W_t) + b
                if l < last:
                    x = jax.nn.relu(x)
            return x

        kernel_fn = jax.jit(
            nt.empirical_ntk_fn(
                apply_fn,
                trace_axes=(),
                vmap_axes=0,
                implementation=nt.NtkImplementation.STRUCTURED_DERIVATIVES,
            )
        )
        start = time.perf_counter()
        kernel_fn(X, None, params).block_until_ready()
        compile_seconds = time.perf_counter() - start
        forward_fn = jax.jit(apply_fn)
        forward_fn(params, X).block_until_ready()
        forward_seconds, _ = best_of(
            lambda f=forward_fn, p=params: f(p, X).block_until_ready(), repeats
        )
        dots = _count_dots(kernel_fn.lower(X, None, params).compile().as_text())
        seconds, theta = best_of(
            lambda f=kernel_fn, p=params: f(X, None, p).block_until_ready(), repeats
        )
        theta = np.asarray(theta).reshape(X.shape[0], X.shape[0])
        expected = data[f"{case['name']}_theta"]
        error = float(np.max(np.abs(theta - expected)) / np.max(np.abs(expected)))
        results.append(
            {
                "name": case["name"],
                "seconds": seconds,
                "forward_seconds": forward_seconds,
                "dots": dots,
                "first_call_seconds": compile_seconds,
                "relative_difference": error,
            }
        )
    print(
        json.dumps({"jax": jax.__version__, "nt": nt.__version__, "results": results})
    )
    return 0


# ---------------------------------------------------------------------------
# The ntk_np side, run under the project's Python.
# ---------------------------------------------------------------------------


def ntk_np_side(args) -> int:
    from threadpoolctl import threadpool_limits

    import ntk_np

    X, _ = ntk_np.load_sample()
    networks = {}
    for name in args.cases:
        width, depth = (int(v) for v in name.split("x"))
        networks[name] = ntk_np.make_network(width, depth, "relu")

    def time_ours():
        with threadpool_limits(args.threads, user_api="blas"):
            out = {}
            for name, net in networks.items():
                ntk_np.layerwise_ntk(net, X)
                kernel = best_of(lambda n=net: ntk_np.layerwise_ntk(n, X), 5)
                forward, _ = best_of(lambda n=net: ntk_np.forward(n, X), 5)
                out[name] = (kernel[0], kernel[1], forward)
            return out

    before = time_ours()
    arrays = {"X": X}
    cases = []
    for name, net in networks.items():
        for l, (W, b) in enumerate(zip(net.weights, net.biases)):
            arrays[f"{name}_W{l}"] = W
            arrays[f"{name}_b{l}"] = b
        arrays[f"{name}_theta"] = before[name][1]
        cases.append(
            {"name": name, "depth": net.depth, "multipliers": list(net.multipliers)}
        )
    arrays["cases"] = np.array(json.dumps(cases))

    env = dict(os.environ)
    # NOTE: XLA is limited only to one thread. With more, JAX uses its default
    # thread pool, one thread per core, whatever the value of --threads.
    if args.threads == 1:
        env["XLA_FLAGS"] = (
            env.get("XLA_FLAGS", "")
            + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        ).strip()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "networks.npz"
        np.savez(path, **arrays)
        command = [
            args.nt_python,
            __file__,
            "--nt-side",
            str(path),
            "--repeats",
            str(args.repeats),
        ]
        run = subprocess.run(command, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stderr, file=sys.stderr)
        print(f"neural-tangents side failed with exit status {run.returncode}")
        return 1
    theirs = json.loads(run.stdout.strip().splitlines()[-1])
    after = time_ours()

    print(
        f"jax {theirs['jax']}, neural-tangents {theirs['nt']}, numpy "
        f"{np.__version__}, ntk_np {ntk_np.__version__}, {args.threads} thread(s)"
    )
    agree = True
    for result in theirs["results"]:
        name = result["name"]
        ours = min(before[name][0], after[name][0])
        our_forward = min(before[name][2], after[name][2])
        error = result["relative_difference"]
        status = "ok" if error <= 1e-10 else "MISMATCH"
        agree &= status == "ok"
        print(
            f"kernel relu {name}: ntk_np layerwise {ours:.4f} s, neural-tangents "
            f"structured derivatives {result['seconds']:.4f} s (first call with "
            f"compilation {result['first_call_seconds']:.2f} s), ratio "
            f"{result['seconds'] / ours:.2f}x; relative difference {error:.2e} "
            f"({status})"
        )
        dots = ", ".join(
            f"{count} of {shape}" for shape, count in result["dots"].items()
        )
        print(
            f"  forward pass: ntk_np {our_forward:.4f} s, JAX "
            f"{result['forward_seconds']:.4f} s; kernel / forward: ntk_np "
            f"{ours / our_forward:.2f}, neural-tangents "
            f"{result['seconds'] / result['forward_seconds']:.2f}; dot products "
            f"in the compiled kernel: {dots}"
        )
    if not agree:
        print("MISMATCH: the libraries disagree beyond the tolerance")
        return 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_compare_options(
        parser,
        CASES,
        threads_help="BLAS threads of ntk_np; with 1, JAX is limited to one "
        "thread too, and with more it uses one per core",
        repeats_help="ntk_np runs at least 5",
    )
    parser.add_argument(
        "--nt-python",
        default=DEFAULT_NT_PYTHON,
        help=f"Python with neural-tangents installed (default: {DEFAULT_NT_PYTHON})",
    )
    parser.add_argument("--nt-side", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.nt_side:
        return nt_side(args.nt_side, args.repeats)
    if not os.access(args.nt_python, os.X_OK):
        parser.error(
            f"--nt-python {args.nt_python} is not an executable file; pass the "
            "Python of an environment with JAX and neural-tangents"
        )
    return ntk_np_side(args)


if __name__ == "__main__":
    raise SystemExit(main())
