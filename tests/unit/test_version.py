"""Every result records the code that made it: the image's build, else the checkout's commit."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import corpusbridge
from corpusbridge import version

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    version.code_version.cache_clear()
    yield
    version.code_version.cache_clear()


def test_the_image_build_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORPUSBRIDGE_CODE_VERSION", "g0123456789ab")
    assert version.code_version() == f"{corpusbridge.__version__}+g0123456789ab"


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not run from a git checkout")
def test_a_checkout_names_its_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORPUSBRIDGE_CODE_VERSION", raising=False)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    assert version.code_version().removesuffix("-dirty") == f"{corpusbridge.__version__}+g{commit}"
