"""Schema migrations (Alembic, indexes/store/migrations): the newest revision is the models' schema, on
both backends, and a workspace made before migrations existed is brought to it with its data."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from indexes.store.cases import CaseStore
from indexes.store.db import Base
from indexes.store.migrations import HEAD


def _url(tmp_path, db_url):
    return db_url or f"sqlite:///{tmp_path / 'db.sqlite'}"


def test_head_is_the_newest_revision_of_the_chain():
    # a database at HEAD is opened without Alembic, so HEAD must be the chain's real head
    from pathlib import Path

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import indexes.store.migrations as migrations

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    assert ScriptDirectory.from_config(config).get_heads() == [migrations.HEAD]


def test_a_new_database_gets_exactly_the_models_schema(tmp_path, db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = CaseStore(_url(tmp_path, db_url))
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    store.close()
    assert diff == [] and version == HEAD


def test_a_workspace_from_before_migrations_is_completed_and_keeps_its_data(tmp_path, db_url):
    url = _url(tmp_path, db_url)
    # what facetrace 0.1 before migrations made: the tables by create_all, no alembic_version,
    # and (as in an older workspace) without columns added since
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE members DROP COLUMN hint"))
        conn.execute(text("ALTER TABLE faces DROP COLUMN person"))
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('schema_version', '1')"))
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('kept', 'yes')"))
    engine.dispose()

    store = CaseStore(url)
    columns = {t: {c["name"] for c in inspect(store.engine).get_columns(t)} for t in ("members", "faces")}
    with store.engine.connect() as conn:
        kept = conn.execute(text("SELECT value FROM meta WHERE key = 'kept'")).scalar()
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    store.close()
    assert "hint" in columns["members"] and "person" in columns["faces"]
    assert kept == "yes" and version == HEAD
    CaseStore(url).close()  # and opening it again changes nothing


def test_a_database_at_0002_gains_verification_and_its_subjects_stay_unverified(tmp_path):
    """0003 adds who verified a subject and the last digest a webhook got (issue 19 item 7)."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    import indexes.store.migrations as migrations

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(Path(migrations.__file__).parent))
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
        conn.execute(text("INSERT INTO subjects (id, status, created_at) VALUES ('a1', 'active', '2026-01-01')"))
    assert "verified_at" not in {c["name"] for c in inspect(engine).get_columns("subjects")}
    engine.dispose()

    store = CaseStore(url)
    from indexes.store.subjects import RegistryStore

    registry = RegistryStore(store.engine)
    assert registry.get_subject("a1")["verified"] is None and registry.verified_subjects({"a1"}) == set()
    assert "digest_sha256" in {c["name"] for c in inspect(store.engine).get_columns("webhooks")}
    assert registry.set_verified("a1", by="key:k", method="in_person", actor="test")
    assert registry.verified_subjects({"a1", "b2"}) == {"a1"}
    store.close()
