"""`facetrace acquire`: download a dump from a link with a custody record; list and verify records."""

from __future__ import annotations

import functools
import json
import re
import sys

import click

from cli.common import EXIT_CODES, echo, echo_lines, terminal_lines, terminal_text, translate_errors, workspace_options

LINKS_SHOWN = 20


class ByteSize(click.ParamType):
    """A size in bytes: 1000, 500M, 2G, 1.5T (K, M, G, T are powers of 1024; a trailing B or iB is allowed)."""

    name = "SIZE"
    _UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", str(value), re.IGNORECASE)
        if not m:
            self.fail(f"{value!r} is not a size (examples: 1000, 500M, 2G)", param, ctx)
        return int(float(m.group(1)) * self._UNITS[m.group(2).upper()])


ACQUIRE_KEYS = (
    "max_bytes",
    "connect_timeout",
    "read_timeout",
    "retries",
    "backoff",
    "max_redirects",
    "ca_bundle",
    "insecure",
    "proxy",
    "user_agent",
    "follow_depth",
    "allow_hosts",
    "lab_networks",
)
LAB_ENV = "FACETRACE_LAB_NETWORK"


def lab_network_option(what: str):
    """--lab-network CIDR (repeatable, or $FACETRACE_LAB_NETWORK): internal networks allowed as targets."""

    def check(_ctx, param, values):
        import ipaddress

        for v in values:
            try:
                ipaddress.ip_network(v, strict=False)
            except ValueError:
                raise click.BadParameter(
                    f"{v!r} is not a network (an address or a CIDR block such as 10.1.0.0/16)", param=param
                ) from None
        return tuple(values)

    return click.option(
        "--lab-network",
        "lab_networks",
        multiple=True,
        metavar="CIDR",
        envvar=LAB_ENV,
        callback=check,
        help=f"Allow {what} to this internal network (repeatable; e.g. 127.0.0.1/32 for a loopback "
        "test server, 10.1.0.0/16 for a lab). Without it, loopback, private, link-local, "
        "multicast and reserved addresses are refused, after DNS resolution and on every "
        f"redirect. Also read from ${LAB_ENV} (space-separated).",
    )


def acquire_options(fn):
    """Add the download options of `acquire` (and of `scan URL`); the command gets them as `acquire_settings`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        kwargs["acquire_settings"] = {k: kwargs.pop(k) for k in ACQUIRE_KEYS}
        return fn(*args, **kwargs)

    options = [
        click.option(
            "--max-bytes",
            type=ByteSize(),
            default="64G",
            show_default=True,
            help="Refuse a download larger than this: from the announced length before it starts, and "
            "while streaming when the server announced none.",
        ),
        click.option(
            "--connect-timeout",
            type=click.FloatRange(0.1),
            default=15.0,
            show_default=True,
            metavar="SECONDS",
            help="Give up connecting (TCP and TLS) after this long.",
        ),
        click.option(
            "--read-timeout",
            type=click.FloatRange(0.1),
            default=60.0,
            show_default=True,
            metavar="SECONDS",
            help="A transfer with no byte for this long counts as stalled (retried, then resumed).",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 20),
            default=3,
            show_default=True,
            metavar="N",
            help="Further attempts after a connection error, a stall, a cut-off transfer (resumed where "
            "the server supports ranges), HTTP 429 or 5xx.",
        ),
        click.option(
            "--backoff",
            type=click.FloatRange(0),
            default=1.0,
            show_default=True,
            metavar="SECONDS",
            help="Wait before the first retry, doubled at each next one; a server's Retry-After is "
            "honoured instead (up to 300 s).",
        ),
        click.option(
            "--max-redirects",
            type=click.IntRange(0, 50),
            default=10,
            show_default=True,
            metavar="N",
            help="Follow at most this many redirects (each hop is recorded).",
        ),
        click.option(
            "--ca-bundle",
            type=click.Path(exists=True, dir_okay=False),
            metavar="FILE",
            help="Trust only the certificates in this PEM file (a server with a self-signed certificate "
            "you checked); by default the system's CAs verify every TLS server.",
        ),
        click.option(
            "--insecure",
            is_flag=True,
            help="Do not verify TLS certificates at all. Recorded in the acquisition record and shown in "
            "every report: the server's identity is then unproven.",
        ),
        click.option(
            "--proxy",
            metavar="URL",
            help="Send requests through this proxy (http://host:port); by default HTTP_PROXY, "
            "HTTPS_PROXY and NO_PROXY apply. The proxy used is recorded.",
        ),
        click.option(
            "--user-agent",
            metavar="TEXT",
            help="User-Agent header to send (default: facetrace/VERSION python-requests/VERSION).",
        ),
        click.option(
            "--follow",
            "follow_depth",
            type=click.IntRange(0, 5),
            default=0,
            show_default=True,
            metavar="DEPTH",
            help="A link to an HTML page: also fetch the files it links to, this many links deep "
            "(0: keep the page and list its links only).",
        ),
        click.option(
            "--allow-host",
            "allow_hosts",
            multiple=True,
            metavar="HOST",
            help="With --follow: hosts whose links may be fetched, on ports 80 and 443 (repeatable; "
            "*.example.org for its subdomains; HOST:PORT for another port). Default: the page's own "
            "host, on the page's port and ports 80 and 443.",
        ),
        lab_network_option("downloads"),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def options_from(settings: dict):
    from scanner.models import AcquireOptions

    fields = {k: v for k, v in settings.items() if k != "lab_networks"}  # passed to acquire() on its own
    return AcquireOptions(**{**fields, "allow_hosts": tuple(settings["allow_hosts"])})


class _DefaultToFetch(click.Group):
    """`facetrace acquire URL...` fetches; `facetrace acquire list|verify` work on the records."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args.insert(0, "fetch")
        return super().parse_args(ctx, args)


@click.group("acquire", cls=_DefaultToFetch, epilog=EXIT_CODES)
def acquire_group():
    """Download dumps from links with a custody record; list or verify the records.

    Every request is recorded: each redirect hop, status, response headers, server address and
    time; with the byte count, SHA-256 and MD5 of what was kept. The file is stored read-only in
    the workspace; a failed download (DNS, TLS, HTTP error, size limit, cut-off transfer) is
    recorded with its reason and never scanned. `facetrace acquire URL` is short for `facetrace
    acquire fetch URL`; `facetrace scan URL` acquires, then scans (docs/acquisition.md).

    \b
    Examples:
      facetrace acquire https://files.example.org/kit.zip
      facetrace acquire --follow 1 --allow-host cdn.example.org https://board.example.org/post/42
      facetrace acquire --ca-bundle their-cert.pem https://203.0.113.7/dump.7z
      facetrace acquire --lab-network 10.1.0.0/16 http://10.1.2.3/kit.zip
      facetrace acquire list
      facetrace acquire verify
    """


@acquire_group.command("fetch")
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@click.option(
    "--out",
    "out_dir",
    metavar="DIR",
    help="Folder for the acquired files and their records (default: WORKSPACE/acquired).",
)
@acquire_options
@workspace_options
@click.option("--json", "as_json", is_flag=True, help="Print each acquisition record as one JSON line on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@translate_errors
def fetch_command(urls, out_dir, acquire_settings, workspace, db_url, as_json, quiet):
    """Download each URL into the workspace with its acquisition record (docs/acquisition.md).

    A large file cut off half-way is resumed (Range with If-Range) on a retry, or when the same
    command is run again, where the server supports it. Exit 5 when an acquisition failed.
    """
    from scanner.acquire import acquire
    from scanner.errors import AcquisitionError, UsageError
    from scanner.pipeline import open_store

    options = options_from(acquire_settings)
    for url in urls:
        _check_url(url, UsageError)
    store, root = open_store(workspace, db_url)
    failed = []
    out = sys.stderr if as_json else sys.stdout
    for url in urls:
        with _download_progress(quiet) as progress:
            result = acquire(
                url,
                store,
                root,
                options,
                lab_networks=acquire_settings["lab_networks"],
                out_dir=out_dir,
                on_progress=progress,
            )
        for record in result.records:
            if as_json:
                sys.stdout.write(json.dumps(record.as_record(), ensure_ascii=False) + "\n")
        print_acquisition(out, result, options)
        failed += result.failed()
    sys.stdout.flush()
    if failed:
        raise AcquisitionError(
            f"{len(failed)} acquisition(s) failed: " + "; ".join(f"{r.requested_url}: {r.reason}" for r in failed)
        )


@acquire_group.command("list")
@workspace_options
@click.option("--json", "as_json", is_flag=True, help="Print each full record as one JSON line.")
@translate_errors
def list_command(workspace, db_url, as_json):
    """List every acquisition of the workspace, oldest first: time, status, size, SHA-256, URL."""
    from scanner.acquire import list_acquisitions
    from scanner.pipeline import open_store

    store, _root = open_store(workspace, db_url)
    rows = list_acquisitions(store)
    for row in rows:
        if as_json:
            echo_lines(json.dumps(row["record"], ensure_ascii=False).split("\n"))
        else:
            what = row["sha256"] or row["reason"]
            echo(
                f"{row['id']}  {row['record']['started_at']}  {row['status']:<8}  {row['size']:>14,}  "
                f"{row['kind'] or '-':<4}  {row['requested_url']}  {what}"
            )
    if not rows and not as_json:
        echo("No acquisition in this workspace yet (`facetrace acquire URL`).")


@acquire_group.command("verify")
@workspace_options
@translate_errors
def verify_command(workspace, db_url):
    """Check every record against its hash in the audit log, and every stored file against its SHA-256 (exit 1 on a difference)."""
    from scanner.acquire import verify_acquisitions
    from scanner.errors import VerificationFailed
    from scanner.pipeline import open_store

    store, _root = open_store(workspace, db_url)
    checked, problems = verify_acquisitions(store)
    if problems:
        for p in problems:
            echo(f"FAILED: {p}")
        raise VerificationFailed(f"{len(problems)} problem(s) with the acquisitions (above)")
    echo(
        f"Verified: {checked} acquisition record(s) match their audit entries, the audit chain is intact, "
        "and every stored file matches its SHA-256 and is read-only."
    )


def _check_url(url: str, usage_error) -> None:
    from scanner.acquire import is_url

    if not is_url(url):
        raise usage_error(f"not an http(s) URL: {url!r} (to scan a local file, use `facetrace scan PATH`)")


def acquire_inputs(paths, store, root, settings: dict, quiet: bool, stream) -> tuple[list[str], list]:
    """For `scan`: acquire each URL among `paths`; return (paths to scan, failed records).

    A URL becomes the file(s) it served; a page without --follow gives nothing to scan.
    Incomplete downloads (a workspace's .part files) are refused like failed acquisitions.
    """
    from scanner.acquire import acquire, incomplete_download, is_url

    options = options_from(settings)
    inputs, failed = [], []
    for path in paths:
        if not is_url(path):
            if incomplete_download(path, root):
                stream.write(
                    terminal_text(
                        f"Not scanned: {path} is an incomplete download (a .part file of the "
                        "workspace); run `facetrace acquire` on its URL again to resume it"
                    )
                    + "\n"
                )
                failed.append(path)
                continue
            inputs.append(path)
            continue
        with _download_progress(quiet) as progress:
            result = acquire(path, store, root, options, lab_networks=settings["lab_networks"], on_progress=progress)
        print_acquisition(stream, result, options)
        failed += result.failed()
        files = result.files()
        if result.record.complete and result.record.kind == "page" and not files:
            stream.write(
                terminal_text(
                    f"Nothing to scan from {path}: it is an HTML page (kept as evidence, "
                    f"{len(result.record.links)} links listed); pass --follow 1 to fetch the "
                    "files it links to"
                )
                + "\n"
            )
        inputs += [r.path for r in files]
    stream.flush()
    return inputs, failed


def print_acquisition(stream, result, options) -> None:
    """Write what an acquisition did, for people: one block per record."""
    for record in result.records:
        stream.write(terminal_lines(_describe(record)) + "\n")  # URLs and names are the server's: escaped
    stream.flush()


def _describe(r) -> list[str]:
    head = f"Acquired {r.requested_url}" if r.complete else f"FAILED {r.requested_url}: {r.reason}"
    lines = [f"{head}  (acquisition {r.id}{', via link on page ' + r.parent_id if r.parent_id else ''})"]
    for hop in r.redirects:
        lines.append(f"  redirect    {hop['status']} {hop['from']} -> {hop['to']}")
    if r.http_status is not None:
        tls = next((e.tls for e in reversed(r.exchanges) if e.tls), None)
        server = r.server or "unknown address"
        tls_text = f", {tls['version']}, certificate SHA-256 {tls['certificate_sha256']}" if tls else ""
        lines.append(f"  response    HTTP {r.http_status} from {server}{tls_text}")
    if r.final_url and r.final_url != r.requested_url:
        lines.append(f"  final URL   {r.final_url}")
    attempts = len(r.exchanges) - len(r.redirects)
    if attempts > 1:
        lines.append(f"  requests    {len(r.exchanges)} ({attempts} attempts; every one is in the record)")
    if r.complete:
        expected = f" (announced {r.expected_bytes:,})" if r.expected_bytes is not None else " (no length announced)"
        lines += [
            f"  bytes       {r.bytes:,}{expected}",
            f"  SHA-256     {r.sha256}",
            f"  MD5         {r.md5}",
            f"  stored      {r.path}  (read-only)",
        ]
        if r.resumed_from:
            lines.append(
                f"  resumed     from byte {r.resumed_from['offset']:,}, kept by acquisition(s) "
                f"{', '.join(r.resumed_from['acquisition_ids'])}"
            )
    elif r.path:
        lines.append(
            f"  kept        {r.bytes:,} bytes in {r.path}: run the same command again to resume (never scanned)"
        )
    if r.kind == "page":
        lines.append(f"  page        an HTML page, kept as evidence; it offers {len(r.links)} link(s):")
        lines += [
            f"    {link['url']}  ({link['tag']}{': ' + link['text'] if link['text'] else ''})"
            for link in r.links[:LINKS_SHOWN]
        ]
        if len(r.links) > LINKS_SHOWN:
            lines.append(f"    ... and {len(r.links) - LINKS_SHOWN} more (`facetrace acquire list --json`)")
    for note in r.notes:
        lines.append(f"  note        {note}")
    return lines


class _download_progress:
    """A rich progress bar on stderr for one download, shown only when stderr is a terminal."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None

    def __enter__(self):
        from rich.console import Console

        console = Console(stderr=True)
        if self.quiet or not console.is_terminal:
            return None
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self.bar = Progress(
            TextColumn("downloading"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("acquire", total=None)
        return self.update

    def update(self, _url, got, total) -> None:
        self.bar.update(self.task, completed=got, total=total)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False
