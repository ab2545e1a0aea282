"""The verdict rules, without Airflow and without a cluster."""

from __future__ import annotations

from corpusbridge.hpc import jobs, outcome
from corpusbridge.hpc.events import LOST, EventStatus, IndexOutcome, SlurmEvent


def event(*outcomes: IndexOutcome, done: dict[int, str] | None = None) -> SlurmEvent:
    return SlurmEvent(EventStatus.DONE, {"12": [0, 1, 2]}, outcomes, "/s", True, done or {})


def test_earlier_try_successes_count() -> None:
    verdict = outcome.decide(event(IndexOutcome(1, "12", "COMPLETED", 0), done={0: "9"}), jobs.Markers())
    assert [(o.index, o.job_id, o.ok) for o in verdict.outcomes] == [(0, "9", True), (1, "12", True)]


def test_lost_with_a_completion_marker_completed() -> None:
    verdict = outcome.decide(event(IndexOutcome(2, "12", LOST)), jobs.Markers(done={2: "12"}))
    assert verdict.outcomes[0].state == "COMPLETED" and not verdict.failed


def test_lost_without_a_marker_fails() -> None:
    verdict = outcome.decide(event(IndexOutcome(2, "12", LOST)), jobs.Markers())
    assert [o.index for o in verdict.failed] == [2]


def test_cancelled_by_us_is_resubmitted_not_failed() -> None:
    outcomes = (IndexOutcome(0, "12", "CANCELLED"), IndexOutcome(1, "12", "FAILED", 3))
    verdict = outcome.decide(event(*outcomes), jobs.Markers(cancelled=frozenset({"12"})))
    assert verdict.resubmit == [0] and [o.index for o in verdict.failed] == [1]


def test_cancelled_by_someone_else_fails() -> None:
    verdict = outcome.decide(event(IndexOutcome(0, "12", "CANCELLED", cancelled_by="1000")), jobs.Markers())
    assert verdict.resubmit == [] and [o.index for o in verdict.failed] == [0]


def test_failure_message_names_index_state_and_who() -> None:
    failed = [IndexOutcome(0, "12", "CANCELLED", cancelled_by="1000"), IndexOutcome(1, "12", "FAILED", 3)]
    text = outcome.failure_message("extract", None, failed, None, True)
    assert "did not complete: [0, 1]" in text and "CANCELLED by 1000" in text and "FAILED exit 3" in text
