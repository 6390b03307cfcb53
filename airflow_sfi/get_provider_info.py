"""What Airflow's ProvidersManager learns about this provider (the ``apache_airflow_provider`` entry point)."""

from __future__ import annotations

from typing import Any

INTEGRATION = "Soccer Football Info"


def get_provider_info() -> dict[str, Any]:
    from airflow_sfi import __version__

    def modules(*names: str) -> list[dict[str, Any]]:
        return [{"integration-name": INTEGRATION, "python-modules": list(names)}]

    return {
        "package-name": "airflow-provider-sfi",
        "name": INTEGRATION,
        "description": "Soccer Football Info API: WebSocket tokens for the live feed, kept valid.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://info.soccerfootball.info/",
                "tags": ["service"],
            }
        ],
        "hooks": modules("airflow_sfi.hooks.api"),
        "operators": modules("airflow_sfi.operators.ws_token"),
        "sensors": modules("airflow_sfi.sensors.ws_token"),
        "triggers": modules("airflow_sfi.triggers.ws_token"),
        "connection-types": [
            {
                "hook-class-name": "airflow_sfi.hooks.api.SfiHook",
                "hook-name": INTEGRATION,
                "connection-type": "sfi",
                "ui-field-behaviour": {
                    "hidden-fields": ["login"],
                    "relabeling": {
                        "password": "API token / RapidAPI key",
                        "host": "Base URL (optional)",
                        "schema": "URL scheme (optional)",
                    },
                    "placeholders": {
                        "host": "leave empty for the API; e.g. http://127.0.0.1:8080 for the sandbox",
                        "schema": "https",
                        "password": "the API token (direct) or the RapidAPI key",
                    },
                },
                "conn-fields": {
                    "auth_type": {
                        "label": "Auth type",
                        "description": "direct: API token as ?t=; rapidapi: RapidAPI key in headers.",
                        "schema": {"type": ["string", "null"], "enum": ["direct", "rapidapi"], "default": "direct"},
                    },
                    "rapidapi_host": {
                        "label": "RapidAPI host",
                        "description": "The X-RapidAPI-Host header (rapidapi only).",
                        "schema": {"type": ["string", "null"], "default": "soccer-football-info.p.rapidapi.com"},
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "Connect and read timeout of each call.",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": 10},
                    },
                    "max_attempts": {
                        "label": "Attempts",
                        "description": "Attempts per call, retries of 5xx, 429 and network errors included.",
                        "schema": {"type": ["integer", "null"], "minimum": 1, "default": 3},
                    },
                    "max_retry_wait": {
                        "label": "Longest Retry-After to wait (seconds)",
                        "description": (
                            "A 429 asking to wait longer fails the call; the operator then waits without a worker."
                        ),
                        "schema": {"type": ["number", "null"], "minimum": 0, "default": 60},
                    },
                },
            }
        ],
    }
