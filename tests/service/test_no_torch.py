import subprocess
import sys


def test_service_imports_no_torch(store):
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from service.main import create_app\n"
        "from service.settings import Settings\n"
        f"app = create_app(Settings(models_dir=r'{store}', poll_interval_s=0))\n"
        "with TestClient(app) as c:\n"
        "    import time\n"
        "    while c.get('/v2/health/ready').status_code != 200: time.sleep(0.05)\n"
        "    assert c.post('/v1/models/baby-stylegan/sample', json={}).status_code == 200\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
        "assert not bad, bad[:5]\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_serve_command_imports_no_torch_or_training():
    """The supervisor of `ganserve serve --workers N` stays small: naming the CLI's errors
    must not import training (and with it torch and matplotlib)."""
    code = (
        "import sys\n"
        "from ganserve import cli\n"
        "rc = cli.main(['serve', '--models-dir', '/nonexistent-store'])\n"
        "assert rc == 1, rc\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'training', "
        "'matplotlib')]\n"
        "assert not bad, bad[:5]\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "GANSERVE_MODELS_DIR" in r.stderr
