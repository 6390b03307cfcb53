"""The behaviour of the documented Soccer Football Info ``ws`` endpoints, without any transport.

Standard library only, so that importing it costs nothing and it runs anywhere the provider does.
Where the vendor's documentation is silent or contradicts itself, the choice made here is noted.
:mod:`airflow_sfi.sandbox.server` puts it on a socket.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
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
FAULTS = ("5xx", "html", "malformed", "huge", "slow", "drop", "rate_limit", "throttle")
# What a flaky network and a busy API do: drawn from for ``fault_rate``.
RANDOM_FAULTS = ("5xx", "drop", "slow", "throttle")
WS_ENDPOINTS = ("ws/new", "ws/renew")
# ws/renew is documented by name only: "extend" models it as extending the active token, "absent"
# as a path the API does not have.
RENEW_MODES = ("extend", "absent")


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
    """One request the sandbox answered (or dropped), at the sandbox clock's time; the repr leaves out the key."""

    at: float
    method: str
    path: str
    auth_type: str
    endpoint: str | None
    key: str | None = dataclasses.field(repr=False)
    status: int | None
    fault: str | None = None
    client_port: int = 0


@dataclasses.dataclass(frozen=True)
class TokenRecord:
    """
    One WebSocket token the sandbox issued, and its life so far (times from the sandbox clock).

    Its repr shows neither the token nor the key.

    :param key: the API token or RapidAPI key it was issued to.
    :param token: the WebSocket token.
    :param issued_at: when ``ws/new`` issued it.
    :param expires_at: when it ends, after the latest renewal (a whole second).
    :param renewed_at: when ``ws/renew`` extended it, oldest first.
    :param revoked_at: when :meth:`Sandbox.expire_tokens` ended it early, if it did.
    """

    key: str = dataclasses.field(repr=False)
    token: str = dataclasses.field(repr=False)
    issued_at: float
    expires_at: float
    renewed_at: tuple[float, ...] = ()
    revoked_at: float | None = None

    def valid_at(self, moment: float) -> bool:
        """Whether the token was (or will be, barring renewals) valid at ``moment``."""
        revoked = self.revoked_at is not None and moment >= self.revoked_at
        return self.issued_at <= moment < self.expires_at and not revoked


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
    :param renew: ``extend``: ``ws/renew`` extends the key's active token by ``ttl`` (400 code 7
        "No active token to renew" when it has none); ``absent``: ``ws/renew`` is answered, and
        logged, as an unknown path (the vendor documents its name only).
    :param ws_url: the WebSocket server the tokens point at.
    :param max_connections: overrides the plan's ``max_connections`` for every key when set.
    :param max_subscribe: overrides the plan's ``max_subscribe_per_connection`` for every key when set.
    :param clock: seconds since the epoch; injectable for tests. Every time the sandbox keeps
        (request log, token history, rate windows) comes from it.
    :param fault_rate: the share of requests, 0 to 1, that fail in a way drawn from ``fault_kinds``
        (after any faults queued by :meth:`inject`); 0 by default.
    :param fault_seed: seeds the draws, so that a run's faults can be replayed.
    :param fault_kinds: the kinds drawn from, each equally likely; default :data:`RANDOM_FAULTS`.
    :param fault_delay: seconds a drawn ``slow`` fault stalls, and a drawn ``throttle`` asks to wait.
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
        renew: str = "extend",
        ws_url: str = "wss://ws-eu.soccerfootball.info/",
        max_connections: int | None = None,
        max_subscribe: int | None = None,
        clock: Callable[[], float] = time.time,
        fault_rate: float = 0.0,
        fault_seed: int | None = None,
        fault_kinds: Sequence[str] = RANDOM_FAULTS,
        fault_delay: float = 5.0,
    ) -> None:
        if ttl <= 0 or rate_limit < 0 or rate_window <= 0:
            raise ValueError("ttl and rate_window must be positive and rate_limit not negative")
        if reset_style not in ("seconds", "epoch"):
            raise ValueError("reset_style must be 'seconds' or 'epoch'")
        if renew not in RENEW_MODES:
            raise ValueError(f"renew must be 'extend' or 'absent', got {renew!r}")
        if (max_connections is not None and max_connections < 0) or (max_subscribe is not None and max_subscribe < 0):
            raise ValueError("max_connections and max_subscribe must not be negative")
        if not 0 <= fault_rate <= 1 or fault_delay < 0:
            raise ValueError("fault_rate must be between 0 and 1 and fault_delay not negative")
        if not fault_kinds or set(fault_kinds) - set(FAULTS):
            raise ValueError(f"fault_kinds must be some of {list(FAULTS)}, got {list(fault_kinds)}")
        self.keys = dict(DEFAULT_KEYS if keys is None else keys)
        self.ttl = ttl
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.reset_style = reset_style
        self.retry_after = retry_after
        self.renew = renew
        self.ws_url = ws_url
        self.max_connections = max_connections
        self.max_subscribe = max_subscribe
        self.clock = clock
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(fault_kinds)
        self.fault_delay = fault_delay
        # Not for secrets: a seeded, replayable choice of which requests fail.
        self._random = random.Random(fault_seed)  # noqa: S311
        self.requests: list[RequestRecord] = []
        self._tokens: list[TokenRecord] = []  # every token issued, in issue order
        self._active: dict[str, int] = {}  # key -> index in _tokens of its latest token
        self._windows: dict[str, tuple[float, int]] = {}
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    def inject(self, kind: str, count: int = 1, *, delay: float = 5.0, status: int | None = None) -> None:
        """
        Make the next ``count`` requests fail in one way.

        :param kind: ``5xx`` (an error envelope, 500 unless ``status``), ``html`` (a 502 HTML page,
            or ``status``), ``malformed`` (truncated JSON under 200), ``slow`` (answer after
            ``delay`` seconds), ``huge`` (a 2 MiB body), ``drop`` (close the connection without answering),
            ``rate_limit`` (a 429 as if the window were used up) or ``throttle`` (a short 429: ``Retry-After``
            and the reset are ``delay`` seconds; the request is not counted).
        """
        if kind not in FAULTS:
            raise ValueError(f"fault {kind!r} is not one of {list(FAULTS)}")
        with self._lock:
            self._faults.extend(_Fault(kind, delay, status) for _ in range(count))

    def expire_tokens(self) -> None:
        """End every active token now, as if they had all expired (recorded as ``revoked_at``)."""
        now = self.clock()
        with self._lock:
            for index in self._active.values():
                record = self._tokens[index]
                if record.valid_at(now):
                    self._tokens[index] = dataclasses.replace(record, revoked_at=now)
            self._active.clear()

    def calls(self, endpoint: str | None = None, *, key: str | None = None) -> list[RequestRecord]:
        """The logged requests, optionally only those to ``endpoint`` (``ws/new``) or with ``key``."""
        with self._lock:
            return [
                r
                for r in self.requests
                if (endpoint is None or r.endpoint == endpoint) and (key is None or r.key == key)
            ]

    def tokens(self) -> list[TokenRecord]:
        """Every WebSocket token issued so far, in issue order, with its renewals and revocation."""
        with self._lock:
            return list(self._tokens)

    def valid_at(self, token: str, moment: float) -> bool:
        """Whether ``token`` was valid at ``moment`` (sandbox clock); False for a token never issued."""
        with self._lock:
            return any(r.token == token and r.valid_at(moment) for r in self._tokens)

    def token_limits(self, token: str) -> tuple[tuple[str, ...], int, int] | None:
        """
        What a WebSocket token allows, whether or not it is valid now; None for a token never issued.

        :returns: (allowed channels, max connections, max subscriptions per connection), from its key's
            plan and the ``max_connections`` / ``max_subscribe`` overrides.
        """
        with self._lock:
            key = next((r.key for r in self._tokens if r.token == token), None)
        info = None if key is None else self.keys.get(key)
        return None if info is None else self._limits(info.plan)

    def _limits(self, plan: str) -> tuple[tuple[str, ...], int, int]:
        channels, max_connections, max_subscribe = PLANS[plan]
        if self.max_connections is not None:
            max_connections = self.max_connections
        if self.max_subscribe is not None:
            max_subscribe = self.max_subscribe
        return channels, max_connections, max_subscribe

    @property
    def issued_tokens(self) -> list[str]:
        """Every WebSocket token issued so far, in issue order."""
        with self._lock:
            return [r.token for r in self._tokens]

    def next_fault(self) -> _Fault | None:
        """The fault for the next request: a queued one first, else one drawn at ``fault_rate``, else None."""
        with self._lock:
            if self._faults:
                return self._faults.pop(0)
            if self.fault_rate and self._random.random() < self.fault_rate:
                return _Fault(self._random.choice(self.fault_kinds), self.fault_delay, None)
            return None

    def log(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        *,
        fault: _Fault | None = None,
        client_port: int = 0,
    ) -> _Answer | None:
        """Answer one request and log it, both at one reading of the clock; None: drop the connection."""
        now = self.clock()
        answer, auth_type, endpoint, key = self.answer(path, query, headers, fault, now=now)
        status = None if answer is None else answer.status
        kind = None if fault is None else fault.kind
        self.log(RequestRecord(now, method, path, auth_type, endpoint, key, status, kind, client_port))
        return answer

    def answer(
        self,
        path: str,
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        fault: _Fault | None = None,
        *,
        now: float | None = None,
    ) -> tuple[_Answer | None, str, str | None, str | None]:
        """Answer one request: (answer, or None to drop the connection; auth type; endpoint; key)."""
        now = self.clock() if now is None else now
        # RapidAPI requests carry its headers; its paths have no /v1 prefix, the direct API's always do.
        direct = "x-rapidapi-key" not in headers and "x-rapidapi-host" not in headers
        auth_type = "direct" if direct else "rapidapi"
        if direct:
            route = path[3:] if path.startswith("/v1/") else ""
        else:
            route = path
        endpoint = route.strip("/") if route.strip("/") in WS_ENDPOINTS and route.endswith("/") else None
        if endpoint == "ws/renew" and self.renew == "absent":
            endpoint = None
        key = (query.get("t") or [""])[0] if direct else headers.get("x-rapidapi-key")
        key = key or None
        if fault is not None and fault.kind in ("5xx", "html", "malformed", "huge", "drop"):
            # The request fails before the API sees it: no token is issued, nothing is counted.
            return _fault_answer(fault), auth_type, endpoint, key
        if direct:
            answer = self._direct(endpoint, key, fault, now)
        else:
            answer = self._rapidapi(endpoint, path, key, headers.get("x-rapidapi-host", ""), fault, now)
        return answer, auth_type, endpoint, key

    def _direct(self, endpoint: str | None, key: str | None, fault: _Fault | None, now: float) -> _Answer:
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
        limited, rate_headers = self._count(key, fault, now)
        if limited:
            answer = _envelope_error(429, 7, "Too many requests")
        elif not PLANS[info.plan][0]:
            answer = _envelope_error(401, 4, "Token does not have permission")
        else:
            answer = self._token_answer(endpoint, key, info, now)
        answer.headers.update(rate_headers)
        return answer

    def _rapidapi(
        self, endpoint: str | None, path: str, key: str | None, host: str, fault: _Fault | None, now: float
    ) -> _Answer:
        # RapidAPI's proxy answers {"message": ...} itself; the upstream API's envelope passes through.
        if key is None or key not in self.keys:
            return _message(401, "Invalid API key. Go to https://docs.rapidapi.com/docs/keys for more info.")
        if host not in RAPIDAPI_HOSTS:
            return _message(403, "You are not subscribed to this API.")
        if endpoint is None:
            return _message(404, f"Endpoint '{path[:80]}' does not exist")
        info = self.keys[key]
        limited, rate_headers = self._count(key, fault, now)
        if limited:
            answer = _message(429, "You have exceeded the rate limit per hour for your plan by the API provider")
        elif info.state == "suspended":
            answer = _envelope_error(401, 3, "Token is suspended")
        elif info.state == "wrong_ip":
            answer = _envelope_error(401, 5, "Token IP is invalid")
        elif not PLANS[info.plan][0]:
            answer = _envelope_error(401, 4, "Token does not have permission")
        else:
            answer = self._token_answer(endpoint, key, info, now)
        answer.headers.update(
            {name.replace("X-Rate-Limit", "x-ratelimit-requests").lower(): v for name, v in rate_headers.items()}
        )
        return answer

    def _count(self, key: str, fault: _Fault | None, now: float) -> tuple[bool, dict[str, str]]:
        with self._lock:
            start, used = self._windows.get(key, (now, 0))
            if now >= start + self.rate_window:
                start, used = now, 0
            throttle = fault is not None and fault.kind == "throttle"
            limited = used >= self.rate_limit or throttle or (fault is not None and fault.kind == "rate_limit")
            if not limited:
                used += 1
            self._windows[key] = (start, used)
        left = (
            math.ceil(fault.delay)
            if fault is not None and throttle
            else max(0, math.ceil(start + self.rate_window - now))
        )
        headers = {
            "X-Rate-Limit-Limit": str(self.rate_limit),
            "X-Rate-Limit-Remaining": str(0 if limited else self.rate_limit - used),
            "X-Rate-Limit-Reset": str(left if self.reset_style == "seconds" else math.ceil(now) + left),
        }
        if limited and (self.retry_after or throttle):
            headers["Retry-After"] = str(left)
        return limited, headers

    def _token_answer(self, endpoint: str, key: str, info: SandboxKey, now: float) -> _Answer:
        # Expiry sits on a whole second, so the printed expires_at is exactly when it ends.
        expires = float(math.ceil(now + self.ttl))
        with self._lock:
            index = self._active.get(key)
            if index is not None and now >= self._tokens[index].expires_at:
                del self._active[key]
                index = None
            if index is None:
                # The vendor does not say what renew does without an active token: refuse it.
                if endpoint == "ws/renew":
                    return _envelope_error(400, 7, "No active token to renew")
                record = TokenRecord(key, secrets.token_urlsafe(24), now, expires)
                self._active[key] = len(self._tokens)
                self._tokens.append(record)
                is_new = True
            else:
                record = self._tokens[index]
                if endpoint == "ws/renew":
                    record = dataclasses.replace(record, expires_at=expires, renewed_at=(*record.renewed_at, now))
                    self._tokens[index] = record
                is_new = False
        channels, max_connections, max_subscribe = self._limits(info.plan)
        item = {
            "is_new": is_new,
            "token": record.token,
            "server": f"{self.ws_url}?token={record.token}",
            "max_connections": max_connections,
            "max_subscribe_per_connection": max_subscribe,
            "allowed_channels": list(channels),
            "expires_at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.expires_at)),
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
