"""The behaviour of the documented Soccer Football Info REST API, without any transport.

The ``ws`` endpoints issue WebSocket tokens; the data endpoints (matches, live, odds, reference lists
and views, token status) serve generated reference data and the matches the live feed plays, with
the same ids and goals. Standard library only, so that importing it costs nothing and it runs
anywhere the provider does. Where the vendor's documentation is silent or contradicts itself, the
choice made here is noted. :mod:`airflow_sfi.sandbox.server` puts it on a socket.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime
import functools
import hashlib
import json
import math
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_sfi.sandbox.live import Feed, MatchScript

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
PLAN_RANK: Mapping[str, int] = {"BASIC": 0, "PRO": 1, "ULTRA": 2, "MEGA": 3}
# Items per page by plan, as documented once (a token/status sample also shows 50 on ULTRA).
PER_PAGE: Mapping[str, int] = {"BASIC": 25, "PRO": 25, "ULTRA": 50, "MEGA": 100}
REFERENCE_LISTS = ("countries", "languages", "stadiums", "managers", "referees", "players", "teams", "championships")
REFERENCE_VIEWS = ("stadiums", "managers", "referees", "players", "teams", "championships")
# Each data endpoint and the lowest plan that reaches it.
DATA_ENDPOINTS: Mapping[str, str] = {
    "matches/view/basic": "PRO",
    "matches/view/full": "ULTRA",
    "matches/view/progressive": "ULTRA",
    "matches/day/basic": "PRO",
    "matches/day/full": "ULTRA",
    "matches/by/basic": "PRO",
    "matches/by/full": "ULTRA",
    "live/basic": "PRO",
    "live/full": "ULTRA",
    "matches/odds": "ULTRA",
    **{f"{kind}/list": "BASIC" for kind in REFERENCE_LISTS},
    **{f"{kind}/view": "PRO" for kind in REFERENCE_VIEWS},
    "teams/history": "PRO",
    "teams/versus": "PRO",
    "token/status": "BASIC",  # direct only: RapidAPI does not offer it
}
ENDPOINTS = (*WS_ENDPOINTS, *DATA_ENDPOINTS)
MATCH_STATUSES = ("NOT STARTED", "IN PLAY", "ENDED")
# The sandbox's choice: every scripted match kicks off at this time (UTC) of the match day.
SCRIPT_KICKOFF = 19 * 3600
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
        (request log, token history, rate windows, the match day, generated matches' progress) comes from it.
    :param fault_rate: the share of requests, 0 to 1, that fail in a way drawn from ``fault_kinds``
        (after any faults queued by :meth:`inject`); 0 by default.
    :param fault_seed: seeds the draws, so that a run's faults can be replayed.
    :param fault_kinds: the kinds drawn from, each equally likely; default :data:`RANDOM_FAULTS`.
    :param fault_delay: seconds a drawn ``slow`` fault stalls, and a drawn ``throttle`` asks to wait.
    :param matches: the scripted matches the data endpoints serve (besides any a :class:`Feed` plays);
        :func:`~airflow_sfi.sandbox.live.default_matches` when None.
    :param match_day: the day (``YYYYMMDD`` or a date) the scripted and extra matches are played on;
        None: today, on ``clock``, at each request.
    :param extra_matches: how many generated matches the match day has besides the scripted ones.
    :param per_page: items per page for every key; None: by plan (:data:`PER_PAGE`).
    :param rapidapi_limit: requests per key per 60 seconds that RapidAPI's proxy lets through
        (its ``x-ratelimit-limit`` headers); beyond it, the proxy's 429.
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
        matches: Sequence[MatchScript] | None = None,
        match_day: str | datetime.date | None = None,
        extra_matches: int = 0,
        per_page: int | None = None,
        rapidapi_limit: int = 1000,
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
        if extra_matches < 0 or (per_page is not None and per_page < 1) or rapidapi_limit < 0:
            raise ValueError("extra_matches and rapidapi_limit must not be negative, per_page at least 1")
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
        self.matches = None if matches is None else tuple(matches)
        self.match_day = _day(match_day)
        self.extra_matches = extra_matches
        self.per_page = per_page
        self.rapidapi_limit = rapidapi_limit
        # Not for secrets: a seeded, replayable choice of which requests fail.
        self._random = random.Random(fault_seed)  # noqa: S311
        self.requests: list[RequestRecord] = []
        self._tokens: list[TokenRecord] = []  # every token issued, in issue order
        self._active: dict[str, int] = {}  # key -> index in _tokens of its latest token
        self._windows: dict[str, tuple[float, int]] = {}
        self._minutes: dict[str, tuple[float, int]] = {}  # RapidAPI's 60-second windows
        self._feeds: list[Feed] = []
        self._seen: dict[str, MatchScript] = {}  # scripts met in a feed's playbacks, by match id
        self._teams: dict[str, tuple[int, int]] = {}  # scripted match id -> its teams' indexes
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
        endpoint = route.strip("/") if route.strip("/") in ENDPOINTS and route.endswith("/") else None
        if (endpoint == "ws/renew" and self.renew == "absent") or (endpoint == "token/status" and not direct):
            endpoint = None
        key = (query.get("t") or [""])[0] if direct else headers.get("x-rapidapi-key")
        key = key or None
        if fault is not None and fault.kind in ("5xx", "html", "malformed", "huge", "drop"):
            # The request fails before the API sees it: no token is issued, nothing is counted.
            return _fault_answer(fault), auth_type, endpoint, key
        if direct:
            answer = self._direct(endpoint, query, key, fault, now)
        else:
            answer = self._rapidapi(endpoint, path, query, key, headers.get("x-rapidapi-host", ""), fault, now)
        return answer, auth_type, endpoint, key

    def _direct(
        self, endpoint: str | None, query: Mapping[str, list[str]], key: str | None, fault: _Fault | None, now: float
    ) -> _Answer:
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
        answer = _envelope_error(429, 7, "Too many requests") if limited else self._serve(endpoint, query, key, now)
        answer.headers.update(rate_headers)
        return answer

    def _rapidapi(
        self,
        endpoint: str | None,
        path: str,
        query: Mapping[str, list[str]],
        key: str | None,
        host: str,
        fault: _Fault | None,
        now: float,
    ) -> _Answer:
        # RapidAPI's proxy answers {"message": ...} itself; the upstream API's envelope passes through.
        if key is None or key not in self.keys:
            return _message(401, "Invalid API key. Go to https://docs.rapidapi.com/docs/keys for more info.")
        if host not in RAPIDAPI_HOSTS:
            return _message(403, "You are not subscribed to this API.")
        if endpoint is None:
            return _message(404, f"Endpoint '{path[:80]}' does not exist")
        info = self.keys[key]
        # The proxy's own 60-second window first: what it refuses never reaches the API's quota.
        minute_limited, minute_headers = self._count_minute(key, now)
        if minute_limited:
            answer = _message(429, "You have exceeded the rate limit per minute for your plan by the API provider")
            limited, rate_headers = self._count(key, None, now, counting=False)
        else:
            limited, rate_headers = self._count(key, fault, now)
            if limited:
                answer = _message(429, "You have exceeded the rate limit per hour for your plan by the API provider")
            elif info.state == "suspended":
                answer = _envelope_error(401, 3, "Token is suspended")
            elif info.state == "wrong_ip":
                answer = _envelope_error(401, 5, "Token IP is invalid")
            else:
                answer = self._serve(endpoint, query, key, now)
        answer.headers.update(
            {name.replace("X-Rate-Limit", "x-ratelimit-requests").lower(): v for name, v in rate_headers.items()}
        )
        answer.headers.update(minute_headers)
        return answer

    def _serve(self, endpoint: str, query: Mapping[str, list[str]], key: str, now: float) -> _Answer:
        """The answer of a valid key's counted request: refused by plan, or served."""
        info = self.keys[key]
        if endpoint in WS_ENDPOINTS:
            if not PLANS[info.plan][0]:
                return _envelope_error(401, 4, "Token does not have permission")
            return self._token_answer(endpoint, key, info, now)
        if PLAN_RANK[info.plan] < PLAN_RANK[DATA_ENDPOINTS[endpoint]]:
            return _envelope_error(401, 4, "Token does not have permission")
        try:
            result, pagination = self._data(endpoint, _Params(query), key, info, now)
        except _Refusal as refusal:
            return _envelope_error(refusal.status, refusal.code, refusal.message)
        return _Answer(200, _json({"status": 200, "errors": [], "pagination": pagination, "result": result}))

    def _count(
        self, key: str, fault: _Fault | None, now: float, *, counting: bool = True
    ) -> tuple[bool, dict[str, str]]:
        """Count one request in the key's window (unless ``counting`` is False): (refused, rate headers)."""
        with self._lock:
            start, used = self._windows.get(key, (now, 0))
            if now >= start + self.rate_window:
                start, used = now, 0
            throttle = fault is not None and fault.kind == "throttle"
            limited = used >= self.rate_limit or throttle or (fault is not None and fault.kind == "rate_limit")
            if not limited and counting:
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

    def _count_minute(self, key: str, now: float) -> tuple[bool, dict[str, str]]:
        """RapidAPI's proxy: count one request in the key's 60-second window; (refused, its headers)."""
        with self._lock:
            start, used = self._minutes.get(key, (now, 0))
            if now >= start + 60:
                start, used = now, 0
            limited = used >= self.rapidapi_limit
            if not limited:
                used += 1
            self._minutes[key] = (start, used)
        headers = {
            "x-ratelimit-limit": str(self.rapidapi_limit),
            "x-ratelimit-remaining": str(self.rapidapi_limit - used),
            "x-ratelimit-reset": str(max(0, math.ceil(start + 60 - now))),
        }
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

    # The data endpoints

    def attach(self, feed: Feed) -> None:
        """Serve the matches ``feed`` plays, as far as it played them (a :class:`Feed` attaches itself)."""
        with self._lock:
            if feed not in self._feeds:
                self._feeds.append(feed)

    def day_at(self, moment: float | None = None) -> str:
        """The match day, ``YYYYMMDD``: ``match_day``, else the day (UTC) at ``moment`` (default now) of the clock."""
        if self.match_day is not None:
            return self.match_day
        return time.strftime("%Y%m%d", time.gmtime(self.clock() if moment is None else moment))

    def _live(self) -> tuple[list[MatchScript], dict[str, float | None]]:
        """The scripted matches (configured, then met in a playback), and the minute reached by those playing now."""
        with self._lock:
            feeds = list(self._feeds)
        met: list[MatchScript] = []
        playing: dict[str, float | None] = {}
        for feed in feeds:
            for playback in feed.playbacks():
                running, minute = playback.running, playback.minute
                met.extend(playback.matches)
                if running:
                    playing.update(dict.fromkeys((script.match_id for script in playback.matches), minute))
        scripts = {s.match_id: s for s in (_default_scripts() if self.matches is None else self.matches)}
        with self._lock:
            # A stopped playback's matches stay served (ended); what was played last wins an id.
            self._seen.update((script.match_id, script) for script in met)
            scripts.update(self._seen)
        return list(scripts.values()), playing

    def _team_pair(self, match_id: str) -> tuple[int, int]:
        """The teams (indexes) of a scripted match: from its id, none twice among scripted matches."""
        count = len(_reference().lists["teams"])
        with self._lock:
            pair = self._teams.get(match_id)
            if pair is None:
                used = {i for p in self._teams.values() for i in p} if 2 * len(self._teams) < count - 2 else set()
                index, picks = int(match_id, 16) % count, list[int]()
                while len(picks) < 2:
                    if index not in used and index not in picks:
                        picks.append(index)
                    index = (index + 1) % count
                pair = self._teams[match_id] = (picks[0], picks[1])
        return pair

    def _matches(self, now: float) -> tuple[list[_Match], dict[str, float | None]]:
        """Every match the data endpoints know, by kickoff then id, and the minute reached by those playing now."""
        scripts, playing = self._live()
        day = self.day_at(now)
        kickoff = _day_start(day) + SCRIPT_KICKOFF
        teams = _reference().lists["teams"]
        found = []
        for script in scripts:
            a, b = self._team_pair(script.match_id)
            found.append(_scripted_match(script, kickoff, teams[a], teams[b]))
        found.extend(_extra_match(day, n) for n in range(self.extra_matches))
        found.sort(key=lambda match: (match.kickoff, match.id))
        return found, playing

    @staticmethod
    def _reached(match: _Match, now: float, playing: Mapping[str, float | None]) -> float | None:
        """The match minute reached: None before the kickoff, infinity once every event happened."""
        if match.scripted:
            return playing.get(match.id, math.inf)
        # A generated match follows the clock: 45 minutes, 15 of halftime, 45 more.
        elapsed = (now - match.kickoff) / 60
        if elapsed < 0:
            return None
        if elapsed < 105:
            return elapsed if elapsed < 45 else max(45.0, elapsed - 15)
        return math.inf

    def _data(
        self, endpoint: str, params: _Params, key: str, info: SandboxKey, now: float
    ) -> tuple[list[Any], list[dict[str, int]]]:
        """A data endpoint's (result, pagination); raises :class:`_Refusal` for a wrong request."""
        per_page = self.per_page or PER_PAGE[info.plan]
        kind, _, action = endpoint.rpartition("/")
        reference = _reference()
        if endpoint == "token/status":
            params.common()
            with self._lock:
                used = self._windows.get(key, (now, 0))[1]
            expire = _day_start(time.strftime("%Y%m%d", time.gmtime(now))) + 30 * 86400
            usage = {"requests_p_hour": self.rate_limit, "pagination_items": per_page, "last_hour_requests": used}
            return [{"plan": info.plan, "expire_date": _utc(expire), "status": "active", "usage": usage}], []
        if action == "list":
            page, country = params.page(), params.hex_id("c", required=False)
            params.common()
            items = reference.lists[kind]
            if country is not None and kind != "languages":
                items = tuple(i for i in items if (i["id"] if kind == "countries" else i["country"]["id"]) == country)
            return _paged(items, page, per_page)
        if action == "view" and kind in REFERENCE_VIEWS:
            ident = params.required("i")
            params.common()
            item = reference.index[kind].get(ident)
            if item is None:
                raise _Refusal(404, 6, "Not Found")
            if kind == "teams":
                return [{**item, "players": [_player(p) for p in reference.players[ident]]}], []
            if kind == "championships":
                matches, playing = self._matches(now)
                played = [
                    (m, _state(m, self._reached(m, now, playing))) for m in matches if m.championship["id"] == ident
                ]
                return [{**item, "seasons": [_season(self.day_at(now), played)]}], []
            return [item], []
        full = action == "full"
        if kind == "matches/view" or endpoint == "matches/odds":
            ident = params.required("i")
            params.common()
            matches, playing = self._matches(now)
            match = next((m for m in matches if m.id == ident), None)
            if match is None:
                raise _Refusal(404, 6, "Not Found")
            reached = self._reached(match, now, playing)
            if endpoint == "matches/odds":
                return [_odds(match, _state(match, reached))], []
            if action == "progressive":
                return _progressive(match, reached), []
            return [_match_item(match, _state(match, reached), full=full)], []
        if kind == "matches/day":
            day, page = params.day(), params.page()
            params.common()
            matches, playing = self._matches(now)
            chosen = [m for m in matches if m.day == day]
        elif kind == "matches/by":
            championship, manager = params.hex_id("c", required=False), params.hex_id("m", required=False)
            stadium, page = params.hex_id("s", required=False), params.page()
            if championship is None and manager is None and stadium is None:
                raise _Refusal(400, 1, "Missing c param")
            params.common()
            matches, playing = self._matches(now)
            chosen = [
                m
                for m in matches
                if championship in (None, m.championship["id"])
                and manager in (None, m.team_a["manager"]["id"], m.team_b["manager"]["id"])
                and stadium in (None, m.team_a["stadium"]["id"])
            ]
        elif kind == "live":
            params.common()
            matches, playing = self._matches(now)
            states = [(m, _state(m, self._reached(m, now, playing))) for m in matches]
            return [_match_item(m, s, full=full, live=True) for m, s in states if s.status == "IN PLAY"], []
        else:  # teams/history, teams/versus
            teams = reference.index["teams"]
            wanted = [params.required("i")] if action == "history" else [params.required("x"), params.required("y")]
            since = now - _WINDOWS[params.window()]
            params.common()
            if any(team not in teams for team in wanted):
                raise _Refusal(404, 6, "Not Found")
            matches, playing = self._matches(now)
            chosen = [
                m
                for m in reversed(matches)  # the newest first
                if m.kickoff >= since and set(wanted) <= {m.team_a["id"], m.team_b["id"]}
            ]
            return [_match_item(m, _state(m, self._reached(m, now, playing)), full=False) for m in chosen], []
        shown, pagination = _paged(chosen, page, per_page)
        return [_match_item(m, _state(m, self._reached(m, now, playing)), full=full) for m in shown], pagination


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


# The data endpoints' data: reference lists generated once, deterministically (the same in every
# sandbox), and matches built from match scripts.

_COUNTRIES = (
    ("Argentina", "AR"),
    ("Australia", "AU"),
    ("Austria", "AT"),
    ("Belgium", "BE"),
    ("Brazil", "BR"),
    ("Chile", "CL"),
    ("Colombia", "CO"),
    ("Croatia", "HR"),
    ("Denmark", "DK"),
    ("England", "GB"),
    ("France", "FR"),
    ("Germany", "DE"),
    ("Greece", "GR"),
    ("Italy", "IT"),
    ("Japan", "JP"),
    ("Mexico", "MX"),
    ("Netherlands", "NL"),
    ("Norway", "NO"),
    ("Poland", "PL"),
    ("Portugal", "PT"),
    ("Spain", "ES"),
    ("Sweden", "SE"),
    ("Switzerland", "CH"),
    ("Turkey", "TR"),
    ("United States", "US"),
)
_LANGUAGES = (
    ("en_US", "English"),
    ("it_IT", "Italiano"),
    ("es_ES", "Español"),
    ("de_DE", "Deutsch"),
    ("fr_FR", "Français"),
    ("pt_PT", "Português"),
    ("nl_NL", "Nederlands"),
    ("tr_TR", "Türkçe"),
)
_SYLLABLES: tuple[str, ...] = (
    "al",
    "bar",
    "cas",
    "dor",
    "el",
    "fen",
    "gar",
    "hol",
    "is",
    "kal",
    "lor",
    "mar",
    "nor",
    "os",
    "pen",
)
_SYLLABLES += ("quin", "ros", "sal", "tor", "ul", "ven", "wen", "yar", "zel", "bri", "cor", "dun", "lin")
_FIRST_NAMES: tuple[str, ...] = (
    "Adam",
    "Bruno",
    "Carlos",
    "Daniel",
    "Emil",
    "Felix",
    "Goran",
    "Hugo",
    "Ivan",
    "Jonas",
    "Karim",
)
_FIRST_NAMES += ("Luca", "Marco", "Nico", "Oscar", "Pablo", "Rafael", "Sami", "Tomas", "Victor", "Yuri", "Zeno")
_CLUBS = ("FC", "United", "City", "Athletic", "Rovers", "Sporting", "Town", "Wanderers", "Albion", "Olympic")
_GROUNDS = ("Stadium", "Arena", "Park", "Ground")
_POSITIONS = ("G", "D", "D", "D", "D", "M", "M", "M", "F", "F", "F")
# How many of each: every list pages more than 3 times at MEGA's 100 (countries and languages excepted).
# Each team has its stadium, its manager and len(_POSITIONS) players.
SIZES: Mapping[str, int] = {"championships": 321, "teams": 401, "referees": 337}
# The default matches' leagues (live.LEAGUES, in order) are the first championships.
_SCRIPTED_LEAGUES = (("Sandbox Premier League", "SPL"), ("Sandbox Cup", "SCU"))
_KICKOFF_ODDS = (2.1, 3.3, 3.6)  # what MatchScript.build's odds start from
_GOAL_COUNTS = (0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5)
_WINDOWS: Mapping[str, float] = {"all": math.inf, "1y": 365 * 86400.0, "6m": 183 * 86400.0}
_HEX_ID = re.compile(r"[0-9a-f]{16}")
_DIGITS = re.compile(r"[0-9]+")


def _hex(kind: str, n: object) -> str:
    """A generated item's id: 16 hex digits, the same every time."""
    return hashlib.sha256(f"sfi-sandbox:{kind}:{n}".encode()).hexdigest()[:16]


def _ref(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": item["id"], "name": item["name"]}


@dataclasses.dataclass(frozen=True)
class _Reference:
    lists: Mapping[str, tuple[dict[str, Any], ...]]
    index: Mapping[str, Mapping[str, dict[str, Any]]]
    players: Mapping[str, tuple[dict[str, Any], ...]]  # by team id


@functools.cache
def _reference() -> _Reference:
    """Every reference list, built on first use (live imports this module: LEAGUES is imported here)."""
    from airflow_sfi.sandbox.live import LEAGUES

    rng = random.Random("sfi-sandbox reference")  # noqa: S311 - made-up data, not secrets

    def word() -> str:
        return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()

    def person() -> str:
        return f"{rng.choice(_FIRST_NAMES)} {word()}"

    countries = tuple({"id": _hex("country", code), "name": name, "code": code} for name, code in _COUNTRIES)
    languages = tuple({"id": code, "name": name} for code, name in _LANGUAGES)
    championships = []
    for n in range(SIZES["championships"]):
        country = countries[n % len(countries)]
        if n < len(LEAGUES):
            ident, (name, short) = LEAGUES[n], _SCRIPTED_LEAGUES[n]
        else:
            ident, name, short = (
                _hex("championship", n),
                f"{country['name']} {word()} League",
                f"{country['code']}{n:03d}",
            )
        championships.append({"id": ident, "name": name, "s_name": short, "country": _ref(country)})
    stadiums: list[dict[str, Any]] = []
    managers: list[dict[str, Any]] = []
    teams: list[dict[str, Any]] = []
    players: list[dict[str, Any]] = []
    players_of: dict[str, tuple[dict[str, Any], ...]] = {}
    places: set[str] = set()
    for n in range(SIZES["teams"]):
        country = _ref(countries[n % len(countries)])
        place = word()
        while place in places:
            place = word()
        places.add(place)
        team: dict[str, Any] = {"id": _hex("team", n), "name": f"{place} {_CLUBS[n % len(_CLUBS)]}"}
        stadium = {
            "id": _hex("stadium", n),
            "name": f"{place} {rng.choice(_GROUNDS)}",
            "city": place,
            "capacity": rng.randrange(4000, 90000, 500),
            "country": country,
        }
        manager = {"id": _hex("manager", n), "name": person(), "country": country, "team": dict(team)}
        squad = tuple(
            {
                "id": _hex("player", f"{n}:{k}"),
                "name": person(),
                "position": position,
                "number": k + 1,
                "team": dict(team),
                "country": country,
            }
            for k, position in enumerate(_POSITIONS)
        )
        team |= {"country": country, "stadium": _ref(stadium), "manager": _ref(manager)}
        stadiums.append(stadium)
        managers.append(manager)
        teams.append(team)
        players.extend(squad)
        players_of[team["id"]] = squad
    referees = [
        {"id": _hex("referee", n), "name": person(), "country": _ref(countries[n % len(countries)])}
        for n in range(SIZES["referees"])
    ]
    lists: dict[str, tuple[dict[str, Any], ...]] = {
        "countries": countries,
        "languages": languages,
        "stadiums": tuple(stadiums),
        "managers": tuple(managers),
        "referees": tuple(referees),
        "players": tuple(players),
        "teams": tuple(teams),
        "championships": tuple(championships),
    }
    index = {kind: {item["id"]: item for item in lists[kind]} for kind in REFERENCE_VIEWS}
    return _Reference(lists, index, players_of)


def _player(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: item[key] for key in ("id", "name", "position", "number")}


@functools.cache  # the scripts are frozen: one copy serves every sandbox
def _default_scripts() -> tuple[MatchScript, ...]:
    from airflow_sfi.sandbox.live import default_matches  # here: live imports this module

    return default_matches()


@dataclasses.dataclass(frozen=True)
class _Match:
    """
    One match the data endpoints serve: a match script, and what the live feed does not carry.

    :param scripted: its progress follows the feed's playbacks; else (a generated match) the clock.
    :param cards: (minute, ``yellow_card`` or ``red_card``, side 0 for teamA or 1), in minute order.
    """

    id: str
    kickoff: float
    championship: Mapping[str, Any]
    team_a: Mapping[str, Any]
    team_b: Mapping[str, Any]
    referee: Mapping[str, Any]
    script: MatchScript
    cards: tuple[tuple[float, str, int], ...]
    scripted: bool

    @property
    def day(self) -> str:
        return time.strftime("%Y%m%d", time.gmtime(self.kickoff))

    @property
    def end(self) -> float:
        """The minute of its ``match_end``; infinity for a script without one."""
        return min(
            (e.minute for e in self.script.events if e.channel == "MAIN" and e.type == "match_end"), default=math.inf
        )

    @property
    def last(self) -> float:
        """The minute the match ended at: its ``match_end``'s, else its last event's."""
        end = self.end
        return end if math.isfinite(end) else max((e.minute for e in self.script.events), default=0)


def _cards(rng: random.Random) -> tuple[tuple[float, str, int], ...]:
    cards = [(float(rng.randint(1, 90)), "yellow_card", rng.randrange(2)) for _ in range(rng.randint(0, 4))]
    if rng.random() < 0.1:
        cards.append((float(rng.randint(30, 90)), "red_card", rng.randrange(2)))
    return tuple(sorted(cards, key=lambda card: card[0]))


def _championship(league_id: str) -> dict[str, Any]:
    item = _reference().index["championships"].get(league_id)
    if item is None:  # a script's league the reference lists do not have
        return {"id": league_id, "name": f"League {league_id}", "s_name": league_id[:3].upper()}
    return {key: item[key] for key in ("id", "name", "s_name")}


def _scripted_match(
    script: MatchScript, kickoff: float, team_a: Mapping[str, Any], team_b: Mapping[str, Any]
) -> _Match:
    rng = random.Random(f"sfi-sandbox match {script.match_id}")  # noqa: S311
    referees = _reference().lists["referees"]
    referee = _ref(referees[rng.randrange(len(referees))])
    championship = _championship(script.league_id)
    return _Match(script.match_id, kickoff, championship, team_a, team_b, referee, script, _cards(rng), True)


@functools.lru_cache(maxsize=4096)
def _extra_match(day: str, n: int) -> _Match:
    """The ``n``-th generated match of ``day``: the same every time, whatever the count asked for."""
    from airflow_sfi.sandbox.live import MatchScript  # here: live imports this module

    reference = _reference()
    rng = random.Random(f"sfi-sandbox match {day} {n}")  # noqa: S311
    teams, referees = reference.lists["teams"], reference.lists["referees"]
    a, b = rng.sample(range(len(teams)), 2)
    league = reference.lists["championships"][rng.randrange(len(_SCRIPTED_LEAGUES), 22)]
    match_id = _hex("match", f"{day}:{n}")
    goals = [(rng.randint(1, 90), rng.choice(("home", "away"))) for _ in range(rng.choice(_GOAL_COUNTS))]
    script = MatchScript.build(match_id, league["id"], goals)
    kickoff = _day_start(day) + rng.randrange(40, 92) * 900  # on a quarter hour from 10:00 to 22:45
    referee = _ref(referees[rng.randrange(len(referees))])
    championship = _championship(league["id"])
    return _Match(match_id, kickoff, championship, teams[a], teams[b], referee, script, _cards(rng), False)


@dataclasses.dataclass(frozen=True)
class _State:
    """A match as far as it was played: its status, timer, and what happened so far."""

    status: str
    timer: str
    goals: tuple[tuple[float, int | None], ...]  # (minute, side 0 for teamA, 1, or None when unknown)
    cards: tuple[tuple[float, str, int], ...]
    stats: Mapping[str, Sequence[Any]]  # e.g. {"possession": [55, 45]}
    odds: tuple[float, float, float]  # 1, X, 2

    def score(self, side: int) -> dict[str, Any]:
        minutes = [minute for minute, scorer in self.goals if scorer == side]
        first = sum(minute <= 45 for minute in minutes)
        return {"f": len(minutes), "1h": first, "2h": len(minutes) - first, "o": None, "p": None}

    def events(self) -> list[dict[str, Any]]:
        merged = [(minute, 0, "goal", side) for minute, side in self.goals]
        merged += [(minute, 1, kind, side) for minute, kind, side in self.cards]
        merged.sort(key=lambda event: event[:2])  # stable: goals at one minute keep their order
        return [
            {"type": kind, "timer": str(int(minute)), "team": None if side is None else "AB"[side]}
            for minute, _, kind, side in merged
        ]

    def team(self, team: Mapping[str, Any], side: int) -> dict[str, Any]:
        return {
            "id": team["id"],
            "name": team["name"],
            "score": self.score(side),
            "stats": {name: value[side] for name, value in self.stats.items()},
            "manager": dict(team["manager"]),
        }


def _side(data: Mapping[str, Any], tally: Sequence[int]) -> int | None:
    """Which side scored a goal, from its WebSocket ``data``: ``team`` home/away, else the ``score``."""
    team = data.get("team")
    if team in ("home", "away"):
        return 0 if team == "home" else 1
    score = data.get("score")
    if isinstance(score, list) and len(score) == 2 and all(isinstance(v, int) for v in score):
        for side in (0, 1):
            if score[side] > tally[side]:
                return side
    return None


def _state(match: _Match, reached: float | None) -> _State:
    """``match`` once every event up to minute ``reached`` happened (None: not started)."""
    upto = -1.0 if reached is None else reached
    goals: list[tuple[float, int | None]] = []
    tally = [0, 0]
    stats: dict[str, Sequence[Any]] = {}
    odds = _KICKOFF_ODDS
    for event in match.script.events:
        if event.minute > upto:
            break
        data = event.data or {}
        if event.channel == "MAIN" and event.type == "goal":
            side = _side(data, tally)
            if side is not None:
                tally[side] += 1
            goals.append((event.minute, side))
        elif event.channel == "STATS":
            updates = data.get("updates") if event.event_type == "batch_update" else [data]
            for update in updates if isinstance(updates, list) else []:
                for name in ("possession", "shots"):
                    value = update.get(name) if isinstance(update, Mapping) else None
                    if isinstance(value, list) and len(value) == 2:
                        stats[name] = value
        elif event.channel == "ODDS" and event.event_type == "odds_update":
            prices = [data.get(name) for name in ("home", "draw", "away")]
            home, draw, away = (float(p) if isinstance(p, (int, float)) else math.nan for p in prices)
            if not math.isnan(home + draw + away):
                odds = (home, draw, away)
    if reached is None:
        status, timer = "NOT STARTED", ""
    elif reached >= match.end:
        status, timer = "ENDED", _timer(match.last)
    else:
        status, timer = "IN PLAY", _timer(reached)
    cards = tuple(card for card in match.cards if card[0] <= upto)
    return _State(status, timer, tuple(goals), cards, stats, odds)


def _timer(minute: float) -> str:
    seconds = round(minute * 60)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def _x12(odds: Sequence[float]) -> dict[str, float]:
    return {"1": odds[0], "X": odds[1], "2": odds[2]}


def _match_item(match: _Match, state: _State, *, full: bool, live: bool = False) -> dict[str, Any]:
    """A match as matches/view, matches/day and matches/by (or, ``live``, live/) show it; ``full`` adds odds."""
    item: dict[str, Any] = {"id": match.id, "date": _utc(match.kickoff), "status": state.status}
    if live:
        item["in_play"] = state.status == "IN PLAY"
    item |= {
        "timer": state.timer,
        "est_e_timer": "",
        "championship": dict(match.championship),
        "teamA": state.team(match.team_a, 0),
        "teamB": state.team(match.team_b, 1),
    }
    if not live:
        item["events"] = state.events()
    item |= {"referee": dict(match.referee), "stadium": dict(match.team_a["stadium"])}
    if full:
        item["odds"] = {"kickoff": {"1X2": _x12(_KICKOFF_ODDS)}, "live": {"1X2": _x12(state.odds)}}
    return item


def _markets(odds: Sequence[float], home: int, away: int) -> dict[str, Any]:
    lead = home - away
    return {
        "1X2": _x12(odds),
        "asian_handicap": {"line": -0.25 - 0.5 * lead, "home": 1.9, "away": 1.9},
        "goal_line": {"line": home + away + 2.5, "over": 1.95, "under": 1.85},
        "corners": {"line": 9.5, "over": 1.9, "under": 1.9},
        "first_half": {"1": round(odds[0] + 0.8, 2), "X": 2.1, "2": round(odds[2] + 0.8, 2)},
    }


def _odds(match: _Match, state: _State) -> dict[str, Any]:
    """matches/odds: the markets at kickoff and now."""
    home, away = state.score(0)["f"], state.score(1)["f"]
    return {"id": match.id, "kickoff": _markets(_KICKOFF_ODDS, 0, 0), "live": _markets(state.odds, home, away)}


def _progressive(match: _Match, reached: float | None) -> list[dict[str, Any]]:
    """matches/view/progressive: a snapshot every 30 seconds of play so far."""
    if reached is None:
        return []
    last = min(reached, match.last)
    ticks = []
    for tick in range(int(last * 2) + 1):
        state = _state(match, tick / 2)
        sides = [{"goals": state.score(side)["f"], **{k: v[side] for k, v in state.stats.items()}} for side in (0, 1)]
        ticks.append(
            {"timer": _timer(tick / 2), "teamA": sides[0], "teamB": sides[1], "odds": {"1X2": _x12(state.odds)}}
        )
    return ticks


def _season(day: str, played: Iterable[tuple[_Match, _State]]) -> dict[str, Any]:
    """championships/view's season: a table from its known matches (only ended ones count)."""
    rows: dict[str, dict[str, Any]] = {}
    for match, state in played:
        sides = [(match.team_a, state.score(0)["f"]), (match.team_b, state.score(1)["f"])]
        for (team, scored), (_, conceded) in zip(sides, reversed(sides), strict=True):
            row = rows.setdefault(
                team["id"],
                {"team": _ref(team), "played": 0, "won": 0, "draw": 0, "lost": 0, "goals_for": 0, "goals_against": 0},
            )
            if state.status == "ENDED":
                outcome = "won" if scored > conceded else "lost" if scored < conceded else "draw"
                row["played"] += 1
                row[outcome] += 1
                row["goals_for"] += scored
                row["goals_against"] += conceded
    for row in rows.values():
        row["points"] = 3 * row["won"] + row["draw"]
    table = sorted(
        rows.values(),
        key=lambda r: (-r["points"], r["goals_against"] - r["goals_for"], -r["goals_for"], r["team"]["name"]),
    )
    year, month = int(day[:4]), int(day[4:6])
    start = year if month >= 7 else year - 1
    return {
        "name": f"{start}/{start + 1}",
        "groups": [{"name": "Regular season", "table": [{"position": n, **row} for n, row in enumerate(table, 1)]}],
    }


def _paged(items: Sequence[Any], page: int, per_page: int) -> tuple[list[Any], list[dict[str, int]]]:
    """One page (from 1) of ``items``; the pagination counts every item. A page past the end is empty."""
    shown = list(items[(page - 1) * per_page : page * per_page])
    return shown, [{"page": page, "per_page": per_page, "items": len(items)}]


def _utc(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment))


def _valid_day(value: str) -> bool:
    if len(value) != 8 or not _DIGITS.fullmatch(value):
        return False
    try:
        datetime.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return False
    return True


def _day(value: str | datetime.date | None) -> str | None:
    """The ``match_day`` option as ``YYYYMMDD``."""
    if value is None:
        return None
    if isinstance(value, datetime.date):
        return value.strftime("%Y%m%d")
    if not _valid_day(value):
        raise ValueError(f"match_day must be a date or YYYYMMDD, got {value!r}")
    return value


def _day_start(day: str) -> float:
    """Midnight (UTC) starting ``day`` (``YYYYMMDD``), in seconds since the epoch."""
    return calendar.timegm((int(day[:4]), int(day[4:6]), int(day[6:]), 0, 0, 0, 0, 0, 0))


class _Refusal(Exception):  # noqa: N818 - not an error of the sandbox: a documented error answer
    """A data request the API refuses with an error envelope."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message


class _Params:
    """A data request's query parameters, checked one at a time as the vendor's errors are reported."""

    def __init__(self, query: Mapping[str, list[str]]) -> None:
        self._query = query

    def _raw(self, name: str) -> str | None:
        values = self._query.get(name)
        return values[0] if values else None

    def hex_id(self, name: str, *, required: bool = True) -> str | None:
        """An id (16 lowercase hex digits): missing is code 1 when required, malformed or empty code 7."""
        value = self._raw(name)
        if value is None:
            if required:
                raise _Refusal(400, 1, f"Missing {name} param")
            return None
        if not _HEX_ID.fullmatch(value):
            raise _Refusal(400, 7, f"Wrong {name} param")
        return value

    def required(self, name: str) -> str:
        value = self.hex_id(name)
        assert value is not None
        return value

    def page(self) -> int:
        value = self._raw("p")
        if value is None:
            return 1
        if not _DIGITS.fullmatch(value) or int(value) < 1:
            raise _Refusal(400, 7, "Wrong p param")
        return int(value)

    def day(self) -> str:
        value = self._raw("d")
        if value is None:
            raise _Refusal(400, 1, "Missing d param")
        if not _valid_day(value):
            raise _Refusal(400, 7, "Wrong d param")
        return value

    def window(self) -> str:
        value = self._raw("w") or "all"
        if value not in _WINDOWS:
            raise _Refusal(400, 7, "Wrong w param")
        return value

    def common(self) -> None:
        """``l`` (a language of languages/list) and ``f`` (only ``json``: the sandbox serves no CSV)."""
        language, form = self._raw("l"), self._raw("f")
        if language is not None and language not in {code for code, _ in _LANGUAGES}:
            raise _Refusal(400, 7, "Wrong l param")
        if form is not None and form != "json":
            raise _Refusal(400, 7, "Wrong f param")
