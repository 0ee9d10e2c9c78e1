import io

import numpy as np
from PIL import Image

from ganserve.images import encode_png, make_grid, to_uint8, upscale


def test_to_uint8_maps_range_and_layout():
    x = np.array([[[[-1.0, 0.0], [1.0, 2.0]]]], np.float32)     # [1, 1, 2, 2]
    u = to_uint8(x)
    assert u.shape == (1, 2, 2, 1)
    assert u[0, :, :, 0].tolist() == [[0, 128], [255, 255]]


def test_grid_and_png_roundtrip():
    imgs = np.stack([np.full((4, 4, 1), i * 50, np.uint8) for i in range(5)])
    g = make_grid(imgs, cols=3, pad=1)
    assert g.shape == (2 * 5 + 1, 3 * 5 + 1, 1)
    assert g[1, 1, 0] == 0 and g[1, 6, 0] == 50 and g[6, 1, 0] == 150
    png = encode_png(upscale(g, 2))
    im = Image.open(io.BytesIO(png))
    assert im.size == (32, 22) and im.mode == "L"


def test_png_writer_roundtrips_grey_and_rgb_through_pillow():
    rng = np.random.default_rng(0)
    for shape in [(32, 32, 1), (7, 13, 3), (1, 1, 1)]:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        decoded = np.asarray(Image.open(io.BytesIO(encode_png(img))))
        assert np.array_equal(decoded.reshape(shape), img)
