"""What the live feed missed, rebuilt from REST: a match's MAIN events from ``matches/view/basic``; the unseen ones."""

from __future__ import annotations

import collections
import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_sfi.exceptions import SfiResponseError
from airflow_sfi.protocol.messages import Deduplicator, FeedEvent, minute_parts

# REST names the home side teamA; its events say "A" or "B".
_SIDES = {"A": 0, "B": 1}
_TEAMS = ("home", "away")
# The match timer: "63:00" (minutes:seconds played), also read with added time ("90+3:00") or without seconds.
_TIMER = re.compile(r"\s*(\d{1,3})(?:\+(\d{1,2}))?(?::(\d{2}))?\s*")
# The sandbox's WebSocket sends its phases at these minutes; the data is shaped as it sends it.
_HALFTIME, _SECOND_HALF, _FULL_TIME = 45, 46, 90


def events_from_match(record: Mapping[str, Any], *, now_ms: int) -> list[FeedEvent]:
    """
    The MAIN events a match has had, shaped as the WebSocket sends them, from one ``matches/view/basic`` item.

    Each is backfilled, on channel MAIN, with ``ts`` ``now_ms`` and the league of ``championship.id``,
    in the order they happened:

    - ``match_start`` (data ``{"minute": 0}``) when ``status`` is ``IN PLAY`` or ``ENDED``;
    - each ``goal`` of ``events``, in their order, data ``{"minute", "team": "home"|"away",
      "score": [home, away]}`` with the score after it (teamA is home). An event ``timer`` of ``"71"``
      is minute 71; ``"45+2"`` (stoppage time) is 47, as :func:`~airflow_sfi.protocol.messages.event_minute`
      reads the WebSocket's minute, so both give one key;
    - ``halftime`` (``{"minute": 45, "score": <the first half's>}``) once the match ``timer`` shows 45:00
      played (it stays there through the break, the only time a gap can learn of it), or the match ENDED;
    - ``second_half_start`` (``{"minute": 46}``) once the timer shows 46:00 or more, or the match ENDED;
    - ``match_end`` (``{"minute": <the timer's minute, else 90>, "score": [teamA, teamB]}``) when ENDED.

    Cards are not live-feed events and are left out. Whatever cannot be read is skipped: a goal
    without a readable ``team`` (the running score leaves it out), or without a readable ``timer``
    (its goal still counts in the score), any other malformed event, an unreadable timer or status.

    :param record: one result item of ``matches/view/basic`` (or ``matches/day/basic``).
    :param now_ms: now, in milliseconds since the epoch: every event's ``ts``.
    :raises SfiResponseError: when ``record`` is not an object or has no ``id``.
    """
    if not isinstance(record, Mapping):
        raise SfiResponseError(f"a match record is a JSON object, got {type(record).__name__}")
    match_id = record.get("id")
    if not isinstance(match_id, str) or not match_id:
        raise SfiResponseError("a match record without an id")
    championship = record.get("championship")
    league = championship.get("id") if isinstance(championship, Mapping) else None
    league_id = league if isinstance(league, str) else ""
    status = record.get("status")
    status = status.upper() if isinstance(status, str) else ""
    ended = status == "ENDED"
    played = _played_seconds(record.get("timer"))

    def event(kind: str, data: dict[str, Any]) -> FeedEvent:
        return FeedEvent("MAIN", kind, match_id, league_id, now_ms, data, backfilled=True)

    score = [0, 0]
    first_half_score = [0, 0]
    first_half: list[FeedEvent] = []
    second_half: list[FeedEvent] = []
    events = record.get("events")
    for item in events if isinstance(events, list) else []:
        if not isinstance(item, Mapping) or item.get("type") != "goal":
            continue
        team = item.get("team")
        side = _SIDES.get(team) if isinstance(team, str) else None
        if side is None:
            continue
        score[side] += 1
        parts = minute_parts(item.get("timer"))
        if parts is None:
            continue
        goal = event("goal", {"minute": parts[0] + parts[1], "team": _TEAMS[side], "score": list(score)})
        if parts[0] <= _HALFTIME:
            first_half_score[side] += 1
            first_half.append(goal)
        else:
            second_half.append(goal)

    built: list[FeedEvent] = []
    if status in ("IN PLAY", "ENDED"):
        built.append(event("match_start", {"minute": 0}))
    built += first_half
    if ended or (played is not None and played >= _HALFTIME * 60):
        half = _final(record, "1h") or first_half_score
        built.append(event("halftime", {"minute": _HALFTIME, "score": half}))
    if ended or (played is not None and played >= _SECOND_HALF * 60):
        built.append(event("second_half_start", {"minute": _SECOND_HALF}))
    built += second_half
    if ended:
        minute = _FULL_TIME if played is None else played // 60
        built.append(event("match_end", {"minute": minute, "score": _final(record, "f") or score}))
    return built


def missing(rest_events: Sequence[FeedEvent], seen: Deduplicator) -> list[FeedEvent]:
    """
    The events of ``rest_events`` the feed has not delivered yet, in their order; records nothing.

    An event is delivered when ``seen`` remembers its key. Where the WebSocket's data lacked a field
    the identity key needs, ``seen`` holds fallback keys for that (match, type) instead, which no REST
    event has: there the count decides. Of the REST events of that (match, type) whose key is not
    remembered, the first ones, as many as ``seen``'s fallback keys of it, are taken as delivered and
    the rest are missing. With no identity key remembered either, that is the REST events beyond the
    number already seen. An event given twice is returned once.

    :param rest_events: what REST says happened, oldest first (:func:`events_from_match`).
    :param seen: what the feed delivered.
    """
    vouched: collections.Counter[tuple[str, str]] = collections.Counter()
    found: list[FeedEvent] = []
    keys: set[str] = set()
    for event in rest_events:
        key = event.key
        if key in keys or seen.seen(key):
            continue
        if event.channel == "MAIN":
            slot = event.slot
            if vouched[slot] < seen.count(*slot).fallback:
                vouched[slot] += 1
                continue
        keys.add(key)
        found.append(event)
    return found


def _played_seconds(timer: object) -> int | None:
    """How long the match timer (``"63:00"``) says was played, in seconds; None when unreadable."""
    found = _TIMER.fullmatch(timer) if isinstance(timer, str) else None
    if found is None:
        return None
    return (int(found[1]) + int(found[2] or 0)) * 60 + int(found[3] or 0)


def _final(record: Mapping[str, Any], part: str) -> list[int] | None:
    """[teamA, teamB] of ``score[part]`` (``f`` the whole match, ``1h`` the first half); None when unreadable."""
    goals = []
    for team in ("teamA", "teamB"):
        side = record.get(team)
        score = side.get("score") if isinstance(side, Mapping) else None
        value = score.get(part) if isinstance(score, Mapping) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return None
        goals.append(value)
    return goals
