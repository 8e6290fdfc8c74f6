"""`facetrace calibrate`: build the reference cohort from a labelled folder and measure false matches on it."""

from __future__ import annotations

import json

import click

from cli.common import EXIT_CODES, echo, echo_lines, open_registry, translate_errors, workspace_options

SHOWN_SKIPPED = 10  # skipped photos named on stderr; the counts cover them all


@click.command("calibrate", epilog=EXIT_CODES)
@click.argument("folder", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--remove", is_flag=True, help="Overwrite and delete the workspace's reference cohort.")
@click.option("--json", "as_json", is_flag=True, help="Print the cohort's manifest (counts and measurements) as JSON.")
@workspace_options
@translate_errors
def calibrate_command(folder, remove, as_json, workspace, db_url):
    """Build the reference cohort from FOLDER (one subfolder of photos per person) and measure it.

    Each photo showing exactly one face gives an encoding (the scans' engine); photos with no
    face, several faces or unreadable ones are counted and skipped. Only the encodings are kept
    (WORKSPACE/cohort), with the counts and the SHA-256 of the photos used, never the photos. The
    registry's protocol is then run on the folder itself: for each margin, the false matches
    between different people with the 95% upper bound of their rate, the share of each person's
    other photos found, and the registry size the margin supports at a 1% bound. Needs at least
    10 people; hundreds of the population the registry serves, 2 or more photos each, are better
    (docs/calibration.md).

    \b
    Examples:
      facetrace calibrate ./reference-people/
      facetrace calibrate --remove
    """
    from scanner.actor import default_actor
    from scanner.errors import UsageError
    from scanner.matching import calibration

    if remove == bool(folder):
        raise UsageError("give either FOLDER (to build the reference cohort) or --remove (to delete it)")
    reg = open_registry(workspace, db_url)
    if remove:
        previous = calibration.remove(reg, actor=default_actor())
        if as_json:
            echo_lines(
                json.dumps(
                    {"removed": previous is not None, "source_sha256": (previous or {}).get("source_sha256")}
                ).split("\n")
            )
        elif previous is None:
            echo("This workspace has no reference cohort: nothing removed.")
        else:
            echo(
                f"Reference cohort removed ({previous.get('people', '?')} people, {previous.get('faces', '?')} "
                f"faces; source SHA-256 {previous.get('source_sha256', '?')})."
            )
        return

    with _progress() as progress:
        manifest, where, skipped = calibration.calibrate(reg, folder, actor=default_actor(), progress=progress)
    for name, reason in skipped[:SHOWN_SKIPPED]:
        echo(f"Skipped ({reason.replace('_', ' ')}): {name}", err=True)
    if len(skipped) > SHOWN_SKIPPED:
        echo(f"... and {len(skipped) - SHOWN_SKIPPED} more skipped file(s)", err=True)
    if as_json:
        echo_lines(json.dumps(manifest, indent=2).split("\n"))
        return
    echo_lines(format_summary(manifest, where).split("\n"))


def format_summary(manifest: dict, where) -> str:
    """The command's report: counts, then the FMR table with genuine rates and supported registry sizes."""
    from scanner.matching.calibration import supported_registry_size

    m = manifest["measured"]
    skipped = {k: v for k, v in manifest["skipped"].items() if v}
    skipped_text = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in skipped.items()) or "none"
    lines = [
        f"Reference cohort: {manifest['people']} people, {manifest['faces']} faces from {manifest['files']} file(s)",
        f"  skipped     {sum(skipped.values())} file(s): {skipped_text}"
        + (
            f"; {manifest['people_without_usable_photo']} person folder(s) without a usable photo"
            if manifest["people_without_usable_photo"]
            else ""
        ),
        f"  saved       {where} (encodings only; photos' SHA-256 {manifest['source_sha256']})",
        *(
            [
                f"  policy      {manifest['policy']}: the model's distances on dlib's scale, from "
                f"{manifest['distance_scale']['pairs']:,} pairs of {manifest['distance_scale']['faces']} faces "
                "(facetrace engine show)"
            ]
            if manifest.get("policy")
            else []
        ),
        (
            f"Measured with the registry's protocol on the cohort itself (K={m['k']}): {m['subjects']} people enrolled "
            f"(first photo), {m['probes']} probe faces, {m['impostor_pairs']:,} pairs of different people"
        ),
        f"  {'margin':>6}  {'false matches':>15}  {'95% upper':>10}  {'registry at 1%':>14}  {'genuine found':>13}",
    ]
    genuine = dict(m["genuine_rate"])
    for margin, events, upper in m["fmr_table"]:
        rate = genuine.get(margin)
        ratio = f"{events:,}/{m['impostor_pairs']:,}"
        found = "-" if rate is None else f"{rate:.1%}"
        size = supported_registry_size(upper)
        lines.append(f"  {margin:>6.2f}  {ratio:>15}  {upper:>10.2e}  {size:>14,}  {found:>13}")
    lines.append(
        f"  (a pair counts when its margin reaches the row's and its distance is at most {m['max_distance']}; "
        "registry at 1%: the most enrolled people for which size x upper bound <= 0.01)"
    )
    return "\n".join(lines)


class _progress:
    """A rich progress bar on stderr while the photos are analysed, shown only when stderr is a terminal."""

    def __enter__(self):
        from rich.console import Console

        console = Console(stderr=True)
        self.bar = None
        if not console.is_terminal:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("analysing photos"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("calibrate", total=None)
        return self.update

    def update(self, done: int, total: int) -> None:
        self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False
