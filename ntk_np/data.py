"""Load Fashion-MNIST images and build the two-class sample used by the NTK study.

Three sources are supported:

* IDX files, the format of the official Fashion-MNIST release, gzip-compressed or
  raw (`read_idx`, `load_idx_split`).
* The embedded copy shipped in ``ntk_np/_data``: every training image of classes
  0 (T-shirt/top) and 9 (Ankle boot) with its label and its index into the
  60,000-image training file (`load_embedded`).
* A user's ``.npz`` file with arrays ``X`` and ``y`` (`load_sample` with ``data``).

Every bad input or bad file raises `DataError` with a one-line message that names
the file or value and states what was expected.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.resources
import logging
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

EMBEDDED_CLASSES: tuple[int, int] = (0, 9)
"""Fashion-MNIST classes contained in the embedded copy."""

EMBEDDED_FILE = "fashion_mnist_train_0_9.npz"
"""File name of the embedded copy inside the ``ntk_np/_data`` directory."""

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Fashion-MNIST class names, indexed by label."""

IMAGE_SHAPE = (28, 28)
SPLITS = ("train", "t10k")

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_UBYTE = 0x08
_IDX_NDIMS = (1, 3)
_NPY_MAGIC = b"\x93NUMPY"
# A local file header starts a zip archive with members, and an end-of-central-
# directory record starts an empty one.
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")

PathLike = str | os.PathLike[str]


class DataError(ValueError):
    """Invalid input value or unreadable, malformed or inconsistent data file."""


def data_fingerprint(X: np.ndarray) -> str:
    """Return a SHA-256 hex digest of the float64 data and its shape."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    digest = hashlib.sha256(str(X.shape).encode())
    digest.update(X.tobytes())
    return digest.hexdigest()


def _one_line(exc: BaseException) -> str:
    """Return the text of `exc` with newlines collapsed, for one-line messages."""
    return " ".join(str(exc).split())


def read_idx(path: PathLike) -> NDArray[np.uint8]:
    """Read an IDX file of unsigned bytes, gzip-compressed or raw.

    Gzip compression is detected from the first two bytes (``1f 8b``), not from
    the file name.

    Parameters
    ----------
    path : str or os.PathLike
        IDX file with magic number ``0x00000801`` (1-D) or ``0x00000803`` (3-D).

    Returns
    -------
    numpy.ndarray of uint8, shape given by the header
        Writable array, for example ``(60000, 28, 28)`` for training images.

    Raises
    ------
    DataError
        If the file is missing or unreadable, the gzip stream is corrupt, the
        magic number is not one of the two above, the header is incomplete, or
        the data section is shorter or longer than the header's shape needs.
    """
    path = Path(path)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"IDX file not found: {path}") from None
    except OSError as exc:
        raise DataError(f"failed to read IDX file {path}: {exc.strerror}") from None

    if content[:2] == _GZIP_MAGIC:
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"IDX file {path} is not a valid gzip stream: {_one_line(exc)}"
            ) from None

    if len(content) < 4:
        raise DataError(
            f"IDX file {path} is too short for a magic number: "
            f"{len(content)} bytes, expected at least 4"
        )
    zero, dtype_code, ndim = struct.unpack(">HBB", content[:4])
    if zero != 0 or dtype_code != _IDX_UBYTE or ndim not in _IDX_NDIMS:
        raise DataError(
            f"IDX file {path} has unsupported magic number 0x{content[:4].hex()}, "
            "expected 0x00000801 (uint8, 1-D) or 0x00000803 (uint8, 3-D)"
        )

    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DataError(
            f"IDX file {path} has an incomplete header: expected {header_size} "
            f"bytes, found {len(content)}"
        )
    shape = struct.unpack(f">{ndim}I", content[4:header_size])

    expected = math.prod(shape)
    found = len(content) - header_size
    if found != expected:
        problem = "is truncated" if found < expected else "has trailing bytes"
        raise DataError(
            f"IDX file {path} {problem}: shape {shape} needs {expected} data "
            f"bytes, found {found}"
        )

    array = np.frombuffer(content, dtype=np.uint8, offset=header_size)
    logger.debug("read IDX file %s with shape %s", path, shape)
    return array.reshape(shape).copy()


def _find_idx_file(data_dir: Path, stem: str) -> Path:
    """Return ``data_dir/stem.gz`` if it exists, else ``data_dir/stem``."""
    for candidate in (data_dir / f"{stem}.gz", data_dir / stem):
        if candidate.is_file():
            return candidate
    raise DataError(f"neither {stem}.gz nor {stem} found in {data_dir}")


def load_idx_split(
    data_dir: PathLike, split: str = "train"
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Load the images and labels of one Fashion-MNIST split from IDX files.

    Parameters
    ----------
    data_dir : str or os.PathLike
        Directory with ``{split}-images-idx3-ubyte`` and ``{split}-labels-idx1-ubyte``,
        each gzip-compressed (``.gz`` suffix, preferred when both exist) or raw.
    split : {"train", "t10k"}, default "train"
        Training or test split.

    Returns
    -------
    images : numpy.ndarray of uint8, shape (n, 28, 28)
    labels : numpy.ndarray of uint8, shape (n,)
        Class labels in 0..9, in file order.

    Raises
    ------
    DataError
        If `split` is invalid, the directory or a file is missing, a file is
        malformed, the image and label counts differ, or a label exceeds 9.
    """
    if split not in SPLITS:
        raise DataError(f"split={split!r} is invalid, expected 'train' or 't10k'")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data directory not found: {data_dir}")

    images_path = _find_idx_file(data_dir, f"{split}-images-idx3-ubyte")
    labels_path = _find_idx_file(data_dir, f"{split}-labels-idx1-ubyte")
    images = read_idx(images_path)
    labels = read_idx(labels_path)

    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(
            f"image file {images_path} has shape {images.shape}, expected (n, 28, 28)"
        )
    if labels.ndim != 1:
        raise DataError(
            f"label file {labels_path} has shape {labels.shape}, expected (n,)"
        )
    if len(images) != len(labels):
        raise DataError(
            f"image file {images_path} contains {len(images)} images but label file "
            f"{labels_path} contains {len(labels)} labels, expected equal counts"
        )
    if labels.size and labels.max() > 9:
        raise DataError(
            f"label file {labels_path} contains label {int(labels.max())}, "
            "expected labels 0..9"
        )
    return images, labels


@functools.lru_cache(maxsize=1)
def load_embedded() -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.int64]]:
    """Load the embedded training images of classes 0 and 9.

    The result is cached, so its arrays are read-only and shared between calls.

    Returns
    -------
    images : numpy.ndarray of uint8, shape (12000, 784)
        Flattened 28 x 28 images in training-file order, classes interleaved.
    labels : numpy.ndarray of uint8, shape (12000,)
        Labels, each 0 or 9.
    indices : numpy.ndarray of int64, shape (12000,)
        Position of each image in the 60,000-image training file, increasing.

    Raises
    ------
    DataError
        If the embedded file is missing or does not contain the expected arrays.
    """
    resource = importlib.resources.files(__package__) / "_data" / EMBEDDED_FILE
    rebuild_hint = "Rebuild it with scripts/build_embedded_data.py"
    try:
        with resource.open("rb") as handle, np.load(handle) as archive:
            images = archive["images"]
            labels = archive["labels"]
            indices = archive["indices"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"failed to load embedded data {resource}: {_one_line(exc)}. {rebuild_hint}"
        ) from None

    n = len(labels)
    valid = (
        images.dtype == np.uint8
        and images.shape == (n, math.prod(IMAGE_SHAPE))
        and labels.dtype == np.uint8
        and labels.ndim == 1
        and indices.dtype == np.int64
        and indices.shape == (n,)
        and bool(np.isin(labels, EMBEDDED_CLASSES).all())
    )
    if not valid:
        raise DataError(
            f"embedded data {resource} has unexpected arrays: images "
            f"{images.dtype}{images.shape}, labels {labels.dtype}{labels.shape}, "
            f"indices {indices.dtype}{indices.shape}. {rebuild_hint}"
        )
    for array in (images, labels, indices):
        array.flags.writeable = False
    logger.debug("loaded %d embedded images from %s", n, resource)
    return images, labels, indices


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_classes(classes: object) -> tuple[int, int]:
    message = f"classes={classes!r} is invalid, expected two distinct integers in 0..9"
    if isinstance(classes, (str, bytes)):
        raise DataError(message)
    try:
        pair = tuple(classes)  # type: ignore[call-overload]
    except TypeError:
        raise DataError(message) from None
    if len(pair) != 2 or not all(_is_int(c) and 0 <= c <= 9 for c in pair):
        raise DataError(message)
    if pair[0] == pair[1]:
        raise DataError(message)
    return int(pair[0]), int(pair[1])


def _load_npz_sample(path: PathLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Load and validate ``X`` (N, d) and ``y`` (N,) from a user's ``.npz`` file."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"data file {path} is a directory, expected a .npz file")
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    not_npz = f"data file {path} is not a valid .npz (zip) archive of arrays"
    read_errors = (OSError, ValueError, EOFError, zipfile.BadZipFile)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise DataError(f"failed to read data file {path}: {exc.strerror}") from None
    # np.load treats any other file as a pickle, so with allow_pickle=False its
    # error points at allow_pickle instead of at the file.
    if not magic.startswith(_ZIP_MAGICS) and magic != _NPY_MAGIC:
        raise DataError(f"{not_npz}, expected arrays X and y saved by numpy.savez")
    try:
        loaded = np.load(path, allow_pickle=False)
    except read_errors as exc:
        raise DataError(f"{not_npz}: {_one_line(exc)}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"data file {path} contains a single .npy array, expected .npz")

    with loaded as archive:
        missing = sorted({"X", "y"} - set(archive.files))
        if missing:
            raise DataError(
                f"data file {path} lacks key(s) {', '.join(missing)}, "
                f"found {archive.files}, expected 'X' and 'y'"
            )
        try:
            X = archive["X"]
            y = archive["y"]
        except read_errors as exc:
            raise DataError(
                f"failed to read X and y from {path}: {_one_line(exc)}"
            ) from None

    for name, array, ndim, shape_text in (("X", X, 2, "(N, d)"), ("y", y, 1, "(N,)")):
        if array.dtype.kind not in "iuf":
            raise DataError(
                f"{name} in {path} has dtype {array.dtype}, expected integers or floats"
            )
        if array.ndim != ndim:
            raise DataError(
                f"{name} in {path} has shape {array.shape}, expected {shape_text}"
            )
    if X.shape[1] == 0:
        raise DataError(f"X in {path} has shape {X.shape}, expected d >= 1 features")
    if len(X) != len(y):
        raise DataError(
            f"X in {path} has {len(X)} rows but y has {len(y)} values, "
            "expected equal lengths"
        )
    if len(X) < 2:
        raise DataError(
            f"data file {path} must contain at least 2 samples, got {len(X)}"
        )
    for name, array in (("X", X), ("y", y)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise DataError(
                f"{name} in {path} contains {bad} NaN or infinite values, "
                "expected finite numbers"
            )

    logger.debug("loaded %d samples with %d features from %s", len(X), X.shape[1], path)
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    return X, y


def load_sample(
    n_per_class: int = 100,
    classes: tuple[int, int] = EMBEDDED_CLASSES,
    data_dir: PathLike | None = None,
    data: PathLike | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Build the two-class sample of the study, scaled to [0, 1].

    The sample is the first `n_per_class` training images of ``classes[0]`` in
    file order, followed by the first `n_per_class` of ``classes[1]``. The
    defaults give the first 100 T-shirts then the first 100 Ankle boots.

    Parameters
    ----------
    n_per_class : int, default 100
        Images taken from each class, at least 1. Ignored when `data` is given.
    classes : tuple of (int, int), default (0, 9)
        Two distinct class labels in 0..9, which receive targets 0.0 and 1.0.
        Without `data_dir` only 0 and 9 are available. Ignored when `data` is
        given.
    data_dir : str or os.PathLike, optional
        Directory with the training IDX files (see `load_idx_split`). By default
        the embedded copy is used.
    data : str or os.PathLike, optional
        ``.npz`` file with ``X`` of shape (N, d) and ``y`` of shape (N,), both
        finite, N >= 2. It is used whole and converted to float64. Cannot be
        combined with `data_dir`.

    Returns
    -------
    X : numpy.ndarray of float64, shape (N, d)
        C-contiguous inputs. From Fashion-MNIST, N = 2 * n_per_class, d = 784
        and pixels are divided by 255.
    y : numpy.ndarray of float64, shape (N,)
        Targets. From Fashion-MNIST, `n_per_class` zeros then `n_per_class` ones.

    Raises
    ------
    DataError
        If an argument is invalid, a class has fewer than `n_per_class`
        images, or a file is missing or malformed.
    """
    if data is not None and data_dir is not None:
        raise DataError(
            f"data={str(data)!r} and data_dir={str(data_dir)!r} were both given. "
            "Pass at most one of them"
        )
    if data is not None:
        return _load_npz_sample(data)

    if not _is_int(n_per_class) or n_per_class < 1:
        raise DataError(
            f"n_per_class={n_per_class!r} is invalid, expected a positive integer"
        )
    first, second = _check_classes(classes)

    if data_dir is None:
        if first not in EMBEDDED_CLASSES or second not in EMBEDDED_CLASSES:
            raise DataError(
                f"classes=({first}, {second}) are not in the embedded copy, which "
                "contains only classes 0 (T-shirt/top) and 9 (Ankle boot). Pass "
                "data_dir with the Fashion-MNIST training IDX files for other classes"
            )
        images, labels, _ = load_embedded()
        source = "the embedded copy"
    else:
        images, labels = load_idx_split(data_dir, "train")
        images = images.reshape(len(images), -1)
        source = str(data_dir)

    rows = []
    for label in (first, second):
        positions = np.flatnonzero(labels == label)
        if n_per_class > len(positions):
            raise DataError(
                f"n_per_class={n_per_class} exceeds the {len(positions)} training "
                f"images of class {label} ({CLASS_NAMES[label]}) in {source}"
            )
        rows.append(images[positions[:n_per_class]])

    X = np.concatenate(rows).astype(np.float64)
    X /= 255.0
    y = np.repeat(np.array([0.0, 1.0]), n_per_class)
    logger.debug(
        "built sample of %d images of classes %d and %d from %s",
        len(X),
        first,
        second,
        source,
    )
    return X, y
