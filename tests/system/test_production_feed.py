"""
The live feed at scale in a production-shaped Airflow (:mod:`tests.system.production`: PostgreSQL,
CeleryExecutor on Redis, two triggerers). Run by ``make test-production``.

Twenty generated ``AssetWatcher`` DAGs (``WATCHERS``: all matches, a league or a match; any MAIN
event, goals only, match_end only or other phases) and seven waiting ``SfiMatchEventSensor``s share
ONE PRO key: five (``SENSORS``) deferred before kickoff, two on one match each (``LIVE_SENSORS``: its
match_end, its halftime) deferred once the matches play, so that each carries the keys of its match's
REST record then (``seen``). Each triggerer holds one WebSocket for all its feed triggers, so at most
two sockets per token. ``MATCHES`` are played in real time (``MINUTE_SECONDS`` per match minute): over
a hundred MAIN events, besides the STATS and ODDS updates a PRO key does not receive. Most come in
bursts: the phases of every match at once, and three to five goals in every match at each of
``BURST_MINUTES``. Each match also scores once on its own (``SOLO_MINUTES``), six minutes away from any
other event, as goals mostly come. While they play:

- ``ws/renew`` is switched off (``api.sandbox.renew = "absent"``) from ``RENEW_ABSENT_MINUTE`` until the
  ``TTL``-second token ran out and both triggerers' sockets moved to a fresh one from ``ws/new``;
- at ``KILL_MINUTE``, six minutes after a goal (a watcher vouches for a fired event in its stored
  state 2 s after firing it), the triggerer holding the most feed triggers is killed (SIGKILL to its
  process group); the other takes what its ``CAPACITY`` allows, and the killed one, started again,
  the rest. Halftime, the second half's start and goals happen meanwhile: what was missed must come
  through REST, ``backfilled``, for the killed watchers that had fired nothing yet too (their stored
  state is the REST baseline they took when they began). Triggers run where there is room, so which
  sensors die with the killed triggerer varies from run to run (printed): ``halftime_of_a_playing_match``,
  if it does, gets its halftime, 3 minutes after the kill, through REST from its ``seen``.

Asserted: for every watcher, each MAIN event of its selection (``api.emitted()``, keyed as
:attr:`~airflow_sfi.protocol.messages.FeedEvent.key`) reached exactly one DAG run after the
consumer's dedupe (``match_events`` in each run, their XComs), nothing else did, no run failed; every
watcher had its state stored (``sfi_feed_dedupe``) when the triggerer was killed; every sensor
succeeded with the right event: the first of its selection, for a ``LIVE_SENSORS`` one the first that
is not in its ``seen`` (which it must have read); the sandbox sent no ``CONNECTION_LIMIT`` and no
``SUBSCRIPTION_LIMIT`` error and never had more than two sockets open for a token; no secret (the API
key, every token issued) is in any log file, PostgreSQL table or decrypted trigger kwargs. Printed,
not asserted (the machine is shared): emission -> task start, -> task queued and -> asset event, for
live events, live events outside bursts (no other MAIN event, of any match, within
``FLUSH_AFTER_SECONDS``: the deployment is not busy with another event's runs) and backfilled ones
apart; the takeover and restart times, sockets and
tokens. The Celery workers have ``WORKER_CONCURRENCY`` slots each and parallelism is ``PARALLELISM``
(not :mod:`tests.system.production`'s 2 and 8): the runs of a goal minute get slots at once, so a run
waits for the scheduler and the machine's CPU, not for one of four slots behind the others. With
``SFI_FEED_SCALE_FIGURES`` set, the figures are written there as JSON.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import os
import pprint
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from airflow_sfi.sandbox import MatchScript, SandboxServer
from airflow_sfi.sandbox.live import Playback, fingerprint
from airflow_sfi.triggers.match_event import FLUSH_AFTER_SECONDS
from tests.system.production import TRIGGERERS, WORKERS, Production
from tests.system.test_deployment_feed import key_of, summary
from tests.system.test_production import sections

pytestmark = pytest.mark.production

KEY = "sandbox-key-pro"
TTL = 30
MINUTE_SECONDS = 2.0  # 30 times real time
LEAGUES = ("5ca1e00000000a01", "5ca1e00000000a02", "5ca1e00000000a03")
MATCHES = {f"5ca1e00000000b0{n + 1}": LEAGUES[n // 2] for n in range(6)}  # two matches per league
M = list(MATCHES)
BURST_MINUTES = (4, 60, 77)  # every match scores three to five goals at once
SOLO_MINUTES = (16, 24, 30, 36, 52, 72)  # match n scores one goal alone: six minutes from any other event at least
RENEW_ABSENT_MINUTE = 2  # until the token ran out: within TTL seconds, before KILL_MINUTE
KILL_MINUTE = 42  # 6 minutes after a goal: halftime and the second half's start fall in the gap
LIVE_SENSORS_MINUTE = 1  # the LIVE_SENSORS' run is triggered then: REST knows a match once it plays
CAPACITY = 15  # triggers per triggerer: the survivor cannot take every trigger of the killed one
# Slots for every run of a goal minute at once (production.py's default: 2 per worker, parallelism 8): with four
# slots, a run of an event outside a burst mostly waited behind the others' (emission -> task queued).
WORKER_CONCURRENCY = 16
PARALLELISM = 2 * WORKER_CONCURRENCY
PREFIX = "scale_"
SENSOR_DAG = f"{PREFIX}sensors"
LIVE_SENSOR_DAG = f"{PREFIX}sensors_live"
ANY: tuple[str, ...] = ()


class Selection(NamedTuple):
    """What a watcher or sensor selects on MAIN: a scope and event types (none: any)."""

    scope: str
    scope_id: str | None
    event_types: tuple[str, ...]

    def selects(self, message: Mapping[str, Any]) -> bool:
        """Whether an emitted message is one of this selection's events."""
        field = {"all": None, "league": "leagueId", "match": "matchId"}[self.scope]
        in_scope = field is None or message[field] == self.scope_id
        return (
            message["channel"] == "MAIN" and in_scope and (not self.event_types or message["type"] in self.event_types)
        )


PHASES = ("match_start", "halftime", "second_half_start")
WATCHERS: dict[str, Selection] = {
    f"{PREFIX}{n:02}": selection
    for n, selection in enumerate(
        [
            Selection("all", None, ANY),
            Selection("all", None, ("goal",)),
            Selection("all", None, ("match_end",)),
            Selection("all", None, PHASES),
            Selection("league", LEAGUES[0], ANY),
            Selection("league", LEAGUES[0], ("goal",)),
            Selection("league", LEAGUES[0], ("match_end",)),
            Selection("league", LEAGUES[1], ANY),
            Selection("league", LEAGUES[1], ("goal",)),
            Selection("league", LEAGUES[1], ("halftime", "second_half_start")),
            Selection("league", LEAGUES[2], ("goal",)),
            Selection("league", LEAGUES[2], ("match_end",)),
            Selection("match", M[0], ANY),
            Selection("match", M[0], ("goal",)),
            Selection("match", M[1], ("match_end",)),
            Selection("match", M[2], ("goal",)),
            Selection("match", M[3], ANY),
            Selection("match", M[4], ("match_start", "match_end")),
            Selection("match", M[5], ("goal",)),
            Selection("match", M[5], ("halftime",)),
        ],
        start=1,
    )
}
# Each waits for the first event of its selection, from before kickoff. REST knows a match only once it plays, so
# none holds history: one restarted in the crash's gap must find its event after it (the match_end ones).
SENSORS: dict[str, Selection] = {
    "match_end_first": Selection("match", M[0], ("match_end",)),
    "match_end_last": Selection("match", M[5], ("match_end",)),
    "match_end_in_league": Selection("league", LEAGUES[0], ("match_end",)),
    "goal_in_league": Selection("league", LEAGUES[1], ("goal",)),
    "match_start_in_league": Selection("league", LEAGUES[2], ("match_start",)),
}
# Deferred once their match plays: each carries the keys of its match's REST record then (``seen``), and waits for
# the first event of its selection that is not among them, through REST if it happens in a gap.
LIVE_SENSORS: dict[str, Selection] = {
    "match_end_of_a_playing_match": Selection("match", M[2], ("match_end",)),
    "halftime_of_a_playing_match": Selection("match", M[3], ("halftime",)),
}
ALL_SENSORS = {**SENSORS, **LIVE_SENSORS}

WATCHER_TEMPLATE = '''\
"""Generated by tests/system/test_production_feed.py: one watcher of the live feed at scale."""

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_sfi.protocol.messages import match_events
from airflow_sfi.triggers.match_event import SfiMatchEventTrigger

trigger = SfiMatchEventTrigger(scope={scope!r}, scope_id={scope_id!r}, event_types={event_types!r})
events = Asset("{dag_id}", watchers=[AssetWatcher(name="{dag_id}_watcher", trigger=trigger)])

# Far above the runs a match makes: a Dag at max_active_runs leaves the asset events queued after the
# first one to a later event (Airflow 3.3 builds a run from the events up to the first queued one).
with DAG("{dag_id}", schedule=[events], start_date=pendulum.datetime(2024, 1, 1), catchup=False, max_active_runs=200):

    @task
    def record(**context):
        return match_events(context["triggering_asset_events"][events])

    record()
'''
SENSOR_TEMPLATE = '''\
"""Generated by tests/system/test_production_feed.py: sensors waiting on the live feed at scale."""

import pendulum
from airflow.sdk import DAG

from airflow_sfi.sensors.match_event import SfiMatchEventSensor

with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False):
    for task_id, kwargs in {sensors!r}.items():
        SfiMatchEventSensor(task_id=task_id, timeout=1200, **kwargs)
'''


def write_dags(folder: Path) -> None:
    """One watcher DAG file per entry of ``WATCHERS``, and the sensors' DAGs: ``SENSORS``, ``LIVE_SENSORS``."""
    folder.mkdir(parents=True)
    for dag_id, s in WATCHERS.items():
        kwargs = {"dag_id": dag_id, "scope": s.scope, "scope_id": s.scope_id, "event_types": list(s.event_types)}
        (folder / f"{dag_id}.py").write_text(WATCHER_TEMPLATE.format(**kwargs))
    for dag_id, selections in ((SENSOR_DAG, SENSORS), (LIVE_SENSOR_DAG, LIVE_SENSORS)):
        sensors = {
            task_id: {"event_types": list(s.event_types), f"{s.scope}_id": s.scope_id}
            for task_id, s in selections.items()
        }
        (folder / f"{dag_id}.py").write_text(SENSOR_TEMPLATE.format(dag_id=dag_id, sensors=sensors))


def scripts() -> list[MatchScript]:
    """Every match scores three to five goals at each of ``BURST_MINUTES``, and once alone at its ``SOLO_MINUTES``."""
    return [
        MatchScript.build(
            match_id,
            league_id,
            [(m, "home" if g % 2 else "away") for j, m in enumerate(BURST_MINUTES) for g in range(3 + (i + j) % 3)]
            + [(SOLO_MINUTES[i], "away")],
            stats_every=5,
            odds_every=10,
        )
        for i, (match_id, league_id) in enumerate(MATCHES.items())
    ]


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Production, SandboxServer]]:
    home: Path = tmp_path_factory.mktemp("production_feed") / "airflow"
    write_dags(home / "dags")
    with SandboxServer(ttl=TTL) as api:  # replay stays 0: what a socket missed comes only through REST
        env = {
            "AIRFLOW_CONN_SFI_DEFAULT": api.connection(KEY),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__TRIGGERER__CAPACITY": str(CAPACITY),
            # A few triggers per loop: both triggerers get some.
            "AIRFLOW__TRIGGERER__MAX_TRIGGER_TO_SELECT_PER_LOOP": "3",
            "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
        }
        with Production(home, env, worker_concurrency=WORKER_CONCURRENCY) as airflow:
            yield airflow, api


def as_json(value: Any) -> Any:
    """A JSON column as PostgreSQL hands it over: decoded already, or text."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def plain(value: Any) -> Any:
    """A serialized trigger kwarg without Airflow's ``{"__type": ..., "__var": ...}`` wrapping."""
    return plain(value["__var"]) if isinstance(value, dict) and "__var" in value else value


class Held(NamedTuple):
    """One feed trigger: what it serves (a watcher's DAG, a sensor's task), its triggerer, whether that one lives."""

    name: str
    host: str | None
    alive: bool


class Triggers:
    """The feed triggers in the metadata DB, and which triggerer runs each; their kwargs, decrypted, kept."""

    def __init__(self, airflow: Production) -> None:
        self.airflow = airflow
        self.kwargs_seen: dict[int, Any] = {}
        self.kwargs_of: dict[str, Any] = {}  # by what the trigger serves

    def held(self) -> dict[int, Held]:
        rows = self.airflow.query(
            "SELECT t.id, t.kwargs, coalesce(a.name, ti.task_id), j.hostname, "
            "j.state = 'running' AND j.latest_heartbeat > now() - interval '5 s' FROM trigger t "
            "LEFT JOIN job j ON j.id = t.triggerer_id LEFT JOIN asset_watcher w ON w.trigger_id = t.id "
            "LEFT JOIN asset a ON a.id = w.asset_id LEFT JOIN task_instance ti ON ti.trigger_id = t.id "
            "WHERE t.classpath LIKE 'airflow_sfi.%'"
        )
        for trigger_id, kwargs, name, *_ in rows:
            self.kwargs_seen[trigger_id] = self.kwargs_of[name] = self.airflow.trigger_kwargs(kwargs)
        return {trigger_id: Held(name, host, bool(alive)) for trigger_id, _, name, host, alive in rows}

    def by_triggerer(self) -> collections.Counter[str]:
        return collections.Counter(h.host for h in self.held().values() if h.alive and h.host)


STORED_STATE = (
    "SELECT a.name, s.value FROM asset_state_store s JOIN asset a ON a.id = s.asset_id WHERE s.key = 'sfi_feed_dedupe'"
)


def fired_in(value: Any) -> int:
    """How many fired events a watcher's stored state (``sfi_feed_dedupe``) vouches for."""
    state = as_json(value)
    state = as_json(state) if isinstance(state, str) else state
    keys = state.get("keys") if isinstance(state, dict) else None
    return len(keys) if isinstance(keys, list) else 0


def stamp(value: Any) -> float | None:
    """A timestamp column's POSIX time, or None."""
    return None if value is None else value.timestamp()


def log_count(airflow: Production, text: str) -> int:
    return sum(path.read_text(errors="replace").count(text) for path in airflow.log_files())


def test_twenty_watchers_and_seven_sensors_on_one_key_lose_nothing_through_a_token_switch_and_a_crash(
    production: tuple[Production, SandboxServer],
) -> None:
    airflow, api = production
    test_started = time.monotonic()
    clock = api.sandbox.clock
    triggers = Triggers(airflow)
    airflow.wait_for(
        "the DAG processor to parse the generated DAGs",
        lambda: len(airflow.query(f"SELECT dag_id FROM dag WHERE dag_id LIKE '{PREFIX}%'")) == len(WATCHERS) + 2,
        timeout=300,
    )
    airflow.cli("dags", "trigger", SENSOR_DAG)

    # Every trigger running, on both triggerers, each joined to its triggerer's socket; REST quiet (the first
    # look at REST of a trigger without history takes what it shows as seen: it must come before kickoff).
    def ready() -> bool:
        held = triggers.held()
        hosts = {h.host for h in held.values() if h.alive}
        joined = log_count(airflow, "Live feed connected") >= len(held)
        quiet = clock() - max(c.at for c in api.calls()) > 3
        return len(held) == len(WATCHERS) + len(SENSORS) and hosts == set(TRIGGERERS) and joined and quiet

    airflow.wait_for("every feed trigger to run and join its socket", ready, timeout=300, every=1.0)
    split_at_kickoff = dict(triggers.by_triggerer())

    # Play. The LIVE_SENSORS' run once the matches play (the CLI, in the background); ws/renew off until the token
    # ran out and both sockets moved to a fresh token.
    playback: Playback = api.play(scripts(), minute_seconds=MINUTE_SECONDS)
    kickoff, kicked_off_at = time.monotonic(), clock()

    def until_minute(minute: float) -> None:
        while (left := kickoff + minute * MINUTE_SECONDS - time.monotonic()) > 0:
            airflow.assert_running()
            time.sleep(min(left, 0.5))

    until_minute(LIVE_SENSORS_MINUTE)
    background = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    live_sensors_triggered = background.submit(airflow.cli, "dags", "trigger", LIVE_SENSOR_DAG)
    background.shutdown(wait=False)
    until_minute(RENEW_ABSENT_MINUTE)
    api.sandbox.renew = "absent"
    absent_from = clock()

    def switched() -> bool:
        fresh = [t for t in api.tokens() if t.issued_at >= absent_from]
        prints = {fingerprint(t.token) for t in fresh}
        open_on_fresh = [c for c in api.ws_connections() if c.refused is None and c.closed_at is None]
        return bool(fresh) and sum(c.token_fingerprint in prints for c in open_on_fresh) >= len(TRIGGERERS)

    airflow.wait_for("both sockets to move to a token from ws/new", switched, timeout=2 * TTL + 20, every=0.2)
    api.sandbox.renew = "extend"
    switched_at = clock()

    # The LIVE_SENSORS wait in a triggerer, their seen keys read (their kwargs), before the crash.
    live_sensors_triggered.result(timeout=max(1.0, kickoff + KILL_MINUTE * MINUTE_SECONDS - time.monotonic()))

    def live_sensors_waiting() -> bool:
        waiting = {h.name for h in triggers.held().values() if h.alive}
        return set(LIVE_SENSORS) <= waiting

    airflow.wait_for(
        "the live sensors to wait in a triggerer before the crash",
        live_sensors_waiting,
        timeout=max(1.0, kickoff + (KILL_MINUTE - 1) * MINUTE_SECONDS - time.monotonic()),
        every=0.5,
    )
    live_seen = {task_id: plain(plain(triggers.kwargs_of[task_id]).get("seen")) for task_id in LIVE_SENSORS}

    # The crash, of the triggerer holding the most feed triggers.
    switch_minute = (time.monotonic() - kickoff) / MINUTE_SECONDS
    assert switch_minute < KILL_MINUTE, f"the token switch ended at minute {switch_minute:.0f}, after the crash's"
    until_minute(KILL_MINUTE)
    before = triggers.held()
    split_at_kill = dict(triggers.by_triggerer())

    victim = max(split_at_kill, key=lambda host: split_at_kill[host])
    survivor = next(t for t in TRIGGERERS if t != victim)
    on_victim = {trigger_id: h.name for trigger_id, h in before.items() if h.host == victim}
    fired_before_kill = {name: fired_in(value) for name, value in airflow.query(STORED_STATE)}
    without_state = sorted(set(WATCHERS) - set(fired_before_kill))
    fired_nothing = sorted(n for n in on_victim.values() if n in WATCHERS and not fired_before_kill.get(n))
    killed_at, kill_minute = clock(), (time.monotonic() - kickoff) / MINUTE_SECONDS
    exit_status = airflow.kill(victim)

    def hosts() -> dict[int, str | None]:
        """The triggerer of each trigger the killed one held (None for one that ended)."""
        held = triggers.held()
        return {i: held[i].host if i in held else None for i in on_victim}

    def taken_over() -> bool:
        now_on = list(hosts().values())
        full = triggers.by_triggerer()[survivor] >= CAPACITY
        return survivor in now_on and (full or victim not in now_on)

    airflow.wait_for(f"{survivor} to take over what it can of {victim}", taken_over, timeout=90, every=0.2)
    taken_over_at = clock()
    moved_to_survivor = sorted(on_victim[i] for i, host in hosts().items() if host == survivor)
    airflow.start(victim)
    restarted_at = clock()
    airflow.wait_for(
        "every feed trigger to run again",
        lambda: all(h.alive for h in triggers.held().values()),
        timeout=180,
        every=0.5,
    )
    all_running_at = clock()
    assert playback.wait(timeout=300), "the matches did not finish playing"
    match_over = clock()

    # Drain: every expected event recorded, no run unfinished, the last flush markers out; bounded.
    emitted = api.emitted()
    main = [e for e in emitted if e.message["channel"] == "MAIN"]
    keys = {id(e): key_of(e.message) for e in main}
    expected = {dag_id: {keys[id(e)]: e for e in main if s.selects(e.message)} for dag_id, s in WATCHERS.items()}
    quiet_from = main[-1].at + FLUSH_AFTER_SECONDS + 2

    def recorded() -> dict[str, dict[str, list[dict[str, Any]]]]:
        """dag_id -> run_id -> the events its task recorded."""
        runs: dict[str, dict[str, list[dict[str, Any]]]] = collections.defaultdict(dict)
        for dag_id, run_id, value in airflow.query(
            "SELECT dag_id, run_id, value FROM xcom WHERE dag_id LIKE ? AND task_id = 'record' "
            "AND key = 'return_value'",
            f"{PREFIX}%",
        ):
            runs[dag_id][run_id] = as_json(value)
        return runs

    def drained() -> bool:
        (unfinished,) = airflow.query(
            "SELECT count(*) FROM dag_run WHERE dag_id LIKE ? AND state IN ('queued', 'running')", f"{PREFIX}%"
        )[0]
        runs = recorded()
        got = {dag_id: {e["key"] for batch in runs[dag_id].values() for e in batch} for dag_id in WATCHERS}
        return clock() > quiet_from and not unfinished and all(got[d] >= set(expected[d]) for d in WATCHERS)

    # Bounded: 300 s at most, and 45 s without a new run finishing once the runs are done (something was lost).
    deadline, last_change, finished = time.monotonic() + 300, time.monotonic(), -1
    while not drained() and time.monotonic() < min(deadline, last_change + 45):
        airflow.assert_running()
        time.sleep(2)
        (done,) = airflow.query(
            "SELECT count(*) FROM dag_run WHERE dag_id LIKE ? AND end_date IS NOT NULL", f"{PREFIX}%"
        )[0]
        last_change, finished = (time.monotonic(), done) if done != finished else (last_change, finished)
    drained_at = clock()
    runs = recorded()

    # Exactly once per watcher, nothing outside its selection, no failed run.
    emitted_at = {keys[id(e)]: e.at for e in main}
    lost: dict[str, list[str]] = {}
    duplicated: dict[str, dict[str, list[str]]] = {}
    unexpected: dict[str, list[str]] = {}
    delivered: list[tuple[str, str, dict[str, Any]]] = []  # (dag_id, run_id, payload)
    for dag_id in WATCHERS:
        runs_of: dict[str, list[str]] = collections.defaultdict(list)
        for run_id, batch in runs[dag_id].items():
            for payload in batch:
                runs_of[payload["key"]].append(run_id)
                delivered.append((dag_id, run_id, payload))
        lost[dag_id] = [k for k in expected[dag_id] if k not in runs_of]
        duplicated[dag_id] = {k: r for k, r in runs_of.items() if len(r) > 1}
        unexpected[dag_id] = sorted(set(runs_of) - set(expected[dag_id]))
    failed = airflow.query(
        "SELECT dag_id, run_id, state FROM dag_run WHERE dag_id LIKE ? AND state != 'success'", f"{PREFIX}%"
    )
    # What the killed watchers that had fired nothing had to get from the kill until every trigger ran again.
    in_gap_for_fired_nothing = sum(
        killed_at <= emitted_at[k] <= all_running_at for d in fired_nothing for k in expected[d]
    )

    # The sensors: each returned the first event of its selection; a LIVE_SENSORS one the first not in its seen.
    sensor_results = {
        task_id: (state, as_json(value))
        for task_id, state, value in airflow.query(
            "SELECT ti.task_id, ti.state, x.value FROM task_instance ti LEFT JOIN xcom x ON x.dag_id = ti.dag_id "
            "AND x.run_id = ti.run_id AND x.task_id = ti.task_id AND x.key = 'return_value' "
            "WHERE ti.dag_id IN (?, ?)",
            SENSOR_DAG,
            LIVE_SENSOR_DAG,
        )
    }
    sensors_wrong = {}
    for task_id, selection in ALL_SENSORS.items():
        state, event = sensor_results.get(task_id, (None, None))
        seen = live_seen.get(task_id, [])
        if not isinstance(seen, list):
            sensors_wrong[task_id] = (state, "no seen keys: it deferred without its match's REST record", seen)
            continue
        chosen = [e for e in main if selection.selects(e.message) and keys[id(e)] not in seen]
        first = {keys[id(e)] for e in chosen if e.at == chosen[0].at} if chosen else set()
        if state != "success" or not isinstance(event, dict) or event.get("key") not in first:
            sensors_wrong[task_id] = (state, event and event.get("key"), sorted(first))

    # Sockets and errors, from the sandbox.
    errors = api.ws_errors_sent()
    connections = api.ws_connections()
    accepted = [c for c in connections if c.refused is None]
    timeline = api.ws_socket_timeline()
    per_key = 0  # the most sockets open at once for the key, every token counted
    open_by_token: dict[str, int] = {}
    for _, token, count in timeline:
        open_by_token[token] = count
        per_key = max(per_key, sum(open_by_token.values()))

    # Figures. Outside a burst: no other MAIN event, of any match, within FLUSH_AFTER_SECONDS of it.
    alone = {keys[id(e)] for e in main if not any(o is not e and abs(o.at - e.at) < FLUSH_AFTER_SECONDS for o in main)}
    outside_bursts = {(dag_id, key) for dag_id, events in expected.items() for key in events if key in alone}

    def group_of(dag_id: str, payload: Mapping[str, Any]) -> list[str]:
        if payload.get("backfilled"):
            return ["backfilled"]
        return ["live", "live_outside_bursts"] if (dag_id, payload["key"]) in outside_bursts else ["live"]

    groups = ("live", "live_outside_bursts", "backfilled")
    # Per run of a watcher: its task's start and queued times, then the run's creation and the task's scheduling.
    stages = airflow.query(
        "SELECT ti.dag_id, ti.run_id, ti.start_date, ti.queued_dttm, r.created_at, ti.scheduled_dttm "
        "FROM task_instance ti JOIN dag_run r ON r.dag_id = ti.dag_id AND r.run_id = ti.run_id "
        "WHERE ti.dag_id LIKE ? AND ti.task_id = 'record'",
        f"{PREFIX}%",
    )
    task_times = {
        (dag_id, run_id): (start.timestamp(), queued.timestamp() if queued is not None else None)
        for dag_id, run_id, start, queued, *_ in stages
        if start is not None
    }
    latency: dict[str, list[float]] = {group: [] for group in groups}
    to_queued: dict[str, list[float]] = {group: [] for group in groups}
    for dag_id, run_id, payload in delivered:
        if (dag_id, run_id) in task_times and payload["key"] in emitted_at:
            start, queued = task_times[dag_id, run_id]
            for group in group_of(dag_id, payload):
                latency[group].append(start - emitted_at[payload["key"]])
                if queued is not None:
                    to_queued[group].append(queued - emitted_at[payload["key"]])
    asset_events = [
        (name, as_json(extra)["payload"], at.timestamp())
        for name, extra, at in airflow.query(
            "SELECT a.name, e.extra, e.timestamp FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.name LIKE ?",
            f"{PREFIX}%",
        )
    ]
    fired = collections.Counter((name, payload.get("key")) for name, payload, _ in asset_events)
    # Emission -> asset event: the feed's part alone, before the scheduler and the workers.
    to_asset_event: dict[str, list[float]] = {group: [] for group in groups}
    for name, payload, at in asset_events:
        if payload.get("key") in emitted_at:
            for group in group_of(name, payload):
                to_asset_event[group].append(at - emitted_at[payload["key"]])
    flushes = sum(n for (_, key), n in fired.items() if key is None)
    calls = collections.Counter(c.endpoint for c in api.calls())
    expectations = sum(len(e) for e in expected.values())
    sensor_held_at_kill = {h.name: h.host for h in before.values() if h.name in ALL_SENSORS}
    fired_lines = [
        line
        for name in TRIGGERERS
        for line in (airflow.home / "proc" / f"{name}.log").read_text(errors="replace").splitlines()
        if "Trigger fired event" in line
    ]
    flush_lines = [line for line in fired_lines if "'type': 'flush'" in line]
    event_lines = [line for line in fired_lines if "'type': 'flush'" not in line]
    # Per live event outside a burst: its watcher, its key, emission -> asset event, -> run created, -> task scheduled,
    # -> task queued, -> task start.
    outside_detail = []
    for dag_id, run_id, payload in delivered:
        if "live_outside_bursts" in group_of(dag_id, payload) and (dag_id, run_id) in task_times:
            at = emitted_at[payload["key"]]
            start, queued = task_times[dag_id, run_id]
            asset_at = next((t for n, p, t in asset_events if n == dag_id and p.get("key") == payload["key"]), None)
            created, scheduled = next((c, s) for d, r, _, _, c, s in stages if (d, r) == (dag_id, run_id))
            outside_detail.append(
                [
                    dag_id,
                    payload["key"],
                    *(None if t is None else round(t - at, 2) for t in (asset_at, stamp(created), stamp(scheduled))),
                    None if queued is None else round(queued - at, 2),
                    round(start - at, 2),
                ]
            )
    figures: dict[str, Any] = {
        "watchers": len(WATCHERS),
        "sensors": len(ALL_SENSORS),
        "matches": len(MATCHES),
        "events_emitted": len(emitted),
        "main_events_emitted": len(main),
        "expected_deliveries": expectations,
        "lost": sum(len(v) for v in lost.values()),
        "lost_keys": {d: k for d, k in lost.items() if k},
        "killed_watchers_that_had_fired_nothing": fired_nothing,
        "their_deliveries_emitted_in_the_gap": in_gap_for_fired_nothing,
        "watchers_without_stored_state_at_kill": without_state,
        "duplicated": sum(len(v) for v in duplicated.values()),
        "unexpected": sum(len(v) for v in unexpected.values()),
        "fired_twice": sum(1 for (_, key), n in fired.items() if key is not None and n > 1),
        "backfilled_deliveries": sum(bool(p.get("backfilled")) for *_, p in delivered),
        "dag_runs": sum(len(r) for r in runs.values()),
        "failed_runs": len(failed),
        "flush_markers": flushes,
        "sensors_backfilled": sum(
            bool(isinstance(v, dict) and v.get("backfilled")) for _, v in sensor_results.values()
        ),
        "sensor_results": {
            task_id: {
                "state": state,
                "key": event.get("key") if isinstance(event, dict) else None,
                "backfilled": bool(isinstance(event, dict) and event.get("backfilled")),
                "triggerer_at_kill": sensor_held_at_kill.get(task_id),
                "seen_keys": len(live_seen[task_id]) if isinstance(live_seen.get(task_id), list) else None,
            }
            for task_id, (state, event) in sensor_results.items()
        },
        "sensors_on_killed": sorted(name for name, host in sensor_held_at_kill.items() if host == victim),
        "slots": {"worker_concurrency": WORKER_CONCURRENCY, "workers": len(WORKERS), "parallelism": PARALLELISM},
        "event_to_task_start_s": {group: summary(values) for group, values in latency.items()},
        "event_to_task_queued_s": {group: summary(values) for group, values in to_queued.items()},
        "event_to_asset_event_s": {group: summary(values) for group, values in to_asset_event.items()},
        "live_outside_bursts": sorted(outside_detail, key=lambda row: row[-1]),
        "trigger_fired_log_lines": {
            "count": len(fired_lines),
            "flush_markers": len(flush_lines),
            "longest_chars_event": max((len(line) for line in event_lines), default=0),
            "longest_chars_flush_marker": max((len(line) for line in flush_lines), default=0),
            "sample": event_lines[-1] if event_lines else None,
        },
        "sockets": {
            "attempts": len(connections),
            "accepted": len(accepted),
            "max_per_token": api.ws_max_sockets(),
            "max_per_key_all_tokens": per_key,
            "limit_refusals": api.ws_limit_refusals(),
            "errors_sent": errors,
            "close_codes": dict(collections.Counter(str(c.close_code) for c in accepted)),
        },
        "tokens": {
            "ttl_s": TTL,
            "issued": len(api.issued_tokens),
            "renew_absent_s": switched_at - absent_from,
        },
        "rest_calls": dict(calls),
        "triggerers": {
            "split_at_kickoff": split_at_kickoff,
            "split_at_kill": split_at_kill,
            "killed": victim,
            "exit_status": exit_status,
            "kill_minute": kill_minute,
            "switch_minute": switch_minute,
            "on_killed": sorted(on_victim.values()),
            "moved_to_survivor": moved_to_survivor,
            "kill_to_takeover_s": taken_over_at - killed_at,
            "kill_to_restart_s": restarted_at - killed_at,
            "kill_to_all_running_s": all_running_at - killed_at,
        },
        "timeline_s": {
            "kickoff_to_switched": switched_at - kicked_off_at,
            "match": match_over - kicked_off_at,
            "match_over_to_drained": drained_at - match_over,
        },
    }

    # No secret anywhere: log files, every table (pg_dump), the triggers' decrypted kwargs.
    secrets = [KEY, *api.issued_tokens]
    log_text = {p: p.read_text(errors="replace") for p in airflow.log_files()}
    tables = sections(airflow.postgres.dump())
    kwargs = json.dumps(list(triggers.kwargs_seen.values()), default=str)
    leaks = {
        secret[:4] + "…": [str(p) for p, t in log_text.items() if secret in t]
        + [name for name, rows in tables.items() if secret in rows]
        + (["trigger kwargs"] if secret in kwargs else [])
        for secret in secrets
    }
    figures |= {
        "secrets_checked": len(secrets),
        "log_files_checked": len(log_text),
        "tables_checked": len(tables),
        "test_seconds": time.monotonic() - test_started,
    }
    print(f"\nSFI_FEED_SCALE_FIGURES {json.dumps(figures)}", flush=True)
    if path := os.environ.get("SFI_FEED_SCALE_FIGURES"):  # written before any assertion can fail
        Path(path).write_text(json.dumps(figures, indent=2))
    print_figures(figures)

    # Every hard target at once, so that a failure shows them all. A lost event says whether its watcher fired it.
    problems = {
        "lost (key: times its watcher fired it)": {d: {k: fired[d, k] for k in ks} for d, ks in lost.items() if ks},
        "duplicated": {d: k for d, k in duplicated.items() if k},
        "outside the selection": {d: k for d, k in unexpected.items() if k},
        "failed runs": failed,
        "watchers without a stored state at the kill": without_state,
        "sensors without the right event": sensors_wrong,
        "killed without SIGKILL": exit_status != -9,
        "fewer than 100 MAIN events": len(main) < 100,
        "no token switch": len(api.issued_tokens) < 2,
        "connection-limit refusals": api.ws_limit_refusals() + errors.get("CONNECTION_LIMIT", 0),
        "SUBSCRIPTION_LIMIT errors": errors.get("SUBSCRIPTION_LIMIT", 0),
        "more than 2 sockets for a token": api.ws_max_sockets() > 2,
        "tables missing from the dump": {"trigger", "xcom", "asset_event", "asset_state_store"} - set(tables),
        "no trigger kwargs sampled": not triggers.kwargs_seen,
        "secrets leaked": {s: where for s, where in leaks.items() if where},
    }
    found = {name: what for name, what in problems.items() if what}
    assert not found, pprint.pformat(found, width=120)


def print_figures(f: Mapping[str, Any]) -> None:
    def lat(s: Mapping[str, Any]) -> str:
        if not s["n"]:
            return "none"
        return f"n={s['n']}, median {s['median']:.2f} s, p95 {s['p95']:.2f} s, max {s['max']:.2f} s"

    def groups(s: Mapping[str, Mapping[str, Any]]) -> str:
        return (
            f"live {lat(s['live'])}; live outside bursts {lat(s['live_outside_bursts'])}; "
            f"backfilled {lat(s['backfilled'])}"
        )

    ws, tr, slots, logged = f["sockets"], f["triggerers"], f["slots"], f["trigger_fired_log_lines"]
    sensors = {
        task_id: f"{r['state']}{', backfilled' if r['backfilled'] else ''}"
        for task_id, r in f["sensor_results"].items()
    }
    print(
        f"\nLive feed at scale: {f['watchers']} watchers, {f['sensors']} sensors, one key; {f['main_events_emitted']} "
        f"MAIN events of {f['events_emitted']} emitted over {f['matches']} matches; {f['expected_deliveries']} "
        f"expected deliveries: {f['lost']} lost, {f['duplicated']} duplicated, {f['unexpected']} unexpected; "
        f"{f['backfilled_deliveries']} backfilled; {f['fired_twice']} fired twice; {f['dag_runs']} runs "
        f"({f['flush_markers']} flush markers), {f['failed_runs']} failed. Killed watchers that had fired nothing: "
        f"{', '.join(f['killed_watchers_that_had_fired_nothing']) or 'none'} "
        f"({f['their_deliveries_emitted_in_the_gap']} of their events emitted in the gap).\n"
        f"Sensors {sensors}; on the killed triggerer: {', '.join(f['sensors_on_killed']) or 'none'}.\n"
        f"Slots: {slots['workers']} workers x {slots['worker_concurrency']}, parallelism {slots['parallelism']}.\n"
        f"Emission -> task start: {groups(f['event_to_task_start_s'])}.\n"
        f"Emission -> task queued: {groups(f['event_to_task_queued_s'])}.\n"
        f"Emission -> asset event: {groups(f['event_to_asset_event_s'])}.\n"
        f"Sockets: {ws['accepted']} accepted of {ws['attempts']}, at most {ws['max_per_token']} per token "
        f"({ws['max_per_key_all_tokens']} for the key, tokens counted together), {ws['limit_refusals']} refused "
        f"over the limit, errors {ws['errors_sent'] or 'none'}, close codes {ws['close_codes']}; "
        f"{f['tokens']['issued']} tokens, ws/renew absent {f['tokens']['renew_absent_s']:.0f} s.\n"
        f"Triggerers {tr['split_at_kickoff']} at kickoff, {tr['split_at_kill']} at the kill of {tr['killed']} "
        f"(minute {tr['kill_minute']:.0f}): {len(tr['moved_to_survivor'])} of its {len(tr['on_killed'])} triggers "
        f"taken over in {tr['kill_to_takeover_s']:.1f} s, the others waited for its restart at "
        f"{tr['kill_to_restart_s']:.1f} s; all running again "
        f"{tr['kill_to_all_running_s']:.1f} s after the kill. REST calls {f['rest_calls']}.\n"
        f"Trigger fired event: {logged['count']} lines in the triggerers' output ({logged['flush_markers']} flush "
        f"markers), the longest {logged['longest_chars_event']} characters for an event, "
        f"{logged['longest_chars_flush_marker']} for a flush marker; e.g. {logged['sample']}\n"
        f"Drained {f['timeline_s']['match_over_to_drained']:.0f} s after the match; {f['secrets_checked']} "
        f"secrets searched in {f['log_files_checked']} log files and {f['tables_checked']} tables; "
        f"test {f['test_seconds']:.0f} s."
    )
