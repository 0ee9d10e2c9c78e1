"""``python -m cli`` (``python -m ganserve`` does the same)."""

import sys

from ganserve.cli.main import main

sys.exit(main())
