"""Reconciliation verdicts and the cluster connection forms `corpusbridge run` accepts."""

from __future__ import annotations

import pytest

from corpusbridge.cli.run import connection_mapping
from corpusbridge.load.reconcile import Reconciliation, ReconciliationError


def test_reconciled_only_when_every_hop_agrees_and_nothing_is_missing() -> None:
    assert Reconciliation("b", 3, 3, 3).ok
    assert not Reconciliation("b", 3, 3, 2, ["d3"]).ok
    assert not Reconciliation("b", 3, 2, 2).ok


def test_a_mismatch_names_the_first_missing_ids_and_stores_a_bounded_list() -> None:
    missing = [f"doc:{i:03d}" for i in range(150)]
    result = Reconciliation("b-1", 150, 150, 0, missing)
    stored = result.as_dict()
    assert stored["docs_missing"] == 150 and len(stored["missing_doc_ids"]) == 100 and not stored["ok"]
    message = str(ReconciliationError(result))
    assert "batch b-1: docs exported 150, processed 150, loaded 0: NOT reconciled, 150 missing" in message
    assert "doc:000, doc:001" in message and "and 140 more" in message


def test_connection_as_json_or_uri() -> None:
    as_json = connection_mapping('{"conn_type": "ssh", "host": "h", "extra": {"scratch_root": "/s"}}')
    assert as_json["host"] == "h" and as_json["extra"] == {"scratch_root": "/s"}
    uri = connection_mapping("ssh://me@cluster.example:2222?scratch_root=%2Fscratch%2Fme&key_file=%2Fk")
    assert uri == {
        "conn_type": "ssh", "host": "cluster.example", "port": 2222, "login": "me", "password": None,
        "extra": {"scratch_root": "/scratch/me", "key_file": "/k"},
    }  # fmt: skip
    with pytest.raises(ValueError, match="neither connection JSON nor"):
        connection_mapping("not a connection")
