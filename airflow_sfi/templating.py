"""Arguments that may be Jinja templates are checked at DAG parse only when they are not."""

from __future__ import annotations


def is_template(value: object) -> bool:
    """
    Whether ``value`` is a Jinja template string, to be checked only once rendered.

    :param value: an operator argument.
    """
    return isinstance(value, str) and any(mark in value for mark in ("{{", "{%", "{#"))
