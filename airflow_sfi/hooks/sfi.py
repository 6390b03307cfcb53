"""Deprecated module path: the hook is in :mod:`airflow_sfi.hooks.api`, the parsers in their own modules."""

from __future__ import annotations

import warnings

from airflow_sfi.config import AUTH_MODES, AuthMode, SfiConfig
from airflow_sfi.hooks.api import SfiHook
from airflow_sfi.responses import RateLimit, parse_ws_token_response

__all__ = ["AUTH_MODES", "AuthMode", "RateLimit", "SfiConfig", "SfiHook", "parse_ws_token_response"]

warnings.warn(
    "airflow_sfi.hooks.sfi is deprecated; import SfiHook from airflow_sfi (or airflow_sfi.hooks.api)",
    DeprecationWarning,
    stacklevel=2,
)
