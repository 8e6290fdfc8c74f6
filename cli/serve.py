"""`facetrace serve` and `facetrace keys`: the HTTP service over a workspace, and its API keys."""

from __future__ import annotations

import click

from cli.acquire import lab_network_option
from cli.common import EXIT_CODES, echo, translate_errors, workspace_options


def _networks(_ctx, param, values):
    import ipaddress

    for v in values:
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            raise click.BadParameter(f"{v!r} is not an address or a network (CIDR)", param=param) from None
    return tuple(values)


@click.command("serve", epilog=EXIT_CODES)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--max-upload-mb",
    default=2048,
    show_default=True,
    type=click.IntRange(1),
    help="Refuse screened uploads larger than this (413).",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    metavar="CIDR",
    callback=_networks,
    help="A reverse proxy in front of the service (repeatable; an address or a network): its "
    "X-Forwarded-For is believed for rate limits. Default: none, the socket's peer counts.",
)
@lab_network_option("webhooks")
@click.option(
    "--docs",
    "interactive_docs",
    is_flag=True,
    help="Serve the interactive API docs at /docs and /redoc. Their pages load scripts from a CDN "
    "(jsdelivr): off by default. /openapi.json is always served.",
)
@workspace_options
@translate_errors
def serve_command(host, port, max_upload_mb, trusted_proxies, lab_networks, interactive_docs, workspace, db_url):
    """Serve the HTTP API and the enrollment pages over the workspace (OpenAPI at /openapi.json).

    Platforms screen uploads with an API key (`facetrace keys create --role platform`);
    individuals enroll, check what was found and erase themselves at / (docs/api.md).

    \b
    Examples:
      facetrace serve --port 8000
      facetrace serve --host 0.0.0.0 --trusted-proxy 10.0.0.5
    """
    import uvicorn

    from api.app import Settings, create_app, server_config

    app = create_app(
        workspace,
        db_url,
        Settings(
            max_upload_bytes=max_upload_mb << 20,
            trusted_proxies=trusted_proxies,
            lab_networks=lab_networks,
            interactive_docs=interactive_docs,
        ),
    )

    echo(f"facetrace serving {app.state.service.root} on http://{host}:{port}/ (Ctrl-C stops)", err=True)
    uvicorn.Server(server_config(app, host, port)).run()


@click.group("keys", epilog=EXIT_CODES)
def keys_group():
    """API keys of the HTTP service: roles admin, investigator, platform, intake (stored hashed)."""


@keys_group.command("create")
@click.option(
    "--role",
    type=click.Choice(["admin", "investigator", "platform", "intake"]),
    required=True,
    help="intake: a hotline, NGO or police officer who verifies subjects (docs/security.md).",
)
@click.option("--label", help="Who the key is for.")
@workspace_options
@translate_errors
def keys_create(role, label, workspace, db_url):
    """Create a key; it is printed once and only its hash is kept."""
    from scanner.service import create_key

    key_id, key = create_key(workspace, db_url, role, label)
    echo(f"Key {key_id} ({role}) created. It is shown only now:")
    echo(key)


@keys_group.command("list")
@workspace_options
@translate_errors
def keys_list(workspace, db_url):
    """List keys (ids, roles, labels; never the keys)."""
    from scanner.service import list_keys

    for k in list_keys(workspace, db_url):
        echo(
            f"{k['key_id']}  {k['role']:<12} {'revoked' if k['revoked'] else 'active':<8} "
            f"{k['created_at']}  {k['label'] or ''}"
        )


@keys_group.command("revoke")
@click.argument("key_id")
@workspace_options
@translate_errors
def keys_revoke(key_id, workspace, db_url):
    """Revoke a key at once."""
    from scanner.service import revoke_key

    echo(f"Key {key_id} revoked." if revoke_key(workspace, db_url, key_id) else f"No active key {key_id}.")
