"""Compare ntk_np with PyTorch on the same weights and images, in one run.

Kernel: PyTorch computes the empirical NTK with ``torch.func``: per-sample
Jacobians from ``vmap`` of ``jacrev`` over a ``functional_call`` of the model,
then ``Theta = sum over parameter tensors of J_p J_p^T``. The script checks that
it equals :func:`ntk_np.layerwise_ntk` to a relative 1e-10 (largest absolute
difference over the largest entry) and prints the time ratio.

The Jacobian of ReLU 1000x10 on 200 images has 200 x 8.8 million entries
(14.1 GB in float64). By default (``--chunk auto``) a Jacobian larger than
2 GiB is formed one layer ``(W(l), b(l))`` at a time, and each layer's
``J_l J_l^T`` is added before the next is formed. Every layer then costs one
``vmap(jacrev)`` pass. ``--chunk none`` forms the Jacobian whole.

Training: one epoch of SGD with batch size 1, learning rate 1e-3 and the mean
squared error, as a plain eager PyTorch loop (``torch.optim.SGD``), in the
sample order of :func:`ntk_np.training.shuffle_orders`. The script checks that
the trained weights agree with ntk_np's and prints steps per second.

Both libraries run on ``--threads`` threads (default 1: the BLAS setting of the
sweep). Run::

    python bench/compare_torch.py
    python bench/compare_torch.py --cases 1000x10 --chunk none
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import torch
from compare_common import add_compare_options, best_of
from threadpoolctl import threadpool_limits
from torch.func import functional_call, jacrev, vmap

import ntk_np
from ntk_np.training import _FlatNetwork, shuffle_orders, train_network

CASES = ("200x3", "1000x4", "1000x10")
LEARNING_RATE = 1e-3
CHUNK_BYTES = 2 << 30


class TorchMLP(torch.nn.Module):
    """The network of :mod:`ntk_np.network` with the weights of an ntk_np Network."""

    def __init__(self, network: ntk_np.Network):
        super().__init__()
        self.layers = torch.nn.ModuleList()
        for W, b in zip(network.weights, network.biases):
            layer = torch.nn.Linear(W.shape[1], W.shape[0], dtype=torch.float64)
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(W))
                layer.bias.copy_(torch.from_numpy(b))
            self.layers.append(layer)
        self.multipliers = network.multipliers
        self.activation = {
            "relu": torch.relu,
            "elu": torch.nn.functional.elu,
            "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01),
            "sigmoid": torch.sigmoid,
        }[network.activation]

    def forward(self, x):
        last = len(self.layers) - 1
        for l, layer in enumerate(self.layers):
            # z = c W x + b, with the product scaled before the bias is added.
            x = self.multipliers[l] * (x @ layer.weight.T) + layer.bias
            if l < last:
                x = self.activation(x)
        return x.squeeze(-1)


def torch_func_ntk(model: TorchMLP, X: torch.Tensor, chunk: str) -> torch.Tensor:
    """Compute ``J J^T`` from ``vmap(jacrev)`` per-sample Jacobians."""
    params = {name: p.detach() for name, p in model.named_parameters()}
    n_params = sum(p.numel() for p in params.values())
    whole = chunk == "none" or (
        chunk == "auto" and X.shape[0] * n_params * 8 <= CHUNK_BYTES
    )
    if whole:
        groups = [list(params)]
    else:
        groups = [
            [f"layers.{l}.weight", f"layers.{l}.bias"] for l in range(len(model.layers))
        ]

    theta = torch.zeros(X.shape[0], X.shape[0], dtype=torch.float64)
    for names in groups:
        fixed = {k: v for k, v in params.items() if k not in names}

        def f_single(trainable, x, fixed=fixed):
            out = functional_call(model, {**fixed, **trainable}, (x.unsqueeze(0),))
            return out.squeeze(0)

        jac = vmap(jacrev(f_single), (None, 0))({k: params[k] for k in names}, X)
        for j in jac.values():
            j = j.reshape(X.shape[0], -1)
            theta += j @ j.T
        del jac
    return theta


def torch_sgd_epoch(model: TorchMLP, X: torch.Tensor, y: torch.Tensor, order) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    for i in order:
        optimizer.zero_grad()
        out = model(X[i : i + 1])
        loss = ((out - y[i : i + 1]) ** 2).mean()
        loss.backward()
        optimizer.step()


def compare_kernel(case: str, X: np.ndarray, chunk: str, repeats: int) -> bool:
    """Time and check one kernel; return True if the two libraries agree."""
    width, depth = (int(v) for v in case.split("x"))
    network = ntk_np.make_network(width, depth, "relu")
    model = TorchMLP(network)
    Xt = torch.from_numpy(X)

    ntk_np.layerwise_ntk(network, X)
    t_ours, theta = best_of(lambda: ntk_np.layerwise_ntk(network, X), max(repeats, 5))
    torch_repeats = 1 if network.n_params * X.shape[0] * 8 > CHUNK_BYTES else repeats
    torch_func_ntk(TorchMLP(ntk_np.make_network(20, 2, "relu")), Xt, chunk)
    t_torch, theta_torch = best_of(
        lambda: torch_func_ntk(model, Xt, chunk), torch_repeats
    )
    error = np.max(np.abs(theta_torch.numpy() - theta)) / np.max(np.abs(theta))
    status = "ok" if error <= 1e-10 else "MISMATCH"
    whole = chunk == "none" or (
        chunk == "auto" and network.n_params * X.shape[0] * 8 <= CHUNK_BYTES
    )
    jacobian = "whole Jacobian" if whole else "Jacobian per layer"
    print(
        f"kernel relu {case}: P={network.n_params}, ntk_np layerwise {t_ours:.4f} s, "
        f"torch.func {t_torch:.3f} s ({jacobian}, best of {torch_repeats}), "
        f"ratio {t_torch / t_ours:.1f}x; relative difference {error:.2e} ({status})"
    )
    return status == "ok"


def compare_sgd(X: np.ndarray, y: np.ndarray, repeats: int) -> bool:
    """Time and check one SGD epoch; return True if the weights agree."""
    network = ntk_np.make_network(1000, 4, "relu")
    order = shuffle_orders(len(y), 1, seed=0)[0]
    n_steps = len(order)

    # Trained weights of one epoch from both, in the same sample order.
    trained = train_network(network, X, y, learning_rate=LEARNING_RATE, epochs=1)
    model = TorchMLP(network)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    torch_sgd_epoch(model, Xt, yt, order)
    ours = np.concatenate(
        [
            np.concatenate([W.ravel(), b])
            for W, b in zip(trained.network.weights, trained.network.biases)
        ]
    )
    theirs = np.concatenate(
        [
            torch.cat([l.weight.detach().ravel(), l.bias.detach()]).numpy()
            for l in model.layers
        ]
    )
    start = ntk_np.network.flatten_params(network)
    error = np.max(np.abs(ours - theirs)) / np.max(np.abs(ours - start))
    status = "ok" if error <= 1e-8 else "MISMATCH"

    flat = _FlatNetwork(network)
    buffers = flat.buffers(1)
    flat.sgd_epoch(X, y, order, 1, LEARNING_RATE, buffers)
    t_loop, _ = best_of(
        lambda: flat.sgd_epoch(X, y, order, 1, LEARNING_RATE, buffers), repeats
    )
    t_train, _ = best_of(
        lambda: train_network(network, X, y, learning_rate=LEARNING_RATE, epochs=1),
        repeats,
    )
    model = TorchMLP(network)
    t_torch, _ = best_of(lambda: torch_sgd_epoch(model, Xt, yt, order), repeats)
    print(
        f"sgd relu 1000x4, batch 1, {n_steps} steps: ntk_np loop "
        f"{n_steps / t_loop:.0f} steps/s, ntk_np train_network "
        f"{n_steps / t_train:.0f} steps/s, torch eager {n_steps / t_torch:.0f} "
        f"steps/s; ratio loop/torch {t_torch / t_loop:.2f}x, train_network/torch "
        f"{t_torch / t_train:.2f}x; weight difference after one epoch, relative to "
        f"the update: {error:.2e} ({status})"
    )
    return status == "ok"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_compare_options(
        parser,
        CASES,
        threads_help="threads of both libraries",
        repeats_help="ntk_np runs at least 5, and torch.func once where its "
        "Jacobian exceeds 2 GiB",
    )
    parser.add_argument(
        "--chunk",
        choices=("auto", "none", "layer"),
        default="auto",
        help="form the torch.func Jacobian whole or one layer at a time "
        "(default: auto, per layer above 2 GiB)",
    )
    parser.add_argument("--no-sgd", action="store_true", help="skip the SGD comparison")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, numpy {np.__version__}, "
        f"ntk_np {ntk_np.__version__}, "
        f"python {platform.python_version()}, {args.threads} thread(s)"
    )
    X, y = ntk_np.load_sample()
    agree = True
    with threadpool_limits(args.threads, user_api="blas"):
        for case in args.cases:
            agree &= compare_kernel(case, X, args.chunk, args.repeats)
        if not args.no_sgd:
            agree &= compare_sgd(X, y, args.repeats)
    if not agree:
        print("MISMATCH: the libraries disagree beyond the tolerance")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
