"""The README's command table and quick examples are what the CLI does."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer
from typer.testing import CliRunner

from tribert.cli import app
from tribert.data.clip import list_clips

README = Path(__file__).resolve().parents[1] / "README.md"
runner = CliRunner()


def table_rows() -> dict[tuple[str, ...], str]:
    """Command words (``("retrieve", "train")``) -> the README table row that starts with them."""
    rows = {}
    for line in README.read_text().splitlines():
        m = re.match(r"\| `tribert ((?:[a-z][a-z-]* ?)+)", line)
        if m:
            rows[tuple(m.group(1).split())] = line
    return rows


def cli_commands() -> set[tuple[str, ...]]:
    """Every command of the CLI, with the subcommands of a group (``tribert retrieve train``)."""
    found = set()
    for name, cmd in typer.main.get_command(app).commands.items():
        subs = getattr(cmd, "commands", None)  # a click Group has subcommands
        found |= {(name, sub) for sub in subs} if subs else {(name,)}
    return found


def test_command_table_lists_every_command_and_each_help_knows_its_options():
    rows = table_rows()
    assert set(rows) == cli_commands(), f"README table {sorted(rows)} vs CLI {sorted(cli_commands())}"
    for words, row in rows.items():
        res = runner.invoke(app, [*words, "--help"], terminal_width=200)
        assert res.exit_code == 0, (words, res.output)
        for option in set(re.findall(r"--[a-z][a-z-]*", row)):
            assert option in res.output, f"README says `tribert {' '.join(words)} {option}`, its --help does not"


def test_quick_examples_run(tmp_path, monkeypatch):
    text = README.read_text()
    block = text.split("Examples that run in seconds", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line) for line in block.splitlines() if line.startswith("tribert ")]
    assert len(commands) >= 3
    monkeypatch.chdir(tmp_path)
    for argv in commands:
        res = runner.invoke(app, argv[1:])
        assert res.exit_code == 0, (argv, res.output, res.exception)
    assert len(list_clips(tmp_path / "quick" / "prepared")) == 4  # synth's 4 MP4s, prepared
