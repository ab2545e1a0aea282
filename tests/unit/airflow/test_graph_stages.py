"""corpus_compute's graph tasks: a Param switched off skips the task (so its Asset gets no event) before anything
touches the database or the cluster; the kNN plan picks the branch, and the SlurmOperator request runs the library's
own payload argv on the staged vectors and fetches exactly the parts into the plan's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpusbridge_airflow.stages import graph

pytestmark = pytest.mark.airflow


def _prepared(tmp_path: Path, **over) -> dict:
    return {"backend": "slurm", "input": str(tmp_path / "vectors-0123456789abcdef.parquet"), "input_sha256": "ab" * 32,
            "vectors": 40, "dimension": 384, "k": 7, "parts": 3, "device": "auto",
            "out_dir": str(tmp_path / "knn" / "vectors-0123456789abcdef" / "k7-p3"),
            "pending": [0, 1, 2]} | over  # fmt: skip


def test_params_off_skip_without_touching_anything(monkeypatch) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    monkeypatch.setattr(graph.settings, "postgres_uri", lambda: pytest.fail("no database for a skipped task"))
    with pytest.raises(AirflowSkipException, match="'graph' is off"):
        graph.concept_graph_stage({"graph": False}, "run")
    with pytest.raises(AirflowSkipException, match="'neighbors' is off"):
        graph.neighbors_prepare_stage({"neighbors": False})


def test_the_branch_follows_the_backend_and_loads_parts_already_here(tmp_path) -> None:
    assert graph.neighbors_next(_prepared(tmp_path, backend="local")) == "neighbors_local"
    assert graph.neighbors_next(_prepared(tmp_path, backend="slurm")) == "neighbors_request"
    # Every part verified on the workstation (an earlier run computed them but did not load): no job at all.
    assert graph.neighbors_next(_prepared(tmp_path, pending=[])) == "neighbors_load"


def test_slurm_request_is_the_library_payload_on_the_staged_vectors(tmp_path) -> None:
    from corpusbridge.compute.neighbors import knn_array_argv

    prepared = _prepared(tmp_path)
    params = {"cluster_python": "/opt/py/bin/python", "time_limit": "00:20:00", "partition": "gpu",
              "array_parallelism": 2, "container": "/images/cb.sif"}  # fmt: skip
    [request] = graph.neighbors_request(prepared, params)
    work = graph._work(prepared)
    assert request["command"] == knn_array_argv(work, "/opt/py/bin/python", "vectors-0123456789abcdef.parquet", "out")
    assert request["command"][:4] == ["sh", "-c", request["command"][2], "sh"] and "--index" in request["command"][2]
    assert (request["array_size"], request["array_parallelism"]) == (3, 2)
    assert request["stage_in"] == [prepared["input"]]
    assert request["stage_out"] == ["out/neighbors-*.parquet", "out/neighbors-*.json"]
    assert request["local_output_dir"] == prepared["out_dir"]
    assert request["sbatch_options"] == {"time": "00:20:00", "partition": "gpu"}
    assert request["container"] == "/images/cb.sif"
    # Named after the work, not the run: a later run of the same work re-attaches instead of submitting again.
    assert request["work_key"] == "vectors-0123456789abcdef-k7-p3"
    # The same plan gives the same arguments, so the operator's job name and scratch dir are the same on a retry.
    assert graph.neighbors_request(prepared, params) == [request]
