"""The layers (pyproject.toml, [tool.importlinter]) hold, and breaking one fails with the
name of the rule: cli on top; worker | service; training | evaluation | webhooks; the
ganserve core below; no torch in the core, the evaluation, the webhooks or the service; no
import cycles in a package."""

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
    assert "4 kept, 0 broken" in r.stdout


def test_a_wrong_import_breaks_the_contract_it_names():
    probe = REPO / "ganserve" / "service" / "_layer_probe.py"
    probe.write_text('"""A deliberate violation, written and removed by a test."""\n\n'
                     "import ganserve.training.loop  # noqa: F401\n")
    try:
        r = _lint()
    finally:
        probe.unlink()
    assert r.returncode != 0
    assert "Layers: the cli on top" in r.stdout and "no torch" in r.stdout
    assert "ganserve.service._layer_probe -> ganserve.training.loop" in r.stdout


def _contracts() -> list[dict]:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"]


def test_the_no_torch_rule_covers_the_whole_core_layer():
    """The forbidden contract names the core's modules one by one: it must name them all
    (the layers contract is exhaustive, so its bottom layer is the whole core)."""
    layers, forbidden = _contracts()[:2]     # the layers; the no-torch rule
    core = {f"ganserve.{m.strip()}" for m in layers["layers"][-1].split(":")}
    assert core and core <= set(forbidden["source_modules"])


def test_the_wheel_installs_one_top_level_name(tmp_path):
    """Everything installs under ``ganserve``: the wheel's top-level names are the package
    and its metadata, nothing called ``service`` or ``training`` beside another project's."""
    import shutil
    import zipfile

    src = tmp_path / "src"                  # a copy: the build writes build/ beside its source
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "ganserve", src / "ganserve",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(src)], check=True, timeout=600,
                   capture_output=True)
    wheel = next(tmp_path.glob("ganserve-*.whl"))
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"ganserve"}, tops


def test_modules_that_share_a_name_say_why():
    """One meaning per word: two modules of one file name in different places are the same
    concept at different layers, and each one's docstring names its namesakes."""
    import ast
    from collections import defaultdict

    by_name: dict[str, list[str]] = defaultdict(list)
    for path in sorted((REPO / "ganserve").rglob("*.py")):
        if path.name != "__init__.py" and "migrations" not in path.parts:
            dotted = ".".join(path.relative_to(REPO).with_suffix("").parts)
            by_name[path.stem].append(dotted)
    for modules in (m for m in by_name.values() if len(m) > 1):
        for module in modules:
            path = REPO / (module.replace(".", "/") + ".py")
            doc = " ".join((ast.get_docstring(ast.parse(path.read_text())) or "").split())
            missing = [m for m in modules if m != module and m not in doc]
            assert not missing, f"{module}'s docstring does not name its namesakes {missing}"
