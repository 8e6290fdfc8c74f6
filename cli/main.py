"""Entry point: `facetrace COMMAND ...`. Importing this module loads no model and no FAISS."""

from __future__ import annotations

import os

import click

from cli.acquire import acquire_group
from cli.calibrate import calibrate_command
from cli.common import EXIT_CODES, setup_logging
from cli.datasets import datasets_group
from cli.engine import engine_group
from cli.enroll import enroll_command
from cli.lineage import lineage_command
from cli.match import match_command
from cli.profile import profile_command
from cli.registry_cmd import registry_group
from cli.report import report_group
from cli.scan import scan_command
from cli.serve import keys_group, serve_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}, epilog=EXIT_CODES)
@click.version_option(package_name="facetrace", prog_name="facetrace")
@click.option("-v", "--verbose", count=True, help="Log more to stderr (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Find traded face data: fingerprint every file and face in a dump.

    \b
    Examples:
      facetrace scan ./dump.zip ./more-photos/
      facetrace scan https://files.example.org/kit.zip
    """
    setup_logging(verbose)


cli.add_command(acquire_group)
cli.add_command(scan_command)
cli.add_command(enroll_command)
cli.add_command(match_command)
cli.add_command(registry_group)
cli.add_command(report_group)
cli.add_command(profile_command)
cli.add_command(datasets_group)
cli.add_command(lineage_command)
cli.add_command(calibrate_command)
cli.add_command(engine_group)
cli.add_command(serve_command)
cli.add_command(keys_group)


def main() -> None:
    # ONNX Runtime's telemetry off before anything can import it (scanner/fingerprints/onnxnet.py
    # says what it would write and send); worker processes inherit the setting
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    cli(prog_name="facetrace")


if __name__ == "__main__":
    main()
