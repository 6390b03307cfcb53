from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_sfi.exceptions import SfiSubscriptionError
from airflow_sfi.protocol.messages import FeedEvent, Subscription
from airflow_sfi.protocol.token import CHANNELS
from airflow_sfi.protocol.topics import covers, plan

M1, M2, M3 = "0000000000000001", "0000000000000002", "0000000000000003"
L1, L2 = "1000000000000001", "1000000000000002"


def sub(topic: str) -> Subscription:
    """``MAIN:all``, ``STATS:match:<id>``... as a Subscription."""
    channel, scope, *id_ = topic.split(":")
    return Subscription(channel, scope, id_[0] if id_ else None)


def keys(topics: tuple[Subscription, ...]) -> list[str]:
    return [t.topic_key for t in topics]


def test_identical_topics_are_merged_and_all_takes_in_the_rest_of_its_channel() -> None:
    selections = [sub(f"MAIN:match:{M1}"), sub(f"MAIN:match:{M1}"), sub("STATS:all"), sub(f"STATS:league:{L1}")]
    assert keys(plan(selections, 2)) == [f"MAIN:match:{M1}", "STATS:all"]
    assert plan([], 2) == ()


def test_topics_that_fit_are_kept_as_selected_in_a_fixed_order() -> None:
    selections = [sub(f"ODDS:match:{M2}"), sub(f"MAIN:league:{L1}"), sub(f"MAIN:match:{M2}"), sub(f"MAIN:match:{M1}")]
    expected = [f"MAIN:match:{M1}", f"MAIN:match:{M2}", f"MAIN:league:{L1}", f"ODDS:match:{M2}"]
    for _ in range(5):
        random.shuffle(selections)
        assert keys(plan(selections, 4)) == expected


def test_the_channel_with_the_most_topics_is_widened_first_until_it_fits() -> None:
    selections = [
        sub(f"MAIN:match:{M1}"),
        sub(f"MAIN:match:{M2}"),
        sub(f"MAIN:league:{L1}"),
        sub(f"STATS:match:{M1}"),
        sub(f"STATS:match:{M3}"),
    ]
    assert keys(plan(selections, 4)) == ["MAIN:all", f"STATS:match:{M1}", f"STATS:match:{M3}"]
    assert keys(plan(selections, 3)) == ["MAIN:all", f"STATS:match:{M1}", f"STATS:match:{M3}"]
    assert keys(plan(selections, 2)) == ["MAIN:all", "STATS:all"]
    # A tie goes to the first channel in the vendor's order.
    tie = [sub(f"ODDS:match:{M1}"), sub(f"ODDS:match:{M2}"), sub(f"STATS:match:{M1}"), sub(f"STATS:match:{M2}")]
    assert keys(plan(tie, 3)) == ["STATS:all", f"ODDS:match:{M1}", f"ODDS:match:{M2}"]


def test_more_channels_than_subscriptions_is_the_plans_limit() -> None:
    selections = [sub(f"MAIN:match:{M1}"), sub("STATS:all"), sub(f"ODDS_REALTIME:league:{L2}")]
    with pytest.raises(SfiSubscriptionError, match=r"3 channels \(MAIN, STATS, ODDS_REALTIME\).*allows 2") as raised:
        plan(selections, 2)
    assert raised.value.error_code == "SUBSCRIPTION_LIMIT"
    with pytest.raises(SfiSubscriptionError):
        plan([sub("MAIN:all")], 0)


def test_covers_knows_all_and_identical_topics_only() -> None:
    assert covers(sub("MAIN:all"), sub(f"MAIN:match:{M1}"))
    assert covers(sub("MAIN:all"), sub(f"MAIN:league:{L1}"))
    assert covers(sub(f"MAIN:match:{M1}"), sub(f"MAIN:match:{M1}"))
    assert not covers(sub(f"MAIN:match:{M1}"), sub(f"MAIN:match:{M2}"))
    assert not covers(sub(f"MAIN:league:{L1}"), sub(f"MAIN:match:{M1}"))  # the match's league is not known
    assert not covers(sub("MAIN:all"), sub("MAIN_REALTIME:all"))
    assert not covers(sub(f"MAIN:match:{M1}"), sub("MAIN:all"))


TOPICS = st.builds(
    Subscription,
    st.sampled_from(sorted(CHANNELS)),
    st.sampled_from(["match", "league"]),
    st.sampled_from([M1, M2, M3, L1, L2]),
) | st.builds(Subscription, st.sampled_from(sorted(CHANNELS)))


@given(st.lists(TOPICS, max_size=12), st.integers(1, 8))
def test_a_plan_fits_covers_every_selection_and_delivers_what_each_needs(
    selections: list[Subscription], max_subscribe: int
) -> None:
    try:
        planned = plan(selections, max_subscribe)
    except SfiSubscriptionError:
        assert len({s.channel for s in selections}) > max_subscribe
        return
    assert len(planned) <= max_subscribe and len(set(planned)) == len(planned)
    assert plan(reversed(selections), max_subscribe) == planned
    for selection in selections:
        assert any(covers(topic, selection) for topic in planned)
        # What the selection asks for comes on some planned topic.
        id_ = selection.id or M1
        event = FeedEvent(selection.channel, "goal", id_, id_, 1, {})
        if selection.matches(event):
            assert any(topic.matches(event) for topic in planned)
