"""The live feed's messages, without a transport: subscriptions, frames, events and their dedupe."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from airflow_sfi.exceptions import SfiSubscriptionError
from airflow_sfi.protocol.token import CHANNELS

SCOPES = ("all", "match", "league")
MAIN_EVENTS = frozenset({"match_start", "goal", "halftime", "second_half_start", "match_end"})
# The MAIN events a match has once: their identity is the match and the type.
PHASE_EVENTS = MAIN_EVENTS - {"goal"}
# STATS and ODDS (and their _REALTIME twins) send {"type": "event", "eventType": ...}.
UPDATE_EVENTS = frozenset({"stats_update", "odds_update", "batch_update"})
EVENT_TYPES = MAIN_EVENTS | UPDATE_EVENTS
# The vendor's errors that no reconnect can fix.
FINAL_ERRORS = frozenset({"CHANNEL_NOT_ALLOWED", "SUBSCRIPTION_LIMIT", "INVALID_CHANNEL", "INVALID_SCOPE"})
# The vendor's REST ids are 16 hex digits, but its MAIN_REALTIME ids differ: accept any safe id.
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CONTROL_TYPES = frozenset({"subscribed", "unsubscribed", "error", "pong"})
# Frames larger than this are not events: refuse them before parsing.
MAX_FRAME_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class Subscription:
    """
    One ``subscribe`` command: a channel and a scope.

    :param channel: MAIN, MAIN_REALTIME, STATS, ODDS, STATS_REALTIME or ODDS_REALTIME.
    :param scope: ``all``, ``match`` or ``league``.
    :param id: the match or league id for the ``match`` and ``league`` scopes: letters, digits, ``-`` and ``_``,
        at most 64 characters.
    """

    channel: str
    scope: str = "all"
    id: str | None = None

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise SfiSubscriptionError(
                f"unknown channel {self.channel!r}; valid: {', '.join(sorted(CHANNELS))}", error_code="INVALID_CHANNEL"
            )
        if self.scope not in SCOPES:
            raise SfiSubscriptionError(
                f"unknown scope {self.scope!r}; valid: {', '.join(SCOPES)}", error_code="INVALID_SCOPE"
            )
        if self.scope == "all" and self.id is not None:
            raise SfiSubscriptionError("scope 'all' takes no id", error_code="INVALID_SCOPE")
        if self.scope != "all" and not (isinstance(self.id, str) and _ID.fullmatch(self.id)):
            raise SfiSubscriptionError(
                f"scope {self.scope!r} needs an id of 1 to 64 letters, digits, '-' or '_', got {str(self.id)[:80]!r}",
                error_code="INVALID_SCOPE",
            )

    @property
    def topic_key(self) -> str:
        """The vendor's name for it, e.g. ``MAIN:all`` or ``MAIN:league:<id>``."""
        return f"{self.channel}:{self.scope}" if self.id is None else f"{self.channel}:{self.scope}:{self.id}"

    def command(self, action: str = "subscribe") -> str:
        """The JSON text frame that subscribes (or, with ``unsubscribe``, ends it)."""
        message: dict[str, Any] = {"action": action, "channel": self.channel, "scope": self.scope}
        if self.id is not None:
            message["id"] = self.id
        return json.dumps(message)

    def matches(self, event: FeedEvent) -> bool:
        """Whether the server sends ``event`` on this subscription."""
        if event.channel != self.channel:
            return False
        return self.scope == "all" or self.id == (event.match_id if self.scope == "match" else event.league_id)


def check_plan(subscriptions: Sequence[Subscription], allowed_channels: Iterable[str], max_subscribe: int) -> None:
    """
    Fail before connecting when the token's plan cannot hold ``subscriptions``.

    :param subscriptions: what the feed will subscribe to, on one connection.
    :param allowed_channels: the token's ``allowed_channels``.
    :param max_subscribe: the token's ``max_subscribe_per_connection``.
    """
    missing = sorted({s.channel for s in subscriptions} - set(allowed_channels))
    if missing:
        raise SfiSubscriptionError(
            f"the plan does not include channel(s) {', '.join(missing)} "
            f"(allowed: {', '.join(sorted(allowed_channels)) or 'none'})",
            error_code="CHANNEL_NOT_ALLOWED",
        )
    if len(subscriptions) > max_subscribe:
        raise SfiSubscriptionError(
            f"{len(subscriptions)} subscriptions, but the plan allows {max_subscribe} per connection",
            error_code="SUBSCRIPTION_LIMIT",
        )


# A goal's team as the WebSocket ("home"/"away") or REST ("A"/"B", A the home side) names it.
_SIDES = {"home": "A", "away": "B", "A": "A", "B": "B"}
# The vendor's minutes: "71", "45+2" (stoppage time), "120+1"; a trailing ' is tolerated.
_MINUTE = re.compile(r"\s*(\d{1,3})\s*(?:\+\s*(\d{1,2}))?\s*'?\s*")
_IDENTITY_KEY = re.compile(
    r"MAIN:(?P<match_id>.+):(?:(?P<goal>goal):[AB]:\d+:\d+-\d+|(?P<phase>" + "|".join(sorted(PHASE_EVENTS)) + r"))",
    re.DOTALL,
)
_FALLBACK_KEY = re.compile(
    r"(?P<channel>[A-Z_]+):(?P<match_id>.+):(?P<type>[A-Za-z0-9_]+):-?\d+:[0-9a-f]{12}", re.DOTALL
)
# An identity key never ends so: a goal's ends with its score, a phase's with its type.
_FALLBACK_TAIL = re.compile(r":[0-9a-f]{12}")


def minute_parts(value: object) -> tuple[int, int] | None:
    """
    A match minute as (minute, added time): ``71`` or ``"71"`` is (71, 0), ``"45+2"`` is (45, 2).

    :param value: an integer (or a whole float) or the vendor's text; anything else, or a negative
        number, is None.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return (value, 0) if value >= 0 else None
    if isinstance(value, float):
        return (int(value), 0) if value.is_integer() and value >= 0 else None
    if isinstance(value, str):
        found = _MINUTE.fullmatch(value)
        if found:
            return int(found[1]), int(found[2] or 0)
    return None


def event_minute(value: object) -> int | None:
    """
    A match minute as one integer, added time included: ``"45+2"`` is 47.

    The WebSocket's goal ``minute`` and REST's event ``timer`` are both read so, so that their keys
    agree when the vendor writes stoppage time the same way in both. A goal at 45+2 and one at 47
    then share a minute; their scores keep their keys apart.

    :param value: as for :func:`minute_parts`.
    """
    parts = minute_parts(value)
    return None if parts is None else parts[0] + parts[1]


def _score(value: object) -> tuple[int, int] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        home, away = value
        if _is_int(home) and _is_int(away) and home >= 0 and away >= 0:
            return home, away
    return None


class KeyParts(NamedTuple):
    """
    What a dedupe key says of its event.

    :param channel: the event's channel.
    :param match_id: its match.
    :param type: its type.
    :param identity: True for an identity key, False for a fallback one (see :attr:`FeedEvent.key`).
    """

    channel: str
    match_id: str
    type: str
    identity: bool


def parse_key(key: str) -> KeyParts | None:
    """
    Read a key made by :attr:`FeedEvent.key`; None for anything else (e.g. the hashed keys of older versions).

    :param key: the key.
    """
    found = _IDENTITY_KEY.fullmatch(key)
    if found:
        return KeyParts("MAIN", found["match_id"], found["goal"] or found["phase"], True)
    found = _FALLBACK_KEY.fullmatch(key)
    if found:
        return KeyParts(found["channel"], found["match_id"], found["type"], False)
    return None


def is_identity_key(key: str) -> bool:
    """
    Whether ``key`` names a real event, so that the WebSocket and REST give it alike (not a fallback key).

    :param key: a key made by :attr:`FeedEvent.key`.
    """
    return _IDENTITY_KEY.fullmatch(key) is not None


@dataclasses.dataclass(frozen=True)
class FeedEvent:
    """
    One live event as the vendor sends it, or as rebuilt from REST.

    :param channel: the channel it came on.
    :param type: the MAIN event (``goal``...) or, for STATS/ODDS, the ``eventType`` (``stats_update``...).
    :param match_id: the match.
    :param league_id: the match's league.
    :param ts: when the vendor sent it, in milliseconds since the epoch; for a backfilled event, when it was built.
    :param data: the event's details.
    :param backfilled: rebuilt from REST after a time without a subscribed socket, not received.
    """

    channel: str
    type: str
    match_id: str
    league_id: str
    ts: int
    data: Mapping[str, Any]
    backfilled: bool = False

    @functools.cached_property
    def key(self) -> str:
        """
        The dedupe key, computed once: the same real event, received twice or rebuilt from REST, has the same key.

        The vendor gives events no id. A MAIN ``goal`` whose data has an integer-like ``minute``
        (see :func:`event_minute`), ``team`` home/away and ``score`` [home, away] is
        ``MAIN:<match_id>:goal:<A|B>:<minute>:<home>-<away>``; a MAIN ``match_start``, ``halftime``,
        ``second_half_start`` or ``match_end`` is ``MAIN:<match_id>:<type>``. Those are identity keys.
        Anything else falls back to ``<channel>:<match_id>:<type>:<ts>:<12 hex digits of a hash of every field>``.
        """
        if self.channel == "MAIN":
            if self.type in PHASE_EVENTS:
                return f"MAIN:{self.match_id}:{self.type}"
            if self.type == "goal":
                data = self.data
                team, score = data.get("team"), _score(data.get("score"))
                side = _SIDES.get(team) if isinstance(team, str) else None
                minute = event_minute(data.get("minute"))
                if side is not None and score is not None and minute is not None:
                    return f"MAIN:{self.match_id}:goal:{side}:{minute}:{score[0]}-{score[1]}"
        canonical = json.dumps(
            [self.channel, self.type, self.match_id, self.league_id, self.ts, self.data],
            sort_keys=True,
            separators=(",", ":"),
            default=repr,
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
        return f"{self.channel}:{self.match_id}:{self.type}:{self.ts}:{digest}"

    @property
    def identity(self) -> bool:
        """Whether :attr:`key` is an identity key (shared by the WebSocket and REST), not a fallback one."""
        key = self.key
        return _FALLBACK_TAIL.match(key, len(key) - 13) is None

    @property
    def slot(self) -> tuple[str, str]:
        """(match_id, type): what reconciliation counts events by."""
        return self.match_id, self.type

    def to_payload(self) -> dict[str, Any]:
        """A JSON-safe dict (a trigger event's payload): the event's fields and its ``key``."""
        return {
            "key": self.key,
            "channel": self.channel,
            "type": self.type,
            "match_id": self.match_id,
            "league_id": self.league_id,
            "ts": self.ts,
            "data": dict(self.data),
            "backfilled": self.backfilled,
        }


@dataclasses.dataclass(frozen=True)
class Frame:
    """
    A frame that is not an event: an ack, an error, a pong, or a message of a type the client does not know.

    :param type: ``subscribed``, ``unsubscribed``, ``error``, ``pong``, or an unknown type (see :attr:`known`).
    :param message: the decoded JSON object.
    """

    type: str
    message: Mapping[str, Any]

    @property
    def known(self) -> bool:
        """Whether this is one of the documented control messages."""
        return self.type in CONTROL_TYPES

    @property
    def error_code(self) -> str:
        """The vendor's code of an ``error`` frame, e.g. ``CHANNEL_NOT_ALLOWED``."""
        return str(self.message.get("code", ""))

    def about(self, subscription: Subscription) -> bool:
        """Whether this ack or error names ``subscription`` (the vendor echoes channel, scope and id)."""
        m = self.message
        if "topicKey" in m:
            return bool(m["topicKey"] == subscription.topic_key)
        return (m.get("channel"), m.get("scope"), m.get("id")) == (
            subscription.channel,
            subscription.scope,
            subscription.id,
        )


class MalformedFrameError(ValueError):
    """A frame that is neither an event nor a control message; its text says why, never what it held."""


def parse_frame(frame: str | bytes) -> FeedEvent | Frame:
    """
    Read one WebSocket frame.

    :param frame: the frame as received (a binary frame is malformed).
    :raises MalformedFrameError: for anything that is not a documented message.
    """
    if isinstance(frame, bytes):
        raise MalformedFrameError(f"binary frame of {len(frame)} bytes")
    if len(frame) > MAX_FRAME_BYTES:
        raise MalformedFrameError(f"text frame of {len(frame)} characters")
    try:
        message = json.loads(frame)
    except (ValueError, RecursionError):
        message = None
    if not isinstance(message, dict):
        raise MalformedFrameError(f"not a JSON object ({len(frame)} characters)")
    kind = message.get("type")
    if kind == "event":
        kind = message.get("eventType")
    if not isinstance(kind, str) or not kind:
        raise MalformedFrameError("a message without a type")
    if kind not in EVENT_TYPES:
        return Frame(kind[:40], message)  # a control message, or a type this client does not know
    get = message.get
    channel, match_id, league_id, ts, data = get("channel"), get("matchId"), get("leagueId"), get("ts"), get("data")
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise MalformedFrameError(f"{kind} event on an unknown channel")
    if not (isinstance(match_id, str) and isinstance(league_id, str) and match_id and league_id):
        raise MalformedFrameError(f"{kind} event without matchId or leagueId")
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise MalformedFrameError(f"{kind} event without an integer ts")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MalformedFrameError(f"{kind} event whose data is not an object")
    return FeedEvent(channel, kind, match_id, league_id, ts, data)


def match_events(asset_events: Iterable[Any]) -> list[dict[str, Any]]:
    """
    The live events in a DAG run's ``triggering_asset_events[asset]``: each once, oldest first.

    Airflow may start one run for several events, and may hand one event to a run twice; the
    watcher's flush markers carry no event and are left out. Events with the same ``ts`` (a burst)
    keep the order in which the watcher fired them.

    :param asset_events: ``context["triggering_asset_events"][asset]``.
    """
    events: dict[str, tuple[int, float, dict[str, Any]]] = {}
    for asset_event in asset_events:
        payload = (getattr(asset_event, "extra", None) or {}).get("payload")
        if isinstance(payload, dict) and "key" in payload:
            fired = getattr(asset_event, "timestamp", None)  # when the asset event was made
            order = fired.timestamp() if isinstance(fired, datetime.datetime) else 0.0
            events.setdefault(payload["key"], (payload["ts"], order, payload))
    return [payload for _, _, payload in sorted(events.values(), key=lambda e: (e[0], e[1]))]


class Counts(NamedTuple):
    """
    How many MAIN events of one (match, type) a :class:`Deduplicator` remembers.

    :param identity: those with an identity key.
    :param fallback: those with a fallback key (the WebSocket's data lacked a field the identity needs).
    """

    identity: int
    fallback: int


# What a Deduplicator remembers of a key: (ts, channel, match_id, type, identity); "" for an unreadable key.
_Entry = tuple[int, str, str, str, bool]


class Deduplicator:
    """
    Remembers the keys of the last ``capacity`` events; bounded, so memory stays flat however long
    the feed runs.

    ``watermark`` is the newest ``ts`` seen. ``floor`` is the ``ts`` below which memory no longer
    reaches: an unknown event older than it is taken as a replay of one already seen, unless it was
    backfilled (rebuilt from REST, so never a replay).

    For reconciliation it also counts the MAIN events it remembers per (match, type), identity and
    fallback keys apart: see :meth:`count`.

    :param capacity: how many keys to remember.
    """

    def __init__(self, capacity: int = 2048) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._keys: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._counts: collections.Counter[tuple[str, str, bool]] = collections.Counter()
        self.watermark: int | None = None
        self.floor: int | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def first_time(self, event: FeedEvent) -> bool:
        """
        Record ``event``; True the first time it is seen, False for a repeat or a replay from before ``floor``.

        :param event: the event; a backfilled one is never taken for a replay by its ``ts``.
        """
        key = event.key
        if key in self._keys or (self.floor is not None and event.ts < self.floor and not event.backfilled):
            return False
        self._remember(key, (event.ts, event.channel, event.match_id, event.type, event.identity))
        while len(self._keys) > self.capacity:
            self._forget_oldest()
        self.watermark = event.ts if self.watermark is None else max(self.watermark, event.ts)
        return True

    def seen(self, key: str) -> bool:
        """
        Whether ``key`` is remembered; records nothing.

        :param key: an event's :attr:`FeedEvent.key`.
        """
        return key in self._keys

    def count(self, match_id: str, event_type: str) -> Counts:
        """
        How many MAIN events of a match and type are remembered, by kind of key.

        :param match_id: the match.
        :param event_type: the MAIN type, e.g. ``goal``.
        """
        return Counts(self._counts[match_id, event_type, True], self._counts[match_id, event_type, False])

    def matches(self, channel: str | None = None) -> set[str]:
        """
        The matches of the remembered events: what a restarted watcher reconciles.

        :param channel: only those of events on this channel; None for every channel.
        """
        return {entry[2] for entry in self._keys.values() if entry[2] and (channel is None or entry[1] == channel)}

    def _remember(self, key: str, entry: _Entry) -> None:
        self._keys[key] = entry
        if entry[1] == "MAIN":
            self._counts[entry[2], entry[3], entry[4]] += 1

    def _forget_oldest(self) -> None:
        _, (ts, channel, match_id, event_type, identity) = self._keys.popitem(last=False)
        if channel == "MAIN":
            slot = (match_id, event_type, identity)
            self._counts[slot] -= 1
            if not self._counts[slot]:
                del self._counts[slot]
        self.floor = ts if self.floor is None else max(self.floor, ts)

    def to_state(self, keys: int = 256) -> dict[str, Any]:
        """
        A small JSON-safe snapshot to store: the newest ``keys`` keys, ``floor`` and ``watermark``.

        The counts and matches are not stored: :meth:`from_state` reads them back from the keys.

        :param keys: how many keys to keep; the older ones count as seen through ``floor``.
        """
        kept: list[list[Any]] = []
        floor = self.floor
        for key, (ts, *_) in reversed(self._keys.items()):
            if len(kept) == keys:
                floor = ts if floor is None else max(floor, ts)
                break
            kept.append([key, ts])
        kept.reverse()
        watermark = max((ts for _, ts in kept), default=None)
        return {"watermark": watermark, "floor": floor, "keys": kept}

    @classmethod
    def from_state(cls, state: object, capacity: int = 2048) -> Deduplicator:
        """
        Rebuild from :meth:`to_state`'s output; anything unreadable starts empty.

        :param state: the snapshot.
        :param capacity: as for the constructor.
        """
        dedupe = cls(capacity)
        if not isinstance(state, dict):
            return dedupe
        keys = state.get("keys")
        for item in keys if isinstance(keys, list) else []:
            if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and _is_int(item[1]):
                key, ts = item
                if key in dedupe._keys:
                    continue
                parts = parse_key(key)  # None for an older version's hashed key: remembered, not counted
                dedupe._remember(key, (ts, *parts) if parts is not None else (ts, "", "", "", False))
        for name in ("watermark", "floor"):
            if _is_int(state.get(name)):
                setattr(dedupe, name, state[name])
        while len(dedupe._keys) > capacity:
            dedupe._forget_oldest()
        return dedupe


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
