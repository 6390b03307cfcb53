from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_sfi.exceptions import SfiSubscriptionError
from airflow_sfi.protocol.messages import (
    Deduplicator,
    FeedEvent,
    Frame,
    MalformedFrameError,
    Subscription,
    check_plan,
    match_events,
    parse_frame,
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
        parse_frame(frame)


def test_the_dedupe_key_follows_content_and_time() -> None:
    assert event(1).key == event(1).key
    assert event(1).key != event(2).key
    assert event(1, minute=1).key != event(1, minute=2).key
    payload = event(7).to_payload()
    assert json.loads(json.dumps(payload)) == payload
    assert payload["key"] == event(7).key
    assert set(payload) == {"key", "channel", "type", "match_id", "league_id", "ts", "data"}


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
