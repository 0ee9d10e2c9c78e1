"""The layers (pyproject.toml, [tool.importlinter]) hold, and breaking one fails with the
name of the rule: cli on top; jobs | service; training | evaluation; the ganserve core below;
no torch in the core, the evaluation or the service; no import cycles in a package."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = str(Path(sys.executable).with_name("lint-imports"))


def _lint() -> subprocess.CompletedProcess:
    return subprocess.run([LINT, "--no-cache"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_import_contracts_hold():
    r = _lint()
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "3 kept, 0 broken" in r.stdout


def test_a_wrong_import_breaks_the_contract_it_names():
    probe = REPO / "service" / "_layer_probe.py"
    probe.write_text('"""A deliberate violation, written and removed by a test."""\n\n'
                     "import training.loop  # noqa: F401\n")
    try:
        r = _lint()
    finally:
        probe.unlink()
    assert r.returncode != 0
    assert "Layers: the cli on top" in r.stdout and "no torch" in r.stdout
    assert "service._layer_probe -> training.loop" in r.stdout
