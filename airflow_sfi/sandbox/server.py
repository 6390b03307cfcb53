"""The sandbox API (:class:`~airflow_sfi.sandbox.api.Sandbox`) on a real HTTP socket.

Standard library only. The behaviour lives in :mod:`airflow_sfi.sandbox.api`; this module only
parses requests, writes answers (or drops the connection) and sleeps for the ``slow`` fault.
"""

from __future__ import annotations

import functools
import http.server
import json
import socket
import threading
import time
import urllib.parse
from typing import Any

from airflow_sfi.sandbox.api import RequestRecord, Sandbox, TokenRecord


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the client's
    # delayed ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:
        sandbox = self.server.sandbox
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query)
        headers = {k.lower(): v for k, v in self.headers.items()}
        fault = sandbox.next_fault()
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        # Logged (at the sandbox clock's time) before the client can read the answer.
        answer = sandbox.handle(
            self.command, parts.path, query, headers, fault=fault, client_port=self.client_address[1]
        )
        if answer is None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        if self.server.verbose:
            # The query string holds the API token: log the path alone.
            path = urllib.parse.urlsplit(self.path).path
            print(f"{self.address_string()} {self.command} {path} {args[1] if len(args) > 1 else ''}", flush=True)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox, verbose: bool) -> None:
        self.sandbox = sandbox
        self.verbose = verbose
        super().__init__(address, _Handler)


class SandboxServer:
    """
    The sandbox API on a real socket, started in a background thread.

    Use it as a context manager; ``port=0`` picks a free port. Every keyword of :class:`Sandbox`
    is accepted (``ttl``, ``keys``, ``rate_limit``, ``renew``...).

    :param host: the address to bind; loopback by default.
    :param port: the port, 0 for any free one.
    :param verbose: print one line per request (path only, never the query).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False, **options: Any) -> None:
        self.sandbox = Sandbox(**options)
        self._address = (host, port)
        self._verbose = verbose
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SandboxServer:
        if self._server is None:
            self._server = _HTTPServer(self._address, self.sandbox, self._verbose)
            # A short poll interval: stop() waits for the serving loop to notice, 0.5 s by default.
            serve = functools.partial(self._server.serve_forever, poll_interval=0.05)
            self._thread = threading.Thread(target=serve, name="sfi-sandbox", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return self._address[0]

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8080``, to put in the connection's host."""
        return f"http://{self.host}:{self.port}"

    def connection(self, key: str = "sandbox-key-pro", auth_type: str = "direct", **extra: Any) -> str:
        """An Airflow connection, as JSON for ``AIRFLOW_CONN_<ID>``, pointing at this sandbox."""
        return json.dumps(
            {"conn_type": "sfi", "host": self.url, "password": key, "extra": {"auth_type": auth_type, **extra}}
        )

    # The behaviour's controls, delegated for convenience.
    def inject(self, kind: str, count: int = 1, *, delay: float = 5.0, status: int | None = None) -> None:
        self.sandbox.inject(kind, count, delay=delay, status=status)

    def calls(self, endpoint: str | None = None, *, key: str | None = None) -> list[RequestRecord]:
        return self.sandbox.calls(endpoint, key=key)

    def expire_tokens(self) -> None:
        self.sandbox.expire_tokens()

    def tokens(self) -> list[TokenRecord]:
        """Every WebSocket token issued so far, in issue order: see :meth:`Sandbox.tokens`."""
        return self.sandbox.tokens()

    def valid_at(self, token: str, moment: float) -> bool:
        """Whether ``token`` was valid at ``moment`` (sandbox clock): see :meth:`Sandbox.valid_at`."""
        return self.sandbox.valid_at(token, moment)

    @property
    def issued_tokens(self) -> list[str]:
        """Every WebSocket token issued so far, e.g. to search logs for them."""
        return self.sandbox.issued_tokens
