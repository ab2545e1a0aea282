"""The SLURM event: typed inside, JSON at the boundary, and its round trip."""

from __future__ import annotations

import json

import pytest

from corpusbridge.hpc.events import LOST, EventStatus, IndexOutcome, SlurmEvent, SlurmEventError, xcom_states

EVENT = SlurmEvent(
    status=EventStatus.DONE,
    jobs={"12": [0, 2], "15": None},
    outcomes=(
        IndexOutcome(0, "12", "COMPLETED", 0),
        IndexOutcome(2, "12", "CANCELLED", 0, 15, "None", cancelled_by="1000"),
    ),
    scratch_dir="/scratch/d/t/abc",
    is_array=True,
    done={1: "9"},
)


def test_round_trip_through_json() -> None:
    payload = json.loads(json.dumps(EVENT.to_dict()))
    assert SlurmEvent.from_dict(payload) == EVENT


def test_int_keys_inside_strings_only_in_json() -> None:
    payload = EVENT.to_dict()
    assert payload["done"] == {"1": "9"} and payload["status"] == "done"
    back = SlurmEvent.from_dict(payload)
    assert back.done == {1: "9"} and back.status is EventStatus.DONE and back.jobs["12"] == [0, 2]


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (None, "JSON object"),
        ({"status": "done"}, r"without \['jobs'\]"),
        ({"status": "finished", "jobs": {}}, "unknown SLURM event status"),
        ({"status": "done", "jobs": {}, "outcomes": [{"index": 1}]}, "not an index outcome"),
        ({"status": "done", "jobs": {}, "done": {"x": "9"}}, "index: job id"),
    ],
)
def test_anything_else_is_refused_naming_what_is_wrong(payload, match: str) -> None:
    with pytest.raises(SlurmEventError, match=match):
        SlurmEvent.from_dict(payload)


def test_cancelled_by_says_cancelled_and_who() -> None:
    """sacct's `CANCELLED by 1000` used to read as 'no longer known to the controller'."""
    text = EVENT.outcomes[1].describe()
    assert "CANCELLED by 1000" in text and "cancelled" in text and "no longer known" not in text


def test_lost_says_lost() -> None:
    assert "no longer known to the controller" in IndexOutcome(3, "12", LOST).describe()


def test_one_states_shape() -> None:
    assert xcom_states(EVENT.outcomes) == {"12_0": "COMPLETED", "12_2": "CANCELLED"}
