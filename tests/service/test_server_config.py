"""How `ganserve serve` shares the machine between its worker processes."""

import pytest

from service.server import threads_per_worker


@pytest.mark.parametrize(("configured", "workers", "cpus", "want"), [
    (0, 1, 2, 2),      # one worker: every core
    (0, 2, 2, 1),      # two workers on two cores: one thread each, no oversubscription
    (0, 4, 2, 1),      # more workers than cores: still at least one
    (0, 2, 16, 8),
    (3, 2, 2, 3),      # an explicit setting wins
])
def test_threads_per_worker_shares_cores_when_auto(configured, workers, cpus, want):
    assert threads_per_worker(configured, workers, cpus) == want
