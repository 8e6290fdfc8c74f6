"""Tables of the HTTP service: API keys (stored hashed) and webhook registrations."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from indexes.store.db import Base, read_only

ROLES = ("admin", "investigator", "platform", "intake")
KEY_PREFIX = "ftk"


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)  # public part, shown in logs
    secret_sha256: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookRow(Base):
    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_kind: Mapped[str] = mapped_column(String(16))  # subject or key
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(64))  # the HMAC key, shared with the owner
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # an unverified subject's hook gets digests, not real-time events: the SHA-256 of the last
    # digest's content, so an unchanged one is not sent again (scanner.disclosure)
    digest_sha256: Mapped[str | None] = mapped_column(String(64))


class ServiceStore:
    def __init__(self, engine):
        self.engine = engine
        self.reader = read_only(engine)  # reads never take the write lock

    def create_key(self, role: str, label: str | None = None) -> tuple[str, str]:
        """Create an API key; return (key id, the full key). The key is shown once; only its hash is kept."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        with Session(self.engine) as s, s.begin():
            s.add(
                ApiKeyRow(
                    key_id=key_id,
                    secret_sha256=hashlib.sha256(secret.encode()).hexdigest(),
                    role=role,
                    label=label,
                    created_at=datetime.now(UTC),
                )
            )
        return key_id, f"{KEY_PREFIX}_{key_id}_{secret}"

    def check_key(self, key: str) -> dict | None:
        """Return {key_id, role} for a valid, unrevoked key, else None (constant-time comparison)."""
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            return None
        with Session(self.reader) as s:
            row = s.scalars(select(ApiKeyRow).where(ApiKeyRow.key_id == parts[1])).first()
            if row is None or row.revoked_at is not None:
                return None
            if not hmac.compare_digest(row.secret_sha256, hashlib.sha256(parts[2].encode()).hexdigest()):
                return None
            return {"key_id": row.key_id, "role": row.role}

    def list_keys(self) -> list[dict]:
        with Session(self.reader) as s:
            return [
                {
                    "key_id": r.key_id,
                    "role": r.role,
                    "label": r.label,
                    "created_at": r.created_at.isoformat(),
                    "revoked": r.revoked_at is not None,
                }
                for r in s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))
            ]

    def revoke_key(self, key_id: str) -> bool:
        with Session(self.engine) as s, s.begin():
            row = s.scalars(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id)).first()
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = datetime.now(UTC)
            return True

    def add_webhook(self, owner_kind: str, owner_id: str, url: str) -> str:
        """Register (or replace) the owner's webhook URL; return the HMAC secret for checking deliveries."""
        secret = secrets.token_hex(32)
        with Session(self.engine) as s, s.begin():
            for old in s.scalars(
                select(WebhookRow).where(WebhookRow.owner_kind == owner_kind, WebhookRow.owner_id == owner_id)
            ):
                s.delete(old)
            s.add(
                WebhookRow(
                    owner_kind=owner_kind,
                    owner_id=owner_id,
                    url=url,
                    secret=secret,
                    created_at=datetime.now(UTC),
                )
            )
        return secret

    def webhook(self, owner_kind: str, owner_id: str) -> dict | None:
        with Session(self.reader) as s:
            row = s.scalars(
                select(WebhookRow).where(WebhookRow.owner_kind == owner_kind, WebhookRow.owner_id == owner_id)
            ).first()
            return None if row is None else {"url": row.url, "secret": row.secret}

    def subject_webhooks(self) -> list[dict]:
        """Every subject's webhook: {subject_id, url, secret, digest_sha256}."""
        with Session(self.reader) as s:
            return [
                {"subject_id": r.owner_id, "url": r.url, "secret": r.secret, "digest_sha256": r.digest_sha256}
                for r in s.scalars(select(WebhookRow).where(WebhookRow.owner_kind == "subject").order_by(WebhookRow.id))
            ]

    def digest_sent(self, subject_id: str, digest_sha256: str) -> None:
        with Session(self.engine) as s, s.begin():
            for row in s.scalars(
                select(WebhookRow).where(WebhookRow.owner_kind == "subject", WebhookRow.owner_id == subject_id)
            ):
                row.digest_sha256 = digest_sha256

    def delete_webhooks(self, owner_kind: str, owner_id: str) -> int:
        with Session(self.engine) as s, s.begin():
            rows = list(
                s.scalars(
                    select(WebhookRow).where(WebhookRow.owner_kind == owner_kind, WebhookRow.owner_id == owner_id)
                )
            )
            for r in rows:
                s.delete(r)
            return len(rows)
