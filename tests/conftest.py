"""Shared fixtures and independent reference code for the ntk_np core tests.

The reference functions below follow REFERENCE.md's equations in plain NumPy
(and SciPy's ``expit``), without calling the package's Numba kernels, so they
serve as an oracle for the forward pass, the backward pass and the NTK.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

import ntk_np

ACTIVATIONS = ("relu", "elu", "leaky_relu", "sigmoid")
PARAMETRIZATIONS = ("thesis", "ntk")
LEAKY_SLOPE = 0.01
EPS = float(np.finfo(np.float64).eps)

N_PER_CLASS = 5
"""Images per class of the session sample: N = 10."""


# ---------------------------------------------------------------- data


def pool_to_20_features(X: np.ndarray) -> np.ndarray:
    """Average 28 x 28 images over 7 x 5 pixel blocks (columns 1..25): 4 x 5 = 20."""
    images = X.reshape(len(X), 28, 28)[:, :, 1:26]
    pooled = images.reshape(len(X), 4, 7, 5, 5).mean(axis=(2, 4))
    return np.ascontiguousarray(pooled.reshape(len(X), 20))


@pytest.fixture(scope="session")
def sample() -> tuple[np.ndarray, np.ndarray]:
    """The study's sample with 5 images per class: X (10, 784), y (10,)."""
    X, y = ntk_np.load_sample(n_per_class=N_PER_CLASS)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


@pytest.fixture(scope="session")
def X(sample) -> np.ndarray:
    """(10, 784) real Fashion-MNIST images scaled to [0, 1], read-only."""
    return sample[0]


@pytest.fixture(scope="session")
def X20(X) -> np.ndarray:
    """The same 10 images pooled to 20 features, for cheap finite differences."""
    X20 = pool_to_20_features(X)
    X20.flags.writeable = False
    return X20


# ------------------------------------------------- independent reference


def ref_activation(name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value and derivative from textbook formulas (left derivative at kinks).

    The sigmoid uses SciPy's ``expit`` and ``sigma'(z) = sigma(z) sigma(-z)``,
    which keeps full relative accuracy in both tails.
    """
    z = np.asarray(z, dtype=np.float64)
    positive = z > 0
    if name == "relu":
        return np.where(positive, z, 0.0), np.where(positive, 1.0, 0.0)
    if name == "elu":
        negative_part = np.minimum(z, 0.0)
        return (
            np.where(positive, z, np.expm1(negative_part)),
            np.where(positive, 1.0, np.exp(negative_part)),
        )
    if name == "leaky_relu":
        return (
            np.where(positive, z, LEAKY_SLOPE * z),
            np.where(positive, 1.0, LEAKY_SLOPE),
        )
    if name == "sigmoid":
        return expit(z), expit(z) * expit(-z)
    raise AssertionError(name)


def ref_multipliers(n_inputs, width, depth, parametrization):
    """REFERENCE.md's table of c_1 .. c_D."""
    if parametrization == "thesis":
        return [1.0 / np.sqrt(width)] * (depth - 1) + [1.0]
    return [1.0 / np.sqrt(n_inputs)] + [1.0 / np.sqrt(width)] * (depth - 1)


def ref_forward(network, X):
    """Plain-NumPy forward pass; returns (output (N,), inputs A, pre-activations Z).

    ``A[l]`` is x(l) for l = 0 .. D-1 (A[0] = X); ``Z[l]`` is z(l) for
    l = 1 .. D-1 (Z[0] is None). Multipliers come from REFERENCE.md, not from
    the network object.
    """
    depth = len(network.weights)
    n_inputs = network.weights[0].shape[1]
    width = network.weights[0].shape[0]
    c = ref_multipliers(n_inputs, width, depth, network.parametrization)
    A, Z = [np.asarray(X, dtype=np.float64)], [None]
    for l in range(1, depth):
        W, b = network.weights[l - 1], network.biases[l - 1]
        z = c[l - 1] * np.einsum("jk,nk->nj", W, A[-1]) + b
        Z.append(z)
        A.append(ref_activation(network.activation, z)[0])
    W, b = network.weights[-1], network.biases[-1]
    output = c[-1] * np.einsum("k,nk->n", W[0], A[-1]) + b[0]
    return output, A, Z


def ref_deltas(network, X):
    """delta(l) = df/dz(l) for l = 1 .. D by REFERENCE.md's backprop rule."""
    depth = len(network.weights)
    n_inputs = network.weights[0].shape[1]
    width = network.weights[0].shape[0]
    c = ref_multipliers(n_inputs, width, depth, network.parametrization)
    _, _, Z = ref_forward(network, X)
    delta = [None] * (depth + 1)
    delta[depth] = np.ones((len(X), 1))
    for l in range(depth, 1, -1):
        slope = ref_activation(network.activation, Z[l - 1])[1]
        delta[l - 1] = slope * (c[l - 1] * delta[l] @ network.weights[l - 1])
    return delta


def min_abs_preactivation(network, X) -> np.ndarray:
    """Per sample, the smallest |z(l)| over all hidden units and layers."""
    _, _, Z = ref_forward(network, X)
    return np.min(np.hstack([np.abs(z) for z in Z[1:]]), axis=1)


def child_pids(pid: int) -> list[int]:
    """Return the pids whose parent is ``pid``, from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The parent pid is the second field after the parenthesised name.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry.name))
    return children


def spawned_workers(pid: int) -> list[int]:
    """Return the pids of the multiprocessing workers that ``pid`` spawned."""
    workers = []
    for child in child_pids(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            workers.append(child)
    return workers
