"""SfiWsTokenOperator against the sandbox API, without a metadata DB."""

from __future__ import annotations

import datetime
import time
import types

import pendulum
import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from airflow.providers.standard.triggers.temporal import DateTimeTrigger

from airflow_sfi.exceptions import SfiChannelError, SfiConfigError, SfiError, SfiRateLimitError
from airflow_sfi.operators import ws_token as ws_token_module
from airflow_sfi.operators.ws_token import SfiWsTokenOperator
from airflow_sfi.protocol.token import WsToken
from airflow_sfi.sandbox import SandboxServer
from airflow_sfi.triggers.ws_token import SfiWsTokenRefreshTrigger
from airflow_sfi.version_compat import AIRFLOW_V_3_1_PLUS, AirflowRescheduleException


class Offset:
    """A sandbox clock that can run behind real time, so its tokens have little time left."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return time.time() + self.seconds


def run(op: SfiWsTokenOperator) -> dict:
    return op.execute(context={})  # type: ignore[arg-type]


def test_returns_the_token_dict(sfi_sandbox: SandboxServer) -> None:
    result = run(SfiWsTokenOperator(task_id="get_token", required_channels=["main"]))
    token = WsToken.from_dict(result)
    assert result["is_new"] is True and token.allowed_channels == ("MAIN",)
    assert result["server"].endswith(result["token"])
    assert len(sfi_sandbox.calls("ws/new")) == 1


def test_the_operator_shows_no_secret(sfi_sandbox: SandboxServer) -> None:
    op = SfiWsTokenOperator(task_id="get_token")
    result = run(op)
    for text in (repr(op), str(op)):
        assert result["token"] not in text and "sandbox-key-pro" not in text


def test_missing_channels_fail_naming_them(sfi_sandbox: SandboxServer) -> None:
    op = SfiWsTokenOperator(task_id="get_token", required_channels="MAIN, STATS,ODDS")
    with pytest.raises(SfiChannelError, match="does not grant STATS, ODDS; the plan allows MAIN"):
        run(op)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"required_channels": ["MAIN", "GOALS"]}, "unknown channel.*GOALS.*valid: MAIN, MAIN_REALTIME, ODDS"),
        ({"required_channels": [1]}, "must be channel names"),
        ({"action": "extend"}, "action must be one of 'refresh', 'renew', 'new', got 'extend'"),
        ({"action": "refresh"}, "action 'refresh' needs expires_at"),
        ({"expires_at": "2024-01-15 14:30", "min_validity": datetime.timedelta(1)}, "apply to getting a token"),
        ({"expires_at": "soon"}, "expires_at 'soon' is not a"),
        ({"expires_at": "2024-01-15 14:30", "renew_margin": 300}, "renew_margin must be a non-negative timedelta"),
        ({"reuse_published": True}, "reuse_published needs variable_key"),
        ({"min_validity": 60}, "min_validity must be a non-negative timedelta"),
        ({"variable_key": "sfi_ws"}, "variable_key 'sfi_ws' must contain 'token' or 'secret'"),
    ],
)
def test_bad_arguments_fail_at_dag_parse(kwargs: dict, message: str) -> None:
    with pytest.raises(SfiConfigError, match=message):
        SfiWsTokenOperator(task_id="get_token", **kwargs)


def test_templated_channels_are_checked_once_rendered(sfi_sandbox: SandboxServer) -> None:
    op = SfiWsTokenOperator(task_id="get_token", required_channels="{{ params.channels }}")
    op.required_channels = "MAIN,NOPE"
    with pytest.raises(SfiConfigError, match="unknown channel"):
        run(op)


CLOCK = Offset(0)


@pytest.mark.sfi_sandbox(ttl=30, clock=CLOCK)
def test_renew_extends_the_same_token(sfi_sandbox: SandboxServer) -> None:
    CLOCK.seconds = 0
    first = run(SfiWsTokenOperator(task_id="get_token"))
    CLOCK.seconds = 2  # two seconds later on the API's clock
    renewed = run(SfiWsTokenOperator(task_id="renew", action="renew"))
    assert renewed["token"] == first["token"] and renewed["expires_at"] > first["expires_at"]
    assert [c.endpoint for c in sfi_sandbox.calls()] == ["ws/new", "ws/renew"]


def test_min_validity_defers_until_the_old_token_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Offset(-25)
    with SandboxServer(ttl=30, clock=clock) as api:
        monkeypatch.setenv("AIRFLOW_CONN_SFI_DEFAULT", api.connection())
        op = SfiWsTokenOperator(task_id="refresh", min_validity=datetime.timedelta(seconds=10), deferrable=True)
        with pytest.raises(TaskDeferred) as caught:
            run(op)
        assert isinstance(caught.value.trigger, DateTimeTrigger)
        # The old token has about 5 s left; the trigger fires 1 s after it expires.
        moment = caught.value.trigger.serialize()[1]["moment"]
        assert 5 < (moment - pendulum.now("UTC")).total_seconds() <= 7
        assert moment.microsecond == 0  # expires_at (whole seconds) + 1 s
        assert caught.value.kwargs == {"waited_for_expiry": True}

        clock.seconds = 0  # the trigger fired: real time has caught up and the old token is gone
        api.expire_tokens()
        result = op.execute_complete(context={}, event=None, **caught.value.kwargs)  # type: ignore[arg-type]
        assert result["is_new"] is True and WsToken.from_dict(result).seconds_left() > 25
        assert len(api.calls("ws/new")) == 2


def test_min_validity_without_deferral_sleeps_once_then_asks_again(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Offset(-28)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.seconds = seconds  # the sleep is over: the API's clock is that much later

    # The worker's one sleep, as the operator's module sees time.sleep.
    monkeypatch.setattr(ws_token_module, "time", types.SimpleNamespace(sleep=sleep))
    with SandboxServer(ttl=30, clock=clock) as api:
        monkeypatch.setenv("AIRFLOW_CONN_SFI_DEFAULT", api.connection())
        op = SfiWsTokenOperator(task_id="refresh", min_validity=datetime.timedelta(seconds=10), deferrable=False)
        result = run(op)
        # One sleep, until 1 s after the old token (about 2 s left, whole seconds) expired: not a second early.
        (seconds,) = slept
        assert 2 < seconds <= 4
        (old, new) = api.tokens()
        assert api.sandbox.clock() >= old.expires_at + 1
        assert result["token"] == new.token and result["is_new"] is True
        assert WsToken.from_dict(result).seconds_left() > 25
        assert len(api.calls("ws/new")) == 2


def test_min_validity_gives_up_after_one_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    with SandboxServer(ttl=30, clock=Offset(-25)) as api:
        monkeypatch.setenv("AIRFLOW_CONN_SFI_DEFAULT", api.connection())
        op = SfiWsTokenOperator(task_id="refresh", min_validity=datetime.timedelta(seconds=10), deferrable=True)
        with pytest.raises(SfiError, match=r"returned a token with \d+ s left, less than min_validity \(0:00:10\)"):
            op.execute_complete(context={}, event=None, waited_for_expiry=True)  # type: ignore[arg-type]


@pytest.mark.sfi_sandbox(rate_limit=1)
def test_rate_limit_for_an_hour_reschedules_instead_of_failing(sfi_sandbox: SandboxServer) -> None:
    run(SfiWsTokenOperator(task_id="get_token"))
    started = time.monotonic()
    # Below Airflow 3.1 a rescheduled task (not a sensor) would run again at once: it defers instead.
    with pytest.raises(AirflowRescheduleException if AIRFLOW_V_3_1_PLUS else TaskDeferred) as caught:
        run(SfiWsTokenOperator(task_id="get_token", deferrable=False))
    assert time.monotonic() - started < 5  # no sleeping worker
    if isinstance(caught.value, TaskDeferred):
        assert caught.value.kwargs == {"waited_for_expiry": False, "waited_for_rate_limit": True}
        reset = caught.value.trigger.serialize()[1]["moment"]
    else:
        reset = caught.value.reschedule_date
    assert 3590 < (reset - pendulum.now("UTC")).total_seconds() <= 3600
    assert [c.status for c in sfi_sandbox.calls()] == [200, 429]


@pytest.mark.sfi_sandbox(rate_limit=1)
def test_rate_limit_for_an_hour_defers_until_the_reset(sfi_sandbox: SandboxServer) -> None:
    run(SfiWsTokenOperator(task_id="get_token"))
    op = SfiWsTokenOperator(task_id="get_token", deferrable=True)
    with pytest.raises(TaskDeferred) as caught:
        run(op)
    moment = caught.value.trigger.serialize()[1]["moment"]
    assert 3590 < (moment - pendulum.now("UTC")).total_seconds() <= 3600
    assert caught.value.kwargs == {"waited_for_expiry": False, "waited_for_rate_limit": True}
    # Still limited after the wait: fail instead of waiting forever.
    with pytest.raises(SfiRateLimitError):
        op.execute_complete(context={}, event=None, **caught.value.kwargs)  # type: ignore[arg-type]
    assert [c.status for c in sfi_sandbox.calls()] == [200, 429, 429]


@pytest.mark.sfi_sandbox(ttl=600)
def test_refresh_defers_to_a_trigger_that_holds_no_secret(sfi_sandbox: SandboxServer) -> None:
    held = run(SfiWsTokenOperator(task_id="get_token"))
    op = SfiWsTokenOperator(
        task_id="refresh_token",
        expires_at="{{ ti.xcom_pull('get_token')['expires_at'] }}",
        required_channels="main",
        variable_key="sfi_ws_token",
        deferrable=True,
    )
    assert op.action == "refresh"
    op.expires_at = held  # rendered from a whole XCom dict: only the expiry is kept
    op.render_template_fields(context={})  # type: ignore[arg-type]
    assert op.expires_at == {"expires_at": held["expires_at"]}
    with pytest.raises(TaskDeferred) as caught:
        run(op)
    assert isinstance(caught.value.trigger, SfiWsTokenRefreshTrigger)
    assert caught.value.method_name == "refresh_complete"
    assert caught.value.trigger.serialize()[1] == {
        "sfi_conn_id": "sfi_default",
        "expires_at": held["expires_at"],
        "renew_margin": datetime.timedelta(minutes=5),
        "action": "refresh",
        "required_channels": ["MAIN"],
        "variable_key": "sfi_ws_token",
    }
    assert len(sfi_sandbox.calls()) == 1  # deferring made no call


@pytest.mark.sfi_sandbox(ttl=600)
def test_refresh_in_the_worker_renews_the_held_token(sfi_sandbox: SandboxServer) -> None:
    held = run(SfiWsTokenOperator(task_id="get_token"))
    sfi_sandbox.sandbox.clock = Offset(1)  # the API's clock a second on by the renewal: it extends the token
    op = SfiWsTokenOperator(
        task_id="refresh_token",
        expires_at=held["expires_at"],
        renew_margin=datetime.timedelta(seconds=601),  # past already
        deferrable=False,
    )
    refreshed = run(op)
    assert refreshed["token"] == held["token"] and refreshed["expires_at"] > held["expires_at"]
    # Resumed after the trigger (as under dag.test()): the active, renewed token is read back.
    again = op.refresh_complete(context={}, event="success")  # type: ignore[arg-type]
    assert again["expires_at"] == refreshed["expires_at"]
    assert [c.endpoint for c in sfi_sandbox.calls()] == ["ws/new", "ws/renew", "ws/new"]
