"""SfiBaseSensor: a deferred wait's timeout ends the same on every Airflow 3 release."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException
from airflow.sdk.bases.operator import TriggerFailureReason

from airflow_sfi.sensors.base import SfiBaseSensor


class Waiting(SfiBaseSensor):
    def poke(self, context: Any) -> bool:
        return False


# A deferred wait's timeout: skipped with soft_fail or never_fail on every release (Airflow 3.0 needs our help).
@pytest.mark.parametrize(
    ("flags", "raised"),
    [
        ({}, AirflowSensorTimeout),
        ({"soft_fail": True}, AirflowSkipException),
        ({"never_fail": True}, AirflowSkipException),
    ],
)
def test_a_deferred_wait_ends_at_its_timeout(flags: dict[str, bool], raised: type[Exception]) -> None:
    wait = Waiting(task_id="wait", timeout=60, **flags)
    with pytest.raises(raised):
        wait.resume_execution("__fail__", {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, context={})  # type: ignore[arg-type]
