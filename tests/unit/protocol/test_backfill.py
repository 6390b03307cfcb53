from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_sfi.exceptions import SfiResponseError
from airflow_sfi.protocol.backfill import events_from_match, missing
from airflow_sfi.protocol.messages import Deduplicator, FeedEvent, parse_frame
from airflow_sfi.sandbox import Feed, MatchScript, Sandbox, default_matches

MATCH = "0123456789abcdef"
LEAGUE = "fedcba9876543210"
NOW = 1_700_000_500_000
T0 = 1_700_000_000.0


def record(status: str = "ENDED", timer: str = "90:00", events: Any = (), **changes: Any) -> dict[str, Any]:
    """A matches/view/basic item, shaped as the sandbox's."""
    goals = [e for e in events if isinstance(e, dict) and e.get("type") == "goal"]
    item: dict[str, Any] = {
        "id": MATCH,
        "date": "2023-11-14 19:00:00",
        "status": status,
        "timer": timer,
        "est_e_timer": "",
        "championship": {"id": LEAGUE, "name": "League", "s_name": "LEA"},
        "teamA": {"id": "a" * 16, "score": {"f": sum(g.get("team") == "A" for g in goals), "1h": 0}},
        "teamB": {"id": "b" * 16, "score": {"f": sum(g.get("team") == "B" for g in goals), "1h": 0}},
        "events": list(events),
    }
    return item | changes


def goal(timer: str, team: str) -> dict[str, str]:
    return {"type": "goal", "timer": timer, "team": team}


def main_events(script: MatchScript, upto: float) -> list[FeedEvent]:
    """The MAIN events the sandbox's WebSocket sends for ``script`` up to minute ``upto``, as parsed from its frames."""
    feed = Feed(Sandbox(clock=lambda: T0))
    parsed = []
    for e in script.events:
        if e.channel == "MAIN" and e.minute <= upto:
            message = feed.emit("MAIN", e.type, match_id=script.match_id, league_id=script.league_id, data=e.data)
            event = parse_frame(json.dumps(message))
            assert isinstance(event, FeedEvent) and not event.backfilled
            parsed.append(event)
    return parsed


class Playing:
    """What the sandbox reads of a Feed: one running playback at ``minute``."""

    def __init__(self, matches: tuple[MatchScript, ...], minute: float | None) -> None:
        self._playback = SimpleNamespace(matches=matches, minute=minute, running=True)

    def playbacks(self) -> list[SimpleNamespace]:
        return [self._playback]


def view_basic(sandbox: Sandbox, match_id: str) -> dict[str, Any]:
    answer = sandbox.answer("/v1/matches/view/basic/", {"t": ["sandbox-key-pro"], "i": [match_id]}, {})[0]
    assert answer is not None and answer.status == 200
    (item,) = json.loads(answer.body)["result"]
    return item  # type: ignore[no-any-return]


# A first-half goal at 45 and a second-half one at 46, around both phases.
EDGES = MatchScript.build("abcdef0123456789", "e8f1c2d3a4b50002", [(45, "home"), (46, "away"), (46, "away")])


@pytest.mark.parametrize("script", [*default_matches(), EDGES], ids=lambda s: s.match_id)
@pytest.mark.parametrize("minute", [None, 12, 44, 46, 71, 90])
def test_rest_rebuilds_what_the_websocket_sent_key_for_key(script: MatchScript, minute: float | None) -> None:
    # The sandbox's REST answer for a match it plays, at a minute of play (90: ended).
    sandbox = Sandbox(clock=lambda: T0, matches=[script])
    sandbox.attach(Playing((script,), minute))  # type: ignore[arg-type]
    rebuilt = events_from_match(view_basic(sandbox, script.match_id), now_ms=NOW)
    sent = main_events(script, -1 if minute is None else minute)
    assert [(e.key, dict(e.data)) for e in rebuilt] == [(e.key, dict(e.data)) for e in sent]
    assert all(e.identity for e in sent)
    assert all((e.backfilled, e.ts, e.channel, e.league_id) == (True, NOW, "MAIN", script.league_id) for e in rebuilt)
    # And so nothing is missing once the socket delivered it all.
    dedupe = Deduplicator()
    for event in sent:
        dedupe.first_time(event)
    assert missing(rebuilt, dedupe) == []


def test_a_gap_is_filled_with_what_the_websocket_did_not_send() -> None:
    script = default_matches()[0]  # three goals at 71
    sandbox = Sandbox(clock=lambda: T0, matches=[script])
    sandbox.attach(Playing((script,), 75))  # type: ignore[arg-type]
    sent = main_events(script, 75)
    dedupe = Deduplicator()
    received = [e for e in sent if e.type != "goal" or e.data["minute"] != 71 or e.data["score"] != [3, 1]]
    for event in received:  # the socket was away for the second goal at 71 only
        dedupe.first_time(event)
    rebuilt = events_from_match(view_basic(sandbox, script.match_id), now_ms=NOW)
    (found,) = missing(rebuilt, dedupe)
    assert (found.key, dict(found.data)) == (
        f"MAIN:{script.match_id}:goal:A:71:3-1",
        {"minute": 71, "team": "home", "score": [3, 1]},
    )
    # Fired, it is recorded like any event, the floor notwithstanding, and not missing any more.
    assert dedupe.first_time(found)
    assert missing(rebuilt, dedupe) == []


def test_events_from_match_reads_a_record_in_the_order_of_play() -> None:
    events = [
        goal("12", "A"),
        {"type": "yellow_card", "timer": "30", "team": "B"},
        goal("45+2", "B"),
        goal("71", "A"),
        {"type": "red_card", "timer": "80", "team": "A"},
        goal("90+3", "A"),
    ]
    built = events_from_match(record(events=events, timer="94:10"), now_ms=NOW)
    assert [(e.type, dict(e.data)) for e in built] == [
        ("match_start", {"minute": 0}),
        ("goal", {"minute": 12, "team": "home", "score": [1, 0]}),
        ("goal", {"minute": 47, "team": "away", "score": [1, 1]}),  # 45+2: first half, minute 47
        ("halftime", {"minute": 45, "score": [0, 0]}),  # the record's 1h scores
        ("second_half_start", {"minute": 46}),
        ("goal", {"minute": 71, "team": "home", "score": [2, 1]}),
        ("goal", {"minute": 93, "team": "home", "score": [3, 1]}),
        ("match_end", {"minute": 94, "score": [3, 1]}),
    ]
    assert [e.key for e in built][1:3] == [f"MAIN:{MATCH}:goal:A:12:1-0", f"MAIN:{MATCH}:goal:B:47:1-1"]
    assert {(e.match_id, e.league_id, e.ts, e.backfilled) for e in built} == {(MATCH, LEAGUE, NOW, True)}


@pytest.mark.parametrize(
    ("status", "timer", "types"),
    [
        ("NOT STARTED", "", []),
        ("IN PLAY", "00:30", ["match_start"]),
        ("IN PLAY", "45:00", ["match_start", "halftime"]),  # the timer holds 45:00 through the break
        ("IN PLAY", "45:01", ["match_start", "halftime"]),
        ("IN PLAY", "46:00", ["match_start", "halftime", "second_half_start"]),
        ("in play", "63:00", ["match_start", "halftime", "second_half_start"]),
        ("IN PLAY", "??", ["match_start"]),
        ("ENDED", "", ["match_start", "halftime", "second_half_start", "match_end"]),
    ],
)
def test_the_phases_follow_status_and_timer(status: str, timer: str, types: list[str]) -> None:
    assert [e.type for e in events_from_match(record(status, timer), now_ms=NOW)] == types


def test_the_final_and_halftime_scores_fall_back_to_the_goals() -> None:
    item = record(events=[goal("10", "B"), goal("50", "A"), goal("60", "A")], timer="garbled")
    item["teamA"] = item["teamB"] = None
    built = events_from_match(item, now_ms=NOW)
    assert dict(built[2].data) == {"minute": 45, "score": [0, 1]}
    assert dict(built[-1].data) == {"minute": 90, "score": [2, 1]}


def test_unreadable_parts_of_a_record_are_skipped() -> None:
    events = [
        "goal",
        None,
        {"type": "goal", "timer": "5", "team": None},  # no side: not counted
        {"type": "goal", "timer": "soon", "team": "A"},  # no minute: counted in the score, not sent
        {"type": "goal", "timer": 20, "team": "B"},
        {"type": "own_goal", "timer": "21", "team": "B"},
        goal("30", "A"),
    ]
    item = record("IN PLAY", "35:00", events, championship="x")
    assert [(e.type, dict(e.data), e.league_id) for e in events_from_match(item, now_ms=NOW)] == [
        ("match_start", {"minute": 0}, ""),
        ("goal", {"minute": 20, "team": "away", "score": [1, 1]}, ""),
        ("goal", {"minute": 30, "team": "home", "score": [2, 1]}, ""),
    ]
    assert [e.type for e in events_from_match(record("IN PLAY", "10:00") | {"events": {"a": 1}}, now_ms=NOW)] == [
        "match_start"
    ]
    assert events_from_match({"id": MATCH}, now_ms=NOW) == []


@pytest.mark.parametrize("bad", [None, [], "x", {"status": "ENDED"}, {"id": ""}, {"id": 7}])
def test_a_record_without_an_id_is_a_response_error(bad: Any) -> None:
    with pytest.raises(SfiResponseError, match="match record"):
        events_from_match(bad, now_ms=NOW)


def ws_goal(minute: int, ts: int, **data: Any) -> FeedEvent:
    return FeedEvent("MAIN", "goal", MATCH, LEAGUE, ts, {"minute": minute, **data})


def test_missing_counts_where_the_websocket_lacked_the_identity() -> None:
    rest = events_from_match(
        record("IN PLAY", "80:00", [goal("10", "A"), goal("50", "B"), goal("70", "A")]), now_ms=NOW
    )
    dedupe = Deduplicator()
    dedupe.first_time(FeedEvent("MAIN", "match_start", MATCH, LEAGUE, 1, {"minute": 0}))
    dedupe.first_time(ws_goal(10, 2))  # no team nor score: a fallback key
    dedupe.first_time(ws_goal(50, 3))
    # Two goals seen by count: the third one is missing, and halftime and second_half_start by key.
    assert [(e.type, e.data.get("minute")) for e in missing(rest, dedupe)] == [
        ("halftime", 45),
        ("second_half_start", 46),
        ("goal", 70),
    ]
    # Identity and fallback together: the fallback ones vouch for the oldest goals not matched by key.
    dedupe = Deduplicator()
    dedupe.first_time(ws_goal(10, 2))  # fallback
    dedupe.first_time(ws_goal(70, 4, team="home", score=[2, 1]))  # identity: the third goal
    rest_goals = [e for e in rest if e.type == "goal"]
    assert [e.data["minute"] for e in missing(rest_goals, dedupe)] == [50]
    assert len(dedupe) == 2  # missing() records nothing


def test_missing_returns_an_event_given_twice_once() -> None:
    rest = events_from_match(record("IN PLAY", "20:00", [goal("10", "A")]), now_ms=NOW)
    assert [e.type for e in missing([*rest, *rest], Deduplicator())] == ["match_start", "goal"]
    assert missing([], Deduplicator()) == []
