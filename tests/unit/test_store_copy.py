"""`nxs db copy` moves an installation between databases: every row of every table,
parents before children, into an empty target at the same schema version."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.postgres_server import PostgresServer

from nxs.admin import audit
from nxs.store import copy as db_copy
from nxs.store.database import Database, DatabaseError
from nxs.store.migrations import MIGRATIONS, migrate
from nxs.store.postgres import PostgresDatabase
from nxs.store.sqlite import SqliteDatabase


def every_table(db: Database) -> set[str]:
    rows = db.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row["name"] for row in rows}


def fresh(path: Path) -> Database:
    database = SqliteDatabase.open(path)
    migrate(database)
    return database


def test_the_copy_list_names_every_table_of_the_schema(tmp_path: Path) -> None:
    db = fresh(tmp_path / "nxs.db")
    assert {table for table, _ in db_copy.TABLES} == every_table(db) - {"schema_migrations"}


def test_every_row_arrives_in_pages_with_its_values(tmp_path: Path) -> None:
    source, target = fresh(tmp_path / "a.db"), fresh(tmp_path / "b.db")
    rows = [(f"cus_{n:05}", f"c{n}", "active", n + 0.5, n + 0.5) for n in range(2500)]
    source.execute_many("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", rows)
    source.execute("UPDATE store_version SET value = 41")
    copied = db_copy.copy_database(source, target)
    assert copied >= 2500
    found = target.fetch_all("SELECT * FROM customers ORDER BY id")
    assert [tuple(row.values()) for row in found] == rows
    assert target.fetch_one("SELECT value FROM store_version") == {"value": 41}


def test_a_target_already_in_use_is_refused_and_left_alone(tmp_path: Path) -> None:
    source, target = fresh(tmp_path / "a.db"), fresh(tmp_path / "b.db")
    target.execute("INSERT INTO customers VALUES ('cus_1', 'acme', 'active', 1, 1)")
    with pytest.raises(DatabaseError, match="already has rows in customers"):
        db_copy.copy_database(source, target)
    assert target.fetch_all("SELECT id FROM customers") == [{"id": "cus_1"}]


def test_a_source_behind_the_code_is_refused(tmp_path: Path) -> None:
    source = SqliteDatabase.open(tmp_path / "old.db")
    migrate(source, MIGRATIONS[:3])
    with pytest.raises(DatabaseError, match="run `nxs db upgrade`"):
        db_copy.copy_database(source, fresh(tmp_path / "b.db"))


def test_a_sqlite_installation_moves_to_postgresql_and_keeps_numbering_audit_entries(
    tmp_path: Path, postgres: PostgresServer, postgres_template: str
) -> None:
    source = fresh(tmp_path / "nxs.db")
    source.execute("INSERT INTO customers VALUES ('cus_1', 'acme', 'active', 1.5, 1.5)")
    for action in ("customers.create", "keys.create"):
        audit.record(source, audit.CLI, action, "acme")
    name = postgres.create_database(template=postgres_template)
    target = PostgresDatabase.open(postgres.url(name))
    try:
        db_copy.copy_database(source, target)
        audit.record(target, audit.CLI, "customers.suspend", "acme")  # numbered after the copy
        rows = target.fetch_all("SELECT id, action FROM audit_log ORDER BY id")
        customers = target.fetch_all("SELECT * FROM customers")
    finally:
        target.close()
        postgres.drop_database(name)
    assert [(row["id"], row["action"]) for row in rows] == [
        (1, "customers.create"),
        (2, "keys.create"),
        (3, "customers.suspend"),
    ]
    assert customers == [
        {"id": "cus_1", "name": "acme", "status": "active", "created_at": 1.5, "updated_at": 1.5}
    ]
