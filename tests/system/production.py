"""
A production-shaped Airflow on this machine: PostgreSQL as the metadata database, Celery on Redis with
two workers, two triggerers, and the scheduler, DAG processor and API server of :mod:`tests.system.deployment`.

PostgreSQL and Redis are Debian's (``scripts/install_services.sh`` installs them when missing); each
runs as its own server on a free loopback port, with its files in a directory of its own under /tmp,
and is stopped with everything else. PostgreSQL refuses to run as root: as root it runs as the
``postgres`` user.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.helpers import REPO
from tests.system.deployment import Deployment, free_port, stop_processes

if TYPE_CHECKING:
    import psycopg2

WORKERS = ("worker-1", "worker-2")
TRIGGERERS = ("triggerer-1", "triggerer-2")
# How fast a crash is noticed. Production settings, not test shortcuts: a triggerer's heartbeat every
# second and a peer taking its triggers 5 s after the last one keep the takeover inside a refresh margin.
TRIGGERER_HEARTBEAT_SEC = 1
TRIGGERER_HEALTH_CHECK_THRESHOLD = 5
TASK_HEARTBEAT_TIMEOUT = 10


def server_binary(name: str) -> str:
    """A PostgreSQL server program (``initdb``, ``postgres``, ``pg_dump``): Debian's newest, else the PATH's."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(re.sub(r"\D", "", p.parts[-3]) or 0)
    )
    found = str(versions[-1]) if versions else shutil.which(name)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} not found: run scripts/install_services.sh")
    return found


def wait_until(what: str, ready: Any, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start; see {log}:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)


class Postgres:
    """
    A PostgreSQL server of its own: ``initdb`` in a fresh directory, ``postgres`` on a free loopback port
    (trust authentication on loopback, its socket in that directory), one database ``airflow``.

    :param log: where the server's output goes.
    """

    def __init__(self, log: Path) -> None:
        self.log = log
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="sfi-postgres-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def as_user(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=airflow"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/airflow"

    def start(self) -> Postgres:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        data = self.root / "data"
        with self.log.open("ab") as out:
            initdb = [server_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            subprocess.run(
                [*self.as_user, *initdb, "--no-sync"],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=120,
            )
            settings = {
                "listen_addresses": "127.0.0.1",
                "unix_socket_directories": str(self.root),
                "max_connections": "200",
                # Loses the last commits if PostgreSQL itself crashes (it is never killed here), not consistency.
                "synchronous_commit": "off",
            }
            options = [f"-c{name}={value}" for name, value in settings.items()]
            self.proc = subprocess.Popen(
                [*self.as_user, server_binary("postgres"), "-D", str(data), "-p", str(self.port), *options],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until("PostgreSQL", self._accepts, self.proc, self.log)
        db = self.connect(self.dsn.replace("dbname=airflow", "dbname=postgres"))
        try:
            db.autocommit = True
            db.cursor().execute("CREATE DATABASE airflow")
        finally:
            db.close()
        return self

    @staticmethod
    def connect(dsn: str) -> psycopg2.extensions.connection:
        # Imported here: only `make test-production` installs psycopg2, and every test run collects this module.
        import psycopg2

        return psycopg2.connect(dsn, connect_timeout=10)

    def _accepts(self) -> bool:
        import psycopg2

        try:
            self.connect(self.dsn.replace("dbname=airflow", "dbname=postgres")).close()
        except psycopg2.OperationalError:
            return False
        return True

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run ``sql`` (``?`` placeholders, as :meth:`Deployment.query`) in its own connection and transaction."""
        db = self.connect(self.dsn)
        try:
            cursor = db.cursor()
            cursor.execute(sql.replace("?", "%s"), params or None)
            return cursor.fetchall() if cursor.description else []
        finally:
            db.close()

    def dump(self) -> str:
        """Every row of every table, as ``pg_dump --data-only`` writes it (plain text, COPY blocks)."""
        done = subprocess.run(
            [server_binary("pg_dump"), "--data-only", "-h", "127.0.0.1", "-p", str(self.port), "-Upostgres", "airflow"],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        return done.stdout

    def stop(self) -> None:
        if self.proc is not None:
            stop_processes([self.proc], signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown
        shutil.rmtree(self.root, ignore_errors=True)


class Redis:
    """A Redis server of its own on a free loopback port, nothing saved to disk: the Celery broker."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: run scripts/install_services.sh")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until("Redis", self._pong, self.proc, self.log)
        return self

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            stop_processes([self.proc])


class Production(Deployment):
    """
    :class:`Deployment` with CeleryExecutor: PostgreSQL and Redis first, then the API server, the
    scheduler, the DAG processor, :data:`TRIGGERERS` and :data:`WORKERS`; stopped in the reverse order.

    :param home: the AIRFLOW_HOME to create.
    :param env: extra environment for every component; it overrides the settings here (e.g. parallelism).
    :param worker_concurrency: task slots of each Celery worker (its ``--concurrency``).
    """

    def __init__(self, home: Path, env: dict[str, str], *, worker_concurrency: int = 2) -> None:
        proc = home / "proc"
        proc.mkdir(parents=True)
        self.postgres = Postgres(proc / "postgres.log")
        self.redis = Redis(proc / "redis.log")
        components: dict[str, list[str]] = {name: [name] for name in ("api-server", "scheduler", "dag-processor")}
        component_env: dict[str, dict[str, str]] = {name: {"SFI_COMPONENT_HOSTNAME": name} for name in components}
        for name in TRIGGERERS:
            components[name] = ["triggerer"]
            component_env[name] = {
                "SFI_COMPONENT_HOSTNAME": name,
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            }
        slots = str(worker_concurrency)
        for name in WORKERS:
            components[name] = ["celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", slots]
            component_env[name] = {
                "SFI_COMPONENT_HOSTNAME": name,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            }
        database = self.postgres.url
        settings = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
            "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database.replace("+psycopg2", ""),
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": str(TRIGGERER_HEARTBEAT_SEC),
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_CHECK_THRESHOLD),
            # A task whose worker died is failed (then retried) this long after its last heartbeat.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
            # A restarted scheduler adopts the tasks its killed predecessor queued.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
            "AIRFLOW__CORE__PARALLELISM": "8",
            # Each component names itself (tests/system/hostname.py): a job's or task's hostname says where it ran.
            "PYTHONPATH": str(REPO),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.system.hostname.component_hostname",
        }
        super().__init__(home, {**settings, **env}, components, component_env)

    def __enter__(self) -> Production:
        try:
            self.postgres.start()
            self.redis.start()
        except BaseException:
            self.stop()
            raise
        super().__enter__()
        return self

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self.redis.stop()
            self.postgres.stop()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.postgres.query(sql, *params)

    def job_component(self, job_id: int) -> str | None:
        """The component that runs job ``job_id`` (a triggerer's or scheduler's row in ``job``)."""
        rows = self.query("SELECT hostname FROM job WHERE id = ?", job_id)
        return str(rows[0][0]) if rows else None
