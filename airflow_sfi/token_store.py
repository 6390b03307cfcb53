"""The token in an Airflow Variable: where the next run, and services outside Airflow, find it."""

from __future__ import annotations

import json
import logging

from airflow_sfi.exceptions import SfiError
from airflow_sfi.protocol.token import WsToken

log = logging.getLogger(__name__)


def publish(token: WsToken, variable_key: str) -> None:
    """
    Store the token dict (JSON) in the Airflow Variable ``variable_key``.

    :param token: the token.
    :param variable_key: a name containing ``token`` or ``secret``, so that Airflow hides the value.
    """
    from airflow.sdk import Variable

    Variable.set(variable_key, token.to_dict(), serialize_json=True)


def published(variable_key: str) -> WsToken | None:
    """
    The token last stored in ``variable_key``, or None when there is none or it cannot be read.

    :param variable_key: the Variable's name.
    """
    from airflow.sdk import Variable
    from airflow.sdk.log import mask_secret

    # Read as text: Airflow would register every string of a deserialized dict with the masker, the
    # short channel names too, and warn that they are too short to mask.
    raw = Variable.get(variable_key, default=None)
    if raw is None:
        return None
    problem = None
    try:
        token = WsToken.from_dict(json.loads(raw))
    except (ValueError, SfiError) as exc:
        problem = str(exc) if isinstance(exc, SfiError) else "not JSON"
    if problem is not None:
        log.warning("Variable %r does not hold a token (%s): getting a new one", variable_key, problem)
        return None
    mask_secret(token.token)
    mask_secret(token.server)
    return token
