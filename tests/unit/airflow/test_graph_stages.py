"""corpus_compute's graph tasks: a Param switched off skips the task (so its Asset gets no event) before anything
touches the database or the cluster; the kNN options follow the run's backend and Params."""

from __future__ import annotations

import pytest

from corpusbridge_airflow.stages import graph

pytestmark = pytest.mark.airflow


def test_params_off_skip_without_touching_anything(monkeypatch) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    monkeypatch.setattr(graph.settings, "postgres_uri", lambda: pytest.fail("no database for a skipped task"))
    with pytest.raises(AirflowSkipException, match="'graph' is off"):
        graph.concept_graph_stage({"graph": False}, "run")
    with pytest.raises(AirflowSkipException, match="'neighbors' is off"):
        graph.neighbors_stage({"neighbors": False}, "run")


def test_local_knn_options_take_k_and_parts(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_CORPUSBRIDGE_WORK_DIR", str(tmp_path))
    options = graph._knn_options({"backend": "local", "k": 7, "knn_parts": 3})
    assert (options.backend, options.k, options.parts, options.root) == ("local", 7, 3, tmp_path / "knn")
