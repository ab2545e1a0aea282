"""How a failed shard is described: the state, the payload's own error, and the end of its stderr."""

from __future__ import annotations

from corpusbridge.compute.outputs import failure_line, failure_message

TRACEBACK = """Traceback (most recent call last):
  File "<frozen runpy>", line 189
ModuleNotFoundError: No module named 'corpusbridge'
"""


def test_a_failure_without_a_payload_error_has_no_dangling_colon() -> None:
    message = failure_message("index 0 (job 7): FAILED exit 1", "", TRACEBACK)
    assert message.startswith("index 0 (job 7): FAILED exit 1\nstderr tail:\n")


def test_in_one_line_a_failure_names_the_exception_its_stderr_ends_with() -> None:
    message = failure_message("index 0 (job 7): FAILED exit 1", '{"error": "bad input"}', TRACEBACK)
    assert failure_line(message) == (
        "index 0 (job 7): FAILED exit 1: bad input; "
        "its stderr ends: ModuleNotFoundError: No module named 'corpusbridge'"
    )
    assert failure_line(failure_message("exit 3", "", "")) == "exit 3"
