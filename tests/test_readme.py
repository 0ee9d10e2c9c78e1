"""The README's lists and counts are the code's: every setting is in the settings table and
every GANSERVE_ name there is a setting, the operation count is the served document's, every
CLI command is shown. A change to one without the other fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ganserve.cli.main import COMMANDS
from ganserve.service.settings import Settings
from ganserve.worker.settings import WorkerSettings
from tests.service.conftest import make_client, wait_ready

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
# every process's settings: the API's and the worker's (both extend the shared base)
SETTINGS = Settings.model_fields | WorkerSettings.model_fields
# GANSERVE_ names in the README that are not settings, and what they are
NOT_SETTINGS = {"GANSERVE_EVALUATED_BY": "who an evaluation record names",
                "GANSERVE_UPDATE_GOLDEN": "regenerates the golden outputs in the tests"}


def settings_table() -> str:
    start = README.index("| variable | default | meaning |")
    return README[start:README.index("\n\n", start)]


def table_names(table: str) -> set[str]:
    """Names in the table, with a row's shorthand (`GANSERVE_WEBHOOK_TIMEOUT_S` / `_RETRIES`)
    expanded by every stem of the row's first full name that makes a real setting."""
    known = {f"GANSERVE_{f.upper()}" for f in SETTINGS}
    names = set()
    for row in table.splitlines():
        full = re.findall(r"`(GANSERVE_[A-Z0-9_]+)`", row)
        names |= set(full)
        parts = full[0].split("_") if full else []
        for short in re.findall(r"`(_[A-Z0-9_]+)`", row):
            stems = ["_".join(parts[:i]) for i in range(2, len(parts))]
            names |= {stem + short for stem in stems if stem + short in known}
    return names


def test_readme_settings_table_lists_every_setting():
    missing = {f"GANSERVE_{f.upper()}" for f in SETTINGS} - table_names(
        settings_table())
    assert not missing, f"settings missing from the README's table: {sorted(missing)}"


def test_readme_names_no_setting_that_does_not_exist():
    known = {f"GANSERVE_{f.upper()}" for f in SETTINGS} | set(NOT_SETTINGS)
    named = set(re.findall(r"GANSERVE_[A-Z0-9_]*[A-Z0-9]", README))
    assert named <= known, f"not settings: {sorted(named - known)}"


def test_readme_operation_count_is_the_served_documents():
    with make_client(REPO / "models") as client:
        wait_ready(client)
        doc = client.get("/openapi.json").json()
    operations = sum(len(item) for item in doc["paths"].values())
    counts = [int(n) for n in re.findall(r"all (\d+) operations", README)]
    assert counts and set(counts) == {operations}, (counts, operations)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_readme_shows_every_cli_command(command):
    assert f"ganserve {command}" in README, f"`ganserve {command}` is not in the README"
