"""The token in an Airflow Variable: where the next run, and services outside Airflow, find it."""

from __future__ import annotations

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

    value = Variable.get(variable_key, default=None, deserialize_json=True)
    if value is None:
        return None
    try:
        token = WsToken.from_dict(value)
    except SfiError as exc:
        log.warning("Variable %r does not hold a token (%s): getting a new one", variable_key, exc)
        return None
    mask_secret(token.token)
    mask_secret(token.server)
    return token
