"""README.md's synopses are what ``idstation COMMAND --help`` prints (same options, same order)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _synopses() -> list[str]:
    text = README.read_text("utf-8").split("Synopses (`--help` of each):", 1)[1]
    block = text.split("```text", 1)[1].split("```", 1)[0]
    return re.split(r"\n(?=idstation )", block.strip())


def _command(synopsis: str) -> list[str]:
    words = []
    for word in synopsis.split()[1:]:
        if word[0] in "[(-":
            break
        words.append(word)
    return words


@pytest.mark.parametrize("synopsis", _synopses(), ids=lambda s: " ".join(_command(s)))
def test_the_readme_synopsis_is_the_help_usage(synopsis: str) -> None:
    env = dict(os.environ, COLUMNS="80")
    out = subprocess.run(
        [sys.executable, "-m", "idstation.agent.cli", *_command(synopsis), "--help"],
        capture_output=True, text=True, check=True, env=env, timeout=60,
    ).stdout  # fmt: skip
    usage = out.split("\n\n", 1)[0].removeprefix("usage: ")
    assert " ".join(synopsis.split()) == " ".join(usage.split())
