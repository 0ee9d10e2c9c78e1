"""How loud the libraries under ganserve are. Their start-up banners and INFO chatter
(Alembic's plugin list, Celery's banner and connection lines, Uvicorn's "running on", which
appears long before the service can answer) show only with ``--verbose``
(GANSERVE_VERBOSE=true): by default a person sees ganserve's own lines and the ready line."""

from __future__ import annotations

import logging
import warnings

LIBRARIES = ("alembic", "celery", "kombu", "amqp", "uvicorn.error", "httpx")


def quiet_libraries(verbose: bool) -> None:
    """WARNING and above from the libraries, unless ``verbose``."""
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    if not verbose:     # Celery's "running as root" SecurityWarning, on every workstation start
        warnings.filterwarnings("ignore", message="You're running the worker with superuser")
