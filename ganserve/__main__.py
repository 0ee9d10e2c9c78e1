"""``python -m ganserve``: the CLI's entry point, kept under the product's name.

The one import from the core up to the CLI; the layer contracts (pyproject.toml) allow it by
name and nothing else in ``ganserve`` may import ``cli``."""

import sys

from ganserve.cli.main import main

sys.exit(main())
