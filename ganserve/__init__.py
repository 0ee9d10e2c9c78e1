"""ganserve: shared, torch-free pieces used by both `training` and `service`.

Everything in this package imports only numpy, Pillow, pydantic and ONNX Runtime, so the
API image (which carries no torch) and the training workers agree on the same contracts:
the model manifest, the seed -> latent mapping and the image encoding.
"""

__version__ = "0.1.0"
