"""Dataset readers (numpy only): Fashion-MNIST/MNIST IDX, .npz and image folders."""

from training.data.dataset import DEFAULT_FASHION_DIR, DataError, ImageData, load_images

__all__ = ["DEFAULT_FASHION_DIR", "DataError", "ImageData", "load_images"]
