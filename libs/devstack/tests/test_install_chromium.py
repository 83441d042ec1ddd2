"""When the dev-stack install puts Debian's chromium in place for the browser tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from devstack.install import InstallError, install_chromium

pytestmark = pytest.mark.unit


class Recorder:
    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail_first = fail_first

    def __call__(self, argv: Sequence[str]) -> object:
        self.calls.append(list(argv))
        if self.fail_first and len(self.calls) == 1:
            raise InstallError("package not found")
        return ""


def test_nothing_happens_when_chromium_is_there(tmp_path: Path) -> None:
    binary = tmp_path / "chromium"
    binary.touch()
    run = Recorder()
    assert install_chromium(lambda _: None, binary=binary, is_root=True, run=run) is False
    assert run.calls == []


def test_root_installs_the_debian_package(tmp_path: Path) -> None:
    run = Recorder()
    assert install_chromium(lambda _: None, binary=tmp_path / "chromium", is_root=True, run=run)
    assert run.calls == [["apt-get", "install", "-y", "--no-install-recommends", "chromium"]]


def test_a_stale_package_index_is_updated_once(tmp_path: Path) -> None:
    run = Recorder(fail_first=True)
    assert install_chromium(lambda _: None, binary=tmp_path / "chromium", is_root=True, run=run)
    assert [c[1] for c in run.calls] == ["install", "update", "install"]


def test_without_root_it_only_says_what_is_missing(tmp_path: Path) -> None:
    said: list[str] = []
    run = Recorder()
    assert not install_chromium(said.append, binary=tmp_path / "chromium", is_root=False, run=run)
    assert run.calls == []
    assert "apt-get install chromium" in said[0]
