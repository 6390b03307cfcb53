"""What the provider's sensors share: a deferred wait's timeout handled the same on every Airflow 3 release."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException, BaseSensorOperator

from airflow_sfi.version_compat import AIRFLOW_V_3_1_PLUS

if TYPE_CHECKING:
    from airflow.sdk import Context


class SfiBaseSensor(BaseSensorOperator):
    """
    A sensor whose deferred wait ends at ``timeout`` as from Airflow 3.1 on: skipped with ``soft_fail``
    or ``never_fail``, failed otherwise. Airflow 3.0 raises the timeout past both flags.
    """

    def skip_if_never_fail(self, exc: Exception) -> None:
        """
        Skip on an error met before deferring, as the base class treats one raised in ``poke``.

        :param exc: the error.
        """
        if self.never_fail:
            raise AirflowSkipException(f"Skipping due to never_fail: {exc}") from None

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSensorTimeout as exc:
            if AIRFLOW_V_3_1_PLUS or not (self.soft_fail or self.never_fail):
                raise
            flag = "soft_fail" if self.soft_fail else "never_fail"
            raise AirflowSkipException(f"Skipping due to {flag} is set to True.") from exc
