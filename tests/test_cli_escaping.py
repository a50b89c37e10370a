"""Text from a log reaches the terminal escaped: ANSI, NUL, zero-width and RTL characters are shown, not obeyed.

New runs refuse such agent ids; a log written before that rule (or by anyone
else) may still hold them, so the test writes one with the rule lifted and
reads it back with every command that prints log text.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from simledger.cli.common import printable
from simledger.cli.main import app
from simledger.ledger import run as run_module
from simledger.ledger.run import Run

HOSTILE = "ag\x1b[2J\x1b[31mX\u202e\u200b\x00"


@pytest.fixture
def hostile_log(tmp_path, monkeypatch):
    monkeypatch.setattr(run_module, "is_safe_agent_id", lambda _: True)  # as an older simledger wrote it
    path = tmp_path / "old.db"
    with Run.create(path, agents=["agent_0", "agent_1", HOSTILE], seed=3, config={"num_agents": 3}) as run:
        run.step([{"agent_id": HOSTILE, "action": {"action": "mine"}, "speech": "\x1b]0;pwned\x07"}])
    return path


@pytest.mark.parametrize("command", [
    ["replay"], ["log"], ["log", "--kind", "action_submitted"], ["audit", "--agent", HOSTILE], ["verify"],
])
def test_log_text_is_printed_escaped(hostile_log, command):
    args = [command[0], str(hostile_log), *command[1:]]
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 1), result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output and "\x00" not in result.output
    if command[0] != "verify":
        assert "\\x1b" in result.output


def test_printable_escapes_controls_but_keeps_layout_and_letters():
    assert printable("a\x1b[31mb\u202ec\u200bd\x00\x7f") == "a\\x1b[31mb\\u202ec\\u200bd\\x00\\x7f"
    assert printable("line\n\tnext é 💥 agent_0") == "line\n\tnext é 💥 agent_0"
