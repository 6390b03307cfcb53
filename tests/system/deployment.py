"""
A real Airflow on this machine: metadata DB, API server, scheduler (LocalExecutor), DAG processor, triggerer.

:mod:`tests.system.production` runs the same with PostgreSQL, Celery workers and two triggerers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cryptography.fernet import Fernet

from tests.helpers import REPO

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
T = TypeVar("T")


def descendants(pids: Iterable[int]) -> set[int]:
    """Every live process below ``pids``, whatever its process group (a task runs in a group of its own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its closing parenthesis.
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = list(pids)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def parent_of(pid: int) -> int | None:
    try:
        return int((Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def stop_processes(procs: Iterable[subprocess.Popen[bytes]], sig: signal.Signals = signal.SIGTERM) -> None:
    """
    Send ``sig`` to each process group, wait up to 30 s in all, then SIGKILL what is left, the
    processes that moved to groups of their own included.
    """
    procs = [proc for proc in procs if proc.poll() is None]
    below = descendants(proc.pid for proc in procs)
    for proc in procs:
        os.killpg(proc.pid, sig)
    deadline = time.monotonic() + 30
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    signal_each(below, signal.SIGKILL)


def signal_each(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Deployment:
    """
    Start every component as its own process group, with its output in ``home/proc``; stop them all on exit.

    :param home: the AIRFLOW_HOME to create.
    :param env: extra environment for every component (connections, DAG settings).
    :param components: name -> ``airflow`` arguments, started in this order; default one of each of
        :data:`COMPONENTS`.
    :param component_env: name -> environment for that component alone (e.g. its log server's port).
    """

    def __init__(
        self,
        home: Path,
        env: dict[str, str],
        components: Mapping[str, Sequence[str]] | None = None,
        component_env: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.home = home
        self.fernet_key = Fernet.generate_key().decode()
        api_port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))},
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API_AUTH__JWT_SECRET": Fernet.generate_key().decode(),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            **env,
        }
        self.components = dict(components or {name: [name] for name in COMPONENTS})
        self.component_env = dict(component_env or {})
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> Deployment:
        (self.home / "proc").mkdir(parents=True, exist_ok=True)
        try:
            self.cli("db", "migrate")
            for name in self.components:
                self.start(name)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def airflow(self) -> str:
        return str(Path(sys.executable).parent / "airflow")

    def start(self, name: str) -> subprocess.Popen[bytes]:
        """
        Start component ``name`` (e.g. ``triggerer``) as its own process group, its output appended to
        ``home/proc/<name>.log``; a component that was killed is started again.
        """
        running = self.procs.get(name)
        if running is not None and running.poll() is None:
            raise RuntimeError(f"{name} is already running (pid {running.pid})")
        with (self.home / "proc" / f"{name}.log").open("ab") as out:
            self.procs[name] = subprocess.Popen(
                [self.airflow, *self.components[name]],
                env={**self.env, **self.component_env.get(name, {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.procs[name]

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int:
        """
        Send ``sig`` (default SIGKILL: a crash, no clean-up) to component ``name``'s whole process group,
        its forked children included, and wait for the component to exit; returns its exit status. With
        SIGKILL, processes below it in groups of their own (a task's) die too, as in a lost machine. A
        killed component is no longer expected to run, until :meth:`start` starts it again.
        """
        proc = self.procs[name]
        below = descendants([proc.pid]) if sig == signal.SIGKILL else set()
        os.killpg(proc.pid, sig)
        signal_each(below, sig)
        status = proc.wait(timeout=30)
        del self.procs[name]
        return status

    def component_of(self, pid: int) -> str | None:
        """The running component that ``pid`` is, or runs under (e.g. the worker that runs a task)."""
        roots = {proc.pid: name for name, proc in self.procs.items() if proc.poll() is None}
        seen = 0
        current: int | None = pid
        while current is not None and current > 1 and seen < 64:
            if current in roots:
                return roots[current]
            current = parent_of(current)
            seen += 1
        return None

    def stop(self) -> None:
        stop_processes(self.procs.values())

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [self.airflow, *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )
        with (self.home / "proc" / "cli.log").open("a") as log:
            log.write(f"$ airflow {' '.join(args)}\n{done.stdout}{done.stderr}\n")
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done.stdout

    def assert_running(self) -> None:
        dead = {name: proc.returncode for name, proc in self.procs.items() if proc.poll() is not None}
        assert not dead, f"components exited: {dead}; see {self.home / 'proc'}"

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True, timeout=30) as db:
            return db.execute(sql, params).fetchall()

    def published_token(self) -> str | None:
        """The token in the Variable sfi_ws_token now, as a consumer outside Airflow would read it."""
        try:
            rows = self.query("SELECT val, is_encrypted FROM variable WHERE key = 'sfi_ws_token'")
            if not rows:
                return None
            value, encrypted = rows[0]
            text = Fernet(self.fernet_key.encode()).decrypt(value.encode()).decode() if encrypted else value
            return str(json.loads(text)["token"])
        except Exception:  # a locked database: count it as a poll that saw nothing
            return None

    def trigger_kwargs(self, value: str) -> Any:
        """
        A trigger's kwargs as stored: plain JSON for a deferral from a worker, Fernet-encrypted and
        wrapped as ``{"__type": "dict", "__var": ...}`` for a task started in the triggerer (Airflow 3.3).
        """
        if value.startswith("{"):
            return json.loads(value)
        kwargs = json.loads(Fernet(self.fernet_key.encode()).decrypt(value.encode()))
        return kwargs["__var"] if kwargs.get("__type") == "dict" else kwargs

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float, every: float = 1.0) -> T:
        """Call ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_running()
            result = probe()
            if result:
                return result
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; see {self.home / 'proc'}")

    def log_files(self) -> Iterator[Path]:
        for folder in (self.home / "logs", self.home / "proc"):
            yield from (path for path in folder.rglob("*") if path.is_file())
