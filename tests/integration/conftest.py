"""Fixtures the integration tests share."""

from __future__ import annotations

import pytest
from load_support import RoundTrip, build_round_trip


@pytest.fixture(scope="session")
def round_trip(tmp_path_factory: pytest.TempPathFactory) -> RoundTrip:
    """Two real payload batches for the load tests (built once per test process: load_support.RoundTrip)."""
    return build_round_trip(tmp_path_factory)
