"""The WebSocket's rules without a socket (airflow_sfi.sandbox.live): match scripts, playback, admission, expiry."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from airflow_sfi.sandbox import Feed, MatchScript, Sandbox, ScriptedEvent, default_matches
from airflow_sfi.sandbox.live import HandshakeRefusedError, Session
from tests.helpers import FixedClock

T0 = 1_700_000_000.0
M1, M2, M3 = "d2a1e6f4b3c50001", "d2a1e6f4b3c50002", "d2a1e6f4b3c50003"
L1, L2 = "e8f1c2d3a4b50001", "e8f1c2d3a4b50002"


class Sink:
    """A connection's two callbacks, keeping what the feed sends."""

    def __init__(self) -> None:
        self.frames: list[str | bytes] = []
        self.closes: list[tuple[int, str]] = []

    def send(self, frame: str | bytes) -> None:
        self.frames.append(frame)

    def close(self, code: int, reason: str) -> None:
        self.closes.append((code, reason))

    def take(self) -> list[dict[str, Any]]:
        messages = [json.loads(f) for f in self.frames]
        self.frames.clear()
        return messages


def token(sandbox: Sandbox, key: str = "sandbox-key-pro") -> str:
    answer = sandbox.answer("/v1/ws/new/", {"t": [key]}, {})[0]
    assert answer is not None
    return str(json.loads(answer.body)["result"][0]["token"])


def shape(script: MatchScript) -> list[tuple[Any, ...]]:
    return [(e.minute, e.channel, e.type, e.event_type, dict(e.data or {})) for e in script.events]


def test_build_lays_out_a_match_with_counted_scores() -> None:
    script = MatchScript.build(M1, L1, [(30, "away"), (10, "home"), (10, "home")], stats_every=45, odds_every=90)
    assert (script.match_id, script.league_id) == (M1, L1)
    assert shape(script) == [
        (0, "MAIN", "match_start", None, {"minute": 0}),
        (10, "MAIN", "goal", None, {"minute": 10, "team": "home", "score": [1, 0]}),
        (10, "MAIN", "goal", None, {"minute": 10, "team": "home", "score": [2, 0]}),
        (30, "MAIN", "goal", None, {"minute": 30, "team": "away", "score": [2, 1]}),
        (45, "STATS", "event", "stats_update", {"minute": 45, "possession": [50, 50], "shots": [10, 6]}),
        (45, "MAIN", "halftime", None, {"minute": 45, "score": [2, 1]}),
        (46, "MAIN", "second_half_start", None, {"minute": 46}),
        (90, "STATS", "event", "stats_update", {"minute": 90, "possession": [55, 45], "shots": [15, 9]}),
        (90, "ODDS", "event", "odds_update", {"minute": 90, "home": 1.65, "draw": 3.7, "away": 4.5}),
        (90, "MAIN", "match_end", None, {"minute": 90, "score": [2, 1]}),
    ]


def test_build_realtime_twins_and_extra_events() -> None:
    extra = ScriptedEvent(90, "ODDS", "event", "batch_update", {"updates": []})
    script = MatchScript.build(M2, L1, [(90, "away")], stats_every=None, odds_every=None, realtime=True, extra=[extra])
    assert [(e.minute, e.channel, e.type) for e in script.events] == [
        (0, "MAIN", "match_start"),
        (0, "MAIN_REALTIME", "match_start"),
        (45, "MAIN", "halftime"),
        (45, "MAIN_REALTIME", "halftime"),
        (46, "MAIN", "second_half_start"),
        (46, "MAIN_REALTIME", "second_half_start"),
        (90, "MAIN", "goal"),
        (90, "MAIN_REALTIME", "goal"),
        (90, "ODDS", "event"),
        (90, "ODDS_REALTIME", "event"),
        (90, "MAIN", "match_end"),
        (90, "MAIN_REALTIME", "match_end"),
    ]
    assert script.events[9].data == {"updates": []} and script.events[9].event_type == "batch_update"


def test_default_matches_are_three_fixed_matches_in_two_leagues_with_a_burst() -> None:
    matches = default_matches()
    assert matches == default_matches()
    assert [(m.match_id, m.league_id, len(m.events)) for m in matches] == [(M1, L1, 19), (M2, L1, 30), (M3, L2, 16)]
    burst = [e for e in matches[0].events if e.minute == 71]
    assert [(e.type, dict(e.data or {})) for e in burst] == [
        ("goal", {"minute": 71, "team": "home", "score": [2, 1]}),
        ("goal", {"minute": 71, "team": "home", "score": [3, 1]}),
        ("goal", {"minute": 71, "team": "away", "score": [3, 2]}),
    ]
    assert Counter(e.channel for e in matches[1].events) == {
        "MAIN": 6,
        "MAIN_REALTIME": 6,
        "STATS": 6,
        "STATS_REALTIME": 6,
        "ODDS": 3,
        "ODDS_REALTIME": 3,
    }
    assert [e.event_type for e in matches[0].events if e.channel == "STATS"].count("batch_update") == 1
    # Match 3 scores at 45, before halftime.
    assert [e.type for e in matches[2].events if e.minute == 45] == ["goal", "event", "halftime"]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MatchScript("D2A1E6F4B3C50001", L1, ()), "match_id must be 16 lowercase hex"),
        (lambda: MatchScript(M1, "e8f1c2d3a4b5000", ()), "league_id must be 16 lowercase hex"),
        (lambda: MatchScript(M1, L1, (ScriptedEvent(2, "MAIN", "goal"), ScriptedEvent(1, "MAIN", "goal"))), "order"),
        (lambda: ScriptedEvent(1, "GOALS", "goal"), "channel 'GOALS'"),
        (lambda: ScriptedEvent(1, "MAIN", "corner"), "MAIN carries types"),
        (lambda: ScriptedEvent(1, "MAIN", "goal", "stats_update"), "MAIN carries types"),
        (lambda: ScriptedEvent(1, "STATS", "goal"), "STATS carries type 'event'"),
        (lambda: ScriptedEvent(1, "STATS_REALTIME", "event", "odds_update"), "stats_update"),
        (lambda: ScriptedEvent(-1, "MAIN", "goal"), "minute"),
        (lambda: ScriptedEvent(math.nan, "MAIN", "goal"), "minute"),
        (lambda: ScriptedEvent(1, "MAIN", "goal", data={"when": object()}), "data must be JSON"),
        (lambda: MatchScript.build(M1, L1, [(91, "home")]), "a goal is"),
        (lambda: MatchScript.build(M1, L1, [(10, "visitors")]), "a goal is"),
        (lambda: MatchScript.build(M1, L1, stats_every=0), "at least 1"),
        (lambda: Feed(Sandbox(), replay=-1), "replay"),
        (lambda: Feed(Sandbox()).emit("MAIN", "goal", match_id=M1, league_id="nope"), "league_id"),
        (lambda: Feed(Sandbox()).emit("ODDS", "odds_update", match_id=M1, league_id=L1), "ODDS carries"),
        (lambda: Feed(Sandbox()).play(minute_seconds=0), "minute_seconds"),
        (lambda: Feed(Sandbox()).refuse(999), "999"),
        (lambda: Sandbox(max_subscribe=-1), "max_subscribe"),
    ],
)
def test_bad_scripts_and_options_are_refused(make: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_scripted_data_is_a_frozen_copy_with_a_minute_by_default() -> None:
    data = {"minute": 3, "score": [1, 0]}
    event = ScriptedEvent(3, "MAIN", "goal", data=data)
    data["score"].append(9)  # type: ignore[attr-defined]
    assert event.data == {"minute": 3, "score": [1, 0]}
    with pytest.raises(TypeError):
        event.data["x"] = 1  # type: ignore[index]
    assert ScriptedEvent(12.0, "MAIN", "halftime").data == {"minute": 12}
    assert ScriptedEvent(12.5, "MAIN", "halftime").data == {"minute": 12.5}
    assert hash(event) == hash(ScriptedEvent(3, "MAIN", "goal", data={"other": 1}))  # data is not hashed
    assert MatchScript(M1, L1, [event]).events == (event,)  # type: ignore[arg-type]


def test_playback_emits_every_scripted_event_once_all_matches_at_once() -> None:
    feed = Feed(Sandbox())
    started = time.monotonic()
    playback = feed.play(minute_seconds=0.005)
    assert playback.wait(10) is True and playback.done is True
    assert time.monotonic() - started >= 90 * 0.005
    messages = [e.message for e in feed.emitted()]
    assert len(messages) == 65 == playback.emitted
    scripted = Counter(
        (m.match_id, e.channel, e.type, e.event_type, json.dumps(dict(e.data or {}), sort_keys=True))
        for m in default_matches()
        for e in m.events
    )
    sent = Counter(
        (g["matchId"], g["channel"], g["type"], g.get("eventType"), json.dumps(g["data"], sort_keys=True))
        for g in messages
    )
    assert sent == scripted
    stamps = [m["ts"] for m in messages]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= 90 * 5 - 1
    # Minute 0 of every match together, first; then the goals of all three matches in minute order.
    assert [(m["matchId"], m["channel"], m["type"]) for m in messages[:4]] == [
        (M1, "MAIN", "match_start"),
        (M2, "MAIN", "match_start"),
        (M2, "MAIN_REALTIME", "match_start"),
        (M3, "MAIN", "match_start"),
    ]
    assert len({m["ts"] for m in messages[:4]}) == 1
    goals = [(m["matchId"], m["data"]["minute"]) for m in messages if m["type"] == "goal" and m["channel"] == "MAIN"]
    assert goals == [(M3, 5), (M1, 12), (M2, 23), (M1, 37), (M3, 45), (M2, 58), (M1, 71), (M1, 71), (M1, 71), (M3, 88)]
    # The burst: three goals back to back at one moment.
    burst = [i for i, m in enumerate(messages) if m["type"] == "goal" and m["data"]["minute"] == 71]
    assert burst == [burst[0], burst[0] + 1, burst[0] + 2]
    assert [messages[i]["data"]["score"] for i in burst] == [[2, 1], [3, 1], [3, 2]]
    assert len({messages[i]["ts"] for i in burst}) == 1
    assert [m["leagueId"] for m in messages if m["type"] == "match_end" and m["channel"] == "MAIN"] == [L1, L1, L2]


def test_playback_stops_and_loops() -> None:
    feed = Feed(Sandbox())
    slow = feed.play(minute_seconds=10)
    deadline = time.monotonic() + 2
    while slow.emitted < 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    slow.stop()
    assert (slow.wait(0), slow.done, slow.emitted) == (False, False, 4)  # minute 0 only
    short = MatchScript(M1, L1, (ScriptedEvent(0, "MAIN", "match_start"), ScriptedEvent(2, "MAIN", "match_end")))
    looping = feed.play([short], minute_seconds=0.002, loop=True)
    while looping.emitted < 6 and time.monotonic() < deadline:
        time.sleep(0.005)
    feed.stop_playing()
    assert looping.wait(1) is False and looping.done is False
    types = [e.message["type"] for e in feed.emitted()[4:]]
    assert len(types) >= 6 and types == (["match_start", "match_end"] * len(types))[: len(types)]


def test_admission_order_limits_and_records_without_a_socket() -> None:
    clock = FixedClock(T0)
    sandbox = Sandbox(ttl=60, max_connections=1, max_subscribe=3, clock=clock)
    feed = Feed(sandbox)
    pro = token(sandbox)
    assert sandbox.token_limits(pro) == (("MAIN",), 1, 3)
    assert sandbox.token_limits("never-issued") is None
    first = Sink()
    session = feed.connect(pro, first.send, first.close, client_port=5000)
    over = Sink()
    refused_on_the_socket = feed.connect(pro, over.send, over.close)  # accepted, then told and closed
    assert refused_on_the_socket.refused == 4003 and first.frames == first.closes == []
    assert over.take() == [{"type": "error", "code": "CONNECTION_LIMIT", "message": "At most 1 connection per token"}]
    assert over.closes == [(4003, "connection limit")]
    refusals = []
    for attempt, path in [("unknown-token-value", "/"), (pro, "/feed")]:
        with pytest.raises(HandshakeRefusedError) as refused:
            feed.connect(attempt, first.send, first.close, path=path)
        refusals.append((refused.value.status, refused.value.text))
    feed.refuse(503)
    with pytest.raises(HandshakeRefusedError) as refused:
        feed.connect(pro, first.send, first.close, path="/feed")
    refusals.append((refused.value.status, refused.value.text))
    feed.refuse(None)
    assert refusals == [
        (401, "Invalid or expired token"),
        (404, "Not Found"),
        (503, "Service Unavailable"),
    ]
    clock.now = T0 + 1
    feed.closed(refused_on_the_socket, 4003)
    feed.closed(session, 1000)
    second = Sink()
    reopened = feed.connect(pro, second.send, second.close)
    assert isinstance(reopened, Session) and pro not in repr(reopened) and reopened.refused is None
    assert [(r.opened_at, r.refused, r.closed_at, r.close_code) for r in feed.connections()] == [
        (T0, None, T0 + 1, 1000),
        (T0, 4003, T0 + 1, 4003),
        (T0, 401, T0, None),
        (T0, 404, T0, None),
        (T0, 503, T0, None),
        (T0 + 1, None, None, None),
    ]
    assert feed.connections()[0].client_port == 5000
    assert {r.token_fingerprint for r in feed.connections()} == {pro[:4] + "…", "unkn…"}
    assert (feed.limit_refusals(), feed.errors_sent()) == (1, {"CONNECTION_LIMIT": 1})


def test_over_max_connections_a_socket_is_refused_counted_and_never_open() -> None:
    clock = FixedClock(T0)
    sandbox = Sandbox(ttl=60, clock=clock)
    feed = Feed(sandbox)
    pro, ultra = token(sandbox), token(sandbox, "sandbox-key-ultra")
    assert sandbox.token_limits(pro) == (("MAIN",), 2, 2)
    assert (feed.limit_refusals(), feed.errors_sent(), feed.socket_timeline(), feed.max_sockets()) == (0, {}, [], 0)
    sinks = [Sink() for _ in range(4)]
    a = feed.connect(pro, sinks[0].send, sinks[0].close)
    clock.now = T0 + 1
    b = feed.connect(pro, sinks[1].send, sinks[1].close)
    clock.now = T0 + 2
    third = feed.connect(pro, sinks[2].send, sinks[2].close)
    limit = {"type": "error", "code": "CONNECTION_LIMIT", "message": "At most 2 connections per token"}
    assert (third.refused, sinks[2].take(), sinks[2].closes) == (4003, [limit], [(4003, "connection limit")])
    assert feed.sessions() == [a, b] and feed.check_tokens() == 0
    # Nothing is answered to it, nothing is routed to it.
    for session in (a, third):
        feed.receive(session, '{"action":"subscribe","channel":"MAIN","scope":"all"}')
        feed.receive(session, '{"action":"ping"}')
    feed.emit("MAIN", "goal", match_id=M1, league_id=L1)
    assert sinks[2].frames == [] and [e.recipients for e in feed.emitted()] == [1]
    assert [m["type"] for m in sinks[0].take()] == ["subscribed", "pong", "goal"]
    clock.now = T0 + 3
    feed.closed(third, 4003)
    assert (feed.limit_refusals(), feed.errors_sent()) == (1, {"CONNECTION_LIMIT": 1})
    clock.now = T0 + 4
    feed.closed(a, 1000)
    feed.closed(a, 1000)  # heard of twice, counted once
    clock.now = T0 + 5
    d = feed.connect(pro, sinks[3].send, sinks[3].close)  # closing one freed a slot
    assert d.refused is None and sinks[3].frames == sinks[3].closes == []
    clock.now = T0 + 6
    e = feed.connect(ultra, Sink().send, Sink().close)
    assert feed.sessions() == [b, d, e]
    fp_pro, fp_ultra = pro[:4] + "…", ultra[:4] + "…"
    assert feed.socket_timeline() == [
        (T0, fp_pro, 1),
        (T0 + 1, fp_pro, 2),
        (T0 + 4, fp_pro, 1),
        (T0 + 5, fp_pro, 2),
        (T0 + 6, fp_ultra, 1),
    ]
    assert pro not in repr(feed.socket_timeline())
    maxima = [feed.max_sockets(pro), feed.max_sockets(ultra), feed.max_sockets(), feed.max_sockets("other")]
    assert maxima == [2, 1, 2, 0]
    assert [r.refused for r in feed.connections()] == [None, None, 4003, None, None]
    assert feed.connections()[2].subscriptions == ()


def test_subscription_limit_is_counted_and_unsubscribe_frees_a_slot() -> None:
    feed = Feed(Sandbox(ttl=60, clock=FixedClock(T0)))
    sink = Sink()
    session = feed.connect(token(feed.sandbox), sink.send, sink.close)  # PRO: 2 subscriptions
    commands: list[dict[str, Any]] = [
        {"action": "subscribe", "channel": "MAIN", "scope": "all"},
        {"action": "subscribe", "channel": "MAIN", "scope": "match", "id": M1},
        {"action": "subscribe", "channel": "MAIN", "scope": "league", "id": L1},
        {"action": "unsubscribe", "channel": "MAIN", "scope": "match", "id": M1},
        {"action": "subscribe", "channel": "MAIN", "scope": "league", "id": L1},
        {"action": "subscribe", "channel": "MAIN", "scope": "match", "id": M2},
        {"action": "unsubscribe", "channel": "MAIN", "scope": "all", "id": None},
        {"action": "subscribe", "channel": "MAIN", "scope": "match", "id": M2},
    ]
    for command in commands:
        feed.receive(session, json.dumps(command))
    assert [(m["type"], m.get("topicKey") or m["code"]) for m in sink.take()] == [
        ("subscribed", "MAIN:all"),
        ("subscribed", f"MAIN:match:{M1}"),
        ("error", "SUBSCRIPTION_LIMIT"),
        ("unsubscribed", f"MAIN:match:{M1}"),
        ("subscribed", f"MAIN:league:{L1}"),
        ("error", "SUBSCRIPTION_LIMIT"),
        ("unsubscribed", "MAIN:all"),
        ("subscribed", f"MAIN:match:{M2}"),
    ]
    assert list(session.topics) == [f"MAIN:league:{L1}", f"MAIN:match:{M2}"]
    feed.receive(session, '{"action":"subscribe","channel":"STATS","scope":"all"}')
    feed.receive(session, "not json")
    assert feed.errors_sent() == {"SUBSCRIPTION_LIMIT": 2, "CHANNEL_NOT_ALLOWED": 1, "INVALID_MESSAGE": 1}
    assert feed.limit_refusals() == 0


def test_check_tokens_closes_once_and_nothing_more_is_routed() -> None:
    clock = FixedClock(T0)
    sandbox = Sandbox(ttl=60, clock=clock)
    feed = Feed(sandbox)
    sink = Sink()
    session = feed.connect(token(sandbox), sink.send, sink.close)
    feed.receive(session, '{"action":"subscribe","channel":"MAIN","scope":"all"}')
    clock.now = T0 + 59.9
    assert feed.check_tokens() == 0
    clock.now = T0 + 60
    assert (feed.check_tokens(), feed.check_tokens()) == (1, 0)
    assert sink.closes == [(4001, "token expired")]
    feed.emit("MAIN", "goal", match_id=M1, league_id=L1)
    assert [e.recipients for e in feed.emitted()] == [0]
    assert sink.take() == [
        {"type": "subscribed", "channel": "MAIN", "scope": "all", "id": None, "topicKey": "MAIN:all"}
    ]
    assert feed.sessions() == [session]  # closing, but open until the transport says it closed
    feed.closed(session, 4001)
    assert feed.sessions() == [] and feed.connections()[0].close_code == 4001
