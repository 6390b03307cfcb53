"""A local HTTP server that behaves like the documented Soccer Football Info ``ws`` endpoints.

Standard library only, so that importing it costs nothing and it runs anywhere the provider does.
Where the vendor's documentation is silent or contradicts itself, the choice made here is noted.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import math
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

# Per plan: the channels ws/new grants and the connection limits. BASIC lacks the endpoint.
# The vendor gives the channel table; the connection limits per plan are the sandbox's choice.
PLANS: Mapping[str, tuple[tuple[str, ...], int, int]] = {
    "BASIC": ((), 1, 1),
    "PRO": (("MAIN",), 2, 2),
    "ULTRA": (("MAIN", "STATS", "ODDS"), 5, 5),
    "MEGA": (("MAIN", "MAIN_REALTIME", "STATS", "ODDS", "STATS_REALTIME", "ODDS_REALTIME"), 10, 10),
}
KEY_STATES = ("valid", "suspended", "wrong_ip")
RAPIDAPI_HOSTS = ("soccer-football-info.p.rapidapi.com", "soccerfootballinfo.rapidapi.com")
FAULTS = ("5xx", "html", "malformed", "huge", "slow", "drop", "rate_limit")
WS_ENDPOINTS = ("ws/new", "ws/renew")


@dataclasses.dataclass(frozen=True)
class SandboxKey:
    """
    One API token (direct) or RapidAPI key known to the sandbox.

    :param plan: BASIC, PRO, ULTRA or MEGA.
    :param state: ``valid``, ``suspended`` or ``wrong_ip``.
    """

    plan: str = "PRO"
    state: str = "valid"

    def __post_init__(self) -> None:
        if self.plan not in PLANS:
            raise ValueError(f"plan {self.plan!r} is not one of {sorted(PLANS)}")
        if self.state not in KEY_STATES:
            raise ValueError(f"state {self.state!r} is not one of {list(KEY_STATES)}")


DEFAULT_KEYS: Mapping[str, SandboxKey] = {
    "sandbox-key-pro": SandboxKey("PRO"),
    "sandbox-key-ultra": SandboxKey("ULTRA"),
    "sandbox-key-mega": SandboxKey("MEGA"),
    "sandbox-key-basic": SandboxKey("BASIC"),
    "sandbox-key-suspended": SandboxKey("PRO", "suspended"),
    "sandbox-key-wrong-ip": SandboxKey("PRO", "wrong_ip"),
}


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One request the sandbox answered (or dropped)."""

    at: float
    method: str
    path: str
    auth_type: str
    endpoint: str | None
    key: str | None
    status: int | None
    fault: str | None = None
    client_port: int = 0


@dataclasses.dataclass
class _Fault:
    kind: str
    delay: float
    status: int | None


@dataclasses.dataclass
class _Answer:
    status: int
    body: bytes
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    content_type: str = "application/json"


class Sandbox:
    """
    The API's behaviour, independent of the HTTP transport (so it can be unit-tested with a fake clock).

    :param keys: known keys; defaults to :data:`DEFAULT_KEYS`.
    :param ttl: seconds a WebSocket token lives (the vendor says about 25 minutes).
    :param rate_limit: requests per key per window; the 429 after it says "wait for the next window".
    :param rate_window: the rate-limit window in seconds (the vendor's is an hour).
    :param reset_style: ``seconds`` (left in the window) or ``epoch`` for ``X-Rate-Limit-Reset``;
        the vendor documents both.
    :param retry_after: also send ``Retry-After`` with a 429 (the vendor does not document it).
    :param ws_url: the WebSocket server the tokens point at.
    :param clock: seconds since the epoch; injectable for tests.
    """

    def __init__(
        self,
        keys: Mapping[str, SandboxKey] | None = None,
        *,
        ttl: float = 25 * 60,
        rate_limit: int = 1000,
        rate_window: float = 3600,
        reset_style: str = "seconds",
        retry_after: bool = False,
        ws_url: str = "wss://ws-eu.soccerfootball.info/",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl <= 0 or rate_limit < 0 or rate_window <= 0:
            raise ValueError("ttl and rate_window must be positive and rate_limit not negative")
        if reset_style not in ("seconds", "epoch"):
            raise ValueError("reset_style must be 'seconds' or 'epoch'")
        self.keys = dict(DEFAULT_KEYS if keys is None else keys)
        self.ttl = ttl
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.reset_style = reset_style
        self.retry_after = retry_after
        self.ws_url = ws_url
        self.clock = clock
        self.requests: list[RequestRecord] = []
        self.issued_tokens: list[str] = []
        self._tokens: dict[str, tuple[str, int]] = {}
        self._windows: dict[str, tuple[float, int]] = {}
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    def inject(self, kind: str, count: int = 1, *, delay: float = 5.0, status: int | None = None) -> None:
        """
        Make the next ``count`` requests fail in one way.

        :param kind: ``5xx`` (an error envelope, 500 unless ``status``), ``html`` (a 502 HTML page,
            or ``status``), ``malformed`` (truncated JSON under 200), ``slow`` (answer after
            ``delay`` seconds), ``huge`` (a 2 MiB body), ``drop`` (close the connection without answering) or
            ``rate_limit`` (a 429 as if the window were used up).
        """
        if kind not in FAULTS:
            raise ValueError(f"fault {kind!r} is not one of {list(FAULTS)}")
        with self._lock:
            self._faults.extend(_Fault(kind, delay, status) for _ in range(count))

    def expire_tokens(self) -> None:
        """Forget every active token, as if they had all expired."""
        with self._lock:
            self._tokens.clear()

    def calls(self, endpoint: str | None = None, *, key: str | None = None) -> list[RequestRecord]:
        """The logged requests, optionally only those to ``endpoint`` (``ws/new``) or with ``key``."""
        with self._lock:
            return [
                r
                for r in self.requests
                if (endpoint is None or r.endpoint == endpoint) and (key is None or r.key == key)
            ]

    def next_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def log(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def answer(
        self, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str], fault: _Fault | None = None
    ) -> tuple[_Answer | None, str, str | None, str | None]:
        """Answer one request: (answer, or None to drop the connection; auth type; endpoint; key)."""
        # RapidAPI requests carry its headers; its paths have no /v1 prefix, the direct API's always do.
        direct = "x-rapidapi-key" not in headers and "x-rapidapi-host" not in headers
        auth_type = "direct" if direct else "rapidapi"
        if direct:
            route = path[3:] if path.startswith("/v1/") else ""
        else:
            route = path
        endpoint = route.strip("/") if route.strip("/") in WS_ENDPOINTS and route.endswith("/") else None
        key = (query.get("t") or [""])[0] if direct else headers.get("x-rapidapi-key")
        key = key or None
        if fault is not None and fault.kind in ("5xx", "html", "malformed", "huge", "drop"):
            # The request fails before the API sees it: no token is issued, nothing is counted.
            return _fault_answer(fault), auth_type, endpoint, key
        if direct:
            answer = self._direct(endpoint, key, fault)
        else:
            answer = self._rapidapi(endpoint, path, key, headers.get("x-rapidapi-host", ""), fault)
        return answer, auth_type, endpoint, key

    def _direct(self, endpoint: str | None, key: str | None, fault: _Fault | None) -> _Answer:
        if endpoint is None:
            return _envelope_error(404, 6, "Not Found")
        if key is None:
            return _envelope_error(400, 1, "Missing t param")
        info = self.keys.get(key)
        if info is None:
            return _envelope_error(401, 2, "Token is invalid")
        if info.state == "suspended":
            return _envelope_error(401, 3, "Token is suspended")
        if info.state == "wrong_ip":
            return _envelope_error(401, 5, "Token IP is invalid")
        limited, rate_headers = self._count(key, fault)
        if limited:
            answer = _envelope_error(429, 7, "Too many requests")
        elif not PLANS[info.plan][0]:
            answer = _envelope_error(401, 4, "Token does not have permission")
        else:
            answer = self._token_answer(endpoint, key, info)
        answer.headers.update(rate_headers)
        return answer

    def _rapidapi(self, endpoint: str | None, path: str, key: str | None, host: str, fault: _Fault | None) -> _Answer:
        # RapidAPI's proxy answers {"message": ...} itself; the upstream API's envelope passes through.
        if key is None or key not in self.keys:
            return _message(401, "Invalid API key. Go to https://docs.rapidapi.com/docs/keys for more info.")
        if host not in RAPIDAPI_HOSTS:
            return _message(403, "You are not subscribed to this API.")
        if endpoint is None:
            return _message(404, f"Endpoint '{path[:80]}' does not exist")
        info = self.keys[key]
        limited, rate_headers = self._count(key, fault)
        if limited:
            answer = _message(429, "You have exceeded the rate limit per hour for your plan by the API provider")
        elif info.state == "suspended":
            answer = _envelope_error(401, 3, "Token is suspended")
        elif info.state == "wrong_ip":
            answer = _envelope_error(401, 5, "Token IP is invalid")
        elif not PLANS[info.plan][0]:
            answer = _envelope_error(401, 4, "Token does not have permission")
        else:
            answer = self._token_answer(endpoint, key, info)
        answer.headers.update(
            {name.replace("X-Rate-Limit", "x-ratelimit-requests").lower(): v for name, v in rate_headers.items()}
        )
        return answer

    def _count(self, key: str, fault: _Fault | None) -> tuple[bool, dict[str, str]]:
        now = self.clock()
        with self._lock:
            start, used = self._windows.get(key, (now, 0))
            if now >= start + self.rate_window:
                start, used = now, 0
            limited = used >= self.rate_limit or (fault is not None and fault.kind == "rate_limit")
            if not limited:
                used += 1
            self._windows[key] = (start, used)
        left = max(0, math.ceil(start + self.rate_window - now))
        headers = {
            "X-Rate-Limit-Limit": str(self.rate_limit),
            "X-Rate-Limit-Remaining": str(0 if limited else self.rate_limit - used),
            "X-Rate-Limit-Reset": str(left if self.reset_style == "seconds" else math.ceil(now) + left),
        }
        if limited and self.retry_after:
            headers["Retry-After"] = str(left)
        return limited, headers

    def _token_answer(self, endpoint: str, key: str, info: SandboxKey) -> _Answer:
        now = self.clock()
        with self._lock:
            active = self._tokens.get(key)
            if active is not None and now >= active[1]:
                active = None
            if active is None:
                token, is_new = secrets.token_urlsafe(24), True
                self.issued_tokens.append(token)
            else:
                token, is_new = active[0], False
            # Expiry sits on a whole second, so the printed expires_at is exactly when it ends.
            expires = math.ceil(now + self.ttl) if active is None or endpoint == "ws/renew" else active[1]
            self._tokens[key] = (token, expires)
        channels, max_connections, max_subscribe = PLANS[info.plan]
        item = {
            "is_new": is_new,
            "token": token,
            "server": f"{self.ws_url}?token={token}",
            "max_connections": max_connections,
            "max_subscribe_per_connection": max_subscribe,
            "allowed_channels": list(channels),
            "expires_at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(expires)),
        }
        return _Answer(200, _json({"status": 200, "errors": [], "pagination": [], "result": [item]}))


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _envelope_error(status: int, code: int, message: str) -> _Answer:
    body = {"status": status, "errors": [{"code": code, "message": message}], "pagination": [], "result": []}
    return _Answer(status, _json(body))


def _message(status: int, message: str) -> _Answer:
    return _Answer(status, _json({"message": message}))


def _fault_answer(fault: _Fault) -> _Answer | None:
    if fault.kind == "5xx":
        status = fault.status or 500
        return _Answer(
            status,
            _json(
                {
                    "status": status,
                    "errors": [{"code": 0, "message": "Internal Server Error"}],
                    "pagination": [],
                    "result": [],
                }
            ),
        )
    if fault.kind == "html":
        status = fault.status or 502
        page = f"<!DOCTYPE html><html><head><title>{status}</title></head><body><h1>Bad Gateway</h1></body></html>"
        return _Answer(status, page.encode(), content_type="text/html; charset=utf-8")
    if fault.kind == "malformed":
        return _Answer(200, b'{"status":200,"errors":[],"pagination":[],"result":[{"is_new":tr')
    if fault.kind == "huge":
        return _Answer(200, b'{"status":200,"errors":[],"pagination":[' + b" " * (2 << 20) + b'],"result":[]}')
    return None  # drop


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
        answer, auth_type, endpoint, key = sandbox.answer(parts.path, query, headers, fault)

        def record(status: int | None) -> None:
            kind = fault.kind if fault else None
            sandbox.log(
                RequestRecord(
                    time.time(),
                    self.command,
                    parts.path,
                    auth_type,
                    endpoint,
                    key,
                    status,
                    kind,
                    self.client_address[1],
                )
            )

        if answer is None:
            record(None)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        record(answer.status)
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
    is accepted (``ttl``, ``keys``, ``rate_limit``...).

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
            self._thread = threading.Thread(target=self._server.serve_forever, name="sfi-sandbox", daemon=True)
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

    @property
    def issued_tokens(self) -> list[str]:
        """Every WebSocket token issued so far, e.g. to search logs for them."""
        return list(self.sandbox.issued_tokens)
