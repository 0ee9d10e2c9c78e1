import subprocess
import sys


def _assert_not_imported(code: str, roots: tuple[str, ...]) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter, then check no module of ``roots`` (packages, by
    their dotted names) was imported."""
    check = (f"\nbad = [m for m in sys.modules if any(m == r or m.startswith(r + '.') "
             f"for r in {roots!r})]\nassert not bad, bad[:5]\n")
    r = subprocess.run([sys.executable, "-c", "import sys\n" + code + check],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


def test_service_imports_no_torch(store):
    _assert_not_imported(
        "from fastapi.testclient import TestClient\n"
        "from ganserve.service.main import create_app\n"
        "from ganserve.service.settings import Settings\n"
        f"app = create_app(Settings(models_dir=r'{store}', poll_interval_s=0))\n"
        "with TestClient(app) as c:\n"
        "    import time\n"
        "    while c.get('/v2/health/ready').status_code != 200: time.sleep(0.05)\n"
        "    assert c.post('/v1/models/baby-stylegan/sample', json={}).status_code == 200\n",
        ("torch",))


def test_serve_command_imports_no_torch_or_training():
    """The supervisor of `ganserve serve --workers N` stays small: naming the CLI's errors
    must not import training (and with it torch and matplotlib)."""
    r = _assert_not_imported(
        "from ganserve.cli import main as cli\n"
        "rc = cli.main(['serve', '--models-dir', '/nonexistent-store'])\n"
        "assert rc == 1, rc\n", ("torch", "ganserve.training", "matplotlib"))
    assert "GANSERVE_MODELS_DIR" in r.stderr
