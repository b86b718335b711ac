"""Fully connected networks: weights, forward pass and backward pass.

The network, with D = ``depth`` weight layers, is::

    x(0) = x
    z(l) = c_l W(l) x(l-1) + b(l),   x(l) = act(z(l))     for l = 1 .. D-1
    f(x) = c_D W(D) x(D-1) + b(D)

Every entry of every ``W(l)`` (shape ``(n_l, n_{l-1})``) and ``b(l)`` is drawn
from N(0, 1). The multipliers ``c_l`` depend on the parametrisation:

``thesis``
    ``c_l = 1/sqrt(n_l)`` (the layer's own width) for hidden layers and
    ``c_D = 1``. This is the convention of N. Berg's 2024 thesis on NTK
    eigenvalues; the kernel grows with the width.
``ntk``
    ``c_l = 1/sqrt(n_{l-1})`` (the fan-in) for every layer, as in Jacot et
    al. 2018; the kernel has a finite limit as the width grows.

Weights come from two random streams, so that networks of one seed and width
share their leading layers. The hidden layers are drawn in order from a stream
keyed by ``(seed, n_inputs, width)``, and the output layer from a stream keyed
by ``(seed, n_inputs, width, depth)``. Each network's weights are still
independent N(0, 1) draws. Networks of different depth are merely correlated
with each other, which lets a sweep draw the weights once per width.

In code, ``A[l]`` is the ``(N, n_l)`` matrix of layer outputs ``x(l)`` for a
batch (``A[0] = X``), ``S[l]`` the activation slopes ``act'(z(l))`` and
``delta[l]`` the ``(N, n_l)`` matrix of ``df/dz(l)``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

from .activations import activation_code, affine_activate, scale_by_slope
from .choices import PARAMETRIZATIONS

_HIDDEN_STREAM = 0x48494444  # tags keep the two seed sequences apart
_OUTPUT_STREAM = 0x4F555450


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def check_architecture(
    width: int, depth: int, activation: str, parametrization: str
) -> tuple[int, int]:
    """Validate an architecture and return ``(width, depth)`` as ints.

    Raises
    ------
    ValueError, TypeError
        Naming the offending value and what is allowed.
    """
    width = _check_int("width", width, 1)
    depth = _check_int("depth", depth, 2)
    activation_code(activation)
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(
            f"unknown parametrization {parametrization!r}; expected one of "
            + ", ".join(PARAMETRIZATIONS)
        )
    return width, depth


def check_seed(seed) -> int:
    """Validate a weight seed (a non-negative integer) and return it as an int."""
    return _check_int("seed", seed, 0)


def layer_multipliers(
    n_inputs: int, width: int, depth: int, parametrization: str = "thesis"
) -> tuple[float, ...]:
    """Return the multipliers ``(c_1, ..., c_D)`` of a network."""
    if parametrization == "thesis":
        return (1.0 / np.sqrt(width),) * (depth - 1) + (1.0,)
    fan_in = [n_inputs] + [width] * (depth - 1)
    return tuple(1.0 / np.sqrt(n) for n in fan_in)


def draw_hidden_layers(
    n_inputs: int, width: int, n_layers: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Draw the first ``n_layers`` hidden layers ``(W, b)`` for a seed and width.

    The draws for fewer layers are a prefix of those for more layers.
    """
    rng = np.random.default_rng([_HIDDEN_STREAM, seed, n_inputs, width])
    layers = []
    fan_in = n_inputs
    for _ in range(n_layers):
        W = rng.standard_normal((width, fan_in))
        b = rng.standard_normal(width)
        layers.append((W, b))
        fan_in = width
    return layers


def draw_output_layer(
    n_inputs: int, width: int, depth: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the output layer ``(W (1, width), b (1,))`` of a network."""
    rng = np.random.default_rng([_OUTPUT_STREAM, seed, n_inputs, width, depth])
    W = rng.standard_normal((1, width))
    b = rng.standard_normal(1)
    return W, b


@dataclass(frozen=True, eq=False)
class Network:
    """A fully connected network with one output and its parameters.

    Attributes
    ----------
    weights : tuple of ndarray
        ``W(1) .. W(D)``; ``W(l)`` has shape ``(n_l, n_{l-1})``.
    biases : tuple of ndarray
        ``b(1) .. b(D)``; ``b(l)`` has shape ``(n_l,)``.
    multipliers : tuple of float
        ``c_1 .. c_D``.
    activation : str
    parametrization : str
    seed : int or None
        The seed the weights were drawn from, if any.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    multipliers: tuple[float, ...]
    activation: str
    parametrization: str = "thesis"
    seed: int | None = None

    @property
    def depth(self) -> int:
        """Number of weight layers D."""
        return len(self.weights)

    @property
    def width(self) -> int:
        """Width of the hidden layers."""
        return self.weights[0].shape[0]

    @property
    def n_inputs(self) -> int:
        """Number of input features n_0."""
        return self.weights[0].shape[1]

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """``(n_0, n_1, ..., n_D)``."""
        return (self.n_inputs,) + tuple(W.shape[0] for W in self.weights)

    @property
    def n_params(self) -> int:
        """Total number of parameters P."""
        return sum(W.size + b.size for W, b in zip(self.weights, self.biases))

    def describe(self) -> str:
        """Return a short label such as ``relu 800x3 (thesis)``."""
        return f"{self.activation} {self.width}x{self.depth} ({self.parametrization})"


def make_network(
    width: int,
    depth: int,
    activation: str,
    parametrization: str = "thesis",
    seed: int = 0,
    n_inputs: int = 784,
) -> Network:
    """Draw a network's weights from a seed.

    Parameters
    ----------
    width : int
        Width of every hidden layer, at least 1.
    depth : int
        Number of weight layers D, at least 2 (one hidden layer).
    activation : {'relu', 'elu', 'leaky_relu', 'sigmoid'}
    parametrization : {'thesis', 'ntk'}, default='thesis'
    seed : int, default=0
        Non-negative seed of the weight streams (see the module docstring).
    n_inputs : int, default=784
        Number of input features.

    Returns
    -------
    Network
    """
    width, depth = check_architecture(width, depth, activation, parametrization)
    seed = check_seed(seed)
    n_inputs = _check_int("n_inputs", n_inputs, 1)
    hidden = draw_hidden_layers(n_inputs, width, depth - 1, seed)
    output = draw_output_layer(n_inputs, width, depth, seed)
    return assemble_network(hidden, output, activation, parametrization, seed)


def assemble_network(
    hidden: list[tuple[np.ndarray, np.ndarray]],
    output: tuple[np.ndarray, np.ndarray],
    activation: str,
    parametrization: str = "thesis",
    seed: int | None = None,
) -> Network:
    """Build a :class:`Network` from hidden layers and an output layer."""
    layers = list(hidden) + [output]
    n_inputs = layers[0][0].shape[1]
    width = layers[0][0].shape[0]
    multipliers = layer_multipliers(n_inputs, width, len(layers), parametrization)
    return Network(
        weights=tuple(W for W, _ in layers),
        biases=tuple(b for _, b in layers),
        multipliers=multipliers,
        activation=activation,
        parametrization=parametrization,
        seed=seed,
    )


def check_inputs(network: Network, X) -> np.ndarray:
    """Return ``X`` as a C-contiguous float64 ``(N, n_0)`` array, or raise."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != network.n_inputs:
        raise ValueError(
            f"X must have shape (N, {network.n_inputs}) for this network, got {X.shape}"
        )
    if X.shape[0] < 1:
        raise ValueError("X must hold at least one sample, got 0 rows")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values")
    return X


@dataclass(eq=False)
class ForwardPass:
    """Layer outputs and activation slopes of one batch.

    Attributes
    ----------
    A : list of ndarray
        ``A[l]`` is ``x(l)`` for ``l = 0 .. D-1``, shape ``(N, n_l)``; these are
        the inputs of layers 1 .. D.
    S : list of ndarray
        ``S[l]`` is ``act'(z(l))`` for ``l = 1 .. D-1``, shape ``(N, n_l)``;
        ``S[0]`` is None.
    output : ndarray of shape (N,)
        ``f(x)`` for each sample.
    """

    A: list
    S: list
    output: np.ndarray


def architecture_sizes(n_inputs: int, width: int, depth: int) -> tuple[int, ...]:
    """Return ``(n_0, n_1, ..., n_D)`` of a network, as :attr:`Network.layer_sizes`."""
    return (n_inputs,) + (width,) * (depth - 1) + (1,)


def forward_hidden(
    hidden: list[tuple[np.ndarray, np.ndarray]],
    multipliers: tuple[float, ...],
    activation: str,
    X: np.ndarray,
) -> tuple[list, list]:
    """Run the hidden layers on a batch and return ``(A, S)`` as in ForwardPass."""
    code = activation_code(activation)
    n_samples = X.shape[0]
    sizes = [W.shape[0] for W, _ in hidden]
    # Every x(l) and slope S(l) is a view into one buffer. Allocated one array
    # at a time, their pages were mapped afresh on every call, and the page
    # faults took 14 ms of an 86 ms forward pass at width 1000, depth 10. One
    # buffer above 4 MiB gets transparent huge pages where the kernel offers
    # them (NumPy requests them), which takes the faults from 7,000 to about 30.
    buffer = np.empty(2 * n_samples * sum(sizes))
    A = [X]
    S = [None]
    offset = 0
    for (W, b), c, size in zip(hidden, multipliers, sizes):
        x = buffer[offset : offset + n_samples * size].reshape(n_samples, size)
        offset += n_samples * size
        slope = buffer[offset : offset + n_samples * size].reshape(n_samples, size)
        offset += n_samples * size
        np.matmul(A[-1], W.T, out=x)
        # x(l) overwrites the product it is computed from, elementwise.
        affine_activate(x, c, b, code, x, slope)
        A.append(x)
        S.append(slope)
    return A, S


def forward(network: Network, X) -> ForwardPass:
    """Run the network on a batch ``X`` of shape ``(N, n_0)``."""
    X = check_inputs(network, X)
    hidden = list(zip(network.weights[:-1], network.biases[:-1]))
    A, S = forward_hidden(hidden, network.multipliers, network.activation, X)
    c_out = network.multipliers[-1]
    output = c_out * (A[-1] @ network.weights[-1][0]) + network.biases[-1][0]
    return ForwardPass(A=A, S=S, output=output)


def backward(network: Network, passed: ForwardPass) -> list:
    """Backpropagate ``df/dz`` through a forward pass.

    Returns
    -------
    delta : list of ndarray
        ``delta[l]`` has shape ``(N, n_l)`` for ``l = 1 .. D``; ``delta[D]`` is a
        column of ones and ``delta[0]`` is None.
    """
    return backward_from(
        network.weights, network.multipliers, passed.S, len(network.weights)
    )


def backward_from(weights, multipliers, S, depth: int) -> list:
    """Backpropagate from the output of a network of ``depth`` layers.

    ``weights[l-1]`` is ``W(l)``; only ``weights[1:depth]`` are read, and ``S``
    must hold the slopes of layers 1 .. depth-1.
    """
    n_samples = S[1].shape[0] if depth > 1 else 0
    delta = [None] * (depth + 1)
    delta[depth] = np.ones((n_samples, 1))
    for l in range(depth - 1, 0, -1):
        back = delta[l + 1] @ weights[l]
        scale_by_slope(back, multipliers[l], S[l])
        delta[l] = back
    return delta


def flatten_params(network: Network) -> np.ndarray:
    """Return all parameters as one vector, ordered ``W(1), b(1), ..., W(D), b(D)``."""
    parts = []
    for W, b in zip(network.weights, network.biases):
        parts.append(W.ravel())
        parts.append(b.ravel())
    return np.concatenate(parts)


def with_params(network: Network, params) -> Network:
    """Return a copy of ``network`` whose parameters are the vector ``params``."""
    params = np.asarray(params, dtype=np.float64)
    if params.shape != (network.n_params,):
        raise ValueError(
            f"params must have shape ({network.n_params},), got {params.shape}"
        )
    weights, biases = [], []
    offset = 0
    for W, b in zip(network.weights, network.biases):
        weights.append(params[offset : offset + W.size].reshape(W.shape).copy())
        offset += W.size
        biases.append(params[offset : offset + b.size].copy())
        offset += b.size
    return Network(
        weights=tuple(weights),
        biases=tuple(biases),
        multipliers=network.multipliers,
        activation=network.activation,
        parametrization=network.parametrization,
        seed=network.seed,
    )
