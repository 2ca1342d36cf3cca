"""Integration tests for tests/pgserver.py (throwaway PostgreSQL clusters)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

try:
    from tests.pgserver import PgServer, find_pg_bindir
except ImportError:  # repository root not on sys.path (no conftest/PYTHONPATH)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pgserver import PgServer, find_pg_bindir  # type: ignore[no-redef]

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        find_pg_bindir() is None,
        reason="PostgreSQL server binaries (initdb/pg_ctl) not found; install PostgreSQL or set CASEWORK_PG_BINDIR",
    ),
]


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    with PgServer() as server:
        yield server


def _select_one(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT 1")).scalar_one())
    finally:
        engine.dispose()


def test_create_connect_template_drop(pg: PgServer) -> None:
    assert pg.admin_url == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/postgres"

    url = pg.create_database("pgserver_first")
    assert url == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/pgserver_first"
    assert _select_one(url) == 1

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE marker (v text)"))
            conn.execute(text("INSERT INTO marker VALUES ('from template')"))
            encoding = conn.execute(text("SHOW server_encoding")).scalar_one()
        assert encoding == "UTF8"
    finally:
        engine.dispose()

    copy_url = pg.create_database("pgserver_copy", template="pgserver_first")
    engine = create_engine(copy_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT v FROM marker")).scalar_one() == "from template"
    finally:
        engine.dispose()

    # A session left open on the database must not block dropping it.
    with psycopg.connect(**pg.conninfo("pgserver_copy")):
        pg.drop_database("pgserver_copy")

    pg.drop_database("pgserver_first")
    names = pg.list_databases()
    assert "pgserver_first" not in names
    assert "pgserver_copy" not in names
    pg.drop_database("pgserver_first")  # missing_ok by default


def test_rejects_unsafe_database_names(pg: PgServer) -> None:
    with pytest.raises(ValueError):
        pg.create_database("bad name; DROP DATABASE postgres")
    with pytest.raises(ValueError):
        pg.create_database("x" * 64)


def test_server_settings(pg: PgServer) -> None:
    with psycopg.connect(**pg.conninfo()) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                (
                    [
                        "fsync",
                        "synchronous_commit",
                        "full_page_writes",
                        "max_connections",
                        "listen_addresses",
                    ],
                ),
            ).fetchall()
        )
    assert settings == {
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "200",
        "listen_addresses": "127.0.0.1",
    }


def test_two_servers_side_by_side_and_cleanup() -> None:
    with PgServer() as one, PgServer() as two:
        assert one.port != two.port
        assert one.base_dir != two.base_dir
        for server in (one, two):
            assert _select_one(server.admin_url) == 1
        base = one.base_dir
    assert not base.exists()
    assert not one.running
    one.stop()  # idempotent


def test_failure_raises_with_diagnostics_and_cleans_up() -> None:
    server = PgServer(settings={"max_connections": "'not a number'"})
    with pytest.raises(RuntimeError, match="pg_ctl") as excinfo:
        server.start()
    message = str(excinfo.value)
    assert "--- stderr ---" in message
    assert "max_connections" in message  # the server log is included
    assert not server.running
    with pytest.raises(RuntimeError):
        _ = server.base_dir  # directory removed
