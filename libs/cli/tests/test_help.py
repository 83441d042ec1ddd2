"""Every command's help shows what its authors wrote: the help is rendered as Markdown, in
which `<batch id>` would be an HTML tag, dropped without a word."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from batchyard_cli.main import app

pytestmark = pytest.mark.unit

ANGLED = re.compile(r"<[^<>\s][^<>]*>")


def commands(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    """Each command and subcommand with its path (typer's own click types, duck-typed)."""
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from commands(sub, [*path, name])


def test_angled_words_in_help_texts_are_shown() -> None:
    runner = CliRunner()
    checked = 0
    for path, command in commands(get_command(app), []):
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        wanted = ANGLED.findall(" ".join(texts))
        if not wanted:
            continue
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        shown = " ".join(result.output.split())
        for text in wanted:
            assert text in shown, f"`batchyard {' '.join(path)} --help` drops {text}"
        checked += 1
    assert checked >= 2  # jobs show's job id, export's default file name
