"""Dataset readers (numpy and Pillow, no torch): Fashion-MNIST/MNIST IDX, .npz and image
folders. Training and evaluation both read real images through ``load_images``."""

from ganserve.data.base import DEFAULT_FASHION_DIR, DataError, ImageData, as_float
from ganserve.data.load import load_images

__all__ = ["DEFAULT_FASHION_DIR", "DataError", "ImageData", "as_float", "load_images"]
