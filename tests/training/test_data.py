import gzip
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganserve.data import DataError, load_images
from ganserve.data.idx import FASHION_CLASSES
from tests.conftest import CLASS_NAMES, make_images, write_idx


def test_idx_folder_gz_reads_pads_and_names_classes(idx_dir):
    d = load_images(idx_dir)
    assert d.images.shape == (64, 1, 32, 32) and d.images.dtype == np.uint8
    assert d.labels.tolist()[:3] == [0, 1, 2]
    assert d.class_names == CLASS_NAMES
    # 28 -> 32 padding uses the background (0 here): border rows stay black
    assert d.images[:, :, :2, :].max() == 0 and d.images[:, :, :, -2:].max() == 0
    x = d.as_float()
    assert x.dtype == np.float32 and x.min() >= -1.0 and x.max() <= 1.0


def test_idx_folder_raw_and_test_split_names_no_class_from_its_path(tmp_path, caplog):
    write_idx(tmp_path / "fashion", "t10k", *make_images(12), gz=False)
    write_idx(tmp_path / "fashion", "train", *make_images(8), gz=False)
    d = load_images(tmp_path / "fashion", split="test")
    # a folder called "fashion" is not Fashion-MNIST: the names come from the data
    assert len(d) == 12 and d.class_names == [str(i) for i in range(10)]
    assert "names no classes" in caplog.text


def test_fashion_mnist_is_recognized_by_its_labels_wherever_it_lies(tmp_path):
    import shutil
    src = Path("/usr/share/datasets/fashion-mnist")
    if not src.is_dir():
        pytest.skip("dataset-fashion-mnist not installed (CI installs it)")
    for f in src.iterdir():
        shutil.copy(f, tmp_path / f.name)
    assert load_images(tmp_path, limit=10).class_names == FASHION_CLASSES


def test_idx_corrupt_file_names_path(tmp_path):
    write_idx(tmp_path, "train", *make_images(8))
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    data = gzip.decompress(bad.read_bytes())[:-100]          # truncated body
    bad.write_bytes(gzip.compress(data))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*truncated"):
        load_images(tmp_path)


def test_idx_bad_magic_is_clear(tmp_path):
    write_idx(tmp_path, "train", *make_images(8))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x12\x34junkjunk"))
    with pytest.raises(DataError, match="not an IDX file"):
        load_images(tmp_path)


def test_missing_path_says_how_to_install(tmp_path):
    with pytest.raises(DataError, match="apt-get install -y dataset-fashion-mnist") as e:
        load_images(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value)


def test_npz_with_labels_and_names(tmp_path):
    x, y = make_images(10)
    np.savez(tmp_path / "d.npz", x=x, y=y, class_names=np.array(CLASS_NAMES))
    d = load_images(tmp_path / "d.npz", channels=3)
    assert d.images.shape == (10, 3, 32, 32)
    assert d.class_names == CLASS_NAMES and d.labels.tolist() == y.tolist()


def test_npz_float_minus_one_to_one_is_rescaled(tmp_path):
    x = np.full((4, 32, 32, 1), -1.0, np.float32)
    x[:, 10] = 1.0
    np.savez(tmp_path / "f.npz", x=x)
    d = load_images(tmp_path / "f.npz")
    assert d.images.min() == 0 and d.images.max() == 255 and d.labels is None


@pytest.mark.parametrize("arrays, match", [
    ({"images": np.zeros((2, 32, 32))}, "no array named 'x'"),
    ({"x": np.zeros((2, 32, 32), np.uint8), "y": np.array([0.5, 1.0])}, "integer labels"),
    ({"x": np.zeros((2, 5, 32, 32), np.uint8)}, "1 or 3 channels"),
])
def test_npz_bad_contents_are_clear(tmp_path, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=match):
        load_images(tmp_path / "bad.npz")


def test_npz_not_a_zip(tmp_path):
    (tmp_path / "x.npz").write_text("hello")
    with pytest.raises(DataError, match="x.npz: cannot read"):
        load_images(tmp_path / "x.npz")


def _png(path, size=32, value=128, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size, size), value).save(path)


def test_image_folder_class_subfolders_and_skips(tmp_path, caplog):
    _png(tmp_path / "Sandal" / "a.png")
    _png(tmp_path / "Sandal" / "b.jpg", mode="RGB")
    _png(tmp_path / "Sneaker" / "c.png", value=200)
    (tmp_path / "Sneaker" / "notes.txt").write_text("not an image")
    d = load_images(tmp_path)
    assert d.class_names == ["Sandal", "Sneaker"]
    assert d.labels.tolist() == [0, 0, 1]
    assert d.skipped == 1
    assert "skipped 1 non-image" in caplog.text


def test_image_folder_corrupt_image_names_file(tmp_path):
    _png(tmp_path / "a.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match="broken.png: not a readable image"):
        load_images(tmp_path)


def test_image_folder_mixed_sizes_names_file(tmp_path):
    _png(tmp_path / "a.png", size=32)
    _png(tmp_path / "b.png", size=40)
    with pytest.raises(DataError, match="b.png: size 40x40 differs"):
        load_images(tmp_path)


def test_image_folder_empty_is_clear(tmp_path):
    (tmp_path / "readme.md").write_text("x")
    with pytest.raises(DataError, match="no PNG/JPEG images"):
        load_images(tmp_path)


def test_image_folder_resizes_to_model_resolution(tmp_path):
    _png(tmp_path / "a.png", size=64, mode="RGB")
    d = load_images(tmp_path, resolution=32, channels=3)
    assert d.images.shape == (1, 3, 32, 32)


def test_unsupported_file_type(tmp_path):
    (tmp_path / "data.csv").write_text("1,2")
    with pytest.raises(DataError, match="unsupported data file"):
        load_images(tmp_path / "data.csv")


def test_a_folder_that_is_not_a_dataset_is_refused(tmp_path):
    from PIL import Image
    (tmp_path / "photos").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "photos" / "a.png")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "x.log").write_text("x")
    with pytest.raises(DataError, match="not an image dataset: 1 of its 2 subfolders"):
        load_images(tmp_path)
    (tmp_path / "logs" / "x.log").unlink()
    (tmp_path / "logs").rmdir()
    for i in range(3):
        (tmp_path / "photos" / f"n{i}.txt").write_text("x")
    with pytest.raises(DataError, match="3 of its 4 files are not images"):
        load_images(tmp_path)
