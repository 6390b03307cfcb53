"""
Every default of the provider, one name and one type each.

Free of imports beyond the standard library: the connection form reads it without Airflow.
"""

from __future__ import annotations

import datetime

CONN_ID = "sfi_default"
"""The Airflow connection every hook, operator, sensor and trigger uses unless told otherwise."""
CONN_TYPE = "sfi"
RAPIDAPI_HOST = "soccer-football-info.p.rapidapi.com"
TIMEOUT = 10.0
"""Connect and read timeout of each HTTP call, in seconds."""
MAX_ATTEMPTS = 3
"""Attempts per HTTP call, retries included."""
MAX_RETRY_WAIT = 60.0
"""The longest ``Retry-After`` of a 429 that a call sleeps out, in seconds."""
RENEW_MARGIN = datetime.timedelta(minutes=5)
"""How long before a token's ``expires_at`` to renew it: the vendor's advice."""
PING_INTERVAL = 30.0
"""Seconds between the app-level pings the vendor asks for on its WebSocket."""
VARIABLE_KEY = "sfi_ws_token"
"""The Airflow Variable the example DAGs store the token in."""
