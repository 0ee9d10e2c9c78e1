"""``python -m ganserve``: the CLI's entry point, kept under the product's name.

The one import from the core up to the CLI; the layer contracts (pyproject.toml) allow it by
name and nothing else in the core may import ``ganserve.cli``.

Namesakes, one concept at several layers (the `python -m` entry points):
``ganserve.__main__``: python -m ganserve; ``ganserve.cli.__main__``: python -m
ganserve.cli.
"""

import sys

from ganserve.cli.main import main

sys.exit(main())
