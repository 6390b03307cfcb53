"""GapWatcher: how long the token a consumer would read was not valid, on the sandbox's clock."""

from __future__ import annotations


def test_gap_watcher_measures_how_long_the_published_token_was_dead() -> None:
    from airflow_sfi.sandbox import GapWatcher, Sandbox

    now = [1_000_000.0]
    sandbox = Sandbox(ttl=10, clock=lambda: now[0])
    published: list[str] = []
    watcher = GapWatcher(sandbox, lambda: published[-1] if published else None)

    def at(moment: float) -> None:
        now[0] = moment
        watcher.poll()

    at(1_000_000.0)  # nothing published yet: no gap
    sandbox.answer("/v1/ws/new/", {"t": ["sandbox-key-pro"]}, {})
    published.append(sandbox.tokens()[-1].token)
    at(1_000_005.0)
    at(1_000_010.5)  # expired at 1_000_010: a gap is open from here
    at(1_000_012.0)
    sandbox.answer("/v1/ws/new/", {"t": ["sandbox-key-pro"]}, {})
    published.append(sandbox.tokens()[-1].token)
    at(1_000_013.0)  # a valid token again: the gap was 2.5 s as polled
    at(1_000_030.0)  # the second one expired at 1_000_023
    watcher.stop()  # stopping closes the open gap at the clock's time
    assert watcher.gaps == 2 and watcher.polls == 6
    assert watcher.longest_gap == 2.5 and watcher.total_gap == 2.5 + 0.0
