"""The connection's defaults, shared by the config parser and the connection form (which must not import Airflow)."""

DEFAULT_RAPIDAPI_HOST = "soccer-football-info.p.rapidapi.com"
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_MAX_RETRY_WAIT = 60.0
