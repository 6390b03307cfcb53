"""The sandbox API (:class:`~airflow_sfi.sandbox.rest.Sandbox`) on a real HTTP socket.

The behaviour lives in :mod:`airflow_sfi.sandbox.rest`; this module only
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
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_sfi.sandbox.live import EmittedEvent, Feed, MatchScript, Playback, WsConnectionRecord
from airflow_sfi.sandbox.rest import RequestRecord, Sandbox, TokenRecord
from airflow_sfi.sandbox.ws import WsServer


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the client's
    # delayed ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:
        sandbox = self.server.sandbox
        parts = urllib.parse.urlsplit(self.path)
        # Blank values kept: `i=` is a wrong id (code 7), not a missing one.
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
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
    The sandbox API on a real socket, and its WebSocket server on another, in background threads.

    Use it as a context manager; ``port=0`` picks a free port (the WebSocket server always takes a
    free one). Every keyword of :class:`Sandbox` is accepted (``ttl``, ``keys``, ``rate_limit``,
    ``renew``, ``max_connections``, ``max_subscribe``...). Unless ``ws_url`` is given, the tokens'
    ``server`` points at this WebSocket server.

    :param host: the address to bind; loopback by default.
    :param port: the port, 0 for any free one.
    :param verbose: print one line per request (path only, never the query) and per WebSocket
        handshake and close.
    :param replay: see :class:`~airflow_sfi.sandbox.live.Feed`.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False, replay: int = 0, **options: Any
    ) -> None:
        self.sandbox = Sandbox(**options)
        self.feed = Feed(self.sandbox, replay=replay)
        self._address = (host, port)
        self._verbose = verbose
        self._own_ws_url = "ws_url" not in options
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ws: WsServer | None = None

    def start(self) -> SandboxServer:
        if self._server is None:
            # The WebSocket server first: no token is issued pointing elsewhere.
            self._ws = WsServer(self.feed, self.host, 0, verbose=self._verbose).start()
            if self._own_ws_url:
                self.sandbox.ws_url = self._ws.url
            try:
                self._server = _HTTPServer(self._address, self.sandbox, self._verbose)
            except BaseException:
                self.stop()
                raise
            # A short poll interval: stop() waits for the serving loop to notice, 0.5 s by default.
            serve = functools.partial(self._server.serve_forever, poll_interval=0.05)
            self._thread = threading.Thread(target=serve, name="sfi-sandbox", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self.feed.stop_playing()
        if self._ws is not None:
            self._ws.stop()
            self._ws = None
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

    @property
    def ws_url(self) -> str:
        """The WebSocket server's URL, e.g. ``ws://127.0.0.1:8081/``; clients add ``?token=``."""
        return self._running_ws().url

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

    # The WebSocket side.
    def play(
        self, matches: Sequence[MatchScript] | None = None, *, minute_seconds: float = 1.0, loop: bool = False
    ) -> Playback:
        """Start playing match scripts (default: :func:`default_matches`) in real time: see :meth:`Feed.play`."""
        return self.feed.play(matches, minute_seconds=minute_seconds, loop=loop)

    def emit(
        self,
        channel: str,
        type: str,  # noqa: A002 - the message's field
        *,
        match_id: str,
        league_id: str,
        data: Mapping[str, Any] | None = None,
        event_type: str | None = None,
    ) -> dict[str, Any]:
        """Emit one event now; returns the message as sent. Thread-safe: see :meth:`Feed.emit`."""
        return self.feed.emit(channel, type, match_id=match_id, league_id=league_id, data=data, event_type=event_type)

    def emitted(self) -> list[EmittedEvent]:
        """Every event emitted so far, in order."""
        return self.feed.emitted()

    def inject_ws(self, kind: str, *, delay: float = 5.0, code: int = 1012) -> int:
        """A fault on every WebSocket connection open now; how many it hit. See :meth:`WsServer.inject`."""
        return self._running_ws().inject(kind, delay=delay, code=code)

    def refuse_ws(self, status: int | None) -> None:
        """Refuse every WebSocket handshake with HTTP ``status`` (e.g. 503) until called with None."""
        self.feed.refuse(status)

    def ws_connections(self) -> list[WsConnectionRecord]:
        """Every WebSocket handshake attempt, in order, with the connection's life."""
        return self.feed.connections()

    def ws_limit_refusals(self) -> int:
        """How many WebSocket connections were refused over ``max_connections``: see :meth:`Feed.limit_refusals`."""
        return self.feed.limit_refusals()

    def ws_errors_sent(self) -> dict[str, int]:
        """How many WebSocket error frames were sent, by code: see :meth:`Feed.errors_sent`."""
        return self.feed.errors_sent()

    def ws_socket_timeline(self) -> list[tuple[float, str, int]]:
        """Every change of a token's open sockets, (time, fingerprint, open after): see :meth:`Feed.socket_timeline`."""
        return self.feed.socket_timeline()

    def ws_max_sockets(self, token: str | None = None) -> int:
        """
        The most WebSocket connections open at once for one token: see :meth:`Feed.max_sockets`.

        :param token: that token; None for the most of any token.
        """
        return self.feed.max_sockets(token)

    def _running_ws(self) -> WsServer:
        if self._ws is None:
            raise RuntimeError("the sandbox is not running")
        return self._ws
