"""Print the requirements of ganserve and the given extras, from pyproject.toml.

    python scripts/deps.py cpu train > requirements.txt

The images install their dependencies from this list (pinned by requirements/constraints.txt)
before the source is copied, so a code change does not reinstall them.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    out = list(project["dependencies"])
    for extra in extras:
        out += project["optional-dependencies"][extra]
    return out


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    pyproject = next(p for p in (here / "pyproject.toml", here.parent / "pyproject.toml")
                     if p.is_file())
    print("\n".join(requirements(pyproject, sys.argv[1:])))
