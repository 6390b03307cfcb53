"""Where a token goes once obtained, and where the next run finds it: XCom and an Airflow Variable."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from airflow_sfi.exceptions import SfiChannelError, SfiError
from airflow_sfi.token import WsToken

log = logging.getLogger(__name__)


def check_channels(token: WsToken, required: Sequence[str]) -> None:
    """
    Raise :class:`SfiChannelError` naming the required channels the token does not grant.

    :param token: the token.
    :param required: normalised channel names.
    """
    missing = [channel for channel in required if channel not in token.allowed_channels]
    if missing:
        raise SfiChannelError(
            f"the token does not grant {', '.join(missing)}; the plan allows "
            f"{', '.join(token.allowed_channels) or 'no channel'}"
        )


def xcoms_of(token: WsToken) -> dict[str, Any]:
    """The XComs the operator pushes: the token dict as ``return_value``, and each field under its own key."""
    result = token.to_dict()
    return {"return_value": result, **result}


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
