"""Which documents a corpus_compute run exports: Params for UI and Asset runs, the data interval for backfills."""

from __future__ import annotations

from datetime import UTC, datetime

from corpusbridge_airflow.stages.export import RunInfo, selection_for_run

DAY = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))


def test_a_backfill_run_reprocesses_the_documents_cleaned_in_its_interval() -> None:
    run = RunInfo("backfill__2026-11-01T00:00:00+00:00", "backfill", *DAY)
    selection = selection_for_run({"selection": "pending"}, run, "dict-v2", "model-h")
    assert selection.mode == "all", "a backfill re-sends its date's documents even if they were loaded before"
    assert (selection.cleaned_from, selection.cleaned_to) == DAY
    assert (selection.dictionary_version, selection.model_hash) == ("dict-v2", "model-h"), "today's dictionary"


def test_scheduled_and_asset_runs_take_only_pending_documents_whatever_their_interval() -> None:
    for run_type in ("scheduled", "asset_triggered", "manual"):
        selection = selection_for_run({}, RunInfo("r", run_type, *DAY), "v", None)
        assert selection.mode == "pending"
        assert selection.cleaned_from is None and selection.cleaned_to is None, run_type


def test_params_select_and_reprocess() -> None:
    params = {"reprocess": True, "year_from": 2010, "year_to": 2020, "source": "pubmed", "limit": 5, "query": "x"}
    selection = selection_for_run(params, RunInfo("r", "manual"), "v", None)
    assert selection.mode == "all"
    assert (selection.year_from, selection.year_to, selection.source, selection.limit, selection.query) == (
        2010, 2020, "pubmed", 5, "x"
    )  # fmt: skip
    assert selection_for_run({"selection": "all"}, RunInfo("r", "manual"), "v", None).mode == "all"
    assert selection_for_run({"query": "", "source": ""}, RunInfo("r", "manual"), "v", None).query is None
