"""
The Airflow version this provider runs on, and what differs below the newest release.

As Airflow's own providers do (each keeps a copy of this module): names that moved between releases
come from ``airflow.providers.common.compat``; the flags here gate the features that need a newer
Airflow. Imported only by modules that import Airflow anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

T = TypeVar("T")


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


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    """
    Run blocking ``func`` in a worker thread, from a trigger (or any coroutine).

    Unlike ``asyncio.to_thread``, Airflow SDK calls made in it (a connection, a Variable) reach the
    triggerer's supervisor through the running event loop: on Airflow 3.0 and 3.1 such a call from a
    bare thread races the triggerer's own messages ("Response read out of order!") and the triggerer
    exits. asgiref comes with Airflow, whose triggerer uses it for exactly these calls.
    """
    from asgiref.sync import sync_to_async

    return await sync_to_async(func, thread_sensitive=False)(*args)


__all__ = [
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AirflowRescheduleException",
    "in_thread",
]
