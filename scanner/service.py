"""API keys of the HTTP service, for the CLI (which reaches storage only through the scanner)."""

from __future__ import annotations


def _keys(workspace, db_url):
    from indexes.store.keys import ServiceStore
    from scanner.pipeline import open_store
    from scanner.registry import audit_log, default_actor

    store, _root = open_store(workspace, db_url)
    return ServiceStore(store.engine), audit_log(store), default_actor()


def service_store(case_store):
    """The service tables (keys, webhooks) of a workspace's database."""
    from indexes.store.keys import ServiceStore

    return ServiceStore(case_store.engine)


def create_key(workspace, db_url, role: str, label: str | None) -> tuple[str, str]:
    keys, audit, actor = _keys(workspace, db_url)
    key_id, key = keys.create_key(role, label)
    audit.audit("api_key_created", actor, None, {"key_id": key_id, "role": role})
    return key_id, key


def list_keys(workspace, db_url) -> list[dict]:
    return _keys(workspace, db_url)[0].list_keys()


def revoke_key(workspace, db_url, key_id: str) -> bool:
    keys, audit, actor = _keys(workspace, db_url)
    done = keys.revoke_key(key_id)
    if done:
        audit.audit("api_key_revoked", actor, None, {"key_id": key_id})
    return done
