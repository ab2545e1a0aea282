"""monitor.merge_accounting on outputs captured live from the 22.05 sandbox WITH accounting (slurmdbd).

`*-array-lagging-22.05.8.txt`: `sbatch --array=0-3 --wrap 'test $SLURM_ARRAY_TASK_ID != 2 || exit 4'`, then, as
soon as `squeue -r` showed all four indices final, `SLURM_BITSTR_LEN=0 sacct -P -X -n -o
JobID,JobName,State,ExitCode,Reason -j ID` and `SLURM_BITSTR_LEN=0 scontrol show job -o ID` (a private sandbox
instance, scripts/hpc-sandbox.sh with HPC_SANDBOX_ACCOUNTING=1). slurmdbd had not yet heard of the end: sacct
still printed the array's unsplit PENDING record and no index row.
"""

from __future__ import annotations

from pathlib import Path

from corpusbridge.hpc import monitor, parsing

SLURM = Path(__file__).resolve().parents[2] / "fixtures" / "slurm"


def captured(name: str) -> str:
    return (SLURM / f"{name}-22.05.8.txt").read_text(encoding="utf-8")


def test_lagging_accounting_never_hides_the_controllers_exit_codes() -> None:
    controller = parsing.parse_scontrol(captured("scontrol-array-lagging"))
    accounting = parsing.parse_sacct(captured("sacct-array-lagging"))
    assert [(r.index, r.state) for r in accounting] == [(None, "PENDING")]  # what the retry scenario tripped on
    merged = monitor.merge_accounting(controller, accounting)
    assert {r.index: (r.state, r.exit_code) for r in merged} == {
        0: ("COMPLETED", 0),
        1: ("COMPLETED", 0),
        2: ("FAILED", 4),
        3: ("COMPLETED", 0),
    }


def test_accounting_fills_in_what_the_controller_purged_and_who_cancelled() -> None:
    controller = [
        parsing.ArrayTaskState("7", 1, "CANCELLED", exit_code=0, signal=15),
        parsing.ArrayTaskState("8", None, "COMPLETED", exit_code=0),
    ]
    accounting = parsing.parse_sacct(
        "7_0|w|COMPLETED|0:0|None\n7_1|w|CANCELLED by 1000|0:15|None\n8|w|COMPLETED|0:0|None\n9|w|FAILED|5:0|None\n"
    )
    merged = {r.key: r for r in monitor.merge_accounting(controller, accounting)}
    assert sorted(merged, key=str) == sorted([("7", 0), ("7", 1), ("8", None), ("9", None)], key=str)
    assert merged[("7", 1)].cancelled_by == "1000" and merged[("7", 1)].signal == 15  # the controller's row, named
    assert merged[("7", 0)].state == "COMPLETED"  # purged from the controller: accounting's row
    assert (merged[("9", None)].state, merged[("9", None)].exit_code) == ("FAILED", 5)
