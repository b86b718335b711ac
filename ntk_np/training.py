"""Training a network from its initial weights, and what its initial kernel predicts.

The loss is the mean squared error ``L = (1/N) sum_n (f(x_n) - y_n)^2`` with
residual ``r = f(X) - y``. A gradient step on a batch ``B`` of ``b`` samples
uses the batch loss ``(1/b) sum_{i in B} r_i^2``, whose gradient, with
``delta[l]`` and ``x(l-1)`` as in :mod:`ntk_np.network`, is::

    dL/dW(l) = sum_i (2/b) r_i c_l delta_i(l) x_i(l-1)^T
    dL/db(l) = sum_i (2/b) r_i delta_i(l)

Stochastic gradient descent (``mode='sgd'``) shuffles the samples afresh every
epoch and runs a compiled loop whose step fuses the forward pass, the backward
pass and the update, so each weight matrix is read twice and written once per
step. :func:`sgd_step` exposes that step next to the one built from
:func:`ntk_np.network.forward` and :func:`ntk_np.network.backward`, and the
two agree to rounding. Full-batch gradient descent (``mode='gd'``) uses the
forward and backward passes of the whole sample directly.

Linearising the network around its initial weights gives the residual
dynamics of the initial kernel ``Theta``. An SGD step on batch ``B`` becomes
``r <- r - (2 eta / b) Theta[:, B] r_B`` and a full-batch step
``r <- (I - (2 eta / N) Theta) r``. :func:`linearized_losses` runs them with the
sample order of the real run. :func:`loss_bounds` returns the convergence
bounds that ``lambda_min(Theta)`` implies.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from .activations import _value_and_slope, activation_code
from .certify import CertifiedEigenvalue, certify_lambda_min, eigh_lambda_min
from .choices import BOUND_NAMES, CERTIFY_POLICIES, DEFAULT_MEMORY_BUDGET, MODES
from .kernel import empirical_ntk
from .network import (
    Network,
    _check_int,
    backward,
    check_inputs,
    flatten_params,
    forward,
    make_network,
    with_params,
)
from .spectrum import Spectrum, kernel_spectrum

logger = logging.getLogger(__name__)

STATUSES: tuple[str, ...] = ("ok", "diverged", "non-finite")
"""Outcomes of a run: finished, stopped on a growing loss, stopped on NaN or inf."""

DEFAULT_DIVERGENCE_FACTOR = 1e6
"""A run stops as diverged once its loss exceeds this multiple of the initial loss."""

_SHUFFLE_STREAM = 0x53485546  # keeps the shuffle stream apart from the weight streams

# Floating-point flags of the fused step: reassociation lets LLVM vectorise the
# dot products. NaN and inf keep their IEEE meaning, so divergence stays visible.
_FASTMATH = {"reassoc", "contract"}


# ---------------------------------------------------------------------------
# Compiled kernels. ``net`` is (params, w_off, b_off, sizes, mult): the
# parameters as one vector ordered as flatten_params, the offsets of W(l) and
# b(l) in it at index l-1, the layer sizes (n_0, ..., n_D) and the multipliers.
# ``buffers`` is (act, slope, err, back) from _FlatNetwork.buffers.
# ---------------------------------------------------------------------------


@njit(cache=True, fastmath=_FASTMATH)
def _fused_step(net, code, X, y, batch, lr, buffers):
    params, w_off, b_off, sizes, mult = net
    act, slope, err, back = buffers
    nb = batch.size
    depth = sizes.size - 1
    for i in range(nb):
        row = X[batch[i]]
        for k in range(sizes[0]):
            act[0, i, k] = row[k]

    # Forward through the hidden layers: z = c W x + b, x = act(z).
    for l in range(1, depth):
        n_in = sizes[l - 1]
        n_out = sizes[l]
        W = params[w_off[l - 1] : w_off[l - 1] + n_out * n_in].reshape((n_out, n_in))
        bias = params[b_off[l - 1] : b_off[l - 1] + n_out]
        c = mult[l - 1]
        for j in range(n_out):
            for i in range(nb):
                s = 0.0
                for k in range(n_in):
                    s += W[j, k] * act[l - 1, i, k]
                act[l, i, j], slope[l, i, j] = _value_and_slope(c * s + bias[j], code)

    # Output layer: err[i, 0] is set to dL/dz(D) = (2/b) r_i.
    n_in = sizes[depth - 1]
    w_out = params[w_off[depth - 1] : w_off[depth - 1] + n_in]
    c = mult[depth - 1]
    for i in range(nb):
        s = 0.0
        for k in range(n_in):
            s += w_out[k] * act[depth - 1, i, k]
        f = c * s + params[b_off[depth - 1]]
        err[i, 0] = 2.0 * (f - y[batch[i]]) / nb

    # Backward and update, layer by layer: each row of W(l) is first read to
    # backpropagate dL/dz(l) and then updated, while it is still in cache.
    for l in range(depth, 0, -1):
        n_in = sizes[l - 1]
        n_out = sizes[l]
        W = params[w_off[l - 1] : w_off[l - 1] + n_out * n_in].reshape((n_out, n_in))
        bias = params[b_off[l - 1] : b_off[l - 1] + n_out]
        c = mult[l - 1]
        step = lr * c
        if l > 1:
            for i in range(nb):
                for k in range(n_in):
                    back[i, k] = 0.0
        for j in range(n_out):
            if l > 1:
                for i in range(nb):
                    e = err[i, j]
                    for k in range(n_in):
                        back[i, k] += W[j, k] * e
            g_bias = 0.0
            for i in range(nb):
                e = err[i, j]
                g_bias += e
                scaled = step * e
                for k in range(n_in):
                    W[j, k] -= scaled * act[l - 1, i, k]
            bias[j] -= lr * g_bias
        if l > 1:
            for i in range(nb):
                for k in range(n_in):
                    err[i, k] = c * back[i, k] * slope[l - 1, i, k]


@njit(cache=True)
def _sgd_epoch(net, code, X, y, order, batch_size, lr, buffers):
    n = order.size
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        _fused_step(net, code, X, y, order[start:stop], lr, buffers)


@njit(cache=True)
def _linearized_sgd_epoch(theta, r, order, batch_size, lr, r_batch):
    n = order.size
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        nb = stop - start
        for m in range(nb):
            r_batch[m] = r[order[start + m]]
        coef = 2.0 * lr / nb
        for m in range(nb):
            # Theta is symmetric, so row idx is column idx and is contiguous.
            idx = order[start + m]
            scaled = coef * r_batch[m]
            for k in range(r.size):
                r[k] -= scaled * theta[idx, k]


# ---------------------------------------------------------------------------
# Steps, loss and gradient of one network.
# ---------------------------------------------------------------------------


def _check_targets(X: np.ndarray, y) -> np.ndarray:
    y = np.ascontiguousarray(y, dtype=np.float64)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X, got {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinite values")
    return y


def mse_loss(network: Network, X, y) -> float:
    """Return the mean squared error ``(1/N) sum_n (f(x_n) - y_n)^2``.

    Parameters
    ----------
    network : Network
    X : array_like of shape (N, n_0)
    y : array_like of shape (N,)
    """
    X = check_inputs(network, X)
    y = _check_targets(X, y)
    with np.errstate(all="ignore"):
        r = forward(network, X).output - y
        return float(np.mean(r * r))


def mse_gradient(network: Network, X, y) -> np.ndarray:
    """Compute the gradient of the mean squared error with forward and backward.

    Parameters
    ----------
    network : Network
    X : array_like of shape (b, n_0)
        The batch.
    y : array_like of shape (b,)

    Returns
    -------
    gradient : ndarray of shape (P,)
        ``dL/dp`` of ``L = (1/b) sum_i (f(x_i) - y_i)^2``, ordered as
        :func:`ntk_np.network.flatten_params`.
    """
    X = check_inputs(network, X)
    y = _check_targets(X, y)
    passed = forward(network, X)
    delta = backward(network, passed)
    scale = (2.0 / len(y)) * (passed.output - y)
    parts = []
    for l in range(1, network.depth + 1):
        e = delta[l] * scale[:, None]
        c = network.multipliers[l - 1]
        parts.append((c * (e.T @ passed.A[l - 1])).ravel())
        parts.append(e.sum(axis=0))
    return np.concatenate(parts)


class _FlatNetwork:
    """A network's parameters as one vector, with the offsets the kernels use."""

    def __init__(self, network: Network):
        self.template = network
        self.params = np.ascontiguousarray(flatten_params(network))
        sizes = network.layer_sizes
        self.sizes = np.array(sizes, dtype=np.int64)
        self.mult = np.array(network.multipliers, dtype=np.float64)
        self.code = activation_code(network.activation)
        w_off, b_off = [], []
        offset = 0
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            w_off.append(offset)
            offset += n_in * n_out
            b_off.append(offset)
            offset += n_out
        self.w_off = np.array(w_off, dtype=np.int64)
        self.b_off = np.array(b_off, dtype=np.int64)

    def buffers(self, batch_size: int) -> tuple[np.ndarray, ...]:
        """Return ``(act, slope, err, back)`` sized for a batch."""
        widest = int(self.sizes[:-1].max())
        depth = self.sizes.size - 1
        act = np.zeros((depth, batch_size, widest))
        slope = np.zeros((depth, batch_size, widest))
        err = np.zeros((batch_size, widest))
        back = np.zeros((batch_size, widest))
        return act, slope, err, back

    def view(self) -> Network:
        """Return a Network whose arrays are views of the flat parameters."""
        weights, biases = [], []
        for l, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            w0 = self.w_off[l]
            b0 = self.b_off[l]
            weights.append(self.params[w0 : w0 + n_in * n_out].reshape(n_out, n_in))
            biases.append(self.params[b0 : b0 + n_out])
        t = self.template
        return Network(
            weights=tuple(weights),
            biases=tuple(biases),
            multipliers=t.multipliers,
            activation=t.activation,
            parametrization=t.parametrization,
            seed=t.seed,
        )

    def sgd_epoch(self, X, y, order, batch_size, lr, buffers) -> None:
        """Run the compiled SGD loop over the samples in ``order``."""
        net = (self.params, self.w_off, self.b_off, self.sizes, self.mult)
        _sgd_epoch(net, self.code, X, y, order, batch_size, lr, buffers)


def _check_learning_rate(learning_rate) -> float:
    learning_rate = float(learning_rate)
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(
            f"learning_rate must be a positive finite number, got {learning_rate}"
        )
    return learning_rate


def sgd_step(
    network: Network, X, y, learning_rate: float = 1e-3, fused: bool = True
) -> Network:
    """Take one gradient step on the mean squared error of a batch.

    Parameters
    ----------
    network : Network
        Not modified.
    X : array_like of shape (b, n_0)
        The batch, taken in one step.
    y : array_like of shape (b,)
    learning_rate : float, default=1e-3
    fused : bool, default=True
        True runs the compiled step that :func:`train_network` uses. False
        subtracts ``learning_rate * mse_gradient(network, X, y)``. The two
        agree to rounding.

    Returns
    -------
    Network
        A new network with the updated parameters.
    """
    learning_rate = _check_learning_rate(learning_rate)
    X = check_inputs(network, X)
    y = _check_targets(X, y)
    if not fused:
        params = flatten_params(network) - learning_rate * mse_gradient(network, X, y)
        return with_params(network, params)
    flat = _FlatNetwork(network)
    batch = np.arange(len(y), dtype=np.int64)
    flat.sgd_epoch(X, y, batch, len(y), learning_rate, flat.buffers(len(y)))
    return with_params(network, flat.params)


# ---------------------------------------------------------------------------
# The training loop.
# ---------------------------------------------------------------------------


def shuffle_orders(n_samples: int, epochs: int, seed: int = 0) -> np.ndarray:
    """Draw the sample order of every epoch from a seed.

    Each row is ``Generator.permutation(n_samples)`` of one generator, drawn
    epoch after epoch. The generator is seeded with ``seed`` and a tag, so its
    stream differs from the weight streams of :func:`ntk_np.make_network`.

    Returns
    -------
    orders : ndarray of int64, shape (epochs, n_samples)
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    epochs = _check_int("epochs", epochs, 0)
    seed = _check_int("seed", seed, 0)
    rng = np.random.default_rng([_SHUFFLE_STREAM, seed])
    orders = np.empty((epochs, n_samples), dtype=np.int64)
    for epoch in range(epochs):
        orders[epoch] = rng.permutation(n_samples)
    return orders


@dataclass(frozen=True, eq=False)
class KernelSnapshot:
    """The empirical NTK of the network after some epochs of training.

    Attributes
    ----------
    epoch : int
        Epochs completed, 0 for the initial kernel.
    theta : ndarray of shape (N, N)
    spectrum : Spectrum
    relative_change : float
        ``||Theta_epoch - Theta_0||_F / ||Theta_0||_F``.
    lambda_min : CertifiedEigenvalue
        The smallest eigenvalue with its route and error bound, under the
        ``certify`` policy of :func:`train_network`.
    """

    epoch: int
    theta: np.ndarray = field(repr=False)
    spectrum: Spectrum = field(repr=False)
    relative_change: float
    lambda_min: CertifiedEigenvalue = field(repr=False)


@dataclass(eq=False)
class TrainingResult:
    """Loss curve, final network and kernels of one :func:`train_network` run.

    Attributes
    ----------
    losses : ndarray of shape (epochs + 1,)
        Mean squared error over all N samples at epoch 0 and after each epoch,
        NaN after the epoch at which a run stopped early.
    status : {'ok', 'diverged', 'non-finite'}
    message : str
        Why the run stopped early, or an empty string.
    epochs_completed : int
        Epochs run, including the one after which a run stopped.
    network : Network
        The network after the last epoch run. After a stop, its parameters
        are those whose loss diverged or turned non-finite.
    initial_residual : ndarray of shape (N,)
        ``f(X) - y`` before training.
    kernels : list of KernelSnapshot
        The kernel at epoch 0 and at each requested epoch reached.
    orders : ndarray of int64, shape (epochs, N)
        Sample order of each epoch in ``mode='sgd'``, and ``0 .. N-1`` in
        every row for ``mode='gd'``.
    learning_rate, batch_size, mode, seed, epochs :
        The settings of the run, with ``batch_size`` set to N for
        ``mode='gd'``.
    seconds : float
        Wall time, kernels included.
    """

    losses: np.ndarray
    status: str
    message: str
    epochs_completed: int
    network: Network
    initial_residual: np.ndarray
    kernels: list
    orders: np.ndarray = field(repr=False)
    learning_rate: float
    batch_size: int
    mode: str
    seed: int
    epochs: int
    seconds: float

    @property
    def initial_kernel(self) -> KernelSnapshot | None:
        """The snapshot at epoch 0, if kernels were recorded."""
        if self.kernels and self.kernels[0].epoch == 0:
            return self.kernels[0]
        return None

    @property
    def final_loss(self) -> float:
        """The loss after the last epoch run."""
        return float(self.losses[self.epochs_completed])


def _snapshot(
    network: Network, X, epoch: int, theta0, certify: str, memory_budget: int
) -> KernelSnapshot:
    theta = empirical_ntk(network, X)
    change = 0.0
    if theta0 is not None:
        change = float(np.linalg.norm(theta - theta0) / np.linalg.norm(theta0))
    spectrum = kernel_spectrum(theta)
    lambda_min = certify_lambda_min(
        spectrum, network, X, certify, memory_budget=memory_budget
    )
    return KernelSnapshot(epoch, theta, spectrum, change, lambda_min)


def _check_stop(loss: float, initial: float, factor: float) -> tuple[str, str]:
    if not math.isfinite(loss):
        return "non-finite", f"the loss is {loss}"
    if loss > factor * initial:
        return "diverged", (
            f"the loss {loss:.3g} exceeds {factor:.3g} times the initial loss "
            f"{initial:.3g}"
        )
    return "ok", ""


def train_network(
    network: Network,
    X,
    y,
    learning_rate: float = 1e-3,
    epochs: int = 100,
    batch_size: int = 1,
    mode: str = "sgd",
    seed: int = 0,
    kernel_epochs: Iterable[int] = (),
    divergence_factor: float = DEFAULT_DIVERGENCE_FACTOR,
    callback: Callable[[int, float], None] | None = None,
    certify: str = "auto",
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> TrainingResult:
    """Train a network by gradient descent on the mean squared error.

    The loss ``L = (1/N) sum_n (f(x_n) - y_n)^2`` over all N samples is
    recorded before training and after every epoch. In ``mode='sgd'`` an epoch
    visits the samples in a fresh random order (:func:`shuffle_orders`) in
    batches of ``batch_size``. Each step descends the batch loss
    ``(1/b) sum_{i in B} (f(x_i) - y_i)^2``, and the last batch contains the
    ``N mod b`` remaining samples when ``b`` does not divide N. In
    ``mode='gd'`` an epoch is one step on the full loss. A run stops early,
    with a logged warning and a status, when the loss turns NaN or infinite
    or exceeds ``divergence_factor`` times its initial value. Divergence is
    reported in ``status``, not raised as an exception.

    Parameters
    ----------
    network : Network
        The initial weights, such as :func:`ntk_np.make_network` draws. Not
        modified.
    X : array_like of shape (N, n_0)
    y : array_like of shape (N,)
    learning_rate : float, default=1e-3
    epochs : int, default=100
    batch_size : int, default=1
        Samples per step in ``mode='sgd'``, at least 1 and at most N. Ignored
        in ``mode='gd'``.
    mode : {'sgd', 'gd'}, default='sgd'
    seed : int, default=0
        Seed of the sample order. The same seed gives bitwise the same run.
    kernel_epochs : iterable of int, default=()
        Epochs after which to compute the empirical NTK. When not empty, the
        kernel at epoch 0 is computed too, and epochs beyond ``epochs`` are
        ignored.
    divergence_factor : float, default=1e6
    callback : callable, optional
        Called as ``callback(epoch, loss)`` after every epoch.
    certify : {'never', 'auto', 'always'}, default='auto'
        When to compute each recorded kernel's ``lambda_min`` by the ``qr``
        route of :mod:`ntk_np.certify` instead of ``eigh``, as for
        :func:`ntk_np.run_sweep`.
    memory_budget : int, default=1 GiB
        Bytes for the ``qr`` route, as for
        :func:`ntk_np.certify.certify_lambda_min`.

    Returns
    -------
    TrainingResult

    Raises
    ------
    ValueError, TypeError
        For invalid settings or data, naming the parameter.
    """
    started = time.perf_counter()
    X = check_inputs(network, X)
    y = _check_targets(X, y)
    n_samples = X.shape[0]
    learning_rate = _check_learning_rate(learning_rate)
    epochs = _check_int("epochs", epochs, 0)
    seed = _check_int("seed", seed, 0)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of " + ", ".join(MODES))
    if certify not in CERTIFY_POLICIES:
        raise ValueError(
            f"unknown certify policy {certify!r}; expected one of "
            + ", ".join(CERTIFY_POLICIES)
        )
    if mode == "gd":
        batch_size = n_samples
    batch_size = _check_int("batch_size", batch_size, 1)
    if batch_size > n_samples:
        raise ValueError(
            f"batch_size must be at most the number of samples {n_samples}, "
            f"got {batch_size}"
        )
    if not divergence_factor > 1:
        raise ValueError(
            f"divergence_factor must be greater than 1, got {divergence_factor}"
        )
    requested_epochs = sorted({_check_int("kernel epoch", e, 0) for e in kernel_epochs})

    flat = _FlatNetwork(network)
    current = flat.view()
    if mode == "sgd":
        orders = shuffle_orders(n_samples, epochs, seed)
        buffers = flat.buffers(batch_size)
    else:
        orders = np.tile(np.arange(n_samples, dtype=np.int64), (epochs, 1))

    with np.errstate(all="ignore"):
        initial_residual = forward(current, X).output - y
    losses = np.full(epochs + 1, np.nan)
    losses[0] = float(np.mean(initial_residual**2))
    kernels = []
    theta0 = None
    if requested_epochs:
        kernels.append(_snapshot(current, X, 0, None, certify, memory_budget))
        theta0 = kernels[0].theta
    status, message = _check_stop(losses[0], losses[0], divergence_factor)
    completed = 0

    while status == "ok" and completed < epochs:
        epoch = completed + 1
        with np.errstate(all="ignore"):
            if mode == "sgd":
                order = orders[epoch - 1]
                flat.sgd_epoch(X, y, order, batch_size, learning_rate, buffers)
            else:
                flat.params -= learning_rate * mse_gradient(current, X, y)
            r = forward(current, X).output - y
        losses[epoch] = float(np.mean(r * r))
        completed = epoch
        status, message = _check_stop(losses[epoch], losses[0], divergence_factor)
        if status == "ok" and epoch in requested_epochs:
            kernels.append(_snapshot(current, X, epoch, theta0, certify, memory_budget))
        if callback is not None:
            callback(epoch, losses[epoch])

    if status != "ok":
        message = (
            f"{network.describe()}: training stopped after epoch {completed}: {message}"
        )
        logger.warning(message)
    return TrainingResult(
        losses=losses,
        status=status,
        message=message,
        epochs_completed=completed,
        network=with_params(network, flat.params),
        initial_residual=initial_residual,
        kernels=kernels,
        orders=orders,
        learning_rate=learning_rate,
        batch_size=batch_size,
        mode=mode,
        seed=seed,
        epochs=epochs,
        seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------------------
# What the initial kernel predicts.
# ---------------------------------------------------------------------------


def linearized_losses(
    theta,
    residual,
    learning_rate: float = 1e-3,
    epochs: int = 100,
    mode: str = "sgd",
    batch_size: int = 1,
    orders=None,
) -> np.ndarray:
    """Run gradient descent on the network linearised around its initial weights.

    The residual evolves under the fixed kernel ``Theta``. In ``mode='sgd'`` a
    step on batch ``B`` of ``b`` samples is ``r <- r - (2 eta / b) Theta[:, B]
    r_B``, with the batches cut from each row of ``orders`` as
    :func:`train_network` cuts them. In ``mode='gd'`` an epoch is
    ``r <- (I - (2 eta / N) Theta) r``.

    Parameters
    ----------
    theta : array_like of shape (N, N)
        The initial empirical NTK, symmetrised as ``(theta + theta.T) / 2``.
    residual : array_like of shape (N,)
        ``f(X) - y`` at the initial weights.
    learning_rate : float, default=1e-3
    epochs : int, default=100
    mode : {'sgd', 'gd'}, default='sgd'
    batch_size : int, default=1
        Ignored in ``mode='gd'``.
    orders : array_like of int, shape (epochs, N), optional
        Sample order of each epoch, such as ``TrainingResult.orders``. Required
        in ``mode='sgd'``.

    Returns
    -------
    losses : ndarray of shape (epochs + 1,)
        ``mean(r**2)`` at epoch 0 and after each epoch. The first value past
        an overflow of the linear dynamics is inf or NaN, and later ones NaN.
    """
    theta = np.asarray(theta, dtype=np.float64)
    r = np.array(residual, dtype=np.float64)
    n = r.shape[0] if r.ndim == 1 else -1
    if theta.shape != (n, n):
        raise ValueError(
            f"theta must have shape (N, N) and residual shape (N,), got "
            f"{theta.shape} and {r.shape}"
        )
    theta = np.ascontiguousarray((theta + theta.T) / 2)
    learning_rate = _check_learning_rate(learning_rate)
    epochs = _check_int("epochs", epochs, 0)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of " + ", ".join(MODES))
    if mode == "sgd":
        batch_size = _check_int("batch_size", batch_size, 1)
        if orders is None:
            raise ValueError("orders is required in mode='sgd'")
        orders = np.ascontiguousarray(orders, dtype=np.int64)
        if orders.shape[0] < epochs or orders.shape[1:] != (n,):
            raise ValueError(
                f"orders must have shape ({epochs}, {n}), got {orders.shape}"
            )
        r_batch = np.empty(min(batch_size, n))

    losses = np.full(epochs + 1, np.nan)
    losses[0] = np.mean(r * r)
    step = np.eye(n) - (2.0 * learning_rate / n) * theta if mode == "gd" else None
    with np.errstate(all="ignore"):
        for epoch in range(1, epochs + 1):
            if mode == "sgd":
                _linearized_sgd_epoch(
                    theta, r, orders[epoch - 1], batch_size, learning_rate, r_batch
                )
            else:
                r = step @ r
            losses[epoch] = np.mean(r * r)
            if not math.isfinite(losses[epoch]):
                break
    return losses


def predict_linearized(result: TrainingResult) -> np.ndarray:
    """Return the losses that the initial kernel of a run predicts.

    Runs :func:`linearized_losses` with the run's initial kernel, residual,
    settings and sample order, for all ``result.epochs`` epochs.

    Raises
    ------
    ValueError
        If the run recorded no initial kernel (``kernel_epochs`` was empty).
    """
    snapshot = result.initial_kernel
    if snapshot is None:
        raise ValueError(
            "the run has no initial kernel; train with kernel_epochs=(0,) or more"
        )
    return linearized_losses(
        snapshot.theta,
        result.initial_residual,
        result.learning_rate,
        result.epochs,
        result.mode,
        result.batch_size,
        result.orders,
    )


def prediction_gap(losses, predicted) -> tuple[float, float]:
    """Compare a loss curve with its linearised prediction.

    Parameters
    ----------
    losses, predicted : array_like of shape (epochs + 1,)
        NaN entries (epochs not run) are skipped.

    Returns
    -------
    max_relative_gap : float
        ``max_t |predicted_t - losses_t| / losses_t`` over the epochs where
        both are finite, or NaN if there are none.
    final_ratio : float
        ``predicted / losses`` at the last epoch where both are finite.
    """
    losses = np.asarray(losses, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    both = np.isfinite(losses) & np.isfinite(predicted) & (losses > 0)
    if not both.any():
        return float("nan"), float("nan")
    gap = np.abs(predicted[both] - losses[both]) / losses[both]
    last = np.flatnonzero(both)[-1]
    return float(gap.max()), float(predicted[last] / losses[last])


# ---------------------------------------------------------------------------
# Convergence bounds from lambda_min of the initial kernel.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Bound:
    """An upper bound on the loss curve, evaluated at every epoch.

    Attributes
    ----------
    name : str
        One of :data:`BOUND_NAMES`.
    label : str
        The formula, as matplotlib mathtext, and what its time variable counts.
    values : ndarray of shape (epochs + 1,) or None
        The bound at epochs 0, 1, ..., or None when it does not apply.
    note : str
        Why the bound does not apply, or an empty string.
    """

    name: str
    label: str
    values: np.ndarray | None = field(repr=False)
    note: str = ""


def loss_bounds(
    initial_loss: float,
    spectrum: Spectrum,
    learning_rate: float,
    n_samples: int,
    epochs: int,
    mode: str = "sgd",
    batch_size: int = 1,
    certified: CertifiedEigenvalue | None = None,
) -> list[Bound]:
    """Evaluate the convergence bounds of the initial kernel at every epoch.

    With ``L_0`` the initial loss, ``eta`` the learning rate, ``N`` the number
    of samples, ``e`` the epoch and ``S`` the steps per epoch (``ceil(N / b)``
    in ``mode='sgd'``, 1 in ``mode='gd'``):

    ``du``
        The study's form of the bound of Du et al. (2019), ``L_t <= (1 - eta
        lambda_min / 2)^t L_0``, with ``t = e`` as the study counts it. Du et
        al. bound each step of size ``eta`` of full-batch gradient descent on
        the half sum of squares ``(1/2) sum_n r_n^2``, with the smallest
        eigenvalue of the infinite-width kernel. Here ``lambda_min`` of the
        initial empirical kernel replaces it. To first order in ``eta``, an
        epoch of SGD with batch size ``b`` is one step of size ``2 eta / b`` on
        that loss (``b = N`` in full-batch mode). For ``b = 1`` the plotted
        form is looser than Du et al.'s bound at that step. For ``b > 2`` it
        is tighter and need not hold. Drawn while ``eta lambda_min / 2 < 1``.
    ``flow``
        Gradient flow on the mean squared error, ``L <= L_0 exp(-4 lambda_min
        t / N)``, with ``t = eta S e``: each step of size ``eta`` advances the
        flow by ``eta``, so an epoch of batch-size-1 SGD is ``t = eta N``.
    ``flow_study``
        The study's form without the ``1/N`` of the mean, ``L_0 exp(-4
        lambda_min t)``, with the same ``t``.
    ``gd``
        Full-batch gradient descent on the linearised network, ``L_k <= (1 - 2
        eta lambda_min / N)^(2k) L_0`` with ``k = e`` steps. Drawn only in
        ``mode='gd'`` and while ``eta <= N / (2 lambda_max)``.

    No bound is drawn when ``lambda_min`` is at or under the resolution floor
    of ``spectrum``, because it would rest on rounding noise.

    Parameters
    ----------
    initial_loss : float
    spectrum : Spectrum
        Of the initial kernel.
    learning_rate : float
    n_samples : int
    epochs : int
    mode : {'sgd', 'gd'}, default='sgd'
    batch_size : int, default=1
        Ignored in ``mode='gd'``.
    certified : CertifiedEigenvalue, optional
        ``lambda_min`` from :func:`ntk_np.certify.certify_lambda_min`; when
        given, its value and error bound replace the ``eigh`` value and floor.

    Returns
    -------
    list of Bound
        One per name of :data:`BOUND_NAMES`, in that order.
    """
    eta = _check_learning_rate(learning_rate)
    n = _check_int("n_samples", n_samples, 1)
    e = np.arange(_check_int("epochs", epochs, 0) + 1, dtype=np.float64)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of " + ", ".join(MODES))
    steps = -(-n // _check_int("batch_size", batch_size, 1)) if mode == "sgd" else 1
    # Labels are matplotlib mathtext, and each states what its time variable counts.
    if steps == 1:
        per_epoch = r"\eta"
    elif steps == n:
        per_epoch = r"\eta N"
    else:
        per_epoch = rf"{steps}\,\eta"
    labels = {
        "du": r"$L_0 (1 - \eta\lambda_{\min}/2)^t$, $t$ = epochs "
        "(Du et al., study's form)",
        "flow": rf"$L_0\, e^{{-4 \lambda_{{\min}} t / N}}$, $t = {per_epoch}$ "
        "per epoch (gradient flow)",
        "flow_study": rf"$L_0\, e^{{-4 \lambda_{{\min}} t}}$, $t = {per_epoch}$ "
        "per epoch (study, no 1/N)",
        "gd": r"$L_0 (1 - 2\eta\lambda_{\min}/N)^{2k}$, $k$ = epochs "
        "(full-batch GD)",
    }
    if certified is None:
        certified = eigh_lambda_min(spectrum)
    lam = certified.value
    if not certified.resolved:
        note = f"lambda_min at or under its error bound {certified.bound:.2g}"
        return [Bound(name, labels[name], None, note) for name in BOUND_NAMES]

    bounds = []
    rate = eta * lam / 2
    if rate < 1:
        bounds.append(Bound("du", labels["du"], initial_loss * (1 - rate) ** e))
    else:
        note = f"eta lambda_min / 2 = {rate:.3g} >= 1"
        bounds.append(Bound("du", labels["du"], None, note))
    time_per_epoch = eta * steps
    flow = initial_loss * np.exp(-4 * lam * time_per_epoch * e / n)
    bounds.append(Bound("flow", labels["flow"], flow))
    flow_study = initial_loss * np.exp(-4 * lam * time_per_epoch * e)
    bounds.append(Bound("flow_study", labels["flow_study"], flow_study))
    limit = n / (2 * spectrum.lambda_max)
    if mode != "gd":
        bounds.append(Bound("gd", labels["gd"], None, "applies to full-batch GD"))
    elif eta > limit:
        note = f"eta > N / (2 lambda_max) = {limit:.3g}"
        bounds.append(Bound("gd", labels["gd"], None, note))
    else:
        factor = (1 - 2 * eta * lam / n) ** 2
        bounds.append(Bound("gd", labels["gd"], initial_loss * factor**e))
    return bounds


@dataclass(frozen=True, eq=False)
class KernelComparison:
    """A run next to what its initial kernel predicts.

    Attributes
    ----------
    predicted : ndarray of shape (epochs + 1,)
        Loss of the linearised network (:func:`linearized_losses`).
    max_relative_gap, final_ratio : float
        From :func:`prediction_gap`.
    spectrum : Spectrum
        Of the initial kernel.
    bounds : list of Bound
        From :func:`loss_bounds`.
    lambda_min : CertifiedEigenvalue
        The smallest eigenvalue the bounds use, with its route and error bound.
    """

    predicted: np.ndarray = field(repr=False)
    max_relative_gap: float
    final_ratio: float
    spectrum: Spectrum = field(repr=False)
    bounds: list = field(repr=False)
    lambda_min: CertifiedEigenvalue


def compare_with_kernel(
    result: TrainingResult, certified: CertifiedEigenvalue | None = None
) -> KernelComparison:
    """Compute the linearised prediction, its gap and the bounds of a run.

    ``certified`` is the initial kernel's ``lambda_min`` from
    :func:`ntk_np.certify.certify_lambda_min`; without it, the value recorded
    with the initial kernel under the run's ``certify`` policy is used.

    Raises
    ------
    ValueError
        If the run recorded no initial kernel (``kernel_epochs`` was empty).
    """
    predicted = predict_linearized(result)
    gap, ratio = prediction_gap(result.losses, predicted)
    spectrum = result.initial_kernel.spectrum
    if certified is None:
        certified = result.initial_kernel.lambda_min
    n_samples = result.initial_residual.shape[0]
    bounds = loss_bounds(
        result.losses[0],
        spectrum,
        result.learning_rate,
        n_samples,
        result.epochs,
        result.mode,
        result.batch_size,
        certified,
    )
    return KernelComparison(predicted, gap, ratio, spectrum, bounds, certified)


# ---------------------------------------------------------------------------
# Kernel drift over widths.
# ---------------------------------------------------------------------------


def kernel_drift_over_widths(
    X,
    y,
    widths: Sequence[int] = (50, 100, 200, 400, 800),
    depth: int = 3,
    activation: str = "relu",
    parametrization: str = "thesis",
    seed: int = 0,
    epochs: int = 100,
    kernel_epochs: Iterable[int] = (10, 50, 100),
    **train_options,
) -> list[TrainingResult]:
    """Train networks of several widths and record how their kernels move.

    Each network is ``make_network(width, depth, activation, parametrization,
    seed)``, trained by :func:`train_network` with ``seed``, ``epochs``,
    ``kernel_epochs`` and ``train_options``. The kernel's relative change
    ``||Theta_t - Theta_0||_F / ||Theta_0||_F`` is in each result's
    ``kernels``. In the ``ntk`` parametrisation it shrinks as the width grows.
    In the ``thesis`` parametrisation it need not, because the kernel, and with
    it the effective step ``eta Theta``, grows with the width.

    Returns
    -------
    list of TrainingResult
        One per width, in the order given.
    """
    kernel_epochs = tuple(kernel_epochs) or (epochs,)
    results = []
    for width in widths:
        network = make_network(width, depth, activation, parametrization, seed)
        logger.info("training %s for kernel drift", network.describe())
        results.append(
            train_network(
                network,
                X,
                y,
                epochs=epochs,
                seed=seed,
                kernel_epochs=kernel_epochs,
                **train_options,
            )
        )
    return results
