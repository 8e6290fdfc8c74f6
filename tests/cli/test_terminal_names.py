"""Names from a dump never reach the terminal raw (issue 19 item 12): an ESC sequence can clear the
screen or hide what follows, a CR overwrites the line, a newline forges one, a bidirectional override
reorders a name. Before the fix the summary printed them as they were."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli.common import terminal_text
from cli.main import cli

HOSTILE = [
    "clear\x1b[2Jscreen.jpg",
    "hide\x1b[8mrest.jpg",
    "over\rwrite.jpg",
    "forged\nRegistry: 0 findings.jpg",
    "gpj.\u202eexe.jpg",
]


def test_the_scan_summary_escapes_names(tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    for name in HOSTILE:
        (dump / name).write_text("not an image")  # each is named as an image: listed as unreadable, with its name
    result = CliRunner().invoke(
        cli, ["scan", "--workspace", str(tmp_path / "ws"), "--workers", "1", str(dump)], catch_exceptions=False
    )
    out = result.output
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
    assert not any(line.startswith("Registry: 0 findings") for line in out.splitlines())
    assert "clear\\u001b[2Jscreen.jpg" in out and "forged\\u000aRegistry" in out and "gpj.\\u202eexe.jpg" in out


def test_escaped_text_stays_valid_json():
    text = json.dumps({"name": "a\u202eb\u2028c"}, ensure_ascii=False)
    assert json.loads(terminal_text(text)) == {"name": "a\u202eb\u2028c"}
    assert terminal_text("plain 人脸 line") == "plain 人脸 line"
    assert terminal_text("one\ntwo") == "one\\u000atwo"  # one line stays one line
