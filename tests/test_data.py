"""Tests for ntk_np.data on the embedded copy, the Fashion-MNIST IDX files and
corrupted copies of IDX and .npz files written to tmp_path."""

from __future__ import annotations

import gzip
import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest

from ntk_np.data import (
    CLASS_NAMES,
    EMBEDDED_CLASSES,
    DataError,
    load_embedded,
    load_idx_split,
    load_sample,
    read_idx,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

needs_idx_files = pytest.mark.skipif(
    not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"Fashion-MNIST IDX files not found in {FASHION_DIR} "
    "(Debian package dataset-fashion-mnist)",
)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file (magic 0x000008NN, big-endian dims)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_file(path: Path, content: bytes, compress: bool = False) -> Path:
    path.write_bytes(gzip.compress(content, mtime=0) if compress else content)
    return path


@pytest.fixture(scope="module")
def small_images() -> np.ndarray:
    """First 50 embedded images as (50, 28, 28) uint8."""
    images, _, _ = load_embedded()
    return images[:50].reshape(50, 28, 28)


@pytest.fixture(scope="module")
def small_labels() -> np.ndarray:
    _, labels, _ = load_embedded()
    return labels[:50].copy()


@pytest.fixture
def small_split_dir(tmp_path, small_images, small_labels) -> Path:
    """Directory with a 50-image training split in gzip IDX files."""
    write_file(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(small_images), True)
    write_file(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(small_labels), True)
    return tmp_path


@pytest.fixture(scope="module")
def train_split() -> tuple[np.ndarray, np.ndarray]:
    return load_idx_split(FASHION_DIR, "train")


def assert_data_error(path: Path, pattern: str, func, *args) -> str:
    """Call func, expect a DataError matching pattern, and check it names path."""
    with pytest.raises(DataError, match=pattern) as excinfo:
        func(*args)
    message = str(excinfo.value)
    assert str(path) in message
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- read_idx


@needs_idx_files
@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("t10k-labels-idx1-ubyte", (10000,)),
        ("t10k-images-idx3-ubyte", (10000, 28, 28)),
    ],
)
def test_read_idx_raw_copy_equals_gzip(tmp_path, name, shape):
    gz_path = FASHION_DIR / f"{name}.gz"
    raw_path = tmp_path / name
    raw_path.write_bytes(gzip.decompress(gz_path.read_bytes()))

    from_gz = read_idx(gz_path)
    from_raw = read_idx(raw_path)

    assert from_gz.dtype == np.uint8
    assert from_gz.shape == shape
    np.testing.assert_array_equal(from_raw, from_gz)


def test_read_idx_detects_gzip_by_magic(tmp_path, small_images):
    path = write_file(tmp_path / "images.idx", idx_bytes(small_images), True)

    array = read_idx(path)

    assert array.flags.writeable
    np.testing.assert_array_equal(array, small_images)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_truncated(tmp_path, small_labels, compress):
    content = idx_bytes(small_labels)[:-10]
    path = write_file(tmp_path / "labels", content, compress)

    assert_data_error(
        path, r"is truncated: .*needs 50 data bytes, found 40", read_idx, path
    )


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_trailing_bytes(tmp_path, small_images, compress):
    content = idx_bytes(small_images) + b"\x00\x01\x02"
    path = write_file(tmp_path / "images", content, compress)

    assert_data_error(
        path,
        r"has trailing bytes: shape \(50, 28, 28\) needs 39200 data bytes, found 39203",
        read_idx,
        path,
    )


@pytest.mark.parametrize(
    "magic",
    [
        b"\x00\x00\x0d\x03",  # float32 images
        b"\x00\x00\x08\x02",  # 2-D
        b"\x00\x00\x08\x00",  # 0-D
        b"\x12\x34\x08\x03",  # nonzero leading bytes
    ],
)
def test_read_idx_wrong_magic(tmp_path, small_images, magic):
    content = magic + idx_bytes(small_images)[4:]
    path = write_file(tmp_path / "images", content)

    message = assert_data_error(
        path, rf"unsupported magic number 0x{magic.hex()}", read_idx, path
    )
    assert "0x00000803" in message


def test_read_idx_incomplete_header(tmp_path):
    path = write_file(tmp_path / "images", struct.pack(">I", 0x803) + b"\x00\x00")

    assert_data_error(
        path, r"incomplete header: expected 16 bytes, found 6", read_idx, path
    )


def test_read_idx_too_short(tmp_path):
    path = write_file(tmp_path / "empty", b"")

    assert_data_error(path, r"too short for a magic number: 0 bytes", read_idx, path)


def test_read_idx_corrupt_gzip(tmp_path, small_images):
    compressed = bytearray(gzip.compress(idx_bytes(small_images), mtime=0))
    middle = len(compressed) // 2
    compressed[middle : middle + 8] = b"\xff" * 8
    path = write_file(tmp_path / "images.gz", bytes(compressed))

    assert_data_error(path, r"is not a valid gzip stream", read_idx, path)


def test_read_idx_cut_gzip(tmp_path, small_images):
    compressed = gzip.compress(idx_bytes(small_images), mtime=0)
    path = write_file(tmp_path / "images.gz", compressed[: len(compressed) // 2])

    assert_data_error(path, r"is not a valid gzip stream", read_idx, path)


def test_read_idx_missing_file(tmp_path):
    path = tmp_path / "missing-idx3-ubyte.gz"

    assert_data_error(path, r"IDX file not found", read_idx, path)


def test_read_idx_directory(tmp_path):
    assert_data_error(tmp_path, r"failed to read IDX file", read_idx, tmp_path)


# ---------------------------------------------------------- load_idx_split


@needs_idx_files
def test_load_idx_split_t10k():
    images, labels = load_idx_split(FASHION_DIR, "t10k")

    assert images.shape == (10000, 28, 28)
    assert labels.shape == (10000,)
    np.testing.assert_array_equal(np.bincount(labels), np.full(10, 1000))


def test_load_idx_split_prefers_gzip(small_split_dir, small_images, small_labels):
    # Raw copies with 10 images would change the result if they were read.
    write_file(
        small_split_dir / "train-images-idx3-ubyte", idx_bytes(small_images[:10])
    )
    write_file(
        small_split_dir / "train-labels-idx1-ubyte", idx_bytes(small_labels[:10])
    )

    images, labels = load_idx_split(small_split_dir)

    np.testing.assert_array_equal(images, small_images)
    np.testing.assert_array_equal(labels, small_labels)


def test_load_idx_split_raw_files(tmp_path, small_images, small_labels):
    write_file(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(small_images))
    write_file(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(small_labels))

    images, labels = load_idx_split(tmp_path, "t10k")

    np.testing.assert_array_equal(images, small_images)
    np.testing.assert_array_equal(labels, small_labels)


def test_load_idx_split_missing_directory(tmp_path):
    path = tmp_path / "nowhere"

    assert_data_error(path, r"data directory not found", load_idx_split, path)


def test_load_idx_split_missing_labels(small_split_dir):
    (small_split_dir / "train-labels-idx1-ubyte.gz").unlink()

    assert_data_error(
        small_split_dir,
        r"neither train-labels-idx1-ubyte.gz nor train-labels-idx1-ubyte found",
        load_idx_split,
        small_split_dir,
    )


def test_load_idx_split_count_mismatch(small_split_dir, small_labels):
    labels_path = small_split_dir / "train-labels-idx1-ubyte.gz"
    write_file(labels_path, idx_bytes(small_labels[:49]), True)

    assert_data_error(
        labels_path,
        r"contains 50 images but label file .* contains 49 labels",
        load_idx_split,
        small_split_dir,
    )


def test_load_idx_split_label_out_of_range(small_split_dir, small_labels):
    labels = small_labels.copy()
    labels[3] = 10
    labels_path = small_split_dir / "train-labels-idx1-ubyte.gz"
    write_file(labels_path, idx_bytes(labels), True)

    assert_data_error(
        labels_path, r"contains label 10", load_idx_split, small_split_dir
    )


def test_load_idx_split_images_not_3d(small_split_dir, small_labels):
    images_path = small_split_dir / "train-images-idx3-ubyte.gz"
    write_file(images_path, idx_bytes(small_labels), True)

    assert_data_error(
        images_path, r"expected \(n, 28, 28\)", load_idx_split, small_split_dir
    )


def test_load_idx_split_invalid_split(small_split_dir):
    with pytest.raises(DataError, match=r"split='test' is invalid"):
        load_idx_split(small_split_dir, "test")


# ----------------------------------------------------------- load_embedded


def test_embedded_shape_and_counts():
    images, labels, indices = load_embedded()

    assert images.shape == (12000, 784)
    assert images.dtype == np.uint8
    assert labels.shape == (12000,)
    assert labels.dtype == np.uint8
    assert indices.shape == (12000,)
    assert indices.dtype == np.int64
    assert EMBEDDED_CLASSES == (0, 9)
    assert np.count_nonzero(labels == 0) == 6000
    assert np.count_nonzero(labels == 9) == 6000
    assert np.all(np.diff(indices) > 0)
    assert indices[0] >= 0
    assert indices[-1] < 60000


def test_embedded_cached_and_read_only():
    first = load_embedded()
    second = load_embedded()

    for array_first, array_second in zip(first, second, strict=True):
        assert array_first is array_second
        assert not array_first.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        first[0][0, 0] = 1


@needs_idx_files
def test_embedded_equals_idx_files(train_split):
    train_images, train_labels = train_split
    images, labels, indices = load_embedded()
    expected_indices = np.flatnonzero(np.isin(train_labels, EMBEDDED_CLASSES))

    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(labels, train_labels[indices])
    np.testing.assert_array_equal(images, train_images[indices].reshape(-1, 784))


@needs_idx_files
def test_build_script_reproduces_embedded(tmp_path):
    script = REPO_ROOT / "scripts" / "build_embedded_data.py"
    spec = importlib.util.spec_from_file_location("build_embedded_data", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "subset.npz"

    status = module.main(["--data-dir", str(FASHION_DIR), "--out", str(out)])

    assert status == 0
    with np.load(out) as built:
        assert sorted(built.files) == ["images", "indices", "labels"]
        for key, embedded in zip(
            ("images", "labels", "indices"), load_embedded(), strict=True
        ):
            assert built[key].dtype == embedded.dtype
            np.testing.assert_array_equal(built[key], embedded)
    assert module.main(["--data-dir", str(tmp_path / "none"), "--out", str(out)]) == 2


# ------------------------------------------------------------- load_sample


def test_load_sample_default():
    images, labels, _ = load_embedded()

    X, y = load_sample()

    assert X.shape == (200, 784)
    assert X.dtype == np.float64
    assert X.flags.c_contiguous
    assert X.min() >= 0.0
    assert X.max() <= 1.0
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, np.repeat([0.0, 1.0], 100))
    expected = (
        np.concatenate([images[labels == 0][:100], images[labels == 9][:100]]) / 255.0
    )
    np.testing.assert_array_equal(X, expected)


@needs_idx_files
def test_load_sample_first_rows_match_idx(train_split):
    train_images, train_labels = train_split
    first_tshirt = np.flatnonzero(train_labels == 0)[0]
    first_boot = np.flatnonzero(train_labels == 9)[0]

    X, _ = load_sample()

    np.testing.assert_array_equal(X[0], train_images[first_tshirt].ravel() / 255.0)
    np.testing.assert_array_equal(X[100], train_images[first_boot].ravel() / 255.0)


def test_load_sample_swapped_classes():
    X_default, _ = load_sample(n_per_class=5)

    X, y = load_sample(n_per_class=5, classes=(9, 0))

    np.testing.assert_array_equal(X[:5], X_default[5:])
    np.testing.assert_array_equal(X[5:], X_default[:5])
    np.testing.assert_array_equal(y, np.repeat([0.0, 1.0], 5))


def test_load_sample_accepts_numpy_integers():
    X, y = load_sample(n_per_class=np.int64(3), classes=np.array([0, 9]))

    assert X.shape == (6, 784)
    assert y.shape == (6,)


def test_load_sample_whole_class():
    X, y = load_sample(n_per_class=6000)

    assert X.shape == (12000, 784)
    assert y.sum() == 6000.0


@needs_idx_files
def test_load_sample_data_dir_other_classes(train_split):
    train_images, train_labels = train_split

    X, y = load_sample(n_per_class=40, classes=(3, 5), data_dir=FASHION_DIR)

    rows = np.concatenate(
        [np.flatnonzero(train_labels == 3)[:40], np.flatnonzero(train_labels == 5)[:40]]
    )
    np.testing.assert_array_equal(X, train_images[rows].reshape(80, 784) / 255.0)
    np.testing.assert_array_equal(y, np.repeat([0.0, 1.0], 40))
    assert X.flags.c_contiguous


def test_load_sample_data_dir_small_split(small_split_dir, small_images, small_labels):
    X, y = load_sample(n_per_class=2, data_dir=small_split_dir)

    rows = np.concatenate(
        [np.flatnonzero(small_labels == 0)[:2], np.flatnonzero(small_labels == 9)[:2]]
    )
    np.testing.assert_array_equal(X, small_images[rows].reshape(4, 784) / 255.0)
    np.testing.assert_array_equal(y, [0.0, 0.0, 1.0, 1.0])


def test_load_sample_data_dir_too_few(small_split_dir, small_labels):
    # The first 50 embedded images contain 30 T-shirts and 20 Ankle boots.
    assert np.count_nonzero(small_labels == 0) == 30
    assert np.count_nonzero(small_labels == 9) == 20

    assert_data_error(
        small_split_dir,
        r"n_per_class=25 exceeds the 20 training images of class 9 \(Ankle boot\)",
        load_sample,
        25,
        (0, 9),
        small_split_dir,
    )


@pytest.mark.parametrize("n_per_class", [0, -1, 1.5, True, "100", None])
def test_load_sample_invalid_n_per_class(n_per_class):
    with pytest.raises(DataError, match=r"n_per_class=.* is invalid, expected a pos"):
        load_sample(n_per_class=n_per_class)


def test_load_sample_n_per_class_too_large():
    with pytest.raises(
        DataError,
        match=r"n_per_class=7000 exceeds the 6000 training images of class 0 "
        r"\(T-shirt/top\)",
    ):
        load_sample(n_per_class=7000)


@pytest.mark.parametrize(
    "classes",
    [(0, 0), (0, 10), (-1, 9), (0,), (0, 9, 1), "09", (True, 9), (0.0, 9.0), 5, None],
)
def test_load_sample_invalid_classes(classes):
    with pytest.raises(
        DataError, match=r"classes=.* is invalid, expected two distinct"
    ):
        load_sample(classes=classes)


def test_load_sample_other_classes_need_data_dir():
    with pytest.raises(
        DataError,
        match=r"classes=\(3, 5\) are not in the embedded copy, which contains only "
        r"classes 0 \(T-shirt/top\) and 9 \(Ankle boot\)\. Pass data_dir",
    ):
        load_sample(classes=(3, 5))


def test_load_sample_missing_data_dir(tmp_path):
    path = tmp_path / "nowhere"

    assert_data_error(path, r"data directory not found", load_sample, 10, (3, 5), path)


def test_class_names():
    assert len(CLASS_NAMES) == 10
    assert CLASS_NAMES[0] == "T-shirt/top"
    assert CLASS_NAMES[9] == "Ankle boot"


# ------------------------------------------------------------ .npz samples


def test_load_sample_npz(tmp_path):
    X_in = np.asfortranarray(np.arange(15, dtype=np.int32).reshape(3, 5))
    y_in = np.array([0, 1, 1], dtype=np.uint8)
    path = tmp_path / "sample.npz"
    np.savez(path, X=X_in, y=y_in)

    X, y = load_sample(n_per_class=999, classes=(3, 5), data=path)

    assert X.dtype == np.float64
    assert y.dtype == np.float64
    assert X.flags.c_contiguous
    np.testing.assert_array_equal(X, X_in)
    np.testing.assert_array_equal(y, y_in)


def test_load_sample_npz_and_data_dir(tmp_path):
    with pytest.raises(DataError, match=r"were both given\. Pass at most one"):
        load_sample(data=tmp_path / "a.npz", data_dir=tmp_path)


GOOD_X = np.zeros((4, 3))
GOOD_Y = np.zeros(4)


@pytest.mark.parametrize(
    ("arrays", "pattern"),
    [
        ({"X": GOOD_X}, r"lacks key\(s\) y, found \['X'\]"),
        ({"y": GOOD_Y}, r"lacks key\(s\) X"),
        (
            {"X": np.zeros(4), "y": GOOD_Y},
            r"X in .* has shape \(4,\), expected \(N, d\)",
        ),
        ({"X": GOOD_X, "y": np.zeros((4, 1))}, r"y in .* has shape \(4, 1\), expected"),
        ({"X": np.zeros((4, 0)), "y": GOOD_Y}, r"expected d >= 1 features"),
        ({"X": GOOD_X, "y": np.zeros(3)}, r"has 4 rows but y has 3 values"),
        (
            {"X": np.zeros((1, 3)), "y": np.zeros(1)},
            r"must contain at least 2 samples, got 1",
        ),
        (
            {"X": np.full((4, 3), np.nan), "y": GOOD_Y},
            r"X in .* contains 12 NaN or inf",
        ),
        (
            {"X": GOOD_X, "y": np.array([0, np.inf, 0, 0])},
            r"y in .* contains 1 NaN or inf",
        ),
        ({"X": np.full((4, 3), "a"), "y": GOOD_Y}, r"X in .* has dtype <U1, expected"),
        ({"X": GOOD_X, "y": np.ones(4, dtype=bool)}, r"y in .* has dtype bool"),
        (
            {"X": GOOD_X, "y": np.ones(4, dtype=complex)},
            r"y in .* has dtype complex128",
        ),
        ({"X": GOOD_X.astype(object), "y": GOOD_Y}, r"failed to read X and y from"),
    ],
)
def test_load_sample_npz_invalid(tmp_path, arrays, pattern):
    path = tmp_path / "sample.npz"
    np.savez(path, **arrays)

    assert_data_error(path, pattern, load_sample, 100, (0, 9), None, path)


def test_load_sample_npz_missing(tmp_path):
    path = tmp_path / "missing.npz"

    assert_data_error(
        path, r"data file not found", load_sample, 100, (0, 9), None, path
    )


@pytest.mark.parametrize(
    "content", [b"", b"X,y\n1,2\n", b"\x80\x04pickle", b"PK\x03\x04broken zip"]
)
def test_load_sample_npz_not_npz(tmp_path, content):
    path = write_file(tmp_path / "sample.npz", content)

    message = assert_data_error(
        path,
        r"data file .* is not a valid \.npz \(zip\) archive of arrays",
        load_sample,
        100,
        (0, 9),
        None,
        path,
    )
    assert "pickle" not in message


def test_load_sample_npz_directory(tmp_path):
    path = tmp_path / "sample.npz"
    path.mkdir()

    assert_data_error(
        path,
        r"is a directory, expected a \.npz file",
        load_sample,
        100,
        (0, 9),
        None,
        path,
    )


def test_load_sample_npz_is_npy(tmp_path):
    path = tmp_path / "sample.npy"
    np.save(path, GOOD_X)

    assert_data_error(
        path,
        r"contains a single \.npy array, expected \.npz",
        load_sample,
        100,
        (0, 9),
        None,
        path,
    )
