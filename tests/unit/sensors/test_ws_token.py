"""SfiWsTokenExpirySensor: one decision, three modes."""

from __future__ import annotations

import datetime
import logging
import time

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException, TaskDeferred
from airflow.sdk.bases.operator import TriggerFailureReason

from airflow_sfi.arguments import expiry_of
from airflow_sfi.exceptions import SfiConfigError
from airflow_sfi.protocol.token import WsToken
from airflow_sfi.sensors.ws_token import SfiWsTokenExpirySensor
from airflow_sfi.triggers.ws_token import SfiWsTokenExpiryTrigger
from airflow_sfi.version_compat import AIRFLOW_V_3_3_PLUS, AirflowRescheduleException
from tests.helpers import token_item

SECRET = "sensor-ws-token-secret"
needs_3_3 = pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="start_from_trigger needs Airflow 3.3")
MARGIN = datetime.timedelta(minutes=5)


def token_dict(expires_at: pendulum.DateTime) -> dict[str, object]:
    return token_item(SECRET, expires_at.isoformat())


def sensor(expires_at: object, **kwargs: object) -> SfiWsTokenExpirySensor:
    return SfiWsTokenExpirySensor(task_id="wait", expires_at=expires_at, renew_margin=MARGIN, **kwargs)


class FakeTaskInstance:
    """What a sensor in reschedule mode asks of its task instance: when its first try started."""

    def __init__(self, started: pendulum.DateTime | None = None) -> None:
        self.started = started

    def get_first_reschedule_date(self, context: object) -> pendulum.DateTime | None:
        return self.started


def run(wait: SfiWsTokenExpirySensor, started: pendulum.DateTime | None = None) -> object:
    return wait.execute(context={"ti": FakeTaskInstance(started)})  # type: ignore[arg-type]


def resume_after_trigger_timeout(wait: SfiWsTokenExpirySensor) -> object:
    return wait.resume_execution("__fail__", {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, context={})  # type: ignore[arg-type]


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
    with pytest.raises(SfiConfigError, match="renew_margin"):
        SfiWsTokenExpirySensor(task_id="wait", expires_at="2024-01-15 14:30:00", renew_margin=datetime.timedelta(-1))


def test_past_refresh_time_returns_at_once_in_every_mode() -> None:
    past = token_dict(pendulum.now("UTC").add(minutes=4))  # due: less than the margin left
    for kwargs in ({"deferrable": True}, {"mode": "reschedule"}, {"mode": "poke"}):
        assert run(sensor(past, **kwargs)) is None


def test_deferrable_hands_a_secret_free_trigger_to_airflow() -> None:
    expires = pendulum.now("UTC").add(minutes=30).replace(microsecond=0)
    with pytest.raises(TaskDeferred) as caught:
        sensor(token_dict(expires), deferrable=True, timeout=3600).execute(context={})  # type: ignore[arg-type]
    deferred = caught.value
    assert isinstance(deferred.trigger, SfiWsTokenExpiryTrigger)
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == datetime.timedelta(hours=1)  # the sensor's timeout holds while deferred
    classpath, kwargs = deferred.trigger.serialize()
    assert classpath == "airflow_sfi.triggers.ws_token.SfiWsTokenExpiryTrigger"
    assert kwargs == {"expires_at": expires.isoformat(), "renew_margin": MARGIN, "end_from_trigger": False}
    assert deferred.trigger.refresh_at() == expires - MARGIN
    assert SECRET not in repr(deferred.trigger) + str(kwargs)


def test_reschedule_comes_back_every_poke_interval_and_exactly_at_the_refresh_time() -> None:
    far = pendulum.now("UTC").add(hours=1)
    with pytest.raises(AirflowRescheduleException) as caught:
        run(sensor(token_dict(far), mode="reschedule", poke_interval=30))
    assert abs((caught.value.reschedule_date - pendulum.now("UTC").add(seconds=30)).total_seconds()) < 2
    near = pendulum.now("UTC").add(seconds=MARGIN.total_seconds() + 20)
    wait = sensor(token_dict(near), mode="reschedule", poke_interval=30)
    with pytest.raises(AirflowRescheduleException) as caught:
        run(wait)
    assert caught.value.reschedule_date == near - MARGIN
    assert wait.poke_interval == 30  # left as the user set it


def test_poke_mode_never_sleeps_past_the_refresh_time() -> None:
    expires = pendulum.now("UTC").add(minutes=5, seconds=0.3)
    started = time.monotonic()
    assert run(sensor(token_dict(expires), mode="poke", poke_interval=60)) is None
    assert time.monotonic() - started < 5  # not the 60 s poke_interval


@pytest.mark.parametrize("flag", ["never_fail", "silent_fail"])
def test_waiting_is_not_a_failed_poke(flag: str, caplog: pytest.LogCaptureFixture) -> None:
    expires = pendulum.now("UTC").add(hours=1)
    with caplog.at_level(logging.ERROR), pytest.raises(AirflowRescheduleException):
        run(sensor(token_dict(expires), mode="reschedule", **{flag: True}))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(("soft_fail", "raised"), [(False, AirflowSensorTimeout), (True, AirflowSkipException)])
def test_timeout_in_reschedule_mode(soft_fail: bool, raised: type[Exception]) -> None:
    expires = pendulum.now("UTC").add(hours=3)
    wait = sensor(token_dict(expires), mode="reschedule", timeout=3600, soft_fail=soft_fail)
    with pytest.raises(raised, match="timed out"):
        run(wait, started=pendulum.now("UTC").subtract(hours=2))
    # Within the timeout it comes back when the timeout is next checked, not after it.
    with pytest.raises(AirflowRescheduleException) as caught:
        run(wait, started=pendulum.now("UTC"))
    assert (caught.value.reschedule_date - pendulum.now("UTC")).total_seconds() <= 3600


@pytest.mark.parametrize(("soft_fail", "raised"), [(False, AirflowSensorTimeout), (True, AirflowSkipException)])
def test_timeout_in_poke_mode(soft_fail: bool, raised: type[Exception]) -> None:
    wait = sensor(
        token_dict(pendulum.now("UTC").add(hours=1)), mode="poke", poke_interval=0.05, timeout=0.1, soft_fail=soft_fail
    )
    with pytest.raises(raised, match="timed out"):
        run(wait)


# A deferred wait's timeout: skipped with soft_fail or never_fail on every release (Airflow 3.0 needs our help).
@pytest.mark.parametrize(
    ("flags", "raised"),
    [
        ({}, AirflowSensorTimeout),
        ({"soft_fail": True}, AirflowSkipException),
        ({"never_fail": True}, AirflowSkipException),
    ],
)
def test_timeout_when_deferred(flags: dict[str, bool], raised: type[Exception]) -> None:
    wait = sensor(token_dict(pendulum.now("UTC").add(hours=1)), deferrable=True, timeout=60, **flags)
    with pytest.raises(TaskDeferred) as caught:
        run(wait)
    assert caught.value.timeout == datetime.timedelta(seconds=60)
    with pytest.raises(raised):
        resume_after_trigger_timeout(wait)


@pytest.mark.parametrize("mode", [{"mode": "poke"}, {"mode": "reschedule"}, {"deferrable": True}])
def test_never_fail_skips_a_bad_expiry_in_every_mode(mode: dict[str, object]) -> None:
    wait = sensor("{{ 'not a date' }}", never_fail=True, **mode)
    wait.expires_at = "not a date"  # as rendered
    with pytest.raises(AirflowSkipException, match="never_fail"):
        run(wait)
    wait.never_fail = False
    with pytest.raises(SfiConfigError, match="wait: expires_at 'not a date' is not a"):
        run(wait)


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


def test_start_from_trigger_needs_airflow_3_3_and_says_so_at_dag_parse() -> None:
    template = "{{ ti.xcom_pull(task_ids='get_token', map_indexes=-1)['expires_at'] }}"
    if AIRFLOW_V_3_3_PLUS:
        assert sensor(template, start_from_trigger=True).start_from_trigger
    else:
        with pytest.raises(SfiConfigError, match=r"start_from_trigger needs Airflow 3\.3 or later.*deferrable=True"):
            sensor(template, start_from_trigger=True)


@needs_3_3
def test_start_from_trigger_needs_a_template() -> None:
    with pytest.raises(SfiConfigError, match="start_from_trigger needs expires_at as a template string"):
        sensor("2024-01-15 14:30:00", start_from_trigger=True)


@needs_3_3
def test_start_from_trigger_hands_a_secret_free_trigger_to_the_triggerer() -> None:
    template = "{{ ti.xcom_pull(task_ids='get_token')['expires_at'] }}"
    wait = sensor(template, start_from_trigger=True)
    args = wait.start_trigger_args
    assert wait.start_from_trigger and args is not None
    assert args.trigger_cls == "airflow_sfi.triggers.ws_token.SfiWsTokenExpiryTrigger"
    assert args.trigger_kwargs == {"expires_at": template, "renew_margin": MARGIN, "end_from_trigger": True}
