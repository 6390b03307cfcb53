"""Every example DAG in a real Airflow (dag.test(), SQLite metadata DB) against the sandbox API."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_sfi.protocol.token import WsToken
from airflow_sfi.sandbox import SandboxServer
from airflow_sfi.version_compat import AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_2_PLUS, AIRFLOW_V_3_3_PLUS
from tests.helpers import REPO, when_subscribed
from tests.helpers import run_dag as run_test

# Marked integration by this folder's conftest. The DAGs run in real time: tokens of a few seconds, and
# renew margins the DAGs read from SFI_RENEW_MARGIN_SECONDS.
DAGS = REPO / "example_dags"
# dag.test() writes task state events to the Log table from Airflow 3.2 on.
EVENTS_RECORDED = AIRFLOW_V_3_2_PLUS
# Airflow 3.0's dag.test() runs triggers without Variable access: the refresh trigger cannot store the
# token, and the resumed task (refresh_complete) asks ws/new for the renewed one and stores it.
TRIGGER_STORES_VARIABLE = AIRFLOW_V_3_1_PLUS


@pytest.fixture(scope="module", autouse=True)
def airflow_db() -> Iterator[None]:
    from airflow.utils import db

    db.resetdb()
    yield


@pytest.fixture
def no_published_token() -> Iterator[None]:
    """The rotation publishes to the Variable sfi_ws_token, which outlives a test: start each without it."""
    from airflow.models import Variable

    Variable.delete("sfi_ws_token")
    yield
    Variable.delete("sfi_ws_token")


def parse() -> Any:
    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def run_dag(dag_id: str) -> tuple[Any, dict[str, Any], dict[str, list[str]]]:
    """Run one example DAG; return the run, its task instances and each task's state events."""
    return run_test(parse().get_dag(dag_id))


def assert_events(events: dict[str, list[str]], task_id: str, first: list[str]) -> None:
    """The task's first state events are ``first``, where Airflow records them (3.2 and later)."""
    if EVENTS_RECORDED:
        assert events[task_id][: len(first)] == first


def rendered_fields(run_id: str) -> list[Any]:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(RenderedTaskInstanceFields.rendered_fields).where(RenderedTaskInstanceFields.run_id == run_id)
        return list(session.scalars(query).all())


def test_example_dags_parse_without_errors_or_deprecation_warnings() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = parse()
    expected = {
        "sfi_token_rotation",
        "sfi_direct_token",
        "sfi_rapidapi_token",
        "sfi_token_wait_in_triggerer",
        "sfi_league_goals",
        "sfi_match_pipeline",
        "sfi_daily_matches",
    }
    if AIRFLOW_V_3_3_PLUS:
        assert bag.import_errors == {}
    else:  # start_from_trigger needs 3.3: the one example that uses it fails at parse, saying so
        (error,) = bag.import_errors.values()
        assert set(bag.import_errors) == {str(DAGS / "sfi_token_wait_in_triggerer.py")}
        assert "start_from_trigger needs Airflow 3.3 or later" in error
        expected.remove("sfi_token_wait_in_triggerer")
    assert set(bag.dag_ids) == expected
    ours = [
        w
        for w in caught
        if issubclass(w.category, DeprecationWarning) and ("airflow_sfi" in w.filename or str(DAGS) in w.filename)
    ]
    assert ours == [], [str(w.message) for w in ours]


@pytest.mark.sfi_sandbox(ttl=600)
@pytest.mark.usefixtures("no_published_token")
def test_rotation_dag_renews_the_token_it_carries_from_run_to_run(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Due at once (the margin is more than the token's life), and the API's clock a second further on at each
    # request, as if each came a second after the one before: each renewal extends the token.
    monkeypatch.setenv("SFI_RENEW_MARGIN_SECONDS", "601")
    sfi_sandbox.sandbox.clock = lambda: time.time() + len(sfi_sandbox.sandbox.requests)
    tokens = []
    for _ in range(2):
        run, tis, events = run_dag("sfi_token_rotation")
        assert run.state == "success"
        assert {t: str(ti.state) for t, ti in tis.items()} == dict.fromkeys(tis, "success")
        # The refresh waited and renewed in the trigger, not in a worker.
        assert_events(events, "refresh_token", ["running", "deferred"])
        tokens.append(
            (tis["get_token"].xcom_pull(task_ids="get_token"), tis["refresh_token"].xcom_pull(task_ids="refresh_token"))
        )
    (first_got, first_renewed), (second_got, second_renewed) = tokens
    # One token throughout, each renewal moving its expiry; the second run started from what the first published.
    assert len({t["token"] for pair in tokens for t in pair}) == 1
    assert first_renewed["expires_at"] > first_got["expires_at"]
    assert second_got == first_renewed
    assert second_renewed["expires_at"] >= first_renewed["expires_at"]
    # ws/new once (the first run's get_token), ws/renew once per run; refresh_complete reads the Variable back.
    if TRIGGER_STORES_VARIABLE:
        assert [c.endpoint for c in sfi_sandbox.calls()] == ["ws/new", "ws/renew", "ws/renew"]
    else:  # refresh_complete asks ws/new for the renewed token after each renewal
        assert [c.endpoint for c in sfi_sandbox.calls()] == ["ws/new", "ws/renew", "ws/new", "ws/renew", "ws/new"]
    # Rendered template fields are stored and shown in the UI: the expiry is there, no token is.
    rendered = json.dumps(rendered_fields(run.run_id))
    assert first_renewed["expires_at"] in rendered
    for secret in [*sfi_sandbox.issued_tokens, "sandbox-key-pro"]:
        assert secret not in rendered


@pytest.mark.sfi_sandbox(ttl=1, renew="absent")
@pytest.mark.usefixtures("no_published_token")
def test_rotation_dag_without_renew_waits_out_the_token(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SFI_RENEW_MARGIN_SECONDS", "0.5")  # the token ends 1-2 s after it was issued
    run, tis, _ = run_dag("sfi_token_rotation")
    assert run.state == "success"
    got = WsToken.from_dict(tis["get_token"].xcom_pull(task_ids="get_token"))
    refreshed = WsToken.from_dict(tis["refresh_token"].xcom_pull(task_ids="refresh_token"))
    assert refreshed.token != got.token and refreshed.expires_at > got.expires_at
    # ws/new, the refused renew, ws/new at expiry (and once more in refresh_complete on Airflow 3.0).
    assert [c.status for c in sfi_sandbox.calls()] == [200, 404, 200] + ([] if TRIGGER_STORES_VARIABLE else [200])
    # The new token was issued as the old one ended: not a moment without a valid one on the API's side.
    old, new = sfi_sandbox.tokens()
    assert 0 <= new.issued_at - old.expires_at < 1.5


def test_direct_dag_hands_on_details_and_publishes_the_variable(sfi_sandbox: SandboxServer) -> None:
    from airflow.models.variable import Variable

    run, tis, _ = run_dag("sfi_direct_token")
    assert run.state == "success"
    token = tis["get_token"].xcom_pull(task_ids="get_token")
    assert tis["plan_limits"].xcom_pull(task_ids="plan_limits") == "2 connections, channels MAIN"
    assert json.loads(Variable.get("sfi_ws_token")) == token
    assert len(sfi_sandbox.calls("ws/new")) == 1


def first_event_at(run_id: str, task_id: str, event: str) -> Any:
    """When the task's first ``event`` (e.g. ``running``) was recorded in the run, or None."""
    from airflow.models.log import Log
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(Log.dttm).where(Log.run_id == run_id, Log.task_id == task_id, Log.event == event)
        return session.scalars(query.order_by(Log.id)).first()


def test_rapidapi_dag_waits_in_reschedule_mode(sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFI_RENEW_MARGIN_SECONDS", "3")
    monkeypatch.setenv("AIRFLOW_CONN_SFI_RAPIDAPI", sfi_sandbox.connection("sandbox-key-ultra", "rapidapi"))
    # The sensor has 2-3 s between get_token's call and the refresh time to start in, and reschedule. A
    # sensor that starts past that moment rightly succeeds without a reschedule: when the run shows the
    # sensor started that late (a starved machine once took over 5 s), it runs again with a token that lives
    # longer. One that started in time and did not reschedule fails the test.
    for ttl in (5, 10, 20):
        sfi_sandbox.sandbox.ttl = ttl
        sfi_sandbox.expire_tokens()  # each run's get_token gets a token of its own
        run, tis, events = run_dag("sfi_rapidapi_token")
        assert run.state == "success"
        token = WsToken.from_dict(tis["get_token"].xcom_pull(task_ids="get_token"))
        refresh_at = token.expires_at.subtract(seconds=3)
        if not EVENTS_RECORDED or "up_for_reschedule" in events["wait_until_near_expiry"]:
            break
        started = first_event_at(run.run_id, "wait_until_near_expiry", "running")
        assert started is not None and started > refresh_at.subtract(seconds=0.5), (
            f"the sensor started at {started}, before the refresh time {refresh_at}, and did not reschedule"
        )
    assert set(token.allowed_channels) >= {"MAIN", "STATS"}
    if EVENTS_RECORDED:
        assert "up_for_reschedule" in events["wait_until_near_expiry"]
    assert tis["wait_until_near_expiry"].end_date >= refresh_at
    call = sfi_sandbox.calls()[-1]
    assert (call.path, call.auth_type) == ("/ws/new/", "rapidapi")
    assert [c.endpoint for c in sfi_sandbox.calls()] == ["ws/new"] * len(sfi_sandbox.calls())  # one per run


def test_rapidapi_dag_fails_when_the_plan_lacks_a_channel(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SFI_RAPIDAPI", sfi_sandbox.connection("sandbox-key-pro", "rapidapi"))
    run, tis, _ = run_dag("sfi_rapidapi_token")
    assert run.state == "failed"
    assert str(tis["get_token"].state) == "failed"
    assert str(tis["wait_until_near_expiry"].state) == "upstream_failed"


@pytest.mark.sfi_sandbox(rate_window=1)
def test_rate_limited_task_is_rescheduled_to_the_reset_and_succeeds(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The 429 asks to wait 1 s (the window), longer than the connection sleeps out: the task is rescheduled.
    monkeypatch.setenv("AIRFLOW_CONN_SFI_DEFAULT", sfi_sandbox.connection(max_retry_wait=0.5))
    sfi_sandbox.inject("rate_limit")
    run, _, events = run_dag("sfi_direct_token")
    assert run.state == "success"
    # Rescheduled; below Airflow 3.1, which would run a rescheduled task again at once, deferred.
    expected = ["running", "up_for_reschedule" if AIRFLOW_V_3_1_PLUS else "deferred"]
    assert_events(events, "get_token", expected)
    calls = sfi_sandbox.calls("ws/new")
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].at - calls[0].at >= 1  # waited for the reset, not retried at once


def test_match_pipeline_waits_for_the_end_of_the_match_then_processes_and_lands_it(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow_sfi.sandbox import default_matches

    monkeypatch.setenv("SFI_LANDING_URL", tmp_path.as_uri())  # the landing param's default, read at parse
    match = default_matches()[0]  # the DAG's default match_id
    when_subscribed(
        sfi_sandbox, f"MAIN:match:{match.match_id}", lambda: sfi_sandbox.play([match], minute_seconds=0.002)
    )
    run, tis, events = run_dag("sfi_match_pipeline")
    assert run.state == "success"
    assert_events(events, "wait_for_match_end", ["running", "deferred"])
    final = tis["wait_for_match_end"].xcom_pull(task_ids="wait_for_match_end")
    assert (final["type"], final["match_id"]) == ("match_end", match.match_id)
    summary = tis["process_match"].xcom_pull(task_ids="process_match")
    assert summary == {"match_id": match.match_id, "minute": 90, "score": [3, 2]}
    # The sensor's one socket, closed when the wait ended; no secret in what Airflow stored.
    (socket,) = sfi_sandbox.ws_connections()
    assert socket.closed_at is not None
    # Then the REST record, ENDED, waited for in the triggerer and landed with the match's goals.
    assert_events(events, "wait_for_final_record", ["running", "deferred"])
    record = tis["wait_for_final_record"].xcom_pull(task_ids="wait_for_final_record")
    assert (record["id"], record["status"]) == (match.match_id, "ENDED")
    path = tmp_path / "matches" / f"{match.match_id}.json"
    assert tis["land_record"].xcom_pull(task_ids="land_record").endswith(str(path))
    landed = json.loads(path.read_text())
    assert (landed["id"], landed["status"]) == (match.match_id, "ENDED")
    assert (landed["teamA"]["score"]["f"], landed["teamB"]["score"]["f"]) == (3, 2)
    assert [e["team"] for e in landed["events"] if e["type"] == "goal"] == ["A", "B", "A", "A", "B"]
    # The event sensor's look at the match when it deferred and its one reconciliation once subscribed, then
    # the status sensor's two polls.
    assert [c.endpoint for c in sfi_sandbox.calls() if c.endpoint != "ws/new"] == ["matches/view/basic"] * 4
    rendered = json.dumps(rendered_fields(run.run_id))
    assert match.match_id in rendered
    for secret in [*sfi_sandbox.issued_tokens, "sandbox-key-pro"]:
        assert secret not in rendered and secret not in json.dumps(final) and secret not in path.read_text()


def test_league_goals_is_scheduled_by_a_watcher_and_reads_its_batch_once() -> None:
    import runpy
    from types import SimpleNamespace

    from airflow_sfi.triggers.match_event import SfiMatchEventTrigger

    module = runpy.run_path(str(DAGS / "sfi_league_goals.py"))
    asset = module["league_goals"]
    (watcher,) = asset.watchers
    assert isinstance(watcher.trigger, SfiMatchEventTrigger)
    kwargs = watcher.trigger.serialize()[1]
    assert (kwargs["scope"], kwargs["scope_id"], kwargs["event_types"]) == ("league", module["LEAGUE_ID"], ["goal"])
    # A burst may reach one run as a batch, a goal possibly twice: each once, oldest first.
    goal = {"key": "k1", "ts": 2, "match_id": "m", "data": {"minute": 12, "score": [1, 0]}}
    earlier = {"key": "k0", "ts": 1, "match_id": "m", "data": {"minute": 3, "score": [0, 1]}}
    flush = {"type": "flush", "watermark": 2}
    batch = [SimpleNamespace(extra={"payload": p}) for p in (goal, earlier, flush, goal)]
    record_goals = parse().get_dag("sfi_league_goals").get_task("record_goals").python_callable
    assert record_goals(triggering_asset_events=TriggeringEvents(asset, batch)) == [earlier, goal]


class TriggeringEvents:
    """Stands in for Airflow's accessor of a run's asset events, looked up by asset (not hashable on 3.0)."""

    def __init__(self, asset: Any, batch: list[Any]) -> None:
        self.asset, self.batch = asset, batch

    def __getitem__(self, asset: Any) -> list[Any]:
        return self.batch if asset == self.asset else []
