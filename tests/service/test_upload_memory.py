"""Bounded memory per upload: the API's peak resident memory while it ingests any upload
grows by at most a small multiple of the upload's size plus a fixed amount (one image of the
largest size the limits allow, decoded). Measured on a real `ganserve serve` with the
benchmark's own files and reader (benchmarks/upload_memory.py prints the same as a table)."""

from __future__ import annotations

import pytest

from benchmarks.upload_memory import KINDS, measure
from tests.service.conftest import ServerProcess, copy_store

SIZES_MB = (1, 5, 20)
# what each kind must get (the bound is only meaningful for files that were really read)
EXPECTED = {"npz": {201}, "zip": {201}, "npz, long class name": {413, 422}, "tar": {415},
            "png": {415}, "zip, one big image": {201, 422}, "zip, one flat 4096 px image":
            {201}}
PER_BYTE = 4            # the converted arrays are a file-backed memmap: mapped pages count
FIXED_MB = 160          # one 4096 x 4096 RGB image decoded (48 MB), and its conversions


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    srv = ServerProcess(copy_store(store, tmp_path_factory.mktemp("mem") / "models"))
    srv.wait_ready()
    yield srv
    srv.stop()


@pytest.mark.parametrize("mb", SIZES_MB)
@pytest.mark.parametrize("kind", list(KINDS))
def test_upload_memory_is_bounded_by_its_size(server, kind, mb):
    filename, content = KINDS[kind](mb, seed=mb)
    row = measure(server.url, server.proc.pid, kind, filename, content)
    assert row.status in EXPECTED[kind], row
    assert row.hwm_growth_mb <= PER_BYTE * row.upload_mb + FIXED_MB, row
