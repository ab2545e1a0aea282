"""The CLI's shared argument types: counts that must be positive, and document ids typed the way people write them."""

from __future__ import annotations

import argparse

import pytest

from corpusbridge.cli import main
from corpusbridge.cli.output import document_id_of, positive_int


@pytest.mark.parametrize(
    ("typed", "doc_id"),
    [
        ("doi:10.1056/nejmoa1715274", "doi:10.1056/nejmoa1715274"),
        ("doi:10.1056/NEJMoa1715274", "doi:10.1056/nejmoa1715274"),
        ("10.1056/NEJMoa1715274", "doi:10.1056/nejmoa1715274"),
        ("https://doi.org/10.1056/NEJMoa1715274", "doi:10.1056/nejmoa1715274"),
        (" DOI: 10.1056/nejmoa1715274 ", "doi:10.1056/nejmoa1715274"),
        ("pmid:29365305", "pmid:29365305"),
        ("openalex:W2741809807", "openalex:W2741809807"),  # not a DOI: kept as given, case and all
    ],
)
def test_a_doi_in_any_spelling_is_the_id_ingestion_wrote(typed: str, doc_id: str) -> None:
    assert document_id_of(typed) == doc_id


def test_positive_int_refuses_zero_and_negatives() -> None:
    assert positive_int("3") == 3
    for bad in ("0", "-3"):
        with pytest.raises(argparse.ArgumentTypeError, match="must be >= 1"):
            positive_int(bad)


def test_a_negative_limit_is_a_usage_error_before_any_database_is_opened(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["similar", "doi:10.1/x", "--limit", "-3", "--db", "postgresql://nobody@127.0.0.1:1/none"])
    assert stopped.value.code == 2 and "must be >= 1, got -3" in capsys.readouterr().err


def test_an_unreachable_database_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--db", "postgresql://nobody@127.0.0.1:1/none"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("corpusbridge status: OperationalError: connection failed") and "Traceback" not in err


@pytest.mark.parametrize("argv", [["status"], ["search", "asthma"], ["concepts", "doi:10.1/x"], ["similar", "x"],
                                  ["related", "cb:gene"], ["quarantine"], ["sanitize", "--rejects", "5"]])  # fmt: skip
def test_commands_that_only_read_never_create_a_database(argv, tmp_path, monkeypatch) -> None:
    """Run from the wrong folder, they said 'nothing' from a new empty database; now they say where they looked."""
    monkeypatch.delenv("CORPUSBRIDGE_DB", raising=False)
    monkeypatch.setenv("CORPUSBRIDGE_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit, match=r"no database in .*home/pgdata: set \$CORPUSBRIDGE_HOME"):
        main(argv)
    assert not (tmp_path / "home").exists()


def test_export_takes_a_format_by_either_name_and_refuses_an_unknown_one(capsys) -> None:
    """`export --source` is a document format, unlike `run --source` (a folder): --format says so, and a typo no
    longer exports nothing with exit status 0."""
    from corpusbridge.cli import build_parser

    assert build_parser().parse_args(["export", "--format", "jats"]).source == "jats"
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["export", "--source", "bogus"])
    assert refused.value.code == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err
