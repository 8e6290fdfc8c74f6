"""Regenerate docs/cli.md from the commands' own --help texts (a test fails when it is stale).

Usage: python docs/gen_cli_reference.py
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HEADER = """# CLI reference

Generated from `--help` by `python docs/gen_cli_reference.py`; `tests/test_docs.py` fails when
this file and the commands disagree. Data goes to stdout, progress and logs to stderr.
"""


def render() -> str:
    import click

    from cli.main import cli

    parts = [HEADER]

    def walk(cmd: click.Command, path: list[str]) -> None:
        ctx = click.Context(
            cmd, info_name=" ".join(path), terminal_width=100, max_content_width=100, help_option_names=["-h", "--help"]
        )
        parts.append(f"\n## `{' '.join(path)}`\n\n```\n{cmd.get_help(ctx)}\n```\n")
        if isinstance(cmd, click.Group):
            for name in sorted(cmd.list_commands(ctx)):
                walk(cmd.get_command(ctx, name), [*path, name])

    walk(cli, ["facetrace"])
    return "".join(parts)


if __name__ == "__main__":
    (REPO / "docs" / "cli.md").write_text(render())
    print("wrote docs/cli.md")
