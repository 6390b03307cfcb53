from __future__ import annotations

import contextlib
import dataclasses
import json
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_sfi.exceptions import SfiSubscriptionError
from airflow_sfi.protocol import messages
from airflow_sfi.protocol.messages import (
    Counts,
    Deduplicator,
    FeedEvent,
    Frame,
    KeyParts,
    MalformedFrameError,
    Subscription,
    check_plan,
    event_minute,
    is_identity_key,
    match_events,
    minute_parts,
    parse_frame,
    parse_key,
)

MATCH = "0123456789abcdef"
LEAGUE = "fedcba9876543210"


def goal(ts: int = 1_700_000_000_000, **changes: object) -> dict[str, object]:
    message: dict[str, object] = {
        "type": "goal",
        "channel": "MAIN",
        "matchId": MATCH,
        "leagueId": LEAGUE,
        "ts": ts,
        "data": {"minute": 23, "team": "home", "score": [1, 0]},
    }
    message.update(changes)
    return message


def event(ts: int, minute: int = 1) -> FeedEvent:
    return FeedEvent("MAIN", "goal", MATCH, LEAGUE, ts, {"minute": minute})


@pytest.mark.parametrize(
    ("channel", "scope", "id_", "code"),
    [
        ("MAINS", "all", None, "INVALID_CHANNEL"),
        ("MAIN", "team", None, "INVALID_SCOPE"),
        ("MAIN", "all", MATCH, "INVALID_SCOPE"),
        ("MAIN", "match", None, "INVALID_SCOPE"),
        ("MAIN", "match", "", "INVALID_SCOPE"),
        ("MAIN", "league", "a b", "INVALID_SCOPE"),
        ("MAIN", "match", "../x", "INVALID_SCOPE"),
        ("MAIN", "match", "x" * 65, "INVALID_SCOPE"),
    ],
)
def test_bad_subscriptions_are_refused_before_any_connection(
    channel: str, scope: str, id_: str | None, code: str
) -> None:
    with pytest.raises(SfiSubscriptionError) as raised:
        Subscription(channel, scope, id_)
    assert raised.value.error_code == code


def test_subscription_names_its_topic_and_command() -> None:
    assert Subscription("MAIN").topic_key == "MAIN:all"
    league = Subscription("STATS", "league", LEAGUE)
    assert league.topic_key == f"STATS:league:{LEAGUE}"
    assert json.loads(league.command()) == {"action": "subscribe", "channel": "STATS", "scope": "league", "id": LEAGUE}
    assert json.loads(Subscription("MAIN").command("unsubscribe")) == {
        "action": "unsubscribe",
        "channel": "MAIN",
        "scope": "all",
    }


def test_subscription_matches_by_channel_and_scope() -> None:
    goal_event = event(1)
    assert Subscription("MAIN").matches(goal_event)
    assert Subscription("MAIN", "match", MATCH).matches(goal_event)
    assert Subscription("MAIN", "league", LEAGUE).matches(goal_event)
    assert not Subscription("MAIN", "match", LEAGUE).matches(goal_event)
    assert not Subscription("STATS").matches(goal_event)


def test_check_plan_names_the_missing_channel_and_the_limit() -> None:
    with pytest.raises(SfiSubscriptionError, match="STATS") as raised:
        check_plan([Subscription("MAIN"), Subscription("STATS")], ["MAIN"], 5)
    assert raised.value.error_code == "CHANNEL_NOT_ALLOWED"
    with pytest.raises(SfiSubscriptionError, match="allows 1 per connection") as raised:
        check_plan([Subscription("MAIN"), Subscription("MAIN", "match", MATCH)], ["MAIN"], 1)
    assert raised.value.error_code == "SUBSCRIPTION_LIMIT"
    check_plan([Subscription("MAIN")], ["MAIN"], 1)


def test_parse_frame_reads_events_of_both_shapes() -> None:
    parsed = parse_frame(json.dumps(goal()))
    assert parsed == FeedEvent(
        "MAIN", "goal", MATCH, LEAGUE, 1_700_000_000_000, {"minute": 23, "team": "home", "score": [1, 0]}
    )
    stats = parse_frame(
        json.dumps(
            {
                "type": "event",
                "eventType": "stats_update",
                "channel": "STATS",
                "matchId": MATCH,
                "leagueId": LEAGUE,
                "ts": 5,
            }
        )
    )
    assert isinstance(stats, FeedEvent)
    assert (stats.type, stats.channel, dict(stats.data)) == ("stats_update", "STATS", {})


@pytest.mark.parametrize("kind", ["subscribed", "unsubscribed", "error", "pong"])
def test_parse_frame_returns_control_frames(kind: str) -> None:
    parsed = parse_frame(json.dumps({"type": kind, "code": "SUBSCRIPTION_LIMIT"}))
    assert isinstance(parsed, Frame)
    assert parsed.type == kind
    assert parsed.error_code == "SUBSCRIPTION_LIMIT"


@pytest.mark.parametrize("id_", ["ABCDEF0123456789", "0123", "rt-match_42", "x" * 64])
def test_any_safe_id_subscribes(id_: str) -> None:
    # The vendor's MAIN_REALTIME ids differ from its 16-hex REST ids.
    assert Subscription("MAIN", "match", id_).topic_key == f"MAIN:match:{id_}"


@pytest.mark.parametrize(
    ("message", "kind"), [({"type": "heartbeat"}, "heartbeat"), ({"type": "event", "eventType": "weather"}, "weather")]
)
def test_a_well_formed_message_of_an_unknown_type_is_a_frame_not_an_error(message: dict[str, str], kind: str) -> None:
    parsed = parse_frame(json.dumps(message))
    assert isinstance(parsed, Frame) and parsed.type == kind and not parsed.known
    assert parse_frame(json.dumps({"type": "pong"})).known  # type: ignore[union-attr]


def test_control_frames_are_matched_to_their_subscription() -> None:
    league = Subscription("MAIN", "league", LEAGUE)
    ack = Frame("subscribed", {"type": "subscribed", "topicKey": f"MAIN:league:{LEAGUE}"})
    error = Frame("error", {"type": "error", "channel": "MAIN", "scope": "league", "id": LEAGUE})
    assert ack.about(league) and error.about(league)
    assert not ack.about(Subscription("MAIN")) and not error.about(Subscription("MAIN"))


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (b"\x00\x01", "binary frame"),
        ("not json {", "not a JSON object"),
        ("[1, 2]", "not a JSON object"),
        ("[" * 100_000, "not a JSON object"),
        (json.dumps({"type": 7}), "without a type"),
        (json.dumps({"type": "event"}), "without a type"),
        (json.dumps(goal(matchId=None)), "without matchId"),
        (json.dumps(goal(channel="RADIO")), "unknown channel"),
        (json.dumps(goal(ts=True)), "integer ts"),
        (json.dumps(goal(ts="1700000000000")), "integer ts"),
        (json.dumps(goal(data=[1])), "data is not an object"),
        ("x" * ((1 << 20) + 1), "text frame of"),
    ],
)
def test_malformed_frames_say_why_without_quoting_them(frame: str | bytes, why: str) -> None:
    with pytest.raises(MalformedFrameError, match=why) as raised:
        parse_frame(frame)
    assert "matchId" not in str(raised.value) or why == "without matchId"
    assert len(str(raised.value)) < 120


@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=50),
        st.recursive(
            st.none() | st.integers() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(["type", "eventType", "channel", "matchId", "leagueId", "ts", "data"]),
                    inner,
                    max_size=7,
                )
            ),
        ).map(json.dumps),
    )
)
def test_parse_frame_raises_nothing_but_malformed(frame: str | bytes) -> None:
    with contextlib.suppress(MalformedFrameError):
        parsed = parse_frame(frame)
        if isinstance(parsed, FeedEvent):  # and every event it reads has a key that reads back
            parts = parse_key(parsed.key)
            assert parts is not None and parts.identity == parsed.identity == is_identity_key(parsed.key)


def test_a_fallback_key_follows_content_and_time() -> None:
    assert event(1).key == event(1).key
    assert event(1).key != event(2).key
    assert event(1, minute=1).key != event(1, minute=2).key
    assert event(7).key.startswith(f"MAIN:{MATCH}:goal:7:")
    payload = event(7).to_payload()
    assert json.loads(json.dumps(payload)) == payload
    assert payload["key"] == event(7).key
    assert set(payload) == {"key", "channel", "type", "match_id", "league_id", "ts", "data", "backfilled"}
    assert payload["backfilled"] is False
    assert FeedEvent("MAIN", "halftime", MATCH, LEAGUE, 1, {}, backfilled=True).to_payload()["backfilled"] is True


def test_a_goal_with_minute_team_and_score_has_an_identity_key_whatever_its_ts() -> None:
    first = parse_frame(json.dumps(goal(ts=1)))
    again = parse_frame(json.dumps(goal(ts=2, data={"score": [1, 0], "team": "home", "minute": 23, "x": 1})))
    assert isinstance(first, FeedEvent) and isinstance(again, FeedEvent)
    assert first.key == again.key == f"MAIN:{MATCH}:goal:A:23:1-0"
    assert first.identity and first.slot == (MATCH, "goal")
    away = FeedEvent("MAIN", "goal", MATCH, LEAGUE, 1, {"minute": "45+2", "team": "away", "score": [0, 1]})
    assert away.key == f"MAIN:{MATCH}:goal:B:47:0-1"
    assert FeedEvent("MAIN", "goal", MATCH, LEAGUE, 1, {"minute": 71.0, "team": "B", "score": (2, 3)}).key == (
        f"MAIN:{MATCH}:goal:B:71:2-3"
    )


def test_a_burst_of_goals_at_one_minute_keeps_distinct_keys() -> None:
    scores = [[1, 0], [2, 0], [2, 1]]
    teams = ["home", "home", "away"]
    burst = [
        FeedEvent("MAIN", "goal", MATCH, LEAGUE, 5, {"minute": 71, "team": team, "score": score})
        for team, score in zip(teams, scores, strict=True)
    ]
    assert [e.key for e in burst] == [
        f"MAIN:{MATCH}:goal:A:71:1-0",
        f"MAIN:{MATCH}:goal:A:71:2-0",
        f"MAIN:{MATCH}:goal:B:71:2-1",
    ]


@pytest.mark.parametrize("kind", ["match_start", "halftime", "second_half_start", "match_end"])
def test_a_match_phase_is_keyed_by_match_and_type_alone(kind: str) -> None:
    keys = {FeedEvent("MAIN", kind, MATCH, LEAGUE, ts, {"minute": ts}).key for ts in (1, 2)}
    assert keys == {f"MAIN:{MATCH}:{kind}"}
    assert is_identity_key(f"MAIN:{MATCH}:{kind}")


@pytest.mark.parametrize(
    ("channel", "kind", "data"),
    [
        ("MAIN", "goal", {"minute": 23, "score": [1, 0]}),  # no team
        ("MAIN", "goal", {"minute": 23, "team": "left", "score": [1, 0]}),
        ("MAIN", "goal", {"minute": 23, "team": "home"}),  # no score
        ("MAIN", "goal", {"minute": 23, "team": "home", "score": [1, True]}),
        ("MAIN", "goal", {"minute": 23, "team": "home", "score": [1, 0, 0]}),
        ("MAIN", "goal", {"minute": 23.5, "team": "home", "score": [1, 0]}),
        ("MAIN", "goal", {"minute": True, "team": "home", "score": [1, 0]}),
        ("MAIN", "goal", {"minute": "soon", "team": ["home"], "score": [1, 0]}),
        ("MAIN_REALTIME", "goal", {"minute": 23, "team": "home", "score": [1, 0]}),
        ("MAIN_REALTIME", "halftime", {}),
        ("STATS", "stats_update", {"minute": 15}),
        ("ODDS", "odds_update", {"minute": 30, "home": 2.1}),
    ],
)
def test_other_events_fall_back_to_a_readable_hashed_key(channel: str, kind: str, data: dict[str, object]) -> None:
    event = FeedEvent(channel, kind, MATCH, LEAGUE, 1_700_000_000_000, data)
    prefix, _, digest = event.key.rpartition(":")
    assert prefix == f"{channel}:{MATCH}:{kind}:1700000000000"
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert not event.identity and not is_identity_key(event.key)
    assert parse_key(event.key) == KeyParts(channel, MATCH, kind, False)
    assert FeedEvent(channel, kind, MATCH, LEAGUE, 1_700_000_000_000, {**data, "extra": 1}).key != event.key


def test_keys_read_back_and_older_hashed_keys_do_not() -> None:
    assert parse_key(f"MAIN:{MATCH}:goal:A:23:1-0") == KeyParts("MAIN", MATCH, "goal", True)
    assert parse_key("MAIN:rt:id:with:colons:match_end") == KeyParts("MAIN", "rt:id:with:colons", "match_end", True)
    for other in ("0123456789abcdef01234567", "", "k1", "MAIN:m:goal:A:23", "MAIN::halftime"):
        assert parse_key(other) is None and not is_identity_key(other)


@pytest.mark.parametrize(
    ("value", "parts"),
    [(71, (71, 0)), ("71", (71, 0)), ("45+2", (45, 2)), (" 90 + 3' ", (90, 3)), ("120+1", (120, 1)), (0.0, (0, 0))],
)
def test_minutes_read_with_added_time(value: object, parts: tuple[int, int]) -> None:
    assert minute_parts(value) == parts
    assert event_minute(value) == sum(parts)


@pytest.mark.parametrize("value", [None, True, -1, 1.5, "", "HT", "45+", "+2", "4500", [71], float("nan")])
def test_unreadable_minutes_are_none(value: object) -> None:
    assert minute_parts(value) is None and event_minute(value) is None


def test_the_key_is_computed_once_per_event() -> None:
    identity = FeedEvent("MAIN", "goal", MATCH, LEAGUE, 1, {"minute": 23, "team": "home", "score": [1, 0]})
    fallback = FeedEvent("STATS", "stats_update", MATCH, LEAGUE, 1, {"minute": 15})
    with (
        mock.patch.object(messages, "event_minute", wraps=messages.event_minute) as minute,
        mock.patch.object(messages.hashlib, "sha256", wraps=messages.hashlib.sha256) as sha256,
    ):
        for _ in range(5):
            assert identity.key and identity.identity and fallback.key and not fallback.identity
    assert (minute.call_count, sha256.call_count) == (1, 1)
    # Cached beside the fields: equality, copies and replace() ignore it.
    assert identity == FeedEvent("MAIN", "goal", MATCH, LEAGUE, 1, {"minute": 23, "team": "home", "score": [1, 0]})
    assert dataclasses.replace(fallback, ts=2).key != fallback.key


def test_deduplicator_drops_repeats_and_stays_bounded() -> None:
    dedupe = Deduplicator(capacity=3)
    assert [dedupe.first_time(event(ts)) for ts in (1, 2, 1, 3)] == [True, True, False, True]
    for ts in range(4, 100):
        assert dedupe.first_time(event(ts))
    assert len(dedupe) == 3
    assert dedupe.watermark == 99
    # Forgotten keys still count as seen: anything older than the oldest remembered is a replay.
    assert dedupe.floor == 96
    assert not dedupe.first_time(event(50))
    assert dedupe.first_time(event(98, minute=9))  # a different event at a remembered time is new


def test_deduplicator_state_survives_a_restart() -> None:
    before = Deduplicator()
    for ts in range(1, 11):
        before.first_time(event(ts))
    state = json.loads(json.dumps(before.to_state(keys=4)))
    after = Deduplicator.from_state(state)
    assert (after.watermark, after.floor, len(after)) == (10, 6, 4)
    # A server that replays the last events after the restart: the ones already fired are dropped.
    assert [after.first_time(event(ts)) for ts in (5, 7, 10, 11)] == [False, False, False, True]


def main_goal(match_id: str, minute: int, team: str, score: list[int], ts: int = 1) -> FeedEvent:
    return FeedEvent("MAIN", "goal", match_id, LEAGUE, ts, {"minute": minute, "team": team, "score": score})


def test_deduplicator_counts_main_events_by_match_type_and_kind_of_key() -> None:
    dedupe = Deduplicator()
    other = "aaaaaaaaaaaaaaaa"
    events = [
        FeedEvent("MAIN", "match_start", MATCH, LEAGUE, 1, {"minute": 0}),
        main_goal(MATCH, 12, "home", [1, 0], ts=2),
        FeedEvent("MAIN", "goal", MATCH, LEAGUE, 3, {"minute": 30}),  # lacking team and score
        main_goal(MATCH, 12, "home", [1, 0], ts=4),  # a repeat: not counted twice
        FeedEvent("MAIN_REALTIME", "goal", "rt-1", LEAGUE, 5, {"minute": 30}),
        FeedEvent("STATS", "stats_update", other, LEAGUE, 6, {"minute": 15}),
    ]
    assert [dedupe.first_time(e) for e in events] == [True, True, True, False, True, True]
    assert dedupe.count(MATCH, "goal") == Counts(identity=1, fallback=1)
    assert dedupe.count(MATCH, "match_start") == (1, 0)
    assert dedupe.count("rt-1", "goal") == dedupe.count(other, "stats_update") == (0, 0)  # MAIN only
    assert dedupe.count(MATCH, "halftime") == (0, 0)
    assert dedupe.matches() == {MATCH, "rt-1", other}
    assert dedupe.matches("MAIN") == {MATCH}
    assert dedupe.seen(events[1].key) and dedupe.seen(events[2].key)
    assert not dedupe.seen(main_goal(MATCH, 40, "away", [1, 1]).key)
    assert len(dedupe) == 5  # seen() recorded nothing


def test_deduplicator_forgets_counts_with_the_keys() -> None:
    dedupe = Deduplicator(capacity=2)
    for ts, score in enumerate(([1, 0], [2, 0], [3, 0]), 1):
        dedupe.first_time(main_goal(MATCH, 10 * ts, "home", score, ts=ts))
    assert dedupe.count(MATCH, "goal") == (2, 0)
    dedupe.first_time(FeedEvent("STATS", "stats_update", "bbbbbbbbbbbbbbbb", LEAGUE, 9, {}))
    dedupe.first_time(FeedEvent("STATS", "stats_update", "bbbbbbbbbbbbbbbb", LEAGUE, 10, {}))
    assert dedupe.count(MATCH, "goal") == (0, 0) and dedupe.matches() == {"bbbbbbbbbbbbbbbb"}


def test_deduplicator_state_keeps_counts_and_matches() -> None:
    before = Deduplicator()
    before.first_time(FeedEvent("MAIN", "match_start", MATCH, LEAGUE, 1, {"minute": 0}))
    before.first_time(main_goal(MATCH, 12, "home", [1, 0], ts=2))
    before.first_time(FeedEvent("MAIN", "goal", MATCH, LEAGUE, 3, {"minute": 30}))
    before.first_time(main_goal("cccccccccccccccc", 5, "away", [0, 1], ts=4))
    before.first_time(FeedEvent("ODDS", "odds_update", "dddddddddddddddd", LEAGUE, 5, {"home": 2.0}))
    state = json.loads(json.dumps(before.to_state(keys=4)))
    after = Deduplicator.from_state(state)
    assert (after.watermark, after.floor, len(after)) == (5, 1, 4)
    assert after.count(MATCH, "goal") == (1, 1) and after.count("cccccccccccccccc", "goal") == (1, 0)
    assert after.count(MATCH, "match_start") == (0, 0)  # not kept: seen through the floor
    assert after.matches() == {MATCH, "cccccccccccccccc", "dddddddddddddddd"}
    assert after.matches("MAIN") == {MATCH, "cccccccccccccccc"}
    # An older version's hashed keys are remembered, but count for no match.
    legacy = Deduplicator.from_state({"keys": [["0123456789abcdef01234567", 7]], "watermark": 7, "floor": None})
    assert legacy.seen("0123456789abcdef01234567") and legacy.matches() == set() and len(legacy) == 1


def test_the_floor_never_drops_a_backfilled_event() -> None:
    dedupe = Deduplicator(capacity=2)
    for ts in range(1_000, 1_010):
        dedupe.first_time(event(ts))
    assert dedupe.floor == 1_007
    halftime = FeedEvent("MAIN", "halftime", MATCH, LEAGUE, 1_005, {"minute": 45, "score": [0, 0]})
    assert not dedupe.first_time(halftime)  # received: older than the floor, a replay
    # Built from REST now, so newer than anything received; and exempt from the floor however the clocks differ.
    assert dedupe.first_time(dataclasses.replace(halftime, ts=2_000, backfilled=True))
    late = FeedEvent("MAIN", "match_end", MATCH, LEAGUE, 1_005, {"minute": 90}, backfilled=True)
    assert dedupe.first_time(late)
    assert not dedupe.first_time(late)  # but once only


@pytest.mark.parametrize("state", [None, "x", {"keys": [["k"], [1, 2], ["k", "1"]], "watermark": "9"}, {"keys": 5}])
def test_unreadable_state_starts_empty(state: object) -> None:
    dedupe = Deduplicator.from_state(state)
    assert (len(dedupe), dedupe.watermark, dedupe.floor) == (0, None, None)
    assert dedupe.first_time(event(1))


def test_match_events_reads_a_batch_once_each_oldest_first_without_markers() -> None:
    from types import SimpleNamespace

    late, early = event(9).to_payload(), event(3).to_payload()
    batch = [
        SimpleNamespace(extra={"payload": late}),
        SimpleNamespace(extra={"payload": {"type": "flush", "watermark": 9}}),
        SimpleNamespace(extra={"payload": early}),
        SimpleNamespace(extra={"payload": late}),
        SimpleNamespace(extra={}),
        SimpleNamespace(extra=None),
    ]
    assert match_events(batch) == [early, late]
    assert match_events([]) == []


def test_match_events_keeps_a_bursts_firing_order() -> None:
    import datetime
    from types import SimpleNamespace

    first, second = (FeedEvent("MAIN", "goal", MATCH, LEAGUE, 5, {"n": n}).to_payload() for n in (1, 2))
    at = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    batch = [
        SimpleNamespace(extra={"payload": second}, timestamp=at + datetime.timedelta(milliseconds=3)),
        SimpleNamespace(extra={"payload": first}, timestamp=at),
    ]
    assert match_events(batch) == [first, second]
