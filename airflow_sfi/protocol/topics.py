"""The subscriptions of one shared socket: the topics its feeds select, fitted to the plan's limit."""

from __future__ import annotations

import collections
from collections.abc import Iterable

from airflow_sfi.exceptions import SfiSubscriptionError
from airflow_sfi.protocol.messages import SCOPES, Subscription

# Output order: the vendor's channel order, then scope, then id.
_CHANNEL_ORDER = ("MAIN", "MAIN_REALTIME", "STATS", "ODDS", "STATS_REALTIME", "ODDS_REALTIME")


def covers(topic: Subscription, selection: Subscription) -> bool:
    """
    Whether a socket subscribed to ``topic`` receives every event ``selection`` asks for.

    A ``league`` topic is not taken to cover a ``match`` selection: a match's league is not known
    from its id.

    :param topic: what the socket is subscribed to.
    :param selection: what a feed needs.
    """
    return topic.channel == selection.channel and (topic.scope == "all" or topic == selection)


def plan(selections: Iterable[Subscription], max_subscribe: int) -> tuple[Subscription, ...]:
    """
    The topics one socket subscribes to so that every selection is covered, at most ``max_subscribe`` of them.

    Identical topics are merged, and a channel with an ``all`` topic needs no other. While there are
    more topics than ``max_subscribe``, the channel with the most (the first in the vendor's channel
    order on a tie) is widened to ``<channel>:all``; its feeds then filter what they receive
    (:meth:`Subscription.matches`). Sorted by channel (MAIN, MAIN_REALTIME, STATS, ODDS,
    STATS_REALTIME, ODDS_REALTIME), then scope (all, match, league), then id.

    :param selections: what the socket's feeds need.
    :param max_subscribe: the plan's ``max_subscribe_per_connection``.
    :raises SfiSubscriptionError: ``SUBSCRIPTION_LIMIT`` when there are more channels than ``max_subscribe``.
    """
    by_channel: dict[str, set[Subscription]] = collections.defaultdict(set)
    for selection in selections:
        by_channel[selection.channel].add(selection)
    if len(by_channel) > max_subscribe:
        raise SfiSubscriptionError(
            f"{len(by_channel)} channels ({', '.join(sorted(by_channel, key=_CHANNEL_ORDER.index))}) need a "
            f"subscription each, but the plan allows {max_subscribe} per connection",
            error_code="SUBSCRIPTION_LIMIT",
        )
    for channel, topics in by_channel.items():
        if Subscription(channel) in topics:
            by_channel[channel] = {Subscription(channel)}
    while sum(len(topics) for topics in by_channel.values()) > max_subscribe:
        widest = min(by_channel, key=lambda channel: (-len(by_channel[channel]), _CHANNEL_ORDER.index(channel)))
        by_channel[widest] = {Subscription(widest)}
    return tuple(sorted((t for topics in by_channel.values() for t in topics), key=_order))


def _order(topic: Subscription) -> tuple[int, int, str]:
    return _CHANNEL_ORDER.index(topic.channel), SCOPES.index(topic.scope), topic.id or ""
