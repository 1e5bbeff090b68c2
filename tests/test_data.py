"""convlab.data: every reader on real files written here in the real formats, the bundled and the Debian
Fashion-MNIST, the bad-input cases (each a ValueError naming the file or parameter and the values, before
anything large is allocated), and the loader's seeded, replayable batches."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from convlab import data
from convlab.data import DataLoader, Dataset, bundled, open_dataset, readers
from convlab.data.cifar import load_pickle
from convlab.data.idx import FASHION_MNIST_CLASSES, read_idx

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
needs_debian = pytest.mark.skipif(
    not (DEBIAN / "train-images-idx3-ubyte.gz").is_file(),
    reason="the full Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")


# --------------------------------------------------------------------------- writers (the formats, written here)

def idx_file(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """An IDX file: two zero bytes, the type code, the number of dimensions, big-endian sizes, big-endian data."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[type_code]
    head = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    return head + array.astype(dtype).tobytes()


def write(path: Path, payload: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def random_set(count: int, height: int = 5, width: int = 4, classes: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(count, height, width), dtype=np.uint8),
            rng.integers(0, classes, size=count).astype(np.uint8))


def idx_folder(folder: Path, gz: bool, prefix: str = "") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    folder.mkdir(parents=True, exist_ok=True)
    sets = {"train": random_set(7, seed=1), "test": random_set(3, seed=2)}
    suffix = ".gz" if gz else ""
    for split, stem in (("train", "train"), ("test", "t10k")):
        images, labels = sets[split]
        write(folder / f"{prefix}{stem}-images-idx3-ubyte{suffix}", idx_file(images), gz)
        write(folder / f"{prefix}{stem}-labels-idx1-ubyte{suffix}", idx_file(labels), gz)
    return sets


# --------------------------------------------------------------------------- IDX

@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_reads_back_exactly(tmp_path, gz):
    sets = idx_folder(tmp_path / "digits", gz)
    for split in ("train", "test"):
        ds = open_dataset(tmp_path / "digits", split)
        images, labels = sets[split]
        assert ds.images.dtype == np.uint8 and ds.images.shape == (len(images), 1, 5, 4)
        np.testing.assert_array_equal(ds.images[:, 0], images)
        assert ds.labels.dtype == np.int64 and ds.labels.tolist() == labels.tolist()
        assert ds.classes == [str(i) for i in range(10)] and ds.split == split and ds.name == "digits"


def test_idx_pair_by_either_file_and_known_class_names(tmp_path):
    sets = idx_folder(tmp_path / "my-fashion-set", gz=True)
    by_images = open_dataset(tmp_path / "my-fashion-set" / "t10k-images-idx3-ubyte.gz")
    by_labels = open_dataset(tmp_path / "my-fashion-set" / "t10k-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(by_images.images[:, 0], sets["test"][0])
    assert by_images.labels.tolist() == by_labels.labels.tolist() == sets["test"][1].tolist()
    assert by_images.classes == list(FASHION_MNIST_CLASSES)  # the path says Fashion-MNIST


def test_idx_all_type_codes_and_big_endian_values(tmp_path):
    for code, values in [(0x09, np.array([-3, 5], np.int8)), (0x0B, np.array([[-300, 7]], np.int16)),
                         (0x0C, np.array([2**31 - 1, -5], np.int32)), (0x0D, np.array([1.5, -2.25], np.float32)),
                         (0x0E, np.array([[np.pi]], np.float64))]:
        path = write(tmp_path / f"x{code}", idx_file(values, code))
        got = read_idx(path)
        assert got.dtype.isnative and got.dtype == values.dtype and got.tolist() == values.tolist()


def test_emnist_images_are_transposed_upright(tmp_path):
    images, labels = random_set(4, height=6, width=6, classes=26)
    write(tmp_path / "emnist-letters-train-images-idx3-ubyte.gz", idx_file(images), gz=True)
    write(tmp_path / "emnist-letters-train-labels-idx1-ubyte.gz", idx_file(labels), gz=True)
    ds = open_dataset(tmp_path / "emnist-letters-train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(ds.images[:, 0], images.transpose(0, 2, 1))
    assert ds.name == "emnist-letters" and ds.num_classes == max(10, int(labels.max()) + 1)


def test_idx_wrong_magic_number_names_file_and_both_values(tmp_path):
    _, labels = random_set(3)
    write(tmp_path / "train-images-idx3-ubyte", idx_file(labels))  # a label file under the images' name
    write(tmp_path / "train-labels-idx1-ubyte", idx_file(labels))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: wrong magic number: expected 0x00000803, "
                                         r"found 0x00000801"):
        open_dataset(tmp_path)
    write(tmp_path / "train-images-idx3-ubyte", b"\x12\x34\x08\x03" + bytes(12))
    with pytest.raises(ValueError, match=r"wrong magic number: expected 0x00000803, found 0x12340803"):
        open_dataset(tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_file_names_expected_and_found_sizes(tmp_path, gz):
    images, labels = random_set(3)
    payload = idx_file(images)[:-5]  # 3*5*4 + 16 = 76 bytes expected, 71 present
    suffix = ".gz" if gz else ""
    write(tmp_path / f"train-images-idx3-ubyte{suffix}", payload, gz)
    write(tmp_path / f"train-labels-idx1-ubyte{suffix}", idx_file(labels), gz)
    with pytest.raises(ValueError, match=rf"train-images-idx3-ubyte{suffix}: truncated: the header \(magic "
                                         r"0x00000803, dimensions 3x5x4\) implies 76 bytes, found 71"):
        open_dataset(tmp_path)


def test_idx_images_and_labels_counts_must_agree(tmp_path):
    images, labels = random_set(3)
    write(tmp_path / "train-images-idx3-ubyte", idx_file(images))
    write(tmp_path / "train-labels-idx1-ubyte", idx_file(labels[:2]))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte holds 3 images but .*train-labels-idx1-ubyte "
                                         r"holds 2 labels"):
        open_dataset(tmp_path)


def test_corrupt_gzip_names_the_file(tmp_path):
    images, labels = random_set(50, 28, 28)
    packed = bytearray(gzip.compress(idx_file(images)))
    packed[len(packed) // 2: len(packed) // 2 + 16] = bytes(range(16))  # damage the deflate stream
    write(tmp_path / "train-images-idx3-ubyte.gz", bytes(packed))
    write(tmp_path / "train-labels-idx1-ubyte.gz", idx_file(labels), gz=True)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: (corrupt gzip data|truncated)"):
        open_dataset(tmp_path)
    write(tmp_path / "train-images-idx3-ubyte.gz", gzip.compress(idx_file(images))[:-200])  # stream cut short
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: truncated: .* implies 39216 bytes, found "
                                         r"\d+ decompressed bytes \(the gzip stream is cut short\)"):
        open_dataset(tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_header_claiming_a_billion_images_allocates_nothing_large(tmp_path, gz):
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 10**9, 28, 28)
    suffix = ".gz" if gz else ""
    write(tmp_path / f"train-images-idx3-ubyte{suffix}", header + bytes(1000), gz)
    write(tmp_path / f"train-labels-idx1-ubyte{suffix}", idx_file(np.zeros(3, np.uint8)), gz)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"implies 784000000016 bytes"):
            open_dataset(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, peak  # under 1 MiB, for a header that claims 784 GB


def test_known_set_labels_outside_the_classes(tmp_path):
    images, labels = random_set(4)
    labels[2] = 12
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    write(folder / "train-images-idx3-ubyte", idx_file(images))
    write(folder / "train-labels-idx1-ubyte", idx_file(labels))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: label 12 \(at index 2\) is outside \[0, 10\)"):
        open_dataset(folder)


# --------------------------------------------------------------------------- CIFAR

def cifar_arrays(count: int, classes: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, 3, 32, 32), dtype=np.uint8), rng.integers(0, classes, size=count)


def cifar10_binary(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    folder.mkdir()
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    out = {}
    for split, files in (("train", [f"data_batch_{i}.bin" for i in range(1, 6)]), ("test", ["test_batch.bin"])):
        parts = []
        for number, file in enumerate(files):
            images, labels = cifar_arrays(2, 10, seed=hash((split, number)) % 1000)
            records = np.concatenate([labels.astype(np.uint8)[:, None], images.reshape(2, -1)], axis=1)
            (folder / file).write_bytes(records.tobytes())
            parts.append((images, labels))
        out[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return out


def test_cifar10_binary_reads_back_exactly(tmp_path):
    sets = cifar10_binary(tmp_path / "cifar-10-batches-bin")
    for split in ("train", "test"):
        ds = open_dataset(tmp_path / "cifar-10-batches-bin", split)
        np.testing.assert_array_equal(ds.images, sets[split][0])
        assert ds.labels.tolist() == sets[split][1].tolist()
        assert ds.classes[0] == "airplane" and ds.num_classes == 10 and ds.name == "cifar-10"
    assert len(open_dataset(tmp_path / "cifar-10-batches-bin")) == 10


def test_cifar_binary_truncated_and_out_of_range(tmp_path):
    cifar10_binary(tmp_path / "c")
    path = tmp_path / "c" / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"data_batch_3.bin: 6145 bytes is not a whole number of 3073-byte records"):
        open_dataset(tmp_path / "c")
    records = bytearray((tmp_path / "c" / "test_batch.bin").read_bytes())
    records[3073] = 10
    (tmp_path / "c" / "test_batch.bin").write_bytes(bytes(records))
    with pytest.raises(ValueError, match=r"test_batch.bin: label 10 \(at index 1\) is outside \[0, 10\)"):
        open_dataset(tmp_path / "c", "test")


def test_cifar100_binary_fine_and_coarse(tmp_path):
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    images, fine = cifar_arrays(4, 100, seed=5)
    coarse = fine // 5
    records = np.concatenate([coarse.astype(np.uint8)[:, None], fine.astype(np.uint8)[:, None],
                              images.reshape(4, -1)], axis=1)
    (folder / "train.bin").write_bytes(records.tobytes())
    (folder / "test.bin").write_bytes(records[:1].tobytes())
    (folder / "fine_label_names.txt").write_text("\n".join(f"fine{i}" for i in range(100)))
    (folder / "coarse_label_names.txt").write_text("\n".join(f"coarse{i}" for i in range(20)))
    ds = open_dataset(folder)
    np.testing.assert_array_equal(ds.images, images)
    assert ds.labels.tolist() == fine.tolist() and ds.num_classes == 100 and ds.classes[7] == "fine7"
    coarse_ds = open_dataset(folder, label="coarse")
    assert coarse_ds.labels.tolist() == coarse.tolist() and coarse_ds.classes[3] == "coarse3"
    assert len(open_dataset(folder, "test")) == 1


def dump(path: Path, obj: object) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # the CIFAR files' protocol (Python 3 writes builtins as __builtin__)


def test_cifar10_python_version_reads_back_exactly(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    dump(folder / "batches.meta", {b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog",
                                                    b"frog", b"horse", b"ship", b"truck"], b"num_vis": 3072})
    expected = []
    for number, file in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        images, labels = cifar_arrays(3, 10, seed=number)
        dump(folder / file, {b"batch_label": b"batch", b"labels": labels.tolist(),
                             b"data": images.reshape(3, -1), b"filenames": [b"a.png", b"b.png", b"c.png"]})
        expected.append((images, labels))
    train = open_dataset(folder)
    np.testing.assert_array_equal(train.images, np.concatenate([e[0] for e in expected[:5]]))
    assert train.labels.tolist() == np.concatenate([e[1] for e in expected[:5]]).tolist()
    assert train.classes[-1] == "truck"
    test = open_dataset(folder, "test")
    np.testing.assert_array_equal(test.images, expected[5][0])


def test_cifar100_python_version(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    images, fine = cifar_arrays(4, 100, seed=9)
    batch = {b"data": images.reshape(4, -1), b"fine_labels": fine.tolist(), b"coarse_labels": (fine // 5).tolist()}
    dump(folder / "train", batch)
    dump(folder / "test", batch)
    dump(folder / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                           b"coarse_label_names": [f"c{i}".encode() for i in range(20)]})
    assert open_dataset(folder).labels.tolist() == fine.tolist()
    coarse = open_dataset(folder, "test", label="coarse")
    assert coarse.labels.tolist() == (fine // 5).tolist() and coarse.classes[:2] == ["c0", "c1"]


class Payload:
    """Unpickling this runs ``os.system`` (touching a marker file): what a poisoned CIFAR download could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class EvalPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').write('ran')",))


@pytest.mark.parametrize(("payload", "refused"), [(Payload, r"posix\.system"), (EvalPayload, r"__builtin__\.eval")])
def test_malicious_cifar_pickle_is_refused_and_never_runs(tmp_path, payload, refused):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "marker"
    images, labels = cifar_arrays(2, 10, seed=0)
    dump(folder / "test_batch", {b"data": images.reshape(2, -1), b"labels": labels.tolist(),
                                 b"filenames": payload(marker)})
    with pytest.raises(ValueError, match=rf"test_batch: refused global {refused} .*nothing was executed"):
        open_dataset(folder, "test")
    assert not marker.exists()
    # the restricted unpickler refuses even what the standard one would resolve without side effects
    dump(tmp_path / "set", {b"x": {1, 2}})
    with pytest.raises(ValueError, match=r"refused global __builtin__\.set"):
        load_pickle(tmp_path / "set")


def test_object_arrays_inside_a_pickle_are_refused(tmp_path):
    dump(tmp_path / "obj", {b"data": np.array([1, "x"], dtype=object)})
    with pytest.raises(ValueError, match=r"obj: refused global numpy\.dtype\('O"):
        load_pickle(tmp_path / "obj")


# --------------------------------------------------------------------------- image folders

def save(path: Path, pixels: np.ndarray, mode: str | None = None) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode=mode).save(path)


def test_image_folder_reads_png_back_exactly(tmp_path):
    rng = np.random.default_rng(3)
    expected = {}
    for name in ("dog", "cat"):
        for i in range(2):
            pixels = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
            save(tmp_path / "pets" / name / f"{i}.png", pixels)
            expected[(name, i)] = pixels
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("not an image, ignored")
    ds = open_dataset(tmp_path / "pets")
    assert ds.classes == ["cat", "dog"] and ds.labels.tolist() == [0, 0, 1, 1] and ds.images.shape == (4, 3, 6, 5)
    np.testing.assert_array_equal(ds.images[1], expected[("cat", 1)].transpose(2, 0, 1))
    np.testing.assert_array_equal(ds.images[2], expected[("dog", 0)].transpose(2, 0, 1))


def test_image_folder_majority_mode_and_splits(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    save(tmp_path / "data" / "train" / "a" / "1.png", grey)
    save(tmp_path / "data" / "train" / "a" / "2.png", grey)
    save(tmp_path / "data" / "train" / "b" / "3.png", np.stack([grey] * 3, axis=-1))
    save(tmp_path / "data" / "test" / "a" / "4.png", grey)
    ds = open_dataset(tmp_path / "data")
    assert ds.images.shape == (3, 1, 3, 4) and ds.split == "train"  # two grey images of three: grey
    np.testing.assert_array_equal(ds.images[2, 0], grey)  # the RGB image converted to L (equal channels: exact)
    assert len(open_dataset(tmp_path / "data", "test")) == 1


def test_image_folder_mixed_sizes_need_resize(tmp_path):
    save(tmp_path / "f" / "a" / "1.png", np.zeros((4, 4), np.uint8))
    save(tmp_path / "f" / "b" / "2.png", np.full((6, 3), 200, np.uint8))
    with pytest.raises(ValueError, match=r"images of different sizes: .*a/1.png is 4x4 \(HxW\), .*b/2.png is 6x3; "
                                         r"pass resize=\(H, W\)"):
        open_dataset(tmp_path / "f")
    ds = open_dataset(tmp_path / "f", resize=(5, 5))
    assert ds.images.shape == (2, 1, 5, 5) and ds.images[0].max() == 0 and ds.images[1].min() == 200


def test_image_folder_bad_inputs_name_the_path(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"the folder .*empty is empty"):
        open_dataset(tmp_path / "empty")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no dataset recognised in .*flat \(it holds readme.txt\)"):
        open_dataset(tmp_path / "flat")
    (tmp_path / "nofiles" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"nofiles: no image files in its class sub-folders \(a\)"):
        open_dataset(tmp_path / "nofiles")
    save(tmp_path / "broken" / "a" / "good.png", np.zeros((2, 2), np.uint8))
    (tmp_path / "broken" / "a" / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match=r"broken/a/bad.png: not a readable image"):
        open_dataset(tmp_path / "broken")
    from PIL import Image

    save(tmp_path / "bomb" / "a" / "big.png", np.zeros((20, 20), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ValueError, match=r"bomb/a/big.png: .*(decompression bomb|MAX_IMAGE_PIXELS = 100)"):
        open_dataset(tmp_path / "bomb")


# --------------------------------------------------------------------------- npz

def test_npz_keras_names_channels_last(tmp_path):
    rng = np.random.default_rng(4)
    x_train = rng.integers(0, 256, size=(5, 8, 6, 3), dtype=np.uint8)
    y_train = rng.integers(0, 3, size=5)
    np.savez(tmp_path / "set.npz", x_train=x_train, y_train=y_train, x_test=x_train[:2], y_test=y_train[:2],
             classes=np.array(["a", "b", "c"]))
    ds = open_dataset(tmp_path / "set.npz")
    np.testing.assert_array_equal(ds.images, x_train.transpose(0, 3, 1, 2))
    assert ds.labels.tolist() == y_train.tolist() and ds.classes == ["a", "b", "c"] and ds.split == "train"
    assert len(open_dataset(tmp_path / "set.npz", "test")) == 2


def test_npz_images_labels_and_bad_contents(tmp_path):
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.savez_compressed(tmp_path / "a.npz", images=images, labels=np.array([0, 4]))
    ds = open_dataset(tmp_path / "a.npz", "test")
    np.testing.assert_array_equal(ds.images[:, 0], images) and ds.split is None
    assert ds.classes == [str(i) for i in range(10)]
    np.savez(tmp_path / "b.npz", images=images, labels=np.array([0, 4]), classes=np.array(["x", "y"]))
    with pytest.raises(ValueError, match=r"b.npz: label 4 \(at index 1\) in 'labels' is outside \[0, 2\)"):
        open_dataset(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", images=np.array([None, None], dtype=object), labels=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"c.npz: a member's header claims .* object"):
        open_dataset(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", pictures=images)
    with pytest.raises(ValueError, match=r"d.npz: no image/label arrays for split 'train': found \['pictures'\]"):
        open_dataset(tmp_path / "d.npz")
    np.savez(tmp_path / "e.npz", images=images / 255, labels=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"e.npz: 'images' must hold integers in 0..255 \(uint8\), found float64"):
        open_dataset(tmp_path / "e.npz")


# --------------------------------------------------------------------------- names, bundled and Debian data

def test_bundled_fashion_mnist_mini():
    for split, per_class in (("train", 1000), ("test", 200)):
        ds = open_dataset("fashion-mnist-mini", split)
        assert ds.images.shape == (10 * per_class, 1, 28, 28) and ds.images.dtype == np.uint8
        assert ds.labels.dtype == np.int64 and ds.labels.min() == 0 and ds.labels.max() == 9
        assert ds.class_counts().tolist() == [per_class] * 10
        assert ds.classes == list(FASHION_MNIST_CLASSES) and ds.name == "fashion-mnist-mini"
        assert 60 < ds.images.mean() < 90  # Fashion-MNIST's mean pixel is about 72.9
    licence = (bundled.FILES / "LICENSE").read_text()
    assert "Copyright (c) 2017 Zalando SE" in licence and "Permission is hereby granted" in licence
    assert sum(p.stat().st_size for p in bundled.FILES.glob("*.gz")) < 8 * 2**20


@needs_debian
def test_bundled_images_are_the_documented_choice_from_the_full_set():
    for split, prefix in (("train", "train"), ("test", "t10k")):
        full = open_dataset(DEBIAN / f"{prefix}-images-idx3-ubyte.gz")
        keep = bundled.mini_indices(full.labels, bundled.PER_CLASS[split])
        mini = open_dataset("fashion-mnist-mini", split)
        np.testing.assert_array_equal(mini.images, full.images[keep])
        np.testing.assert_array_equal(mini.labels, full.labels[keep])


def test_the_builder_writes_reproducible_files_and_does_not_overwrite(tmp_path):
    rng = np.random.default_rng(0)
    full = {}
    (tmp_path / "full").mkdir()
    for prefix, copies in (("train", 3), ("t10k", 2)):
        labels = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), copies))
        images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
        write(tmp_path / "full" / f"{prefix}-images-idx3-ubyte.gz", idx_file(images), gz=True)
        write(tmp_path / "full" / f"{prefix}-labels-idx1-ubyte.gz", idx_file(labels), gz=True)
        full[prefix] = images, labels
    per_class = {"train": 2, "test": 1}
    for target in ("one", "two"):
        (tmp_path / target).mkdir()
        written = bundled.build_fashion_mnist_mini(tmp_path / "full", tmp_path / target, per_class=per_class)
    assert [p.name for p in written] == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    for path in written:
        assert path.read_bytes() == (tmp_path / "one" / path.name).read_bytes()  # no time stamp in the gzip
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = full[prefix]
        keep = bundled.mini_indices(labels, per_class[split])
        got = open_dataset(tmp_path / "two", split)
        assert len(keep) == 10 * per_class[split] and got.class_counts().tolist() == [per_class[split]] * 10
        np.testing.assert_array_equal(got.images[:, 0], images[keep])
        assert got.labels.tolist() == labels[keep].tolist()
    with pytest.raises(FileExistsError):
        bundled.build_fashion_mnist_mini(tmp_path / "full", tmp_path / "two", per_class=per_class)


@needs_debian
def test_debian_full_fashion_mnist():
    train, test = open_dataset("fashion-mnist"), open_dataset("fashion-mnist", "test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert test.labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert train.class_counts().tolist() == [6000] * 10 and test.class_counts().tolist() == [1000] * 10
    assert train.classes[0] == "T-shirt/top" and train.source.startswith(str(DEBIAN))


def test_fashion_mnist_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(readers.SEARCH_PATHS, "fashion-mnist", [str(tmp_path / "nowhere")])
    with pytest.raises(ValueError, match=r"'fashion-mnist' was not found in .*nowhere: install it with "
                                         r"`apt-get install dataset-fashion-mnist`"):
        open_dataset("fashion-mnist")
    idx_folder(tmp_path / "elsewhere", gz=True)
    monkeypatch.setitem(readers.SEARCH_PATHS, "fashion-mnist", [str(tmp_path / "elsewhere")])
    ds = open_dataset("fashion-mnist", "test")
    assert len(ds) == 3 and ds.classes == list(FASHION_MNIST_CLASSES)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"split": "val"}, r"`split` \(='val'\) must be 'train' or 'test'"),
    ({"resize": (0, 5)}, r"`resize` \(=\(0, 5\)\) must hold integers"),
    ({"resize": "big"}, r"`resize` \(='big'\) must be None, an int or \(H, W\)"),
    ({"label": "medium"}, r"`label` \(='medium'\) must be 'fine' or 'coarse'"),
])
def test_open_dataset_checks_its_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        open_dataset("fashion-mnist-mini", **kwargs)


def test_open_dataset_unknown_path_and_coarse_elsewhere(tmp_path):
    with pytest.raises(ValueError, match=r"'/no/such/place' is neither an existing file or folder nor a dataset "
                                         r"name \(fashion-mnist-mini, fashion-mnist\)"):
        open_dataset("/no/such/place")
    idx_folder(tmp_path / "d", gz=False)
    with pytest.raises(ValueError, match=r"`label` \(='coarse'\) applies to CIFAR-100 only"):
        open_dataset(tmp_path / "d", label="coarse")


def test_resize_any_dataset():
    ds = open_dataset("fashion-mnist-mini", "test", resize=32)
    assert ds.images.shape == (2000, 1, 32, 32) and ds.images.dtype == np.uint8
    small = open_dataset("fashion-mnist-mini", "test").images[:, 0].astype(float)
    assert abs(ds.images.mean() - small.mean()) < 2  # the same pictures, larger


# --------------------------------------------------------------------------- Dataset

def test_dataset_is_read_only_indexable_and_subsets():
    images = np.arange(3 * 4, dtype=np.uint8).reshape(3, 1, 2, 2)
    ds = Dataset(images, np.array([2, 0, 1]), ["a", "b", "c"], name="toy")
    assert images.flags.writeable  # the caller's array keeps its flags
    with pytest.raises(ValueError, match="read-only"):
        ds.images[0] = 1
    image, label = ds[1]
    assert label == 0 and image.tolist() == [[[4, 5], [6, 7]]]
    sub = ds.subset([2, 0])
    assert sub.labels.tolist() == [1, 2] and sub.classes == ds.classes
    assert ds.subset(np.array([True, False, True])).labels.tolist() == [2, 1]
    with pytest.raises(ValueError, match=r"Dataset.subset: index 3 is out of range for 3 images"):
        ds.subset([3])
    with pytest.raises(ValueError, match=r"toy: label 5 \(at index 0; 1 such labels\) is outside \[0, 3\)"):
        Dataset(images[:1], np.array([5]), ["a", "b", "c"], name="toy")


def test_mean_std_equals_the_direct_computation():
    ds = open_dataset("fashion-mnist-mini", "test")
    mean, std = ds.mean_std()
    scaled = ds.images.astype(np.float64) / 255
    assert mean[0] == pytest.approx(scaled.mean(), rel=1e-12) and std[0] == pytest.approx(scaled.std(), rel=1e-12)


# --------------------------------------------------------------------------- DataLoader

@pytest.fixture(scope="module")
def mini_test() -> Dataset:
    return open_dataset("fashion-mnist-mini", "test")


def test_loader_batches_scale_and_drop_last(mini_test):
    loader = DataLoader(mini_test, 300)
    assert len(loader) == 7 and len(DataLoader(mini_test, 300, drop_last=True)) == 6
    batches = list(loader)
    assert [len(y) for _, y in batches] == [300] * 6 + [200]
    x, y = batches[1]
    assert x.dtype == np.float32 and x.shape == (300, 1, 28, 28)
    np.testing.assert_array_equal(x, mini_test.images[300:600].astype(np.float32) / np.float32(255))
    assert y.dtype == np.int64 and y.tolist() == mini_test.labels[300:600].tolist()
    x64, _ = next(iter(DataLoader(mini_test, 4, dtype=np.float64)))
    np.testing.assert_array_equal(x64, mini_test.images[:4] / 255.0)


def test_loader_order_is_seeded_and_any_epoch_or_batch_replays(mini_test):
    seen = []

    def record(x, rng):
        seen.append(rng.random())
        return x

    loader = DataLoader(mini_test, 512, shuffle=True, seed=7, transform=record)
    first = [y for _, y in loader]  # epoch 0
    second = [y for _, y in loader]  # iteration moves on to epoch 1
    order = np.random.default_rng([7, 0]).permutation(2000)
    assert np.concatenate(first).tolist() == mini_test.labels[order].tolist()
    assert np.concatenate(second).tolist() == mini_test.labels[np.random.default_rng([7, 1]).permutation(2000)].tolist()
    assert seen[:4] == [np.random.default_rng([7, 0, b]).random() for b in range(4)]
    loader.set_epoch(1)
    again = [y for _, y in loader]
    assert all(np.array_equal(a, b) for a, b in zip(again, second, strict=True))
    resumed = list(DataLoader(mini_test, 512, shuffle=True, seed=7).batches(1, start=2))
    assert [y.tolist() for _, y in resumed] == [y.tolist() for y in second[2:]]
    other = DataLoader(mini_test, 512, shuffle=True, seed=8)
    assert not np.array_equal(next(iter(other))[1], first[0])


def test_loader_converts_one_batch_at_a_time():
    train = open_dataset("fashion-mnist-mini")
    loader = DataLoader(train, 64, shuffle=True, dtype=np.float64)
    tracemalloc.start()
    try:
        for _ in zip(range(3), loader, strict=False):
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, peak  # a batch or two and an order (about 1.3 MB), not the 63 MB of all of it


@pytest.mark.parametrize("bad", [0, -3, True, 2.5, "8", None])
def test_loader_batch_size_is_checked(mini_test, bad):
    with pytest.raises(ValueError, match=rf"DataLoader: `batch_size` \(={bad!r}\) must be an integer >= 1"):
        DataLoader(mini_test, bad)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"seed": -1}, r"`seed` \(=-1\) must be an integer >= 0"),
    ({"shuffle": "yes"}, r"`shuffle` \(='yes'\) must be True or False"),
    ({"dtype": np.int32}, r"`dtype` .* must be float32 or float64"),
    ({"transform": 3}, r"`transform` \(=3\) must be callable"),
])
def test_loader_checks_its_other_arguments(mini_test, kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(mini_test, 8, **kwargs)


def test_loader_checks_epoch_start_and_index(mini_test):
    loader = DataLoader(mini_test, 1000)
    with pytest.raises(ValueError, match=r"`start` \(=3\) must be <= 2"):
        list(loader.batches(0, start=3))
    with pytest.raises(ValueError, match=r"`epoch` \(=-1\) must be an integer >= 0"):
        loader.set_epoch(-1)
    with pytest.raises(ValueError, match=r"batch `index` \(=2\) must be < 2"):
        loader.batch(0, 2)


def test_package_exports():
    assert data.open_dataset is open_dataset and data.NAMES == ("fashion-mnist-mini", "fashion-mnist")
