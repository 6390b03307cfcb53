"""What Airflow's ProvidersManager learns about this provider (the ``apache_airflow_provider`` entry point)."""

from __future__ import annotations

from typing import Any

INTEGRATION = "Soccer Football Info"


def get_provider_info() -> dict[str, Any]:
    from airflow_sfi import __version__, defaults

    def modules(*names: str) -> list[dict[str, Any]]:
        return [{"integration-name": INTEGRATION, "python-modules": list(names)}]

    return {
        "package-name": "airflow-provider-sfi",
        "name": INTEGRATION,
        "description": "Soccer Football Info API: WebSocket tokens kept valid, and live match events in DAGs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://info.soccerfootball.info/",
                "tags": ["service"],
            }
        ],
        "hooks": modules("airflow_sfi.hooks.sfi", "airflow_sfi.hooks.feed"),
        # The transfer is listed with the operators: providers' "transfers" entries name a target integration.
        "operators": modules("airflow_sfi.operators.ws_token", "airflow_sfi.transfers.sfi_to_object_storage"),
        "sensors": modules(
            "airflow_sfi.sensors.ws_token", "airflow_sfi.sensors.match_event", "airflow_sfi.sensors.match_status"
        ),
        "triggers": modules(
            "airflow_sfi.triggers.ws_token", "airflow_sfi.triggers.match_event", "airflow_sfi.triggers.match_status"
        ),
        "connection-types": [
            {
                "hook-class-name": "airflow_sfi.hooks.sfi.SfiHook",
                "hook-name": INTEGRATION,
                "connection-type": defaults.CONN_TYPE,
                "ui-field-behaviour": {
                    # The scheme belongs in the Base URL. Port stays: on Airflow 3.3.2 the Test button of a
                    # saved connection with an empty Port sends port 0 and gets "Bad Request" (see README).
                    "hidden-fields": ["login", "schema"],
                    "relabeling": {
                        "password": "API token / RapidAPI key",
                        "host": "Base URL (optional)",
                        "port": "Port (optional; a port in the Base URL wins)",
                    },
                    "placeholders": {
                        "host": "leave empty for the API; e.g. http://127.0.0.1:8080 for the sandbox",
                        "port": "443 for https, 80 for http",
                        "password": "the API token (direct) or the RapidAPI key",
                    },
                },
                # No "default" in the schemas: the UI would write each into the saved extra, and a later
                # change of the hook's defaults would then never reach that connection.
                "conn-fields": {
                    "auth_type": {
                        "label": "Auth type",
                        "description": "direct (default): API token as ?t=; rapidapi: RapidAPI key in headers.",
                        "schema": {"type": ["string", "null"], "enum": ["direct", "rapidapi"]},
                    },
                    "rapidapi_host": {
                        "label": "RapidAPI host",
                        "description": f"The X-RapidAPI-Host header (rapidapi only); default {defaults.RAPIDAPI_HOST}.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": f"Connect and read timeout of each call; default {defaults.TIMEOUT:g}.",
                        "schema": {"type": ["number", "null"], "minimum": 0.001},
                    },
                    "max_attempts": {
                        "label": "Attempts",
                        "description": (
                            f"Attempts per call, retries of 5xx, 429 and network errors included; "
                            f"default {defaults.MAX_ATTEMPTS}."
                        ),
                        "schema": {"type": ["integer", "null"], "minimum": 1},
                    },
                    "max_retry_wait": {
                        "label": "Longest Retry-After to wait (seconds)",
                        "description": (
                            "A 429 asking to wait longer fails the call; the operator then waits without a worker; "
                            f"default {defaults.MAX_RETRY_WAIT:g}."
                        ),
                        "schema": {"type": ["number", "null"], "minimum": 0},
                    },
                },
            }
        ],
    }
