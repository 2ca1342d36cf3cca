"""Throwaway PostgreSQL clusters for tests.

:class:`PgServer` creates a brand-new cluster in a private temporary directory
with ``initdb``, starts it with ``pg_ctl`` and tears it down again.  The server
is tuned for speed rather than durability (``fsync``, ``synchronous_commit``
and ``full_page_writes`` are off; ``max_connections`` is 200; the server
time zone is UTC) and accepts connections only on

* a unix socket inside the temporary directory, and
* ``127.0.0.1`` on a free TCP port chosen at start-up,

so several test processes can each run their own server side by side without
sharing a port, a socket or a data directory.  Authentication is ``trust``
and the superuser is ``postgres``.

When the tests run as root (as they do in CI), ``initdb`` and ``pg_ctl``
refuse to run directly, so they are run as the ``postgres`` system user (via
``runuser``, falling back to ``su``) and the temporary directory is handed
over to that user.

Typical use::

    from pgserver import PgServer, find_pg_bindir

    with PgServer() as pg:
        url = pg.create_database("casework_test")
        engine = sqlalchemy.create_engine(url)
        ...
        engine.dispose()
        pg.drop_database("casework_test")

Administrative commands (``CREATE``/``DROP DATABASE``) go through psycopg
directly, in autocommit mode; the URLs handed out are SQLAlchemy URLs for the
psycopg 3 driver (``postgresql+psycopg://...``).

Environment variables:

``CASEWORK_PG_BINDIR``
    Directory holding ``initdb``/``pg_ctl``; overrides auto-detection.
``CASEWORK_PG_USER``
    System user that runs the server when the tests run as root
    (default ``postgres``).
``CASEWORK_PG_TMPDIR``
    Parent directory for the temporary cluster directories (default: the
    system temporary directory).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql

__all__ = ["PgServer", "find_pg_bindir"]

_REQUIRED_TOOLS = ("initdb", "pg_ctl")

#: Database names accepted by :meth:`PgServer.create_database`.  Restricted so
#: they never need quoting in a URL and are never silently truncated by the
#: server (identifiers are limited to 63 bytes).
_DBNAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,62}$")

#: Unix socket paths are limited to ~107 bytes (sun_path); keep a margin.
_MAX_SOCKET_PATH = 100

#: Environment variables that would change what the server tools or libpq do
#: behind our back (PGDATA, PGPORT, PGHOST, PGOPTIONS, ...).
_PG_ENV_PREFIXES = ("PG",)

#: Settings appended to postgresql.conf of every cluster.
_SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    # 200 connections need a bit more than the default shared memory on some
    # systems; keep buffers modest so many clusters can run at once.
    "shared_buffers": "'32MB'",
    "max_wal_size": "'1GB'",
    "log_min_messages": "warning",
    "log_timezone": "'UTC'",
    "timezone": "'UTC'",
}


def _has_tools(directory: Path) -> bool:
    """True if *directory* contains executable ``initdb`` and ``pg_ctl``."""
    return all(os.access(directory / tool, os.X_OK) for tool in _REQUIRED_TOOLS)


def _version_key(path: Path) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin`` ("9.6" < "15")."""
    parts = re.findall(r"\d+", path.parent.name)
    return tuple(int(p) for p in parts) if parts else (-1,)


def find_pg_bindir() -> Path | None:
    """Locate the directory holding the PostgreSQL server tools.

    Checked in order:

    1. ``$CASEWORK_PG_BINDIR`` (returned as given, even if it is wrong, so that
       an explicit setting fails loudly instead of skipping tests);
    2. ``pg_config --bindir``, if that directory has ``initdb`` and ``pg_ctl``
       (with only libpq-dev installed it does not);
    3. the newest ``/usr/lib/postgresql/*/bin`` (Debian/Ubuntu layout);
    4. the directory of ``initdb`` found on ``PATH`` (symlinks resolved when
       the link's own directory lacks ``pg_ctl``).

    Returns ``None`` when no server installation is found.
    """
    override = os.environ.get("CASEWORK_PG_BINDIR", "").strip()
    if override:
        return Path(override)

    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            out = None
        if out is not None and out.returncode == 0 and out.stdout.strip():
            candidate = Path(out.stdout.strip())
            if _has_tools(candidate):
                return candidate

    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if _has_tools(p)]
    if debian:
        return max(debian, key=_version_key)

    initdb = shutil.which("initdb")
    if initdb:
        for candidate in (Path(initdb).parent, Path(initdb).resolve().parent):
            if _has_tools(candidate):
                return candidate
    return None


def _free_port() -> int:
    """Ask the kernel for a currently unused TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env() -> dict[str, str]:
    """The current environment minus libpq/server ``PG*`` variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PG_ENV_PREFIXES)}
    # Untranslated, predictable messages from initdb/pg_ctl/postgres.
    env["LC_ALL"] = "C"
    env.pop("LANGUAGE", None)
    return env


def _traversable_by(path: Path, uid: int, gid: int) -> bool:
    """Best-effort check that *uid* can reach *path* (every ancestor has x)."""
    for directory in (path, *path.parents):
        try:
            st = directory.stat()
        except OSError:
            return False
        mode = st.st_mode
        if st.st_uid == uid:
            ok = bool(mode & stat.S_IXUSR)
        elif st.st_gid == gid:
            ok = bool(mode & stat.S_IXGRP)
        else:
            ok = bool(mode & stat.S_IXOTH)
        if not ok:
            return False
    return True


class PgServer:
    """A private, disposable PostgreSQL cluster (context manager).

    ``start()`` runs ``initdb`` in a new temporary directory and starts the
    server; ``stop()`` shuts it down with ``pg_ctl stop -m immediate`` and
    removes the directory.  Both are idempotent, and a server that is still
    running when the interpreter exits is stopped by an ``atexit`` hook.

    :param bindir: directory with ``initdb``/``pg_ctl``; default
        :func:`find_pg_bindir`.
    :param run_as: system user that owns and runs the cluster when the
        current process is root; default ``$CASEWORK_PG_USER`` or
        ``postgres``.  Ignored when not running as root.
    :param start_timeout: seconds to wait for the server to accept
        connections.
    :param settings: extra ``postgresql.conf`` settings, given as raw
        configuration values (strings must carry their own quotes).
    :param tmpdir: parent directory of the cluster's temporary directory;
        default ``$CASEWORK_PG_TMPDIR`` or the system temporary directory.
    """

    #: Superuser created by initdb (``-U``) and used in every URL.
    user = "postgres"
    #: TCP listen address.
    host = "127.0.0.1"

    def __init__(
        self,
        bindir: str | os.PathLike[str] | None = None,
        *,
        run_as: str | None = None,
        start_timeout: float = 60.0,
        settings: dict[str, str] | None = None,
        tmpdir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._bindir = Path(bindir) if bindir is not None else None
        self._tmpdir = Path(tmpdir) if tmpdir is not None else None
        self._run_as = run_as or os.environ.get("CASEWORK_PG_USER") or "postgres"
        self._start_timeout = start_timeout
        self._extra_settings = dict(settings or {})
        self._base: Path | None = None
        self._port: int | None = None
        self._running = False

    # ------------------------------------------------------------------ info

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._running

    @property
    def port(self) -> int:
        """TCP port the server listens on (127.0.0.1 only)."""
        if self._port is None or not self._running:
            raise RuntimeError("PgServer is not running")
        return self._port

    @property
    def base_dir(self) -> Path:
        """The temporary directory holding data dir, socket and log."""
        if self._base is None:
            raise RuntimeError("PgServer is not started")
        return self._base

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (``PGDATA``)."""
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        """Directory containing the server's unix socket."""
        return self.base_dir

    @property
    def log_file(self) -> Path:
        """The server log written by ``pg_ctl -l``."""
        return self.base_dir / "postgres.log"

    @property
    def admin_url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` maintenance database."""
        return self.url("postgres")

    def url(self, dbname: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver, TCP) for database *dbname*."""
        _check_dbname(dbname)
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> dict[str, Any]:
        """Keyword arguments for :func:`psycopg.connect` (via the unix socket)."""
        return {
            "host": str(self.socket_dir),
            "port": self.port,
            "user": self.user,
            "dbname": dbname,
            "connect_timeout": 10,
        }

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> PgServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> PgServer:
        """Create and start the cluster; returns ``self``.

        Raises :class:`RuntimeError` (with the tool's stderr and the server
        log) if ``initdb`` or ``pg_ctl`` fails.  On any failure everything
        created so far is removed again.
        """
        if self._running:
            return self
        bindir = self._bindir or find_pg_bindir()
        if bindir is None:
            raise RuntimeError(
                "PostgreSQL server binaries not found: set CASEWORK_PG_BINDIR or install PostgreSQL (initdb and pg_ctl)"
            )
        missing = [t for t in _REQUIRED_TOOLS if not os.access(bindir / t, os.X_OK)]
        if missing:
            raise RuntimeError(f"{', '.join(missing)} not found/executable in {bindir}")
        self._bindir = bindir
        try:
            self._make_base_dir()
            self._initdb()
            self._configure()
            self._start_server()
            self._wait_ready()
        except BaseException:
            self._teardown()
            raise
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop the server immediately and delete its directory (idempotent)."""
        atexit.unregister(self.stop)
        self._teardown()

    # ----------------------------------------------------------- databases

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database *name* (optionally copied from *template*).

        Returns its SQLAlchemy URL.  A template database must have no other
        open connections (dispose engines on it first); the server itself
        waits up to 5 s for sessions that are just closing.
        """
        _check_dbname(name)
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            _check_dbname(template)
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        self._admin(query)
        return self.url(name)

    def drop_database(self, name: str, *, missing_ok: bool = True) -> None:
        """Drop database *name*, terminating any sessions still connected."""
        _check_dbname(name)
        if_exists = sql.SQL("IF EXISTS ") if missing_ok else sql.SQL("")
        with psycopg.connect(**self.conninfo(), autocommit=True) as conn:
            if conn.info.server_version >= 130000:
                conn.execute(sql.SQL("DROP DATABASE {}{} WITH (FORCE)").format(if_exists, sql.Identifier(name)))
                return
            # Pre-13 servers: block new connections, kick sessions, then drop.
            conn.execute("UPDATE pg_database SET datallowconn = false WHERE datname = %s", (name,))
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE {}{}").format(if_exists, sql.Identifier(name)))

    def list_databases(self) -> list[str]:
        """Names of all non-template databases."""
        with psycopg.connect(**self.conninfo(), autocommit=True) as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname").fetchall()
        return [r[0] for r in rows]

    def _admin(self, query: sql.Composable) -> None:
        with psycopg.connect(**self.conninfo(), autocommit=True) as conn:
            conn.execute(query)

    # ------------------------------------------------------------ internals

    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _owner(self) -> pwd.struct_passwd | None:
        """The account that runs the server, or None for the current user."""
        if not self._as_root():
            return None
        try:
            return pwd.getpwnam(self._run_as)
        except KeyError:
            raise RuntimeError(
                f"running as root but system user {self._run_as!r} does not exist; "
                "PostgreSQL refuses to run as root (create the user or set CASEWORK_PG_USER)"
            ) from None

    def _make_base_dir(self) -> None:
        owner = self._owner()
        parent = self._tmpdir or Path(os.environ.get("CASEWORK_PG_TMPDIR") or tempfile.gettempdir())
        # The socket (<dir>/.s.PGSQL.NNNNN) must fit in sun_path, and the
        # server user must be able to reach the directory.
        too_long = len(str(parent)) + len("/casework-pg-XXXXXXXX/.s.PGSQL.65535") > _MAX_SOCKET_PATH
        unreachable = owner is not None and not _traversable_by(parent, owner.pw_uid, owner.pw_gid)
        if too_long or unreachable:
            parent = Path("/tmp")
        self._base = Path(tempfile.mkdtemp(prefix="casework-pg-", dir=parent))
        if owner is not None:
            os.chown(self._base, owner.pw_uid, owner.pw_gid)

    def _command(self, tool: str, *args: str) -> list[str]:
        assert self._bindir is not None
        argv = [str(self._bindir / tool), *args]
        if not self._as_root():
            return argv
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", self._run_as, "--", *argv]
        su = shutil.which("su")
        if su:
            return [su, "-s", "/bin/sh", self._run_as, "-c", shlex.join(argv)]
        raise RuntimeError("running as root but neither runuser nor su is available")

    def _run(self, tool: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a server tool (as the server user when root); raise on failure."""
        argv = self._command(tool, *args)
        # Own process group, so a timeout kills runuser *and* the tool.  (The
        # postmaster started by pg_ctl calls setsid() and is not affected.)
        proc = subprocess.Popen(
            argv,
            cwd=self.base_dir,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise RuntimeError(self._failure(tool, argv, None, stdout, stderr)) from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        if proc.returncode != 0:
            raise RuntimeError(self._failure(tool, argv, proc.returncode, stdout, stderr))
        return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)

    def _failure(
        self,
        tool: str,
        argv: list[str],
        returncode: int | None,
        stdout: str | bytes | None,
        stderr: str | bytes | None,
    ) -> str:
        status = "timed out" if returncode is None else f"exited with status {returncode}"

        def text(value: str | bytes | None) -> str:
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            return (value or "").strip() or "(empty)"

        return (
            f"{tool} {status}\n"
            f"command: {shlex.join(argv)}\n"
            f"--- stderr ---\n{text(stderr)}\n"
            f"--- stdout ---\n{text(stdout)}\n"
            f"--- log {self.log_file} ---\n{self._read_log()}"
        )

    def _read_log(self) -> str:
        try:
            content = self.log_file.read_text(errors="replace").strip()
        except OSError:
            return "(no log file)"
        return content[-20000:] or "(empty)"

    def _initdb(self) -> None:
        common = ["-D", str(self.data_dir), "-U", self.user, "-A", "trust", "-E", "UTF8", "-N"]
        try:
            self._run("initdb", *common, "--locale=C.UTF-8", timeout=180)
        except RuntimeError as first:
            # No C.UTF-8 locale on this system: fall back to the C locale.
            shutil.rmtree(self.data_dir, ignore_errors=True)
            try:
                self._run("initdb", *common, "--no-locale", timeout=180)
            except RuntimeError as second:
                raise RuntimeError(f"{second}\n--- first attempt (--locale=C.UTF-8) ---\n{first}") from None

    def _configure(self) -> None:
        settings = {
            **_SERVER_SETTINGS,
            "unix_socket_directories": _conf_quote(str(self.socket_dir)),
            **self._extra_settings,
        }
        lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# --- casework tests/pgserver.py ---\n" + lines)

    def _start_server(self) -> None:
        """``pg_ctl start -w`` on a free port, retrying if the port got taken."""
        attempts = 5
        for attempt in range(1, attempts + 1):
            self._port = _free_port()
            try:
                self._run(
                    "pg_ctl",
                    "start",
                    "-D", str(self.data_dir),
                    "-l", str(self.log_file),
                    "-w",
                    "-t", str(int(self._start_timeout)),
                    "-o", f"-p {self._port}",
                    timeout=self._start_timeout + 30,
                )  # fmt: skip
            except RuntimeError:
                # Another process may have grabbed the port between our probe
                # and the server's bind(); try a different one.
                if attempt < attempts and "already in use" in self._read_log():
                    self._kill_postmaster()
                    with contextlib.suppress(OSError):
                        self.log_file.unlink()
                    continue
                raise
            self._running = True
            return

    def _wait_ready(self) -> None:
        """Poll until a real connection succeeds (pg_ctl -w already waited)."""
        deadline = time.monotonic() + self._start_timeout
        while True:
            try:
                with psycopg.connect(**self.conninfo(), autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"server did not accept connections: {exc}\n--- log {self.log_file} ---\n{self._read_log()}"
                    ) from exc
                time.sleep(0.05)

    def _teardown(self) -> None:
        """Stop the server if it is up and remove the directory; never raises."""
        base = self._base
        try:
            if base is not None and (self.data_dir / "postmaster.pid").exists():
                try:
                    self._run(
                        "pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w",
                        timeout=60,
                    )  # fmt: skip
                except RuntimeError:
                    self._kill_postmaster()
        finally:
            self._running = False
            self._port = None
            self._base = None
            if base is not None:
                shutil.rmtree(base, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        """Last resort: signal the postmaster named in postmaster.pid directly.

        SIGQUIT is PostgreSQL's "immediate shutdown" (it also ends the
        backends); SIGKILL follows if the postmaster is still there.
        """
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        for sig, grace in ((signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except OSError:
                break
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.05)
            else:
                continue
            break
        with contextlib.suppress(OSError):
            pidfile.unlink()

    def __repr__(self) -> str:
        state = f"port={self._port}" if self._running else "stopped"
        return f"<PgServer {state} dir={self._base}>"


def _check_dbname(name: str) -> None:
    if not _DBNAME_RE.match(name):
        raise ValueError(
            f"invalid database name {name!r}: use letters, digits, '_' or '-' "
            "(max 63 characters, not starting with a digit or '-')"
        )


def _conf_quote(value: str) -> str:
    """Quote *value* as a postgresql.conf string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
