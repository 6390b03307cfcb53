"""SfiWsTokenExpirySensor: one decision, three modes."""

from __future__ import annotations

import asyncio
import datetime
import json

import pendulum
import pytest
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk.exceptions import AirflowRescheduleException, TaskDeferred

from airflow_sfi.exceptions import SfiConfigError
from airflow_sfi.sensors.ws_token import SfiWsTokenExpirySensor, expiry_of, refresh_due
from airflow_sfi.token import WsToken
from tests.conftest import token_item

SECRET = "sensor-ws-token-secret"
MARGIN = datetime.timedelta(minutes=5)


def token_dict(expires_at: pendulum.DateTime) -> dict[str, object]:
    return token_item(SECRET, expires_at.isoformat())


def sensor(expires_at: object, **kwargs: object) -> SfiWsTokenExpirySensor:
    return SfiWsTokenExpirySensor(task_id="wait", expires_at=expires_at, refresh_margin=MARGIN, **kwargs)


def test_refresh_due_is_inclusive() -> None:
    moment = pendulum.datetime(2024, 1, 15, 14, 25, tz="UTC")
    assert not refresh_due(moment, now=moment.subtract(microseconds=1))
    assert refresh_due(moment, now=moment)


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-15 14:30:00",
        "2024-01-15T16:30:00+02:00",
        datetime.datetime(2024, 1, 15, 14, 30),
        pendulum.datetime(2024, 1, 15, 14, 30, tz="UTC"),
        {"expires_at": "2024-01-15T14:30:00+00:00"},
        WsToken.from_dict(token_dict(pendulum.datetime(2024, 1, 15, 14, 30, tz="UTC"))),
    ],
)
def test_expires_at_forms(value: object) -> None:
    assert expiry_of(value) == pendulum.datetime(2024, 1, 15, 14, 30, tz="UTC")
    assert sensor(value).refresh_at() == pendulum.datetime(2024, 1, 15, 14, 25, tz="UTC")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("next tuesday", "expires_at 'next tuesday' is not a"),
        (None, "expires_at is missing"),
        (1705329000, "expires_at is missing or not a date and time: 1705329000"),
    ],
)
def test_bad_literal_fails_at_dag_parse(value: object, message: str) -> None:
    with pytest.raises(SfiConfigError, match=message):
        sensor(value)


def test_bad_rendered_value_fails_clearly_at_run_time() -> None:
    wait = sensor("{{ ti.xcom_pull('get_token')['expires_at'] }}")  # a template is checked once rendered
    wait.expires_at = {"token": SECRET}
    with pytest.raises(SfiConfigError, match="wait: expires_at was given a dict without an 'expires_at' key") as caught:
        wait.execute(context={})  # type: ignore[arg-type]
    assert SECRET not in str(caught.value)


def test_negative_margin_is_refused() -> None:
    with pytest.raises(SfiConfigError, match="refresh_margin"):
        SfiWsTokenExpirySensor(task_id="wait", expires_at="2024-01-15 14:30:00", refresh_margin=datetime.timedelta(-1))


def test_past_refresh_time_returns_at_once_in_every_mode() -> None:
    past = token_dict(pendulum.now("UTC").add(minutes=4))  # due: less than the margin left
    for kwargs in ({"deferrable": True}, {"mode": "reschedule"}, {"mode": "poke"}):
        assert sensor(past, **kwargs).execute(context={}) is None  # type: ignore[arg-type]


def test_deferrable_hands_a_secret_free_datetime_trigger_to_airflow() -> None:
    expires = pendulum.now("UTC").add(minutes=30).replace(microsecond=0)
    with pytest.raises(TaskDeferred) as caught:
        sensor(token_dict(expires), deferrable=True).execute(context={})  # type: ignore[arg-type]
    deferred = caught.value
    assert isinstance(deferred.trigger, DateTimeTrigger)
    assert deferred.method_name == "execute_complete"
    classpath, kwargs = deferred.trigger.serialize()
    assert classpath == "airflow.providers.standard.triggers.temporal.DateTimeTrigger"
    assert kwargs == {"moment": expires - MARGIN, "end_from_trigger": False}
    assert SECRET not in repr(deferred.trigger) + json.dumps(kwargs, default=str)


def test_the_trigger_fires_at_the_refresh_time() -> None:
    expires = pendulum.now("UTC").add(minutes=5, seconds=1)
    with pytest.raises(TaskDeferred) as caught:
        sensor(token_dict(expires), deferrable=True).execute(context={})  # type: ignore[arg-type]

    async def first_event() -> object:
        async for event in caught.value.trigger.run():
            return event.payload
        return None

    assert asyncio.run(asyncio.wait_for(first_event(), timeout=10)) == expires - MARGIN
    assert refresh_due(expires - MARGIN)


def test_reschedule_jumps_straight_to_the_refresh_time() -> None:
    expires = pendulum.now("UTC").add(hours=1)
    wait = sensor(token_dict(expires), mode="reschedule", poke_interval=30)
    with pytest.raises(AirflowRescheduleException) as caught:
        wait.poke(context={})  # type: ignore[arg-type]
    assert caught.value.reschedule_date == expires - MARGIN


def test_poke_mode_answers_the_same_question() -> None:
    assert sensor(token_dict(pendulum.now("UTC").add(hours=1))).poke(context={}) is False  # type: ignore[arg-type]
    assert sensor(token_dict(pendulum.now("UTC").add(minutes=1))).poke(context={}) is True  # type: ignore[arg-type]


def test_deferrable_defaults_to_airflow_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import airflow_sfi.sensors.ws_token as module

    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    reloaded = importlib.reload(module)
    try:
        assert reloaded.SfiWsTokenExpirySensor(task_id="w", expires_at="2024-01-15 14:30:00").deferrable is True
    finally:
        monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE")
        importlib.reload(module)


def test_rendered_expires_at_keeps_no_secret() -> None:
    expires = pendulum.now("UTC").add(hours=1).replace(microsecond=0)
    wait = sensor(token_dict(expires))
    wait.render_template_fields(context={})  # type: ignore[arg-type]
    assert wait.expires_at == {"expires_at": expires.isoformat()}
    assert wait.refresh_at() == expires - MARGIN


def test_start_from_trigger_needs_a_template() -> None:
    with pytest.raises(SfiConfigError, match="start_from_trigger needs expires_at as a template string"):
        sensor("2024-01-15 14:30:00", start_from_trigger=True)


def test_start_from_trigger_hands_a_secret_free_trigger_to_the_triggerer() -> None:
    from airflow_sfi.triggers.ws_token import SfiRefreshTrigger

    template = "{{ ti.xcom_pull(task_ids='get_token')['expires_at'] }}"
    wait = sensor(template, start_from_trigger=True)
    args = wait.start_trigger_args
    assert wait.start_from_trigger and args is not None
    assert args.trigger_cls == "airflow_sfi.triggers.ws_token.SfiRefreshTrigger"
    assert args.trigger_kwargs == {"expires_at": template, "refresh_margin_seconds": 300.0, "end_from_trigger": True}
    trigger = SfiRefreshTrigger(**args.trigger_kwargs)
    trigger.expires_at = pendulum.now("UTC").add(minutes=5, seconds=1).isoformat()  # as the triggerer renders it
    assert trigger.serialize() == (args.trigger_cls, {**args.trigger_kwargs, "expires_at": trigger.expires_at})
    assert 0 < (trigger.moment - pendulum.now("UTC")).total_seconds() <= 1

    async def first_event() -> object:
        async for event in trigger.run():
            return event
        return None

    assert type(asyncio.run(asyncio.wait_for(first_event(), timeout=10))).__name__ == "TaskSuccessEvent"
