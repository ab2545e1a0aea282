from __future__ import annotations

import pytest

from corpusbridge.hpc import naming

KEY = naming.WorkKey("my dag", "extract/concepts", "manual__2026-01-01T00:00:00+00:00", 3, "abc")


def test_same_work_same_name_and_scratch() -> None:
    again = naming.WorkKey(*[getattr(KEY, f) for f in ("dag_id", "task_id", "run_id", "map_index", "input_hash")])
    assert naming.job_name(KEY) == naming.job_name(again)
    assert naming.scratch_dir("/scratch", KEY) == naming.scratch_dir("/scratch", again)


@pytest.mark.parametrize("field", ["dag_id", "task_id", "run_id", "map_index", "input_hash"])
def test_every_identifying_field_changes_the_name(field: str) -> None:
    values = {f: getattr(KEY, f) for f in ("dag_id", "task_id", "run_id", "map_index", "input_hash")}
    values[field] = 7 if field == "map_index" else values[field] + "x"
    assert naming.job_name(naming.WorkKey(**values)) != naming.job_name(KEY)


def test_there_is_no_try_number_to_pass() -> None:
    assert "try_number" not in naming.WorkKey.__dataclass_fields__


def test_name_and_dir_are_shell_and_path_safe() -> None:
    name = naming.job_name(KEY)
    assert len(name) <= naming.MAX_JOB_NAME and name.startswith("cb-my-dag-extract-concepts-")
    assert all(c.isalnum() or c in "-_." for c in name)
    scratch = naming.scratch_dir("/scratch", KEY)
    assert scratch.startswith("/scratch/my-dag/extract-concepts-m3/") and " " not in scratch


def test_scratch_root_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="scratch_root"):
        naming.scratch_dir("relative/dir", KEY)


def test_input_hash_is_canonical() -> None:
    assert naming.input_hash({"a": 1, "b": [1, 2]}) == naming.input_hash({"b": [1, 2], "a": 1})
    assert naming.input_hash({"a": 1}) != naming.input_hash({"a": 2})
