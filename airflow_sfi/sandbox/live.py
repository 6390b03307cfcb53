"""The live side of the sandbox: match scripts, topics, routing and replay, without any transport.

Standard library only. :mod:`airflow_sfi.sandbox.ws` puts a :class:`Feed` on a WebSocket; here a
connection is a :class:`Session` with two callbacks, ``send`` and ``close``, so the rules can be
unit-tested with lists. Where the vendor's documentation is silent, the choice made here is noted.
"""

from __future__ import annotations

import collections
import dataclasses
import http
import itertools
import json
import math
import re
import threading
import time
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_sfi.sandbox.rest import PLANS, Sandbox

CHANNELS: tuple[str, ...] = PLANS["MEGA"][0]
SCOPES = ("all", "match", "league")
# The kinds each base channel carries; a _REALTIME channel carries its base channel's.
MAIN_TYPES = ("match_start", "goal", "halftime", "second_half_start", "match_end")
EVENT_TYPES: Mapping[str, tuple[str, ...]] = {
    "STATS": ("stats_update", "batch_update"),
    "ODDS": ("odds_update", "batch_update"),
}
WS_FAULTS = ("drop", "close", "stall", "garbage")
# The sandbox's choice (the vendor documents no close codes): a socket whose token ended is closed with this.
EXPIRED_CLOSE = (4001, "token expired")
# A handshake over the token's max_connections is accepted, sent a CONNECTION_LIMIT error, then closed so.
LIMIT_CLOSE = (4003, "connection limit")

_HEX16 = re.compile(r"[0-9a-f]{16}")
# The vendor subscribes with its 16-hex ids, but says its MAIN_REALTIME ids differ: any safe id subscribes.
_TOPIC_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _HEX16.fullmatch(value):
        raise ValueError(f"{what} must be 16 lowercase hex digits, got {value!r}")
    return value


def _base(channel: str) -> str:
    return channel.removesuffix("_REALTIME")


def _check_kind(channel: str, type: str, event_type: str | None) -> None:  # noqa: A002 - the message's field
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r} is not one of {list(CHANNELS)}")
    base = _base(channel)
    if base == "MAIN":
        if type not in MAIN_TYPES or event_type is not None:
            raise ValueError(f"{channel} carries types {list(MAIN_TYPES)} without event_type, got {type!r}")
    elif type != "event" or event_type not in EVENT_TYPES[base]:
        raise ValueError(
            f"{channel} carries type 'event' with event_type one of {list(EVENT_TYPES[base])}, "
            f"got {type!r}/{event_type!r}"
        )


def _json_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    # A deep copy through JSON: checks it can be sent, and nothing the caller keeps can change it.
    try:
        copy: dict[str, Any] = json.loads(json.dumps(dict(data)))
    except (TypeError, ValueError) as error:
        raise ValueError(f"data must be JSON: {error}") from None
    return copy


def _minute(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


@dataclasses.dataclass(frozen=True)
class ScriptedEvent:
    """
    One event of a match script.

    :param minute: the match minute it happens at; events at one minute are emitted together.
    :param channel: one of the six channels.
    :param type: a MAIN type (``goal``...) on MAIN channels, ``event`` on STATS and ODDS ones.
    :param event_type: ``stats_update``/``batch_update`` on STATS, ``odds_update``/``batch_update`` on ODDS.
    :param data: the message's ``data``; ``{"minute": minute}`` when not given.
    """

    minute: float
    channel: str
    type: str
    event_type: str | None = None
    data: Mapping[str, Any] | None = dataclasses.field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not math.isfinite(self.minute) or self.minute < 0:
            raise ValueError(f"minute must be finite and not negative, got {self.minute!r}")
        _check_kind(self.channel, self.type, self.event_type)
        data = {"minute": _minute(self.minute)} if self.data is None else self.data
        object.__setattr__(self, "data", types.MappingProxyType(_json_copy(data)))


@dataclasses.dataclass(frozen=True)
class MatchScript:
    """
    What happens in one match, minute by minute.

    :param match_id: 16 lowercase hex digits.
    :param league_id: 16 lowercase hex digits.
    :param events: in minute order; at one minute, in the order they are emitted.
    """

    match_id: str
    league_id: str
    events: tuple[ScriptedEvent, ...]

    def __post_init__(self) -> None:
        _check_id(self.match_id, "match_id")
        _check_id(self.league_id, "league_id")
        object.__setattr__(self, "events", tuple(self.events))
        if not all(isinstance(e, ScriptedEvent) for e in self.events):
            raise ValueError("events must be ScriptedEvent instances")
        if any(a.minute > b.minute for a, b in itertools.pairwise(self.events)):
            raise ValueError("events must be in minute order")

    @classmethod
    def build(
        cls,
        match_id: str,
        league_id: str,
        goals: Sequence[tuple[float, str]] = (),
        *,
        stats_every: int | None = 15,
        odds_every: int | None = 30,
        realtime: bool = False,
        extra: Sequence[ScriptedEvent] = (),
    ) -> MatchScript:
        """
        A 90-minute match: match_start at 0, halftime at 45, second_half_start at 46, match_end at 90.

        At one minute the order is: second_half_start, goals, stats, odds, ``extra``, then halftime or
        match_end.

        :param goals: (minute, ``home`` or ``away``), 0 to 90; each goal's ``score`` counts the ones before.
        :param stats_every: a STATS ``stats_update`` every so many minutes (not at 0); None for none.
        :param odds_every: an ODDS ``odds_update`` every so many minutes (not at 0); None for none.
        :param realtime: also send every event on its channel's ``_REALTIME`` twin, right after it.
        :param extra: more events, placed by their minute.
        """
        for minute, team in goals:
            if team not in ("home", "away") or not 0 <= minute <= 90:
                raise ValueError(f"a goal is (minute 0 to 90, 'home' or 'away'), got {(minute, team)!r}")
        for every in (stats_every, odds_every):
            if every is not None and every < 1:
                raise ValueError("stats_every and odds_every must be at least 1")
        # (minute, rank at that minute, event): sorted stably, so goals at one minute keep their order.
        timeline: list[tuple[float, int, ScriptedEvent]] = [
            (0, 0, ScriptedEvent(0, "MAIN", "match_start")),
            (46, 0, ScriptedEvent(46, "MAIN", "second_half_start")),
        ]
        score = [0, 0]
        scores: list[tuple[float, tuple[int, int]]] = []  # the score after each goal, in minute order
        for minute, team in sorted(goals, key=lambda goal: goal[0]):
            score[0 if team == "home" else 1] += 1
            scores.append((minute, (score[0], score[1])))
            data = {"minute": _minute(minute), "team": team, "score": list(score)}
            timeline.append((minute, 1, ScriptedEvent(minute, "MAIN", "goal", data=data)))

        def score_at(minute: int) -> tuple[int, int]:
            return next((s for m, s in reversed(scores) if m <= minute), (0, 0))

        # Halftime and the end carry the score, so a consumer of match_end alone has the result.
        for minute, kind in ((45, "halftime"), (90, "match_end")):
            data = {"minute": minute, "score": list(score_at(minute))}
            timeline.append((minute, 9, ScriptedEvent(minute, "MAIN", kind, data=data)))

        for minute in range(stats_every or 91, 91, stats_every or 1):
            home, away = score_at(minute)
            possession = 50 + 5 * ((minute // (stats_every or 1)) % 3 - 1)
            data = {
                "minute": minute,
                "possession": [possession, 100 - possession],
                "shots": [3 * home + minute // 10, 3 * away + minute // 15],
            }
            timeline.append((minute, 2, ScriptedEvent(minute, "STATS", "event", "stats_update", data)))
        for minute in range(odds_every or 91, 91, odds_every or 1):
            home, away = score_at(minute)
            lead = home - away
            data = {
                "minute": minute,
                "home": round(max(1.05, 2.1 - 0.45 * lead), 2),
                "draw": round(3.3 + 0.4 * abs(lead), 2),
                "away": round(max(1.05, 3.6 + 0.9 * lead), 2),
            }
            timeline.append((minute, 3, ScriptedEvent(minute, "ODDS", "event", "odds_update", data)))
        timeline.extend((e.minute, 4, e) for e in extra)
        events: list[ScriptedEvent] = []
        for _, _, event in sorted(timeline, key=lambda entry: entry[:2]):
            events.append(event)
            if realtime and not event.channel.endswith("_REALTIME"):
                events.append(dataclasses.replace(event, channel=f"{event.channel}_REALTIME"))
        return cls(match_id, league_id, tuple(events))


LEAGUES = ("e8f1c2d3a4b50001", "e8f1c2d3a4b50002")
MATCHES = ("d2a1e6f4b3c50001", "d2a1e6f4b3c50002", "d2a1e6f4b3c50003")


def default_matches() -> tuple[MatchScript, ...]:
    """
    Three matches in two leagues (:data:`MATCHES`, :data:`LEAGUES`), the same every time.

    The first has a burst (three goals at minute 71) and a STATS ``batch_update`` at 60; the second
    also plays on the ``_REALTIME`` channels; the third scores at 45, before halftime.
    """
    batch = ScriptedEvent(
        60,
        "STATS",
        "event",
        "batch_update",
        {"updates": [{"minute": 60, "possession": [58, 42]}, {"minute": 60, "shots": [9, 4]}]},
    )
    return (
        MatchScript.build(
            MATCHES[0],
            LEAGUES[0],
            [(12, "home"), (37, "away"), (71, "home"), (71, "home"), (71, "away")],
            extra=[batch],
        ),
        MatchScript.build(MATCHES[1], LEAGUES[0], [(23, "home"), (58, "away")], realtime=True),
        MatchScript.build(MATCHES[2], LEAGUES[1], [(5, "away"), (45, "home"), (88, "away")]),
    )


@dataclasses.dataclass(frozen=True)
class EmittedEvent:
    """
    One event the feed emitted.

    :param message: the message as sent.
    :param at: when, on the sandbox clock.
    :param recipients: how many connections it was sent to.
    """

    message: Mapping[str, Any]
    at: float
    recipients: int


@dataclasses.dataclass(frozen=True)
class WsConnectionRecord:
    """
    One WebSocket handshake attempt and the connection's life (times from the sandbox clock).

    Its repr (and every field) shows only a fingerprint of the token.

    :param opened_at: when the handshake came in.
    :param refused: the HTTP status it was refused with; 4003 (:data:`LIMIT_CLOSE`) for one accepted over
        the token's ``max_connections``, then sent a ``CONNECTION_LIMIT`` error and closed; None when admitted.
    :param closed_at: when it closed (for an HTTP refusal, when it was refused); None while open.
    :param close_code: the close code sent by whichever side closed first; 1006 with no close frame.
    :param token_fingerprint: the token's first 4 characters and "…" ("…" for a short one, "" for none).
    :param subscriptions: topic keys held at close, or now.
    :param client_port: the client's TCP port.
    """

    opened_at: float
    refused: int | None
    closed_at: float | None
    close_code: int | None
    token_fingerprint: str
    subscriptions: tuple[str, ...]
    client_port: int = 0


def fingerprint(token: str | None) -> str:
    """Enough of a token to tell tokens apart in a log, never the token."""
    if not token:
        return ""
    return f"{token[:4]}…" if len(token) >= 12 else "…"


class HandshakeRefusedError(Exception):
    """A handshake the feed refuses: answer it with ``status`` and ``text``."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(status, text)
        self.status = status
        self.text = text


class Session:
    """
    One WebSocket connection as the feed sees it.

    :param send: queues a text (or, for faults, binary) frame; called under the feed's lock, from any
        thread, so it must only queue.
    :param close: queues a close frame (code, reason); same rules as ``send``.
    """

    def __init__(
        self,
        token: str,
        limits: tuple[tuple[str, ...], int, int],
        send: Callable[[str | bytes], None],
        close: Callable[[int, str], None],
        opened_at: float,
        client_port: int,
    ) -> None:
        self.token = token
        self.allowed, _, self.max_subscribe = limits
        self.send = send
        self.close = close
        self.opened_at = opened_at
        self.client_port = client_port
        self.topics: dict[str, tuple[str, str, str | None]] = {}
        self.closing = False
        self.closed_at: float | None = None
        self.close_code: int | None = None
        # LIMIT_CLOSE's code when it came in over max_connections: never open, never routed to.
        self.refused: int | None = None

    def __repr__(self) -> str:
        return f"<Session {fingerprint(self.token)} topics={list(self.topics)}>"

    def record(self) -> WsConnectionRecord:
        return WsConnectionRecord(
            self.opened_at,
            self.refused,
            self.closed_at,
            self.close_code,
            fingerprint(self.token),
            tuple(self.topics),
            self.client_port,
        )


def _text(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


class Feed:
    """
    Topics, routing and replay for the sandbox's WebSocket, independent of the transport.

    Thread-safe: events can be emitted from any thread while connections come and go. Every time
    comes from the sandbox's clock; ``ts`` fields are its milliseconds.

    :param sandbox: issues the tokens and knows their plans and validity.
    :param replay: after each ``subscribed`` ack, re-send that topic's last ``replay`` messages,
        unchanged (the vendor documents no replay; 0, the default, sends none).
    """

    def __init__(self, sandbox: Sandbox, *, replay: int = 0) -> None:
        if replay < 0:
            raise ValueError("replay must not be negative")
        self.sandbox = sandbox
        self.replay = replay
        self.refusing: int | None = None
        self._attempts: list[Session | WsConnectionRecord] = []
        self._open: list[Session] = []
        self._timeline: list[tuple[float, str, int]] = []  # (time, token, open sockets of it after)
        self._errors: collections.Counter[str] = collections.Counter()
        self._emitted: list[EmittedEvent] = []
        self._history: dict[str, collections.deque[str]] = {}
        self._playbacks: list[Playback] = []
        self._lock = threading.Lock()
        sandbox.attach(self)  # its REST answers follow what this feed plays

    # Connections

    def connect(
        self,
        token: str | None,
        send: Callable[[str | bytes], None],
        close: Callable[[int, str], None],
        *,
        path: str = "/",
        client_port: int = 0,
    ) -> Session:
        """
        Admit a handshake (and log it), or raise :class:`HandshakeRefusedError`.

        Refused with HTTP, in this order: everything while :meth:`refuse` is set; a path other than ``/``
        (404); an unknown token, or one not valid now (401). One more connection than the token's
        ``max_connections`` is accepted but refused on the socket: the session returned has ``refused``
        4003, was sent a ``CONNECTION_LIMIT`` error and a close (4003 "connection limit"), and is never
        open nor routed to.
        """
        now = self.sandbox.clock()
        valid = token is not None and self.sandbox.valid_at(token, now)
        limits = self.sandbox.token_limits(token) if token is not None and valid else None
        with self._lock:
            if self.refusing is not None:
                refusal = HandshakeRefusedError(self.refusing, http.HTTPStatus(self.refusing).phrase)
            elif path != "/":
                refusal = HandshakeRefusedError(404, "Not Found")
            elif token is None or limits is None:
                refusal = HandshakeRefusedError(401, "Invalid or expired token")
            else:
                session = Session(token, limits, send, close, now, client_port)
                self._attempts.append(session)
                if (count := self._count(token)) >= limits[1]:
                    self._refuse_over_limit(session, limits[1])
                else:
                    self._open.append(session)
                    self._timeline.append((now, token, count + 1))
                return session
            self._attempts.append(
                WsConnectionRecord(now, refusal.status, now, None, fingerprint(token), (), client_port)
            )
        raise refusal

    def _count(self, token: str) -> int:
        return sum(s.token == token for s in self._open)

    def _refuse_over_limit(self, session: Session, limit: int) -> None:
        session.refused = LIMIT_CLOSE[0]
        message = f"At most {limit} connection{'s' * (limit != 1)} per token"
        self._errors["CONNECTION_LIMIT"] += 1
        session.send(_text({"type": "error", "code": "CONNECTION_LIMIT", "message": message}))
        self._close(session, *LIMIT_CLOSE)

    def closed(self, session: Session, code: int) -> None:
        """The connection is gone (``code`` as in :attr:`WsConnectionRecord.close_code`)."""
        with self._lock:
            if session.closed_at is None:
                session.closed_at = self.sandbox.clock()
                session.close_code = code
                session.closing = True
                if session.refused is None:
                    self._open.remove(session)
                    self._timeline.append((session.closed_at, session.token, self._count(session.token)))

    def close(self, session: Session, code: int, reason: str = "") -> None:
        """Close a connection from the server's side: nothing more is routed to it."""
        with self._lock:
            self._close(session, code, reason)

    def _close(self, session: Session, code: int, reason: str) -> None:
        if not session.closing:
            session.closing = True
            session.close(code, reason)

    def check_tokens(self) -> int:
        """Close (4001 "token expired") every connection whose token is not valid now; how many it closed."""
        now = self.sandbox.clock()
        with self._lock:
            sessions = [s for s in self._open if not s.closing]
        ended = [s for s in sessions if not self.sandbox.valid_at(s.token, now)]
        with self._lock:
            for session in ended:
                self._close(session, *EXPIRED_CLOSE)
        return len(ended)

    def sessions(self) -> list[Session]:
        """The connections open now (including those being closed), oldest first."""
        with self._lock:
            return list(self._open)

    def refuse(self, status: int | None) -> None:
        """Refuse every handshake with HTTP ``status`` until called with None."""
        if status is not None:
            http.HTTPStatus(status)  # an unknown status raises ValueError
        with self._lock:
            self.refusing = status

    def connections(self) -> list[WsConnectionRecord]:
        """Every handshake attempt, in order."""
        with self._lock:
            return [a if isinstance(a, WsConnectionRecord) else a.record() for a in self._attempts]

    def limit_refusals(self) -> int:
        """How many connections were refused for the token's ``max_connections`` (closed with 4003)."""
        with self._lock:
            return self._errors["CONNECTION_LIMIT"]

    def errors_sent(self) -> dict[str, int]:
        """How many error frames were sent, by code (``CONNECTION_LIMIT``, ``SUBSCRIPTION_LIMIT``...)."""
        with self._lock:
            return dict(self._errors)

    def socket_timeline(self) -> list[tuple[float, str, int]]:
        """
        Every change of a token's open sockets (admitted, not yet :meth:`closed`), in order.

        Each entry is (sandbox clock time, the token's :func:`fingerprint`, how many are open after it).
        """
        with self._lock:
            return [(moment, fingerprint(token), count) for moment, token, count in self._timeline]

    def max_sockets(self, token: str | None = None) -> int:
        """
        The most sockets open at once for one token; 0 when none was ever admitted.

        :param token: that token; None for the most of any token.
        """
        with self._lock:
            return max((count for _, t, count in self._timeline if token is None or t == token), default=0)

    # Commands

    def receive(self, session: Session, frame: str | bytes) -> None:
        """Handle one frame from the client; every answer goes through ``session.send``."""
        try:
            command = json.loads(frame) if isinstance(frame, str) else None
        except ValueError:
            command = None
        if session.refused is not None:
            return  # its close is on its way: nothing is answered
        if not isinstance(command, dict):
            self._error(session, "INVALID_MESSAGE", "Messages are JSON objects with an action", {})
            return
        action = command.get("action")
        if action == "ping":
            with self._lock:
                session.send(_text({"type": "pong", "ts": self._ms(self.sandbox.clock())}))
        elif action in ("subscribe", "unsubscribe"):
            self._subscription(session, action, command)
        else:
            self._error(session, "INVALID_MESSAGE", f"Unknown action {action!r}", command)

    def _subscription(self, session: Session, action: str, command: Mapping[str, Any]) -> None:
        channel, scope, id_ = command.get("channel"), command.get("scope"), command.get("id")
        # Checked in the order of the codes' list: the channel, the plan, the scope, the limit.
        if channel not in CHANNELS:
            self._error(session, "INVALID_CHANNEL", f"Unknown channel {channel!r}", command)
            return
        if channel not in session.allowed:
            self._error(session, "CHANNEL_NOT_ALLOWED", f"Channel {channel} is not in this token's plan", command)
            return
        if scope not in SCOPES:
            self._error(session, "INVALID_SCOPE", f"Scope must be one of {list(SCOPES)}", command)
            return
        if scope == "all" and id_ is not None:
            self._error(session, "INVALID_SCOPE", "Scope 'all' takes no id", command)
            return
        if scope != "all" and not (isinstance(id_, str) and _TOPIC_ID.fullmatch(id_)):
            self._error(session, "INVALID_SCOPE", f"Scope {scope!r} needs an id", command)
            return
        key = f"{channel}:all" if scope == "all" else f"{channel}:{scope}:{id_}"
        ack = {"type": f"{action}d", "channel": channel, "scope": scope, "id": id_, "topicKey": key}
        with self._lock:
            if action == "unsubscribe":
                session.topics.pop(key, None)
                session.send(_text(ack))
                return
            if key not in session.topics and len(session.topics) >= session.max_subscribe:
                limit = session.max_subscribe
                message = f"At most {limit} subscription{'s' * (limit != 1)} per connection"
                self._send_error(session, "SUBSCRIPTION_LIMIT", message, command)
                return
            session.topics[key] = (channel, scope, id_)
            session.send(_text(ack))
            # Under the same lock as emission: nothing is missed or sent twice between replay and live.
            for text in self._history.get(key, ()):
                session.send(text)

    def _error(self, session: Session, code: str, message: str, command: Mapping[str, Any]) -> None:
        with self._lock:
            self._send_error(session, code, message, command)

    def _send_error(self, session: Session, code: str, message: str, command: Mapping[str, Any]) -> None:
        # Under the lock. What the client sent comes back, so it can tell which command failed.
        echo = {field: command.get(field) for field in ("channel", "scope", "id")}
        self._errors[code] += 1
        session.send(_text({"type": "error", "code": code, "message": message, **echo}))

    # Events

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
        """
        Send one event now to every connection with a matching topic (once each); returns the message.

        :param type: a MAIN type (``goal``...) on MAIN channels, ``event`` on STATS and ODDS ones.
        :param data: the message's ``data``; ``{}`` when not given.
        """
        return self._emit_group([(channel, type, match_id, league_id, data or {}, event_type)])[0]

    def _emit_group(
        self, group: Sequence[tuple[str, str, str, str, Mapping[str, Any], str | None]]
    ) -> list[dict[str, Any]]:
        """Emit events back to back, at one reading of the clock (all are checked before any is sent)."""
        payloads = []
        for channel, type_, match_id, league_id, data, event_type in group:
            _check_kind(channel, type_, event_type)
            _check_id(match_id, "match_id")
            _check_id(league_id, "league_id")
            payloads.append(_json_copy(data))
        messages = []
        with self._lock:
            now = self.sandbox.clock()
            for (channel, type_, match_id, league_id, _, event_type), data in zip(group, payloads, strict=True):
                message: dict[str, Any] = {"type": type_}
                if event_type is not None:
                    message["eventType"] = event_type
                message |= {"channel": channel, "matchId": match_id, "leagueId": league_id, "ts": self._ms(now)}
                message["data"] = data
                text = _text(message)
                keys = (f"{channel}:all", f"{channel}:match:{match_id}", f"{channel}:league:{league_id}")
                recipients = [s for s in self._open if not s.closing and any(k in s.topics for k in keys)]
                for session in recipients:
                    session.send(text)
                if self.replay:
                    for key in keys:
                        self._history.setdefault(key, collections.deque(maxlen=self.replay)).append(text)
                self._emitted.append(EmittedEvent(message, now, len(recipients)))
                messages.append(message)
        return messages

    def emitted(self) -> list[EmittedEvent]:
        """Every event emitted so far, in order."""
        with self._lock:
            return list(self._emitted)

    def play(
        self, matches: Sequence[MatchScript] | None = None, *, minute_seconds: float = 1.0, loop: bool = False
    ) -> Playback:
        """
        Start playing match scripts in real time, all at once, in a background thread.

        :param matches: the scripts; :func:`default_matches` when None.
        :param minute_seconds: real seconds per match minute.
        :param loop: start again a minute after the end, until stopped.
        """
        playback = Playback(self, default_matches() if matches is None else tuple(matches), minute_seconds, loop)
        with self._lock:
            self._playbacks.append(playback)
        return playback.start()

    def playbacks(self) -> list[Playback]:
        """The playbacks started since the last :meth:`stop_playing`, oldest first."""
        with self._lock:
            return list(self._playbacks)

    def stop_playing(self) -> None:
        """Stop every playback."""
        with self._lock:
            playbacks, self._playbacks = self._playbacks, []
        for playback in playbacks:
            playback.stop()

    def garbage(self) -> list[str | bytes]:
        """What the ``garbage`` fault sends, in order: frames a client must survive."""
        goal = {
            "type": "goal",
            "channel": "MAIN",
            "leagueId": LEAGUES[0],
            "ts": self._ms(self.sandbox.clock()),
            "data": {"minute": 1, "team": "home", "score": [1, 0]},
        }
        return ["not json {", b"\x00\x01binary", "[1,2]", '{"type":"mystery"}', _text(goal)]

    @staticmethod
    def _ms(moment: float) -> int:
        return round(moment * 1000)


class Playback:
    """
    Match scripts being played in real time by a background thread: see :meth:`Feed.play`.

    Minutes are measured on the real (monotonic) clock; ``ts`` comes from the sandbox's clock. Events
    at one minute, of every match, are emitted back to back at one reading of the clock.
    """

    def __init__(self, feed: Feed, matches: Sequence[MatchScript], minute_seconds: float, loop: bool) -> None:
        if not minute_seconds > 0:
            raise ValueError("minute_seconds must be positive")
        self.feed = feed
        self.matches = tuple(matches)
        self.minute_seconds = minute_seconds
        self.loop = loop
        self.emitted = 0
        # The match minute of the latest events emitted (in the current loop); None before any.
        self.minute: float | None = None
        self._done = False
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sfi-sandbox-playback", daemon=True)
        entries = sorted(
            ((e.minute, m, i, script, e) for m, script in enumerate(self.matches) for i, e in enumerate(script.events)),
            key=lambda entry: entry[:3],
        )
        self._groups = [
            (minute, [(e.channel, e.type, s.match_id, s.league_id, e.data or {}, e.event_type) for *_, s, e in group])
            for minute, group in itertools.groupby(entries, key=lambda entry: entry[0])
        ]

    def start(self) -> Playback:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """Whether it is playing now: started, and neither finished nor stopped."""
        return self._thread.is_alive() and not self._stopping.is_set() and not self._done

    @property
    def done(self) -> bool:
        """Whether every event was emitted (never, when looping)."""
        return self._done

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every event was emitted, or the playback stopped; whether every event was."""
        self._finished.wait(timeout)
        return self._done

    def stop(self) -> None:
        """Stop emitting; what was emitted stays emitted."""
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            start = time.monotonic()
            while True:
                for minute, group in self._groups:
                    if self._stopping.wait(max(0.0, start + minute * self.minute_seconds - time.monotonic())):
                        return
                    self.emitted += len(self.feed._emit_group(group))
                    self.minute = minute
                if not self.loop or not self._groups:
                    self._done = True
                    return
                start += (self._groups[-1][0] + 1) * self.minute_seconds
        finally:
            self._finished.set()
