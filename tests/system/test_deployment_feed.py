"""
The live feed in a running Airflow: the ``sfi_league_goals`` asset watcher (``SfiMatchEventTrigger``
in the triggerer) against the sandbox's WebSocket on loopback, with a scheduler (LocalExecutor), DAG
processor and API server as separate processes. Run by ``make test-deployment``.

One scripted match in league ``LEAGUE`` is played in real time (``MINUTE_SECONDS`` per match minute)
with ``len(GOALS)`` goals, a burst of ``BURST_SIZE`` goals at one minute, and, while it plays:

- token renewals: the sandbox's tokens live ``TTL`` seconds, so the feed renews through ``ws/renew``
  several times and its socket stays open;
- ``ws/renew`` switched off (``api.sandbox.renew = "absent"``) until ``EXPIRIES`` tokens ran out: at
  each expiry the feed gets a new token from ``ws/new`` and moves to a new socket, while the server
  closes the old one (4001) at its next token check, within 0.05 s; whichever comes first;
- a crash: the triggerer's whole process group is killed with SIGKILL mid-match and a new triggerer
  started, which takes the watcher over once the dead one's heartbeat is stale.

A match in another league (goals too) and the other MAIN event types (match start, halftime...) and
the STATS and ODDS updates play alongside: none of them may fire. The watcher's flush markers (fired
``FLUSH_AFTER_SECONDS`` after a burst, carrying no event) are told apart and counted.

Goals emitted while the watcher is down reach nobody. The sandbox runs with ``replay=REPLAY``: after
each subscribe it re-sends the topic's last ``REPLAY`` messages (the vendor documents no replay), at
least every message of the match, so the restarted watcher receives the goals it missed *and* every
goal it had already fired before the crash. The new triggerer process starts with empty memory: what
stops those from firing a second time is the dedupe state that ``SfiMatchEventTrigger`` keeps in the
asset state store (``asset_state_store``, key ``sfi_feed_dedupe``), restored by the new watcher. The
test checks that state is there and that no goal fired twice.

The kill comes three match minutes (3.75 s) after the goal before it, on purpose: the triggerer
persists a fired goal's asset event at its next sync with its supervisor (about once a second), and
the watcher vouches for the goal in the state store ``VOUCH_AFTER_SECONDS`` (2 s) after firing it. A
kill inside those 2 s fires the goal again after the restart (at least once, never lost): a duplicate
by key that this test, which counts duplicates, keeps out of its way.

Then, from the metadata DB: every goal of the league reached a DAG run exactly once (the
``record_goals`` XComs of all runs against ``api.emitted()``, by ``FeedEvent.key``), no asset event
duplicated and none from another league or type, no failed run, and no secret (the API key, every
token issued) in any log file, trigger row, serialized DAG, XCom, rendered field, asset event or the
stored dedupe state. Timings are measured and printed, never asserted (the machine is shared): event
-> task start latency, WebSocket connections and their gaps, the triggerer's restart. With
``SFI_FEED_FIGURES`` set, the figures are also written there as JSON (``bench/run.py --only feed``
reads them).
"""

from __future__ import annotations

import collections
import itertools
import json
import math
import os
import statistics
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_sfi.protocol.messages import FeedEvent, parse_frame
from airflow_sfi.sandbox import MatchScript, SandboxServer
from airflow_sfi.sandbox.live import Session
from airflow_sfi.triggers.match_event import FLUSH_AFTER_SECONDS
from tests.helpers import REPO
from tests.system.deployment import Deployment

pytestmark = pytest.mark.deployment

EXAMPLE_DAGS = len(list((REPO / "example_dags").glob("sfi_*.py")))

KEY = "sandbox-key-pro"
TTL = 20
REPLAY = 64  # more than the match's messages on the watched topic (checked below)
MINUTE_SECONDS = 1.25  # a 90-minute match in 112.5 s
LEAGUE = "5f1e0a9c3b7d0001"
OTHER_LEAGUE = "5f1e0a9c3b7d0002"
MATCH = "c0ffee0123450001"
OTHER_MATCH = "c0ffee0123450002"
TOPIC = f"MAIN:league:{LEAGUE}"
DAG_ID = "sfi_league_goals"
TASK_ID = "record_goals"
BURST_MINUTE = 71
BURST_SIZE = 5
KILL_MINUTE = 15  # the crash: early, so the new triggerer is back (after the dead one's 30 s heartbeat limit) mid-match
RENEW_ABSENT_MINUTE = 48  # ws/renew off from here until two tokens expired
EXPIRIES = 2
# 35 goals; the ones between KILL_MINUTE and the restart happen while no watcher is connected.
GOALS: list[tuple[float, str]] = [
    *((m, "home" if m % 4 else "away") for m in (2, 4, 6, 8, 10, 12)),
    *((m, "away" if m % 2 else "home") for m in (16, 19, 22, 25, 28, 31, 34, 37, 40)),
    *((m, "home" if m % 2 else "away") for m in (44, 47, 50, 53, 56, 59, 62, 65, 68)),
    *((BURST_MINUTE, team) for team in ("home", "away", "home", "home", "away")),
    *((m, "away" if m % 2 else "home") for m in (74, 77, 80, 83, 86, 89)),
]
OTHER_GOALS: list[tuple[float, str]] = [
    (3, "home"),
    (20, "away"),
    (45, "home"),
    (60, "away"),
    (71, "home"),
    (85, "away"),
]
WATCHER_KWARGS = {
    "sfi_conn_id",
    "channel",
    "scope",
    "scope_id",
    "event_types",
    "ping_interval",
    "renew_margin",
}


class Subscriptions:
    """When each connection's subscription to ``TOPIC`` was acknowledged (sandbox clock): wraps ``Feed.receive``."""

    def __init__(self, api: SandboxServer) -> None:
        self.acks: dict[tuple[float, int], float] = {}  # (opened_at, client port) -> ack time
        self._lock = threading.Lock()
        receive = api.feed.receive

        def recording(session: Session, frame: str | bytes) -> None:
            receive(session, frame)  # the ack is queued before this returns
            if TOPIC in session.topics:
                with self._lock:
                    self.acks.setdefault((session.opened_at, session.client_port), api.sandbox.clock())

        api.feed.receive = recording  # type: ignore[method-assign]

    def after(self, moment: float) -> list[float]:
        with self._lock:
            return sorted(t for t in self.acks.values() if t >= moment)

    def of(self, opened_at: float, client_port: int) -> float | None:
        with self._lock:
            return self.acks.get((opened_at, client_port))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, SandboxServer, Subscriptions]]:
    home: Path = tmp_path_factory.mktemp("deployment_feed") / "airflow"
    with SandboxServer(ttl=TTL, replay=REPLAY) as api:
        subscriptions = Subscriptions(api)
        env = {"AIRFLOW_CONN_SFI_DEFAULT": api.connection(KEY), "SFI_LEAGUE_ID": LEAGUE}
        with Deployment(home, env) as airflow:
            yield airflow, api, subscriptions


def key_of(message: Any) -> str:
    event = parse_frame(json.dumps(message))
    assert isinstance(event, FeedEvent)
    return event.key


def epoch(value: str) -> float:
    """A timestamp column (UTC, as SQLite stores it) as seconds since the epoch."""
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def nearest_rank(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` 0.95 for p95); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def summary(values: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "min": min(values) if values else None,
        "median": statistics.median(values) if values else None,
        "p95": nearest_rank(values, 0.95),
        "max": max(values) if values else None,
    }


def live_group_members(pgid: int) -> list[int]:
    """Processes of process group ``pgid`` that are alive (not zombies), from /proc."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def triggerer_log_times(airflow: Deployment, after: float) -> dict[str, float]:
    """When, after ``after``, the triggerer's log says it started, and a trigger started (epoch seconds)."""
    found: dict[str, float] = {}
    marks = {"triggerer": "Starting the triggerer", "trigger": " starting "}
    for line in (airflow.home / "proc" / "triggerer.log").read_text(errors="replace").splitlines():
        stamp = line.split(" ", 1)[0]
        if not stamp[:1].isdigit():
            continue
        try:
            at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        for name, mark in marks.items():
            if at >= after and name not in found and mark in line and (name != "trigger" or "trigger ID" in line):
                found[name] = at
    return found


def goal_runs(airflow: Deployment) -> dict[str, list[dict[str, Any]]]:
    """run_id -> the goals its record_goals returned."""
    rows = airflow.query(
        "SELECT run_id, value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value'", DAG_ID, TASK_ID
    )
    return {run_id: json.loads(value) for run_id, value in rows}


def fired_events(airflow: Deployment) -> list[tuple[int, dict[str, Any], float]]:
    """(id, payload, timestamp) of every event of the asset."""
    rows = airflow.query(
        "SELECT e.id, e.extra, e.timestamp FROM asset_event e JOIN asset a ON a.id = e.asset_id "
        "WHERE a.name = ? ORDER BY e.id",
        DAG_ID,
    )
    return [(event_id, json.loads(extra)["payload"], epoch(at)) for event_id, extra, at in rows]


def test_league_goals_reach_a_run_exactly_once_through_renewals_expiries_and_a_crash(
    deployment: tuple[Deployment, SandboxServer, Subscriptions],
) -> None:
    airflow, api, subscriptions = deployment
    test_started = time.monotonic()
    clock = api.sandbox.clock
    airflow.wait_for(
        "the DAG processor to parse the example DAGs",
        lambda: len(airflow.query("SELECT dag_id FROM dag WHERE dag_id LIKE 'sfi_%'")) == EXAMPLE_DAGS,
        timeout=120,
    )
    airflow.cli("dags", "unpause", DAG_ID)
    unpaused = clock()
    airflow.wait_for("the watcher to connect and subscribe", lambda: subscriptions.after(0), timeout=120, every=0.2)
    watcher_ready = subscriptions.after(0)[0]

    match = MatchScript.build(MATCH, LEAGUE, GOALS)
    other = MatchScript.build(OTHER_MATCH, OTHER_LEAGUE, OTHER_GOALS)
    topic_messages = sum(e.channel == "MAIN" for e in match.events)
    assert topic_messages <= REPLAY, "every replay must hold the whole match for the crash to test the state store"
    playback = api.play([match, other], minute_seconds=MINUTE_SECONDS)
    kickoff, kicked_off_at = time.monotonic(), clock()

    def until_minute(minute: float) -> None:
        while (left := kickoff + minute * MINUTE_SECONDS - time.monotonic()) > 0:
            airflow.assert_running()
            time.sleep(min(left, 0.5))

    # The crash.
    until_minute(KILL_MINUTE)
    triggerer_pid = airflow.procs["triggerer"].pid
    killed_at = clock()
    exit_status = airflow.kill("triggerer")
    airflow.start("triggerer")
    restarted_at = clock()
    group_left = airflow.wait_for(
        "the killed triggerer's process group to be gone",
        lambda: ["gone"] if not live_group_members(triggerer_pid) else None,
        timeout=10,
        every=0.1,
    )
    back_at = airflow.wait_for(
        "the new triggerer's watcher to subscribe", lambda: subscriptions.after(killed_at), timeout=150, every=0.1
    )[0]

    # ws/renew off: each token runs out; the feed gets a new one from ws/new and moves to a new socket (before the
    # server closes the old one with 4001, when it has the new token first). Back on after EXPIRIES of those.
    until_minute(RENEW_ABSENT_MINUTE)
    absent_from = clock()
    api.sandbox.renew = "absent"

    def replaced() -> list[Any]:  # the tokens issued since, each when the one before ran out
        return [t for t in api.tokens() if t.issued_at >= absent_from]

    airflow.wait_for(
        f"{EXPIRIES} tokens to run out and the feed to subscribe with the last one",
        lambda: len(replaced()) >= EXPIRIES and subscriptions.after(replaced()[EXPIRIES - 1].issued_at),
        timeout=90,
        every=0.2,
    )
    api.sandbox.renew = "extend"
    absent_until = clock()
    assert playback.wait(timeout=150), "the match did not finish playing"
    match_over = clock()

    # Every goal of the league, by key; then wait until each has reached a finished run.
    goals = [
        e for e in api.emitted() if e.message["type"] == "goal" and e.message["leagueId"] == LEAGUE
    ]  # in emission order
    goal_keys = [key_of(e.message) for e in goals]
    assert len(set(goal_keys)) == len(goals) == len(GOALS)

    quiet_from = goals[-1].at + FLUSH_AFTER_SECONDS + 1  # the watcher's last flush marker, if any, is out by then

    def all_goals_recorded() -> dict[str, list[dict[str, Any]]] | None:
        (unfinished,) = airflow.query(
            "SELECT count(*) FROM dag_run WHERE dag_id = ? AND state IN ('queued', 'running')", DAG_ID
        )[0]
        (unconsumed,) = airflow.query(
            "SELECT count(*) FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = ? "
            "AND e.id NOT IN (SELECT event_id FROM dagrun_asset_event)",
            DAG_ID,
        )[0]
        runs = goal_runs(airflow)
        recorded = {goal["key"] for batch in runs.values() for goal in batch}
        done = clock() > quiet_from and not unfinished and not unconsumed and recorded >= set(goal_keys)
        return runs if done else None

    try:
        runs = airflow.wait_for("every goal to reach a finished run", all_goals_recorded, timeout=150, every=1.0)
    except AssertionError:
        recorded = {goal["key"] for batch in goal_runs(airflow).values() for goal in batch}
        missing = [(e.message["data"], e.at) for e, k in zip(goals, goal_keys, strict=True) if k not in recorded]
        raise AssertionError(f"goals that reached no run: {missing}") from None
    drained_at = clock()

    # Exactly once: each goal in one run's XCom, and fired once by the watcher; nothing else fired.
    runs_of: dict[str, list[str]] = collections.defaultdict(list)
    for run_id, batch in runs.items():
        for goal in batch:
            runs_of[goal["key"]].append(run_id)
    lost = [k for k in goal_keys if k not in runs_of]
    duplicated = {k: r for k, r in runs_of.items() if len(r) > 1}
    unexpected = sorted(set(runs_of) - set(goal_keys))
    assert (lost, duplicated, unexpected) == ([], {}, [])
    fired = fired_events(airflow)
    # The watcher's flush markers (after a burst, to release events Airflow 3.3.2 holds back) carry no event.
    flushes = [payload for _, payload, _ in fired if "key" not in payload]
    assert all(payload["type"] == "flush" and set(payload) <= {"type", "about", "watermark"} for payload in flushes)
    fired = [(event_id, payload, at) for event_id, payload, at in fired if "key" in payload]
    fired_keys = collections.Counter(payload["key"] for _, payload, _ in fired)
    assert {k: n for k, n in fired_keys.items() if n > 1} == {}, "the watcher fired a goal twice"
    assert set(fired_keys) == set(goal_keys)
    assert {(p["type"], p["league_id"], p["channel"]) for _, p, _ in fired} == {("goal", LEAGUE, "MAIN")}
    failed = airflow.query(
        "SELECT run_id, state FROM dag_run WHERE dag_id = ? AND state != 'success'", DAG_ID
    ) + airflow.query(
        "SELECT run_id, task_id, state, try_number FROM task_instance WHERE dag_id = ? "
        "AND (state != 'success' OR try_number > 1)",
        DAG_ID,
    )
    assert failed == []

    # The crash was a real one, and what kept the goals fired before it from firing again is the state store.
    fired_before_crash = [payload["key"] for _, payload, at in fired if at < killed_at]
    assert fired_before_crash, "no goal was fired before the crash: the restart tested nothing"
    assert exit_status == -9 and group_left
    crashed = [c for c in api.ws_connections() if c.opened_at < killed_at and c.refused is None]
    assert all(c.closed_at is not None and c.closed_at < back_at for c in crashed)
    missed_while_down = [e for e in goals if killed_at <= e.at < back_at]
    assert missed_while_down and all(e.recipients == 0 for e in missed_while_down)
    stored = airflow.query(
        "SELECT s.value FROM asset_state_store s JOIN asset a ON a.id = s.asset_id "
        "WHERE a.name = ? AND s.key = 'sfi_feed_dedupe'",
        DAG_ID,
    )
    assert stored, "no dedupe state in the asset state store"
    state = json.loads(stored[0][0])
    state = json.loads(state) if isinstance(state, str) else state
    assert set(goal_keys) <= {k for k, _ in state["keys"]}

    # Renewals kept a socket open; each token that ran out was followed by a socket with the next one.
    connections = api.ws_connections()
    accepted = [c for c in connections if c.refused is None]
    renewals = [c for c in api.calls() if c.path.endswith("/ws/renew/") and c.status == 200]
    renewed_open = [
        r for r in renewals if any(c.opened_at < r.at < (c.closed_at or math.inf) for c in accepted)
    ]  # a renewal while a socket was open, which it kept
    assert len([r for r in renewed_open if kicked_off_at <= r.at <= match_over]) >= 2
    tokens = api.tokens()
    expiries = []
    for before, after in itertools.pairwise(tokens):
        if after.issued_at < absent_from or after.issued_at > absent_until:
            continue
        # The socket open when `before` ran out, and the first one opened with `after`.
        old = max((c for c in accepted if c.opened_at < after.issued_at), key=lambda c: c.opened_at)
        new = min((c for c in accepted if c.opened_at >= after.issued_at), key=lambda c: c.opened_at)
        assert old.closed_at is not None
        ack = subscriptions.of(new.opened_at, new.client_port)
        assert ack is not None
        expiries.append(
            {
                "old_close_code": old.close_code,
                "old_closed_after_expiry_s": old.closed_at - before.expires_at,
                "new_connection_after_old_close_s": new.opened_at - old.closed_at,  # < 0: opened before
                "unsubscribed_s": max(0.0, ack - old.closed_at),
                "during_match": old.closed_at <= match_over,
            }
        )
    assert len(expiries) >= EXPIRIES
    new_calls_after_kill = [c.at for c in api.calls("ws/new") if c.at >= killed_at]
    restart_log = triggerer_log_times(airflow, killed_at)

    # No secret anywhere: log files, the trigger row, the serialized DAG, XComs, rendered fields, asset events.
    secrets = [KEY, *api.issued_tokens]
    assert len(api.issued_tokens) >= 3 and all(len(s) >= 12 for s in secrets)
    log_text = {p: p.read_text(errors="replace") for p in airflow.log_files()}
    triggers = [(c, airflow.trigger_kwargs(k)) for c, k in airflow.query("SELECT classpath, kwargs FROM trigger")]
    watchers = [k for c, k in triggers if c == "airflow_sfi.triggers.match_event.SfiMatchEventTrigger"]
    assert watchers and all(set(k) == WATCHER_KWARGS for k in watchers)
    serialized = [
        data if data is not None else zlib.decompress(compressed).decode()
        for data, compressed in airflow.query("SELECT data, data_compressed FROM serialized_dag")
    ]
    tables = {
        "trigger": json.dumps([k for _, k in triggers], default=str),
        "serialized_dag": "\n".join(serialized),
        "xcom": "\n".join(str(v) for (v,) in airflow.query("SELECT value FROM xcom")),
        "rendered_task_instance_fields": "\n".join(
            str(v) for (v,) in airflow.query("SELECT rendered_fields FROM rendered_task_instance_fields")
        ),
        "asset_event.extra": "\n".join(str(v) for (v,) in airflow.query("SELECT extra FROM asset_event")),
        "asset_state_store": "\n".join(str(v) for (v,) in airflow.query("SELECT value FROM asset_state_store")),
    }
    assert all(tables.values()) and DAG_ID in tables["serialized_dag"]
    leaks = {
        secret[:4] + "…": [str(p) for p, t in log_text.items() if secret in t]
        + [n for n, t in tables.items() if secret in t]
        for secret in secrets
    }
    assert {s: where for s, where in leaks.items() if where} == {}

    # Figures (measured, not asserted).
    start_of = {
        run_id: epoch(start)
        for run_id, start in airflow.query(
            "SELECT run_id, start_date FROM task_instance WHERE dag_id = ? AND task_id = ?", DAG_ID, TASK_ID
        )
    }
    fired_at = {p["key"]: at for _, p, at in fired}
    latency: dict[str, list[float]] = {"live": [], "burst": [], "replayed": []}
    to_asset_event: list[float] = []
    for event, key in zip(goals, goal_keys, strict=True):
        (run_id,) = runs_of[key]
        group = "burst" if event.message["data"]["minute"] == BURST_MINUTE else "live"
        if event.recipients == 0:  # nobody was subscribed: it arrived by replay, after the crash or a reconnect
            group = "replayed"
        latency[group].append(start_of[run_id] - event.at)
        if group == "live":
            to_asset_event.append(fired_at[key] - event.at)
    # Airflow 3.3.2 may hold back events that arrive while a run is being created until the next event on the
    # asset (#54659): burst goals whose run also consumed an asset event made more than 1 s after theirs, and
    # whether that was a goal or the watcher's flush marker.
    consumed: dict[str, list[tuple[float, str]]] = collections.defaultdict(list)
    for run_id, at, extra in airflow.query(
        "SELECT r.run_id, e.timestamp, e.extra FROM dagrun_asset_event d JOIN dag_run r ON r.id = d.dag_run_id "
        "JOIN asset_event e ON e.id = d.event_id WHERE r.dag_id = ?",
        DAG_ID,
    ):
        consumed[run_id].append((epoch(at), json.loads(extra)["payload"]["type"]))
    burst_held = collections.Counter(
        min(later)[1]
        for e, k in zip(goals, goal_keys, strict=True)
        if e.message["data"]["minute"] == BURST_MINUTE
        and (later := [(at, kind) for at, kind in consumed[runs_of[k][0]] if at > fired_at[k] + 1])
    )
    figures = {
        "goals": len(goals),
        "burst_size": BURST_SIZE,
        "lost": len(lost),
        "duplicated": len(duplicated),
        "fired_twice": sum(n > 1 for n in fired_keys.values()),
        "other_events_emitted": len(api.emitted()) - len(goals),
        "other_events_fired": len(fired) - len(goals),
        "dag_runs": len(runs),
        "runs_without_goals": sum(not b for b in runs.values()),
        "flush_markers": len(flushes),
        "failed_runs": 0,
        "batched_runs": sum(len(b) > 1 for b in runs.values()),
        "largest_batch": max(len(b) for b in runs.values()),
        "event_to_task_start_s": {
            **{group: summary(values) for group, values in latency.items()},
            "not_burst_incl_replayed": summary(latency["live"] + latency["replayed"]),
        },
        "burst_goals_held_until_a_later_event": dict(burst_held),  # by what released them: goal or flush
        "event_to_asset_event_s_live": summary(to_asset_event),
        "ws_connections": {
            "attempts": len(connections),
            "accepted": len(accepted),
            "refused": len(connections) - len(accepted),
            "close_codes": dict(collections.Counter(str(c.close_code) for c in accepted)),
        },
        "token": {
            "ttl_s": TTL,
            "tokens_issued": len(api.issued_tokens),
            "renewals_200": len(renewals),
            "renewals_with_socket_kept_open": len(renewed_open),
            "renew_absent_s": absent_until - absent_from,
            "expiries": expiries,
        },
        "triggerer_restart": {
            "kill_to_subscribed_s": back_at - killed_at,
            "new_process_to_subscribed_s": back_at - restarted_at,
            "kill_to_triggerer_started_s": restart_log.get("triggerer") and restart_log["triggerer"] - killed_at,
            "kill_to_watcher_started_s": restart_log.get("trigger") and restart_log["trigger"] - killed_at,
            "watcher_started_to_ws_new_s": restart_log.get("trigger")
            and new_calls_after_kill[0] - restart_log["trigger"],
            "ws_new_to_subscribed_s": back_at - new_calls_after_kill[0],
            "goals_emitted_while_down": len(missed_while_down),
            "goals_fired_before_crash_and_replayed": len(fired_before_crash),
        },
        "dedupe_state_keys_stored": len(state["keys"]),
        "secrets_checked": len(secrets),
        "log_files_checked": len(log_text),
        "timeline_s": {
            "unpause_to_watcher_subscribed": watcher_ready - unpaused,
            "match": match_over - kicked_off_at,
            "match_over_to_drained": drained_at - match_over,  # includes waiting out the last flush marker
        },
        "test_seconds": time.monotonic() - test_started,
    }
    if path := os.environ.get("SFI_FEED_FIGURES"):
        Path(path).write_text(json.dumps(figures, indent=2))
    print_figures(figures)


def print_figures(f: dict[str, Any]) -> None:
    def seconds(s: dict[str, Any]) -> str:
        if not s["n"]:
            return "none"
        return f"n={s['n']}, median {s['median']:.2f} s, p95 {s['p95']:.2f} s, max {s['max']:.2f} s"

    def opt(value: float | None, digits: int = 1) -> str:
        return "?" if value is None else f"{value:.{digits}f}"

    lat = f["event_to_task_start_s"]
    restart, token, ws = f["triggerer_restart"], f["token"], f["ws_connections"]
    expiries = "; ".join(
        f"closed by {'the server' if e['old_close_code'] == 4001 else 'the feed'} ({e['old_close_code']}) "
        f"{e['old_closed_after_expiry_s']:+.2f} s after expiry, "
        f"next socket {e['new_connection_after_old_close_s']:+.2f} s, "
        f"{e['unsubscribed_s']:.2f} s without a subscribed socket"
        for e in token["expiries"]
    )
    print(
        f"\nLive feed: {f['goals']} goals, {f['lost']} lost, {f['duplicated']} duplicated, {f['fired_twice']} fired "
        f"twice; {f['other_events_emitted']} other events emitted, {f['other_events_fired']} fired; "
        f"{f['dag_runs']} runs ({f['runs_without_goals']} from the watcher's {f['flush_markers']} flush markers) "
        f"({f['batched_runs']} with several goals, at most {f['largest_batch']}), {f['failed_runs']} failed.\n"
        f"Event -> task start: live {seconds(lat['live'])}; burst of {f['burst_size']}: {seconds(lat['burst'])}, "
        f"min {opt(lat['burst']['min'], 2)} s, held until a later asset event: "
        f"{f['burst_goals_held_until_a_later_event'] or 'none'}; "
        f"replayed after the crash or a reconnect: {seconds(lat['replayed'])}. "
        f"Event -> asset event (live): {seconds(f['event_to_asset_event_s_live'])}.\n"
        f"WebSocket: {ws['attempts']} connection attempts, {ws['accepted']} accepted, close codes {ws['close_codes']}; "
        f"{token['tokens_issued']} tokens, {token['renewals_200']} renewals ({token['renewals_with_socket_kept_open']} "
        f"with the socket kept open); ws/renew absent {token['renew_absent_s']:.0f} s: {expiries}.\n"
        f"Triggerer killed (SIGKILL to its group) -> new watcher subscribed: {restart['kill_to_subscribed_s']:.1f} s "
        f"(new triggerer up {opt(restart['kill_to_triggerer_started_s'])} s, watcher started "
        f"{opt(restart['kill_to_watcher_started_s'])} s, "
        f"its ws/new {opt(restart['watcher_started_to_ws_new_s'])} s later, "
        f"subscribed {restart['ws_new_to_subscribed_s']:.2f} s after that); {restart['goals_emitted_while_down']} "
        f"goals emitted while down, {restart['goals_fired_before_crash_and_replayed']} fired before the crash and "
        f"replayed after it; {f['dedupe_state_keys_stored']} keys in the stored dedupe state.\n"
        f"{f['secrets_checked']} secrets searched in {f['log_files_checked']} log files and the metadata tables; "
        f"test {f['test_seconds']:.0f} s."
    )
