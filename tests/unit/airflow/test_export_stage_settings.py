"""Settings errors fail an Airflow task at once: a retry gives the same answer and, with max_active_runs=1, would
hold up the next run."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.airflow


def test_contradicting_filters_fail_the_export_without_retries() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from corpusbridge_airflow.stages.export import RunInfo, export_stage

    params = {"year_from": 2030, "year_to": 2000, "embeddings": False}
    with pytest.raises(AirflowFailException, match="year_from 2030 is after year_to 2000; swap them"):
        export_stage(params, RunInfo("manual__x", "manual"), {"version": "v1"})
