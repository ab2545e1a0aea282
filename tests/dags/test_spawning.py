"""Worker pools started from an Airflow task must not re-run the task's `__main__` script (the `airflow` CLI)."""

from __future__ import annotations

import multiprocessing.spawn
import sys
import types

from corpusbridge_airflow.spawning import main_script_hidden


def test_spawned_workers_do_not_rerun_the_main_script(monkeypatch, tmp_path) -> None:
    script = tmp_path / "airflow"
    script.write_text("raise SystemExit('a worker re-ran the airflow CLI')\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    main.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert "init_main_from_path" in multiprocessing.spawn.get_preparation_data("w")
    with main_script_hidden():
        assert "init_main_from_path" not in multiprocessing.spawn.get_preparation_data("w")
    assert main.__file__ == str(script), "restored afterwards"
