"""`roar --help` lists every verb with a whole one-line summary, at 80 columns."""

import os
import subprocess
import sys


def _help(columns: int) -> str:
    env = dict(os.environ, COLUMNS=str(columns))
    out = subprocess.run([sys.executable, "-m", "roar", "--help"], env=env, text=True,
                         capture_output=True, check=True)
    return out.stdout


def test_top_level_help_cuts_no_summary():
    text = _help(80)
    commands = text.split("Commands:", 1)[1].strip().splitlines()
    assert len(commands) >= 12, text
    for line in commands:
        name, _, summary = line.strip().partition(" ")
        assert summary.strip(), f"{name} has no summary"
        assert not summary.rstrip().endswith("..."), f"{name}'s summary is cut: {line!r}"
        assert len(line) <= 80, line


def test_every_verb_has_a_summary():
    from roar.cli.main import SUMMARIES, app

    names = {info.name for info in (*app.registered_commands, *app.registered_groups)}
    assert names <= set(SUMMARIES), f"verbs without a summary in roar.cli.main.SUMMARIES: {names - set(SUMMARIES)}"
