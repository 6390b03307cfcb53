"""`make bench`: run every figure in a fresh process and write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def figure(script: str, *args: str) -> dict:
    env = {**os.environ, "AIRFLOW_HOME": tempfile.mkdtemp(prefix="sfi-bench-"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench/{script} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # the figure is the last line; Airflow may log before it


# The suite is timed against the one before the current round of work (the pytest plugin then came from an
# entry point the installed package no longer has, so the baseline loads it by name).
SUITE_BASELINE = os.environ.get("SFI_BENCH_SUITE_BASELINE", "63880e9")
SUITE_TARGET_SECONDS = 60.0
RANDOM_RUNS = 5


def suite(tree: Path, *args: str) -> dict:
    """Run the pytest suite of ``tree`` (its own package shadows the installed one) and time it."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=6", *args],
        capture_output=True,
        text=True,
        cwd=tree,
        check=False,
    )
    slowest = re.findall(r"^(\d+\.\d+)s (call|setup|teardown)\s+(\S+)", done.stdout, re.M)
    summary = done.stdout.strip().splitlines()[-1]
    reported = re.search(r" in (\d+\.\d+)s", summary)
    return {
        "seconds": time.monotonic() - started,
        "pytest_seconds": float(reported.group(1)) if reported else None,
        "summary": summary,
        "passed": done.returncode == 0,
        "slowest": [(float(s), phase, test) for s, phase, test in slowest],
    }


def suites(rounds: int = int(os.environ.get("SFI_BENCH_SUITE_ROUNDS", "3"))) -> dict:
    """
    ``make test``'s pytest and the baseline's, interleaved ``rounds`` times (the median of each), then the unit
    suite :data:`RANDOM_RUNS` times in random order.
    """
    baseline = Path(tempfile.mkdtemp(prefix="sfi-bench-baseline-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(baseline), SUITE_BASELINE], cwd=REPO, check=True)
    try:
        runs: dict[str, list[dict]] = {"current": [], "baseline": []}
        for _ in range(rounds):
            runs["current"].append(suite(REPO, "-p", "no:randomly"))
            runs["baseline"].append(suite(baseline, "-p", "airflow_sfi.sandbox.pytest_plugin", "-p", "no:randomly"))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=REPO, check=False)
    result: dict = {name: min(done, key=lambda r: r["seconds"]) for name, done in runs.items()}
    for name, done in runs.items():
        result[name]["median_seconds"] = statistics.median(r["seconds"] for r in done)
        result[name]["median_pytest_seconds"] = statistics.median(r["pytest_seconds"] or r["seconds"] for r in done)
    result["baseline"]["ref"] = SUITE_BASELINE
    result["rounds"] = rounds
    result["random_order"] = random_order()
    return result


def random_order() -> list[dict]:
    """The unit suite :data:`RANDOM_RUNS` times, each in the order of a seed drawn here (and recorded)."""
    seeds = [random.randrange(2**32) for _ in range(RANDOM_RUNS)]
    runs = [(seed, suite(REPO, "-p", "randomly", f"--randomly-seed={seed}", "tests/unit")) for seed in seeds]
    return [{"seed": seed, "passed": run["passed"], "summary": run["summary"]} for seed, run in runs]


def verdict(value: float, target: float, *, at_most: bool = True) -> str:
    """Met, or missed by how much, for a figure that must stay at most (or at least) ``target``."""
    met = value <= target if at_most else value >= target
    if met:
        return f"**met** ({value:.2f} against {'≤' if at_most else '≥'} {target:g})"
    share = f" ({abs(value / target - 1):.0%})" if target else ""
    return f"**missed** by {abs(value - target):.2f}{share}: {value:.2f} against {target:g}"


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


# Section 6, the live feed: figures from bench/feed_memory.py, bench/feed_reconnect.py and the deployment test.
FEED_TEST = "tests/system/test_deployment_feed.py"
FEED_P95_TARGET_S = 3.0


def test_figures(test: str, marker: str, variable: str) -> dict:
    """
    A test's figures: from the file named by ``variable`` when it exists, else by running the test with
    ``variable`` naming a new file it writes them to.
    """
    given = os.environ.get(variable)
    if given and Path(given).is_file():
        return {**json.loads(Path(given).read_text()), "source": f"run before; its figures read from {variable}"}
    path = Path(tempfile.mkdtemp(prefix="sfi-bench-figures-")) / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", marker, "-s", "-q", "-p", "no:cacheprovider", test],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, variable: str(path)},
        check=False,
    )
    if done.returncode != 0 or not path.is_file():
        raise RuntimeError(f"{test} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return {**json.loads(path.read_text()), "source": "run by bench/run.py"}


def deployment_feed_figures() -> dict:
    """The deployment test's figures: from ``SFI_FEED_FIGURES`` when that file exists, else by running the test."""
    return test_figures(FEED_TEST, "deployment", "SFI_FEED_FIGURES")


# Section 7, production: tests/system/test_production.py over SFI_SOAK_LIFETIMES lifetimes (`make soak`).
PRODUCTION_TEST = "tests/system/test_production.py"
PRODUCTION_PACKAGES = ("apache-airflow", "apache-airflow-providers-celery", "celery", "redis", "psycopg2-binary")


def production_test_figures(test: str, variable: str, packages: tuple[str, ...] = PRODUCTION_PACKAGES) -> dict:
    """A ``production``-marked test's figures (see :func:`test_figures`), with the machine, versions and servers."""
    started = time.monotonic()
    figures = test_figures(test, "production", variable)
    figures["meta"] = {
        "machine": machine(),
        "versions": versions(packages),
        "servers": server_versions(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        # A run before this one (figures read from a file) took the test's own time, not this call's.
        "seconds": figures.get("test_seconds", figures.get("rotation_seconds"))
        if figures["source"].startswith("run before")
        else time.monotonic() - started,
    }
    return figures


def production() -> dict:
    return production_test_figures(PRODUCTION_TEST, "SFI_PRODUCTION_FIGURES")


def server_versions() -> str:
    found = []
    for command in (["redis-server", "--version"], ["pg_config", "--version"]):
        try:
            found.append(subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip())
        except OSError:
            continue
    return "; ".join(found)


def production_section(p: dict) -> list[str]:
    kills = p["kills_survived"]
    takeovers = p["triggerer_takeover_seconds"]
    faults = ", ".join(f"{kind} {n}" for kind, n in sorted(p["faults_by_kind"].items()))
    random_faults = p["faults_injected"] - 2 * p["fault_bursts"]
    return [
        "## 7. Production: PostgreSQL, Celery, two triggerers, under chaos",
        "",
        f"`make soak` ({p['meta']['measured_at']}, {p['meta']['seconds'] / 60:.0f} min): "
        "`tests/system/test_production.py` "
        f"over {p['lifetimes']} token lifetimes (sandbox TTL {p['ttl_seconds']:g} s, refresh margin "
        f"{p['margin_seconds']:g} s). PostgreSQL as the metadata database, CeleryExecutor with two workers on "
        "Redis, two triggerers (health-check threshold "
        f"{p['triggerer_health_check_threshold']} s), scheduler, DAG processor and API server. One fault per "
        "lifetime in turn: the triggerer holding the refresh killed (-9) 3 s before it is due, a Celery worker "
        "killed (-9) while it runs a rotation task, the scheduler killed (-9) and restarted, two API faults in "
        f"a row at a refresh; and calls failed at random (seeded): {random_faults} of {p['api_calls']}. In all "
        f"{p['fault_share']:.0%} of the API calls met a fault. "
        f"Versions: {p['meta']['versions']}; {p['meta']['servers']}.",
        "",
        "| | |",
        "|---|---|",
        f"| lifetimes | {p['lifetimes']} ({p['rotation_seconds'] / 60:.1f} min of rotation) |",
        f"| failed DAG runs | **{p['failed_dag_runs']}** of {p['dag_runs']} |",
        f"| task instances retried / failed | {p['retried_task_instances']} / {p['failed_task_instances']} |",
        f"| lifetimes that ended without a valid token published | **{p['lifetime_ends_without_valid_token']}** "
        f"of {p['lifetime_ends_checked']} |",
        f"| time without a valid token | longest **{p['longest_gap_seconds']:.2f} s**, total "
        f"{p['total_gap_seconds']:.2f} s ({p['gaps']} gaps) |",
        f"| API calls per lifetime | {p['calls_per_lifetime']:.2f}, {p['calls_per_lifetime_not_faulted']:.2f} "
        f"without the faulted ones ({p['api_calls']} calls, "
        f"{p['tokens_issued']} token{'s' if p['tokens_issued'] != 1 else ''} issued) |",
        f"| kills survived | triggerer {kills.get('triggerer', 0)}, Celery worker {kills.get('worker', 0)}, "
        f"scheduler {kills.get('scheduler', 0)} |",
        "| triggerer takeover (kill to trigger reassigned) | "
        + (f"median {statistics.median(takeovers):.1f} s, longest {max(takeovers):.1f} s" if takeovers else "none")
        + f" ({len(takeovers)} seen) |",
        f"| faults injected | {p['faults_injected']} ({faults}; {p['fault_bursts']} bursts of two) |",
        (
            f"| secrets searched | {p['secrets_checked']} in {p['log_files_searched']} log files, "
            f"{p['tables_searched']} tables and the decrypted trigger kwargs: none found, but the tokens in the "
            "rotation's XCom (by design) |"
            if "secrets_checked" in p
            else "| secrets searched | not in this run: it stopped at a failed assertion before the search |"
        ),
        "",
    ]


def feed() -> dict:
    started = time.monotonic()
    figures = {
        "meta": {
            "machine": machine(),
            "versions": versions((*PACKAGES, "websockets")),
            "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
        "memory": figure("feed_memory.py"),
        "reconnect": figure("feed_reconnect.py"),
        "deployment": deployment_feed_figures(),
    }
    figures["meta"]["seconds"] = time.monotonic() - started
    return figures


def closed_by(code: int | None) -> str:
    return "the server (4001)" if code == 4001 else f"the feed ({code})"


def seconds_row(label: str, s: dict) -> str:
    if not s["n"]:
        return f"| {label} | 0 | | | |"
    return f"| {label} | {s['n']} | {s['median']:.2f} s | {s['p95']:.2f} s | {s['max']:.2f} s |"


def feed_section(f: dict) -> list[str]:
    d, m, r = f["deployment"], f["memory"], f["reconnect"]
    lat, token, restart, ws = d["event_to_task_start_s"], d["token"], d["triggerer_restart"], d["ws_connections"]
    e, refusal = r["expiry"], r["refusal"]
    samples = m["samples"][::4] if len(m["samples"]) % 4 == 1 else [*m["samples"][::4], m["samples"][-1]]
    held = ", ".join(
        f"{n} released by the next {'goal' if kind == 'goal' else 'flush marker'}"
        for kind, n in (d.get("burst_goals_held_until_a_later_event") or {}).items()
    )
    return [
        "## 6. The live feed",
        "",
        f"Measured {f['meta']['measured_at']} ({f['meta']['seconds'] / 60:.0f} minutes) with "
        f"{f['meta']['versions']}; {f['meta']['machine']}.",
        "",
        "### 6a. In a running Airflow",
        "",
        f"`{FEED_TEST}` ({d['source']}; the test took {d['test_seconds']:.0f} s): API server, scheduler "
        "(LocalExecutor), DAG processor and triggerer as processes on SQLite; the `sfi_league_goals` asset "
        f"watcher against the sandbox on loopback (token TTL {token['ttl_s']} s, replay on). One match of the "
        f"watched league played in {d['timeline_s']['match']:.0f} s with {d['goals']} goals, a burst of "
        f"{d['burst_size']} at one minute, renewals, `ws/renew` switched off until two tokens ran out, and the "
        "triggerer's process group killed (SIGKILL) mid-match and a new triggerer started; another league's "
        "goals and the other event types play "
        "alongside. Every goal is looked up by its dedupe key in the `record_goals` XComs of all runs.",
        "",
        "| goals | lost | duplicated | fired twice | other events emitted / fired | DAG runs | failed runs |",
        "|---|---|---|---|---|---|---|",
        f"| {d['goals']} | **{d['lost']}** | **{d['duplicated']}** | {d['fired_twice']} | "
        f"{d['other_events_emitted']} / {d['other_events_fired']} | {d['dag_runs']} "
        f"({d.get('runs_without_goals', 0)} from flush markers) | {d['failed_runs']} |",
        "",
        "Event emitted (sandbox clock) → `record_goals` start (`task_instance.start_date` of the run that got it):",
        "",
        "| events | n | median | p95 | max |",
        "|---|---|---|---|---|",
        seconds_row("not in a burst, delivered live", lat["live"]),
        seconds_row(f"the burst ({d['burst_size']} goals at one minute)", lat["burst"]),
        seconds_row("emitted while no watcher was subscribed (the crash), replayed after", lat["replayed"]),
        seconds_row("not in a burst, the replayed ones included", lat["not_burst_incl_replayed"]),
        "",
        f"Event → asset event, delivered live: median {d['event_to_asset_event_s_live']['median']:.2f} s, p95 "
        f"{d['event_to_asset_event_s_live']['p95']:.2f} s. Burst goals Airflow held until a later asset event on "
        f"the asset (#54659): {held or 'none'}.",
        "",
        f"WebSocket: {ws['attempts']} handshakes, {ws['accepted']} accepted, close codes {ws['close_codes']}; "
        f"{token['tokens_issued']} tokens, {token['renewals_200']} renewals through `ws/renew` "
        f"({token['renewals_with_socket_kept_open']} with the socket kept open). Each token that ran out while "
        f"`ws/renew` was off ({token['renew_absent_s']:.0f} s):",
        "",
        "| expiry | old socket closed by | after expiry | next socket opened | without a subscribed socket |",
        "|---|---|---|---|---|",
        *(
            f"| {i} | {closed_by(x['old_close_code'])} | "
            f"{x['old_closed_after_expiry_s']:.3f} s | {x['new_connection_after_old_close_s']:+.3f} s | "
            f"{x['unsubscribed_s']:.3f} s |"
            for i, x in enumerate(token["expiries"], 1)
        ),
        "",
        f"Triggerer killed → the new triggerer's watcher subscribed: **{restart['kill_to_subscribed_s']:.1f} s** "
        f"(the new process up {restart['kill_to_triggerer_started_s']:.1f} s after the kill; the watcher started "
        f"at {restart['kill_to_watcher_started_s']:.1f} s, once the dead triggerer's heartbeat was older than "
        "`triggerer_health_check_threshold`, 30 s by default, counted from its last heartbeat; its first `ws/new` "
        f"{restart['watcher_started_to_ws_new_s']:.1f} s after it started; subscribed "
        f"{restart['ws_new_to_subscribed_s']:.2f} s after that). {restart['goals_emitted_while_down']} goals were "
        f"emitted while it was down and arrived by replay; the {restart['goals_fired_before_crash_and_replayed']} "
        "fired before the crash were replayed too and dropped by the dedupe state restored from the asset state "
        f"store ({d['dedupe_state_keys_stored']} keys stored).",
        "",
        f"Targets: 0 lost and 0 duplicated: {verdict(d['lost'] + d['duplicated'], 0)}; p95 event → task start within "
        f"{FEED_P95_TARGET_S:g} s for events not in a burst, delivered live: "
        f"{verdict(lat['live']['p95'], FEED_P95_TARGET_S)} (counting the replayed ones too, which waited out the "
        f"crash: {verdict(lat['not_burst_incl_replayed']['p95'], FEED_P95_TARGET_S)}).",
        "",
        "### 6b. Memory over a long match",
        "",
        f"`bench/feed_memory.py`: {m['watchers']} watchers (`SfiMatchEventTrigger(...).run()` on STATS, ODDS and "
        "MAIN) in one asyncio loop in one process, as in the triggerer, each with an in-memory stand-in for the "
        f"asset state store; the sandbox in a child process emits {m['events_emitted']} events "
        f"({', '.join(f'{k} {v}' for k, v in m['by_kind'].items())}) at {m['rate_per_s']} per second, "
        f"token TTL {m['ttl_s']} s (renewed during the run). RSS is this process's `VmRSS`; the dedupe sizes are "
        "`len()` of each watcher's dedupe state (capacity "
        f"{m['dedupe_capacity'][0]}).",
        "",
        "| events through the feeds | RSS | dedupe sizes (STATS, ODDS, MAIN) |",
        "|---|---|---|",
        *(
            f"| {s['events']} | {s['rss_kib'] / 1024:.1f} MiB | {', '.join(map(str, s['dedupe_len']))} |"
            for s in samples
        ),
        "",
        f"RSS at 10% of the run ({m['events_at_10pct']} events): {m['rss_mib_at_10pct']:.1f} MiB; at the end "
        f"({m['events_at_100pct']}): {m['rss_mib_at_100pct']:.1f} MiB; growth **{m['growth_mib']:+.2f} MiB**. "
        f"From the first sample with every dedupe state full ({m['events_when_every_dedupe_full']} events) to the "
        f"end: {m['growth_mib_after_every_dedupe_full']:+.2f} MiB. "
        f"Fired {m['fired']} of {m['should_fire']}: {m['lost']} lost, {m['duplicated']} duplicated; "
        f"{m['cpu_us_per_event']:.0f} µs of CPU per event in this process, the stored state written once per "
        f"moment due ({m['stored_state_bytes'][0]} bytes of JSON at the end); the watchers were through "
        f"{m['lag_at_end_s']:.2f} s after the last event was emitted. "
        f"Flat means growth under {m['flat_mib']:g} MiB after the warm-up (the first 10%): "
        f"{verdict(m['growth_mib'], m['flat_mib'])}.",
        "",
        "### 6c. Reconnects",
        "",
        f"`bench/feed_reconnect.py`, the watcher in one asyncio loop. **Token expiry without renew** (sandbox "
        f'`renew="absent"`, TTL {e["ttl_s"]} s, no replay, a goal every {e["emit_every_s"] * 1000:g} ms): at '
        "each expiry the server closes the socket within 0.05 s (4001), while the feed, its renewal having found "
        "`ws/renew` absent, asks `ws/new` at `expires_at` and moves to a new socket, subscribed before it closes "
        "the old one.",
        "",
        "| expiry | old socket closed by | expiry → close | close → new subscription | without a subscribed "
        "socket | goals missed |",
        "|---|---|---|---|---|---|",
        *(
            f"| {i} | {closed_by(w['old_close_code'])} | {w['expiry_to_close_s']:.3f} s | "
            f"{w['close_to_subscribed_s']:+.3f} s | "
            f"{w['unsubscribed_s']:.3f} s | {w['missed']} |"
            for i, w in enumerate(e["windows"], 1)
        ),
        "",
        f"{e['missed']} of {e['emitted']} goals missed ({len(e['missed_unattributed_at_s_from_nearest_close'])} "
        f"farther than 1 s from an expiry), {e['duplicated']} duplicated; {e['ws_new_calls']} `ws/new` calls for "
        f"{e['expiries']} expiries; the server closed the old socket first at {e['closed_by_server']} of them.",
        "",
        f"**A server refusing every handshake** (HTTP {refusal['refuse_status']}) for "
        f"{refusal['refused_for_s']:.0f} s after the connection dropped: {refusal['attempts']} attempts "
        f"({refusal['refused_attempts']} refused), the first {refusal['first_attempt_after_drop_s'] * 1000:.0f} ms "
        "after the drop, then spaced "
        f"{', '.join(f'{x:.2f}' for x in refusal['spacing_s'])} s against backoff steps of "
        f"{', '.join(f'{lo:g} to {hi:g}' for lo, hi in refusal['backoff_steps_s'])} s; "
        f"{refusal['api_calls_while_refused']} API calls meanwhile. Back "
        f"{refusal['lift_to_subscribed_s']:.1f} s after the server accepted again (the backoff step in progress).",
        "",
        "No reconnect storm, at most one attempt per backoff step: attempts sooner than their step "
        f"{verdict(len(refusal['attempts_sooner_than_their_step']), 0)}; refused attempts against the most the "
        "backoff allows in that time: "
        f"{verdict(refusal['refused_attempts'], refusal['max_attempts_allowed_by_backoff'])}.",
        "",
    ]


# Section 6d: bench/feed_cpu.py, FEED_CPU_RUNS times; `--only feed_cpu` measures it again.
FEED_CPU_TARGET_US = 100.0
FEED_CPU_RUNS = 3


def feed_cpu() -> dict:
    """bench/feed_cpu.py :data:`FEED_CPU_RUNS` times: the run with the median CPU per delivery, and every run's."""
    started = time.monotonic()
    runs = [figure("feed_cpu.py") for _ in range(FEED_CPU_RUNS)]
    figures = sorted(runs, key=lambda r: r["cpu_us_per_delivery"])[len(runs) // 2]
    figures["runs"] = [
        {k: r[k] for k in ("cpu_us_per_delivery", "cpu_us_per_event", "state_writes", "lost", "sockets")} for r in runs
    ]
    figures["meta"] = {
        "machine": machine(),
        "versions": versions((*PACKAGES, "websockets")),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": time.monotonic() - started,
    }
    return figures


def feed_cpu_section(c: dict, *, heading: bool) -> list[str]:
    """Section 6d: CPU per event delivered to a trigger, many triggers on one API key."""
    target = c.get("target_us", FEED_CPU_TARGET_US)
    watchers = ", ".join(
        f"{g['count']} on {g['channel']} `{g['scope']}` ({' or '.join(g['event_types']) or 'any event'})"
        for g in c["watcher_groups"]
    )
    share = c["cpu_share_of_one_core"]
    runs = c.get("runs") or [c]
    return [
        *(["## 6. The live feed", ""] if heading else []),
        "### 6d. CPU per event delivered to a trigger",
        "",
        f"`bench/feed_cpu.py` ({c['meta']['measured_at']}, {c['meta']['versions']}; measured by "
        f"`python bench/run.py --only feed_cpu`): {c['triggers']} watchers (`SfiMatchEventTrigger(...).run()`, one "
        "per asset) on one API key (MEGA) in one asyncio loop in one process, as in the triggerer, each with an "
        f"in-memory stand-in for the asset state store: {watchers}. The sandbox runs in a child process (its work "
        f"is not counted) and emits {c['events_emitted']} events at {c['rate_per_s']} per second "
        f"({', '.join(f'{k} {v}' for k, v in c['by_kind'].items())}), every one selected by at least one watcher. "
        "A delivery is one event handed to one watcher that selected it, counted from what the watchers yielded. "
        "CPU is this process's `time.process_time()` (every thread, the benchmark's own counting included) over "
        f"the steady part: from the first delivery of event {c['warmup_events']} (imports, the connection, the "
        "subscriptions and the first reconciliation come before it) to the last delivery.",
        "",
        f"The run with the median CPU per delivery of {len(runs)}:",
        "",
        "| events | deliveries | deliveries per event | CPU | **CPU per delivery** | CPU per event | sockets |",
        "|---|---|---|---|---|---|---|",
        f"| {c['events']} | {c['deliveries']} | {c['deliveries_per_event']:.2f} | {c['cpu_seconds']:.2f} s "
        f"({share:.0%} of one core) | **{c['cpu_us_per_delivery']:.0f} µs** | {c['cpu_us_per_event']:.0f} µs | "
        f"{c['sockets']} |",
        "",
        "Each run: "
        + "; ".join(
            f"{r['cpu_us_per_delivery']:.0f} µs per delivery, {r['cpu_us_per_event']:.0f} µs per event, "
            f"{r['state_writes']} writes of the stored state"
            for r in runs
        )
        + ".",
        "",
        f"The sandbox admitted {c['sockets']} socket{'s' * (c['sockets'] != 1)} ({c['handshakes']} handshake"
        f"{'s' * (c['handshakes'] != 1)}), subscribed to {', '.join(c['socket_topics'])} for the "
        f"{c['topics_watched']} topics the watchers name; {c['ws_new_calls']} `ws/new` call"
        f"{'s' * (c['ws_new_calls'] != 1)}. Delivered {c['delivered_in_all']} of {c['should_deliver_in_all']} over "
        f"the whole run: {c['lost']} lost, {c['duplicated']} duplicated; {c['state_writes']} writes of the stored "
        f"state ({c['state_writes'] / max(c['delivered_in_all'], 1):.2f} per delivery), {c['flush_markers']} flush "
        "markers.",
        "",
        f"Target: at most {target:g} µs of CPU per delivery with {c['triggers']} triggers on one socket: "
        f"{verdict(c['cpu_us_per_delivery'], target)}; one socket: {verdict(c['sockets'], 1)}.",
        "",
    ]


# Section 6e: tests/system/test_production_feed.py, the feed at scale on section 7's Airflow; `--only feed_scale`.
FEED_SCALE_TEST = "tests/system/test_production_feed.py"
FEED_SCALE_PACKAGES = ("apache-airflow", "airflow-provider-sfi", "websockets", *PRODUCTION_PACKAGES[1:])


def feed_scale() -> dict:
    return production_test_figures(FEED_SCALE_TEST, "SFI_FEED_SCALE_FIGURES", FEED_SCALE_PACKAGES)


def median_p95(s: dict) -> str:
    return f"{s['median']:.2f} / {s['p95']:.2f} s" if s["n"] else ""


def longest(s: dict) -> str:
    return f"{s['max']:.2f} s" if s["n"] else ""


def feed_scale_section(f: dict, *, heading: bool) -> list[str]:
    """Section 6e: every watcher gets every event of its selection once, through a token switch and a crash."""
    ws, tr, tokens, slots = f["sockets"], f["triggerers"], f["tokens"], f["slots"]
    at_kill = tr["split_at_kill"]
    start, queued, asset = f["event_to_task_start_s"], f["event_to_task_queued_s"], f["event_to_asset_event_s"]
    errors, rest = ws["errors_sent"], f["rest_calls"]
    sensors = f["sensor_results"].values()
    outside = start["live_outside_bursts"]
    backfilled = start["backfilled"]
    p95_is_slowest = math.ceil(0.95 * outside["n"]) == outside["n"]  # the nearest rank of a small sample
    slowest = ", ".join(
        f"`{dag_id}` {' / '.join('n/a' if s is None else f'{s:.2f}' for s in stages)} s"
        for dag_id, _, *stages in f["live_outside_bursts"][-3:][::-1]
    )
    passed = f["source"] == "run by bench/run.py"  # the test passed: every hard target it asserts held
    return [
        *(["## 6. The live feed", ""] if heading else []),
        "### 6e. The feed at scale in a running Airflow",
        "",
        f"`{FEED_SCALE_TEST}` ({f['meta']['measured_at']}, {f['meta']['seconds'] / 60:.0f} min; {f['source']}). "
        "Measured by `python bench/run.py --only feed_scale` in `.venv` with `make test-production`'s PostgreSQL, "
        "Redis and packages, so not part of `make bench`. Section 7's Airflow: PostgreSQL, CeleryExecutor with "
        f"{slots['workers']} workers of {slots['worker_concurrency']} slots on Redis (parallelism "
        f"{slots['parallelism']}), **2 triggerers**, scheduler, DAG processor and API server. **{f['watchers']} "
        "asset watchers** (one DAG each; all matches, a league or a match; any MAIN event, goals, match_end or "
        f"the phases) and **{f['sensors']} `SfiMatchEventSensor`s** (2 of them deferred once their match "
        f"played) on **one PRO key**; {f['matches']} matches played in {f['timeline_s']['match']:.0f} s with "
        f"**{f['main_events_emitted']} MAIN events** ({f['events_emitted']} events with the STATS and ODDS a PRO "
        f"key does not get): the phases of all matches at once, three to five goals in every match at each of "
        "three minutes, and one goal of each match alone. `ws/renew` off for "
        f"{tokens['renew_absent_s']:.0f} s (token TTL "
        f"{tokens['ttl_s']} s) until both sockets had moved to a token from `ws/new`; at minute "
        f"{tr['kill_minute']:.0f} the triggerer holding the most feed triggers ({at_kill[tr['killed']]}, against "
        f"{sum(at_kill.values()) - at_kill[tr['killed']]} on the other) killed "
        f"(SIGKILL): the other took {len(tr['moved_to_survivor'])} of its {len(tr['on_killed'])} triggers in "
        f"{tr['kill_to_takeover_s']:.1f} s, the rest waited for its restart ({tr['kill_to_restart_s']:.1f} s); "
        f"all running again {tr['kill_to_all_running_s']:.1f} s after the kill. What a killed trigger missed "
        "came through REST (backfilled). Versions: "
        f"{f['meta']['versions']}; {f['meta']['servers']}; {f['meta']['machine']}.",
        "",
        "| | |",
        "|---|---|",
        f"| deliveries expected (each watcher, each MAIN event of its selection) | {f['expected_deliveries']} |",
        f"| lost | **{f['lost']}** |",
        f"| duplicated (in a watcher's runs, after the consumer's dedupe) | **{f['duplicated']}** |",
        f"| outside a watcher's selection | {f['unexpected']} |",
        f"| backfilled (through REST after the kill) | {f['backfilled_deliveries']} |",
        f"| events a watcher fired twice | {f['fired_twice']} |",
        f"| DAG runs / failed | {f['dag_runs']} ({f['flush_markers']} from flush markers) / {f['failed_runs']} |",
        f"| sensors succeeded | {sum(r['state'] == 'success' for r in sensors)} of {f['sensors']} "
        f"({f['sensors_backfilled']} backfilled; on the killed triggerer: "
        f"{', '.join(f['sensors_on_killed']) or 'none'}) |",
        f"| WebSocket handshakes / accepted | {ws['attempts']} / {ws['accepted']} ({tokens['issued']} tokens) |",
        f"| most sockets open for a token / for the key | {ws['max_per_token']} / {ws['max_per_key_all_tokens']} |",
        f"| connection-limit refusals | {ws['limit_refusals'] + errors.get('CONNECTION_LIMIT', 0)} |",
        f"| error frames sent | {', '.join(f'{code} {n}' for code, n in errors.items()) or 'none'} |",
        f"| REST calls for the feed: `matches/view/basic` / `live/basic` | {rest.get('matches/view/basic', 0)} / "
        f"{rest.get('live/basic', 0)} (for {f['matches']} matches) |",
        "",
        "Emission (sandbox clock) → asset event, → `record` queued, → `record` start; median / p95. Outside a "
        "burst: no other MAIN event, of any match, within the flush window (5 s) of it, so that the deployment is not "
        "busy with another event's runs.",
        "",
        "| events | n | → asset event | → task queued | → task start | max to start |",
        "|---|---|---|---|---|---|",
        *(
            f"| {label} | {start[group]['n']} | {median_p95(asset[group])} | {median_p95(queued[group])} | "
            f"{median_p95(start[group])} | {longest(start[group])} |"
            for label, group in (
                ("live", "live"),
                ("live, outside bursts", "live_outside_bursts"),
                ("backfilled", "backfilled"),
            )
        ),
        "",
        *(
            [
                "Slowest live events outside bursts (→ asset event / run created / task scheduled / queued / "
                f"start): {slowest}.",
                "",
            ]
            if slowest
            else []
        ),
        f"Targets: 0 lost: {verdict(f['lost'], 0)}; 0 duplicated: {verdict(f['duplicated'], 0)}; 0 "
        f"connection-limit refusals: {verdict(ws['limit_refusals'] + errors.get('CONNECTION_LIMIT', 0), 0)}; 0 "
        f"`SUBSCRIPTION_LIMIT` errors: {verdict(errors.get('SUBSCRIPTION_LIMIT', 0), 0)}; at most 2 sockets per "
        f"token: {verdict(ws['max_per_token'], 2)}. p95 emission → task start within {FEED_P95_TARGET_S:g} s for "
        "live events outside bursts: "
        + (
            f"{verdict(outside['p95'], FEED_P95_TARGET_S)}"
            + (f" (of {outside['n']}, the p95 is the slowest)" if p95_is_slowest else "")
            + ", of which the feed's own part, emission → asset event, "
            f"p95 {asset['live_outside_bursts']['p95']:.2f} s"
            if outside["n"]
            else "no such event in this run"
        )
        + ". Backfilled, apart: "
        + (
            f"{backfilled['n']}, median {backfilled['median']:.2f} s, p95 {backfilled['p95']:.2f} s to task start"
            if backfilled["n"]
            else "none"
        )
        + f". No secret found ({f['secrets_checked']} secrets, the key and every token issued, searched in "
        f"{f['log_files_checked']} log files, "
        f"{f['tables_checked']} tables and the decrypted trigger kwargs): "
        + ("**met**" if passed else "asserted by the test, not recorded in its figures")
        + ".",
        "",
    ]


PACKAGES = (
    "apache-airflow",
    "apache-airflow-task-sdk",
    "apache-airflow-providers-http",
    "requests",
    "airflow-provider-sfi",
)


def versions(packages: tuple[str, ...] = PACKAGES) -> str:
    return ", ".join(f"{p} {version(p)}" for p in packages)


def meta_from_markdown() -> dict:
    """The machine and versions the figures already in docs/benchmarks.md were measured with (older JSON lacks them)."""
    text = (REPO / "docs" / "benchmarks.md").read_text()
    machine_line = re.search(r"^Machine: (.*?); shared and noisy", text, re.M)
    versions_line = re.search(r"^Versions: (.*)\.$", text, re.M)
    return {
        "machine": machine_line.group(1) if machine_line else machine(),
        "versions": versions_line.group(1) if versions_line else versions(),
    }


def render(data: dict) -> list[str]:
    """docs/benchmarks.md from the figures in docs/benchmarks.json."""
    imports, calls, per_token = data["imports"], data["calls"], data["calls_per_token"]
    worker, tests, meta = data["worker"], data["suite"], data["meta"]
    ours_ms, http_ms = imports["airflow_sfi"]["median_ms"], imports["providers-http"]["median_ms"]
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {meta['machine']}; shared and noisy, so every figure is a median of interleaved runs and "
        "every comparison is a ratio measured in the same run.",
        f"Versions: {meta['versions']}.",
        "Reproduce: `make bench` (writes this file; about fifteen minutes). Section 6 alone: "
        "`python bench/run.py --only feed`, which measures it again, merges it into `docs/benchmarks.json` and "
        "writes this file from that JSON (the other sections' figures are left as they were measured); 6d the "
        "same way with `--only feed_cpu`; section 1 with `.venv-bench/bin/python bench/run.py --only imports` "
        "(providers-http is there). 6e: `--only feed_scale` (section 7's services and packages, about 5 "
        "minutes; not in `make bench`). "
        "Section 7: `make soak` (`--only production`, about 45 minutes), the same way.",
        "",
        "## 1. Parse-time import cost",
        "",
        f"Extra time to import our operator and sensor modules on top of `airflow.sdk`, against "
        f"`HttpOperator` + `HttpSensor`, and what an asset watcher's DAG file imports (the trigger; every run of "
        f"the DAG parses it again); a fresh process each, {imports['airflow_sfi']['n']} of each, interleaved.",
        "",
        "| | median | min |",
        "|---|---|---|",
        *(f"| {name} | {v['median_ms']:.1f} ms | {v['min_ms']:.1f} ms |" for name, v in imports.items()),
        "",
        f"Ratio ours / providers-http: {ours_ms / http_ms:.2f}. Target ≤ 0.5: {verdict(ours_ms / http_ms, 0.5)}.",
        "",
        *calls_section(calls),
        "## 3. API calls per token lifetime, and time without a valid token",
        "",
        f"The rotation's own code path (get_token once, then per lifetime the `SfiWsTokenRefreshTrigger` that "
        f"refresh_token defers to, run to its `TaskSuccessEvent`) with a sandbox TTL of "
        f"{per_token['ttl_seconds']:g} s and a refresh margin of {per_token['margin_seconds']:g} s, in each "
        "`ws/renew` mode of the sandbox, against a naive refresh every TTL/5 (a 5-minute cron for 25-minute "
        "tokens). A lifetime is one validity period: the first token's, and one per refresh. A watcher polls "
        f"what was published every {per_token['poll_seconds'] * 1000:g} ms and checks it against the sandbox's "
        "token records; a gap is time during which the published token was not valid.",
        "",
        "| | lifetimes | API calls | calls per lifetime | tokens issued | total gap | longest gap |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {label} | {r['lifetimes']} | {r['calls']} | **{r['calls_per_lifetime']:.2f}** | "
            f"{r.get('tokens_issued', r['lifetimes'])} | {r['total_gap_seconds']:.2f} s | "
            f"{r['longest_gap_seconds']:.2f} s |"
            for label, r in (
                ("ours, renew available", per_token["renew_available"]),
                ("ours, renew absent", per_token["renew_absent"]),
                ("naive periodic", per_token["naive_every_ttl_over_5"]),
            )
        ),
        "",
        "Targets: renew available, 1.0 call per lifetime: "
        f"{verdict(per_token['renew_available']['calls_per_lifetime'], 1.0)}; no time without a valid token: "
        f"{verdict(per_token['renew_available']['total_gap_seconds'], 0.0)}. Renew absent, at most 2.0 calls per "
        f"lifetime: {verdict(per_token['renew_absent']['calls_per_lifetime'], 2.0)}.",
        "",
        "## 4. Worker time while waiting",
        "",
        "The sensor waiting the same time in each mode (`dag.test()`, SQLite), time in the `running` state summed "
        "from the task instance's state events.",
        "",
        "| mode | wait | worker slot held | share | state events |",
        "|---|---|---|---|---|",
        *(
            f"| {mode} | {v['wait_seconds']:.1f} s | {v['worker_seconds']:.2f} s | {v['worker_share']:.1%} | "
            f"{' → '.join(v['events'])} |"
            for mode, v in worker.items()
        ),
        "",
        "## 5. Suite cost",
        "",
        *suite_section(tests),
    ]
    lines += feed_section(data["feed"]) if "feed" in data else []
    lines += feed_cpu_section(data["feed_cpu"], heading="feed" not in data) if "feed_cpu" in data else []
    lines += (
        feed_scale_section(data["feed_scale"], heading="feed" not in data and "feed_cpu" not in data)
        if "feed_scale" in data
        else []
    )
    lines += production_section(data["production"]) if "production" in data else []
    lines += landing_section(data["landing"]) if "landing" in data else []
    return lines + (versus_http_section(data["versus_http"]) if "versus_http" in data else [])


# Section 2: bench/call_overhead.py; `--only calls` measures it again.
CALLS_TARGET = 1.05
HOOK_CALLS = {"ws/new": "SfiHook.get_ws_token", "matches/view/basic": "SfiHook.get"}


def call_overhead() -> dict:
    """Section 2: bench/call_overhead.py, 500 calls of each contender in 10 interleaved batches."""
    figures = figure("call_overhead.py", "500", "10")
    figures["meta"] = {
        "machine": machine(),
        "versions": versions(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    return figures


def calls_section(calls: dict) -> list[str]:
    """Section 2: the hook's time per call against bare requests on the same call, and where the hook's goes."""
    target = calls.get("target", CALLS_TARGET)
    meta = calls.get("meta")
    lines = [
        "## 2. Call overhead",
        "",
        *([f"Measured {meta['measured_at']} with {meta['versions']}; {meta['machine']}.", ""] if meta else []),
        "The same call against the sandbox on loopback (its server in the measuring process), each contender "
        "in interleaved batches; median time per call. Bare requests reads the environment's proxy and CA settings "
        "and `~/.netrc` on every call; the hook reads the proxy and CA settings once per hook and hands them to each "
        "call, which the row *environment read once* does too, so the hook's own work shows against it. Measured by "
        "`bench/call_overhead.py` (`python bench/run.py --only calls`).",
        "",
    ]
    verdicts = []
    for endpoint, contenders in calls["endpoints"].items():
        bare = contenders["bare requests"]
        lines += [
            f"`{endpoint}`, {bare['calls']} calls each in batches of {bare.get('batch', 50)}:",
            "",
            "| | per call | ratio to bare requests |",
            "|---|---|---|",
            *(
                f"| {name} | {v['median_us_per_call']:.0f} µs | {v['ratio_to_bare_requests']:.2f} |"
                for name, v in contenders.items()
            ),
            "",
        ]
        hook = HOOK_CALLS.get(endpoint)
        if hook in contenders:
            verdicts.append(f"`{hook}` ({endpoint}): {verdict(contenders[hook]['ratio_to_bare_requests'], target)}")
    lines += [f"Target: the hook at most {target:g} times bare requests on the same call: {'; '.join(verdicts)}.", ""]
    if calls.get("profile"):
        lines += [
            f"Where `SfiHook.get`'s time goes (`{calls['profiled_endpoint']}`, cProfile; the profiler's cost weighs "
            "on every function call, so the hook's many small steps show larger than they are):",
            "",
            "| part | share |",
            "|---|---|",
            *(f"| {p['part']} | {p['share']:.1%} |" for p in calls["profile"]),
            "",
        ]
    return lines


def suite_section(tests: dict) -> list[str]:
    """Section 5: ``make test``'s pytest time against the target and the baseline, and the random-order runs."""
    current, baseline = tests["current"], tests["baseline"]
    lines = [
        f"`pytest` as `make test` runs it (after lint and types), this tree against the suite at "
        f"{baseline['ref']}, run in turn {tests.get('rounds', 2)} times; medians of pytest's own time and of the "
        "wall time. Measured by `python bench/run.py --only suite`.",
        "",
        "| suite | median pytest time | median wall | result of the fastest run |",
        "|---|---|---|---|",
        *(
            f"| {name} | {tests[name].get('median_pytest_seconds', tests[name]['median_seconds']):.0f} s "
            f"| {tests[name]['median_seconds']:.0f} s | {tests[name]['summary']} |"
            for name in ("current", "baseline")
        ),
        "",
        f"Target: `make test` in at most {SUITE_TARGET_SECONDS:g} s of pytest on this machine: "
        f"{verdict(current.get('median_pytest_seconds', current['median_seconds']), SUITE_TARGET_SECONDS)}. "
        f"Ratio current / baseline (wall): {current['median_seconds'] / baseline['median_seconds']:.2f}. Slowest now:",
        "",
        *(f"- {s:.1f} s {phase} `{test}`" for s, phase, test in current["slowest"]),
        "",
    ]
    if "random_order" in tests:
        runs = tests["random_order"]
        failed = sum(not run["passed"] for run in runs)
        lines += [
            f"The unit suite (`tests/unit`) {len(runs)} times in a row in random order (pytest-randomly): "
            f"{len(runs) - failed} of {len(runs)} passed, {failed} failed. Target 0 failed: "
            f"**{'met' if not failed else 'missed'}**.",
            "",
            "| seed | result |",
            "|---|---|",
            *(f"| {run['seed']} | {run['summary']} |" for run in runs),
            "",
        ]
    return lines


# Section 8: bench/landing.py; `--only landing` measures it again.
LANDING_GOAL_MIB = 20.0


def landing() -> dict:
    started = time.monotonic()
    figures = figure("landing.py")
    figures["meta"] = {
        "machine": machine(),
        "versions": versions(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": time.monotonic() - started,
    }
    return figures


def landing_section(f: dict) -> list[str]:
    t, d, q = f["throughput"], f["day"], f["quota"]
    samples = t["samples"][:: max(1, len(t["samples"]) // 6)]
    waits_after = ", ".join(f"{s:.2f}" for s in q["next_call_after_reset_s"])
    return [
        "## 8. Landing an endpoint in object storage",
        "",
        f"`bench/landing.py` ({f['meta']['measured_at']}): `SfiToObjectStorageOperator` run as a worker runs it "
        "(`execute`, and `execute_complete` after each wait), the sandbox in a child process on loopback, a local "
        f"folder as the store; {f['meta']['versions']}. Measured by `python bench/run.py --only landing`.",
        "",
        f"**Throughput and memory**: `{t['endpoint']}` at {t['per_page']} items a page, {t['pages']} pages "
        f"({t['items']} items; {t['lines']} lines landed, {t['distinct_ids']} distinct ids) in {t['seconds']:.2f} s: "
        f"**{t['pages_per_second']:.0f} pages per second**, publishing included; per page "
        f"{t['ms_per_page_in_calls']:.2f} ms in the API call and {t['ms_per_page_outside_calls']:.2f} ms outside it "
        f"(staging, publishing). Calls per landed item {t['calls_per_item']:.3f} ({t['calls']} calls: one per page, "
        "no retries). This process's RSS:",
        "",
        "| pages landed | RSS |",
        "|---|---|",
        f"| 0 (before) | {t['rss_mib_before']:.1f} MiB |",
        *(f"| {page} | {kib / 1024:.1f} MiB |" for page, kib in samples),
        f"| {t['pages']} (published) | {t['rss_mib_after']:.1f} MiB |",
        "",
        f"Growth from page {t['warmup_page']} (the first sample past 10%) to the end: **{t['growth_mib']:+.2f} MiB** "
        f"({t['growth_mib_from_before']:+.2f} MiB from before the first call, the imports and the connection "
        f"included). Goal under {t['goal_mib']:g} MiB over 1,000 pages: {verdict(t['growth_mib'], t['goal_mib'])}.",
        "",
        f"**A day**: `matches/day/basic` for a day of {d['matches']} matches at 25 a page (PRO), {d['pages']} pages: "
        f"median {d['median_seconds'] * 1000:.0f} ms over {d['runs']} runs ({d['pages_per_second']:.0f} pages per "
        f"second; the sandbox builds the whole day for every page), {d['calls_per_item']:.2f} calls per item; each "
        "run replaced the same object.",
        "",
        f"**The quota**: {q['pages']} pages against {q['limit']} calls per {q['window']:g}-second window: "
        f"{q['calls']} calls, **{q['refused_429']} answered 429** (goal 0: {verdict(q['refused_429'], 0)}), "
        f"{q['waits']} waits in the trigger; the first call after each wait came {waits_after} s after the window "
        f"reset (the one-second grace, and the reset header's whole seconds). Landed in {q['seconds']:.1f} s, "
        f"against {q['least_time_to_land_s']:g} s of windows that had to pass.",
        "",
    ]


def versus_http() -> dict:
    figures = figure("landing_vs_http.py")
    figures["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return figures


def versus_http_section(f: dict) -> list[str]:
    names = ("SfiToObjectStorageOperator", "HttpOperator + pagination_function")
    plain, quota = ({name: f[name][case] for name in names} for case in ("plain", "small_quota"))

    def row(name: str) -> str:
        p, q = plain[name], quota[name]
        return (
            f"| {name} | {p['calls']} | {p['seconds'] * 1000:.0f} ms | {p['peak_alloc_kib']:.0f} KiB "
            f"| {p['xcom_bytes']:,} B | {p['items_landed']} ({p['distinct_ids']} ids) "
            f"| {q['outcome']}: {q['calls']} calls, {q['calls_429']} answered 429, {q['items_landed']} items landed |"
        )

    return [
        "## 9. The same day landed with providers-http's HttpOperator",
        "",
        f"`bench/landing_vs_http.py` ({f['measured_at']}): `matches/day/basic` for a day of "
        f"{f['extra_matches'] + 3} matches ({f['per_page']} a page on PRO) landed as JSON Lines in a local "
        "folder, by `SfiToObjectStorageOperator`, and by `HttpOperator` with a `pagination_function` whose "
        "`response_filter` gathers the items (the file is then written as the task after it would). Each ran "
        f"once to warm up, then {f['rounds']} times: the median time, the largest peak of memory allocated "
        "while landing (tracemalloc), and the XCom each returns. Then once against a quota of 6 calls per "
        "3-second window, smaller than the day. Measured by `python bench/run.py --only versus_http` "
        "(in `.venv-bench`, which has providers-http).",
        "",
        "| contender | calls | median time | peak allocated | XCom | landed | quota of 6 calls per 3 s |",
        "|---|---|---|---|---|---|---|",
        *(row(name) for name in names),
        "",
        "What `HttpOperator` loses here: every page held in memory and returned to XCom (the day's data in the "
        "metadata database), a 429 that fails the task instead of waiting for the reset, and the envelope's "
        "errors under HTTP 200 and its pagination, which the user's callables must read themselves.",
        "",
    ]


def write(data: dict) -> None:
    lines = render(data)
    (REPO / "docs").mkdir(exist_ok=True)
    (REPO / "docs" / "benchmarks.md").write_text("\n".join(lines))
    print("\n".join(lines))
    (REPO / "docs" / "benchmarks.json").write_text(json.dumps(data, indent=2, default=str))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--only",
        choices=[
            "imports",
            "calls",
            "suite",
            "random_order",
            "feed",
            "feed_cpu",
            "feed_scale",
            "production",
            "landing",
            "versus_http",
        ],
        help="measure one section again and merge it into docs/benchmarks.json, keeping the others' figures",
    )
    parser.add_argument("--render", action="store_true", help="only write docs/benchmarks.md from the JSON")
    args = parser.parse_args(argv)
    if args.render:
        write(json.loads((REPO / "docs" / "benchmarks.json").read_text()))
        return
    if args.only:
        measure = {
            "imports": lambda: figure("import_cost.py", "12"),
            "calls": call_overhead,
            "suite": suites,
            "random_order": random_order,
            "feed": feed,
            "feed_cpu": feed_cpu,
            "feed_scale": feed_scale,
            "production": production,
            "landing": landing,
            "versus_http": versus_http,
        }
        figures = measure[args.only]()
        # Read after measuring: another section measured meanwhile keeps its figures.
        data = json.loads((REPO / "docs" / "benchmarks.json").read_text())
        data.setdefault("meta", meta_from_markdown())
        if args.only == "random_order":  # part of section 5
            data["suite"]["random_order"] = figures
        else:
            data[args.only] = figures
        write(data)
        return
    data = {
        "meta": {"machine": machine(), "versions": versions()},
        "imports": figure("import_cost.py", "12"),
        "calls": call_overhead(),
        "calls_per_token": figure("calls_per_token.py", "20"),
        "worker": figure("worker_time.py", "12"),
        "suite": suites(),
        "feed": feed(),
        "feed_cpu": feed_cpu(),
        "landing": landing(),
        "versus_http": versus_http(),
    }
    write(data)


if __name__ == "__main__":
    main()
