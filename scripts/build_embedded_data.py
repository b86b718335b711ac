"""Rebuild the embedded Fashion-MNIST subset shipped in ``ntk_np/_data``.

``fashion_mnist_train_0_9.npz`` contains every training image of classes 0
(T-shirt/top) and 9 (Ankle boot) in training-file order, flattened to 784 pixels,
as three arrays:

* ``images``: uint8, shape (n, 784)
* ``labels``: uint8, shape (n,)
* ``indices``: int64, shape (n,), position of each image in the training file

Run from anywhere, for example ``python scripts/build_embedded_data.py``. The
script imports ``ntk_np`` from the checkout that contains it. Zip entries get a
fixed timestamp, so a re-run with the same numpy and zlib writes identical bytes.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import zipfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    # Build from the package beside this script, not from an installed copy.
    sys.path.insert(0, str(REPO_ROOT))

from ntk_np.data import (  # noqa: E402
    EMBEDDED_CLASSES,
    EMBEDDED_FILE,
    DataError,
    load_idx_split,
)

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_OUT = REPO_ROOT / "ntk_np" / "_data" / EMBEDDED_FILE

# Earliest timestamp a zip entry can store. It replaces the current time that
# numpy.savez_compressed writes, so the output depends only on the arrays.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def select_embedded(images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Select the training images of the embedded classes, in file order.

    Parameters
    ----------
    images : numpy.ndarray of uint8, shape (n, 28, 28)
    labels : numpy.ndarray of uint8, shape (n,)

    Returns
    -------
    dict of str to numpy.ndarray
        ``images`` (m, 784) uint8, ``labels`` (m,) uint8 and ``indices`` (m,)
        int64 for the m images whose label is in ``EMBEDDED_CLASSES``.
    """
    indices = np.flatnonzero(np.isin(labels, EMBEDDED_CLASSES)).astype(np.int64)
    return {
        "images": np.ascontiguousarray(images[indices].reshape(len(indices), -1)),
        "labels": labels[indices],
        "indices": indices,
    }


def write_deterministic_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write `arrays` with ``numpy.savez_compressed``, then fix entry timestamps."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    buffer.seek(0)

    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        zipfile.ZipFile(buffer) as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for entry in source.infolist():
            info = zipfile.ZipInfo(entry.filename, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = entry.external_attr
            target.writestr(info, source.read(entry))


def main(argv: list[str] | None = None) -> int:
    """Rebuild the embedded file and return 0, or 2 if the IDX files are invalid."""
    parser = argparse.ArgumentParser(
        description="Rebuild the embedded Fashion-MNIST subset (training images "
        "of classes 0 and 9) from the official IDX files."
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="directory with train-images-idx3-ubyte[.gz] and "
        "train-labels-idx1-ubyte[.gz] (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output .npz file (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    try:
        images, labels = load_idx_split(args.data_dir, "train")
    except DataError as exc:
        logger.error("error: %s", exc)
        return 2

    arrays = select_embedded(images, labels)
    write_deterministic_npz(args.out, arrays)
    logger.info(
        "wrote %d images of classes %s to %s (%d bytes)",
        len(arrays["indices"]),
        EMBEDDED_CLASSES,
        args.out,
        args.out.stat().st_size,
    )
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main())
