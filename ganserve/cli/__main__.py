"""``python -m ganserve.cli`` (``python -m ganserve`` does the same).

Namesakes, one concept at several layers (the `python -m` entry points):
``ganserve.__main__``: python -m ganserve; ``ganserve.cli.__main__``: python -m
ganserve.cli.
"""

import sys

from ganserve.cli.main import main

sys.exit(main())
