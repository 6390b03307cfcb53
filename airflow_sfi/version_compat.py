"""
The Airflow version this provider runs on, and what differs below the newest release.

As Airflow's own providers do (each keeps a copy of this module): names that moved between releases
come from ``airflow.providers.common.compat``; the flags here gate the features that need a newer
Airflow. Imported only by modules that import Airflow anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING


def get_base_airflow_version_tuple() -> tuple[int, int, int]:
    from airflow import __version__
    from packaging.version import Version

    airflow_version = Version(__version__)
    return airflow_version.major, airflow_version.minor, airflow_version.micro


AIRFLOW_V_3_1_PLUS: bool = get_base_airflow_version_tuple() >= (3, 1, 0)
AIRFLOW_V_3_2_PLUS: bool = get_base_airflow_version_tuple() >= (3, 2, 0)
AIRFLOW_V_3_3_PLUS: bool = get_base_airflow_version_tuple() >= (3, 3, 0)

# common-compat does not map it: in airflow.sdk.exceptions from 3.2, in airflow.exceptions before.
if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.exceptions import AirflowRescheduleException
else:
    from airflow.exceptions import AirflowRescheduleException


__all__ = [
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AirflowRescheduleException",
]
