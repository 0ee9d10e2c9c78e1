"""ganserve: a model server for GANs, and the Python API to it.

    import ganserve
    ganserve.generate("fashion-dcgan", seeds=[1, 2, 3])           # in this process, no server
    ganserve.Client("http://127.0.0.1:8000").sample("fashion-dcgan", seeds=[1, 2, 3])

The package's own modules are the torch-free core (manifest, seed -> latent, images, the
ONNX generator, job records); its subpackages are the layers above it (``service``,
``worker``, ``training``, ``evaluation``, ``cli``). The names below load on first use, so
``import ganserve`` stays cheap and the client never loads the server.
"""

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {"generate": "ganserve.local", "conditional": "ganserve.local",
         "interpolate": "ganserve.local", "style_mix": "ganserve.local",
         "Models": "ganserve.local", "Images": "ganserve.local",
         "Client": "ganserve.client", "AsyncClient": "ganserve.client",
         "ApiError": "ganserve.client"}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ganserve' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
