"""A throw-away PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temp dir.

The server listens on a free loopback port, only for the session. PostgreSQL refuses
to run as root, and the tests run as root here and in CI: then the data directory
is handed to the unprivileged ``nobody`` user and the server binaries run as it
(nothing on the system is changed). Host connections need a password
(scram-sha-256), so a wrong password is really refused.

Use the ``postgres_server`` fixture (``from tests.postgres_server import
postgres_server_fixture`` in a test module) or :func:`start_server` in a script.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
UNPRIVILEGED_USER = "nobody"
SUPERUSER = "custseg"
PASSWORD = "s3cret-Pw_for-tests"  # the wrong-password tests look for it in every message


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    root: Path  # temp dir: data/, socket and log

    def url(self, dbname: str = "postgres", with_password: bool = False) -> str:
        auth = f"{self.user}:{self.password}" if with_password else self.user
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", autocommit: bool = False):
        """An ADBC (DB-API) connection as the superuser, with the password."""
        import adbc_driver_postgresql.dbapi as adbc

        return adbc.connect(self.url(dbname, with_password=True), autocommit=autocommit)

    def create_database(self, name: str) -> None:
        with self.connect(autocommit=True) as con, con.cursor() as cur:
            cur.execute(f"create database {_ident(name)}")

    def load_table(self, dbname: str, table: str, data: pa.Table, types: dict[str, str]) -> None:
        """Create ``table`` with the column ``types`` (PostgreSQL names) and fill it with ``data``.

        The Arrow data goes in by binary COPY into a staging table of matching types, then is
        cast server-side (e.g. double -> numeric(12,3)).
        """
        staging = "_load_" + table.replace(".", "_")
        cols = ", ".join(f"{_ident(c)} {types[c]}" for c in data.column_names)
        casts = ", ".join(f"cast({_ident(c)} as {types[c]})" for c in data.column_names)
        name = ".".join(_ident(part) for part in table.split("."))
        with self.connect(dbname) as con, con.cursor() as cur:
            cur.adbc_ingest(staging, data, mode="create", temporary=True)
            cur.execute(f"create table {name} ({cols})")
            cur.execute(f"insert into {name} select {casts} from {_ident(staging)}")
            con.commit()


class FlakyProxy:
    """A loopback port in front of ``server`` that resets the first ``failures`` connections
    (as a restarting server or a dropped network does) and forwards the later ones."""

    def __init__(self, server: PostgresServer, failures: int = 1):
        self.upstream = (server.host, server.port)
        self.failures = failures
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            self.accepted += 1
            if self.accepted <= self.failures:
                # SO_LINGER 0: close() sends a reset, not an orderly end.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            upstream = socket.create_connection(self.upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self.listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(1 << 16):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user() -> dict:
    """subprocess keyword arguments that run a command as the unprivileged user (when root)."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(UNPRIVILEGED_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _run(args: list, log: Path | None = None) -> None:
    proc = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C"},
        cwd="/",
        timeout=120,
        **_as_server_user(),
    )
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
        raise RuntimeError(
            f"{Path(args[0]).name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n{tail}"
        )


def start_server() -> PostgresServer:
    """initdb + pg_ctl start on a free loopback port; stop it with :func:`stop_server`."""
    missing = [b for b in ("initdb", "pg_ctl", "postgres") if not (PG_BIN / b).is_file()]
    if missing:
        raise RuntimeError(
            f"PostgreSQL server binaries {missing} not found in {PG_BIN}: install the Debian "
            f"package postgresql-15 (apt-get install postgresql-15)"
        )
    root = Path(tempfile.mkdtemp(prefix="custseg-pg-"))
    try:
        return _init_and_start(root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _init_and_start(root: Path) -> PostgresServer:
    data, log, pwfile = root / "data", root / "server.log", root / "pwfile"
    pwfile.write_text(PASSWORD + "\n", encoding="utf-8")
    kw = _as_server_user()
    if kw:
        os.chown(root, kw["user"], kw["group"])
        os.chown(pwfile, kw["user"], kw["group"])
    initdb = [PG_BIN / "initdb", "-D", data, "-U", SUPERUSER, f"--pwfile={pwfile}",
              "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale",
              "--no-sync"]  # fmt: skip
    _run(initdb)
    pwfile.unlink()
    for attempt in range(3):  # another process may take the free port before the server
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        try:
            _run([PG_BIN / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60",
                  "start"], log)  # fmt: skip
            return PostgresServer("127.0.0.1", port, SUPERUSER, PASSWORD, root)
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def stop_server(server: PostgresServer) -> None:
    try:
        _run([PG_BIN / "pg_ctl", "-D", server.root / "data", "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session", name="postgres_server")
def postgres_server_fixture() -> Iterator[PostgresServer]:
    """A running PostgreSQL 15 server for the test session (fails, never skips, without one)."""
    try:
        server = start_server()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        stop_server(server)
