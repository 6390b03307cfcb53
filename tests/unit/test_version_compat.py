"""What differs between Airflow releases: the version flags."""

from __future__ import annotations

from airflow_sfi import version_compat


def test_the_flags_follow_the_installed_airflow() -> None:
    from airflow import __version__
    from packaging.version import Version

    release = Version(__version__).release[:2]
    assert version_compat.AIRFLOW_V_3_1_PLUS is (release >= (3, 1))
    assert version_compat.AIRFLOW_V_3_2_PLUS is (release >= (3, 2))
    assert version_compat.AIRFLOW_V_3_3_PLUS is (release >= (3, 3))
