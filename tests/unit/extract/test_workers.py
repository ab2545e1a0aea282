"""Work units: whole row groups for one process, contiguous parts of them for several."""

from __future__ import annotations

from corpusbridge.extract.workers import READ_BATCH_ROWS, WorkUnit, plan_units


def test_one_process_matches_whole_row_groups() -> None:
    assert plan_units([2048, 2048, 451], 1) == [WorkUnit(0), WorkUnit(1), WorkUnit(2)]


def test_few_row_groups_are_cut_into_parts_for_two_processes() -> None:
    units = plan_units([2 * READ_BATCH_ROWS] * 5 + [451], 2)
    assert len(units) == 11
    assert units[:2] == [WorkUnit(0, 0, 1), WorkUnit(0, 1, 1)]
    assert units[-1] == WorkUnit(5, 0, 1)


def test_every_row_group_gets_a_unit_even_an_empty_one() -> None:
    units = plan_units([0, 100 * READ_BATCH_ROWS], 2)
    assert units[0] == WorkUnit(0, 0, 1)
    assert [u.first for u in units if u.group == 1] == [0, 25, 50, 75]  # 4 x 2 processes over 2 groups


def test_many_row_groups_stay_whole() -> None:
    assert all(u.first == 0 for u in plan_units([READ_BATCH_ROWS] * 40, 2))
