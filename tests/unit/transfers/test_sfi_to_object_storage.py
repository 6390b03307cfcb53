"""SfiToObjectStorageOperator against the sandbox API, without a metadata DB: a task's run driven by hand."""

from __future__ import annotations

import calendar
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import Asset, ObjectStoragePath

from airflow_sfi.exceptions import SfiConfigError, SfiError, SfiRateLimitError, SfiResponseError
from airflow_sfi.sandbox import SandboxServer
from airflow_sfi.transfers import sfi_to_object_storage as module
from airflow_sfi.transfers.sfi_to_object_storage import SfiToObjectStorageOperator
from tests.helpers import FixedClock, fail_request

DAY = "20250301"
NOW = float(calendar.timegm((2025, 3, 2, 12, 0, 0)))  # the day after DAY: its matches have all ended
ENDPOINT = "matches/day/basic"


def _takes_urls() -> bool:
    try:
        ObjectStoragePath("file:///data/m.jsonl")
    except TypeError:
        return False
    return True


# Airflow 3.0's ObjectStoragePath refuses every URL under universal-pathlib 0.3, which 3.0 allows (its
# lock, constraints/airflow-3.0.txt, has 0.3.10): only plain local paths work there.
takes_urls = pytest.mark.skipif(
    not _takes_urls(), reason="this Airflow's ObjectStoragePath refuses URLs under the installed universal-pathlib"
)


@pytest.fixture
def start(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., SandboxServer]]:
    """Start a sandbox (DAY's matches, a clock standing at NOW) with ``sfi_default`` pointing at it."""
    servers: list[SandboxServer] = []

    def start(key: str = "sandbox-key-pro", auth_type: str = "direct", **options: Any) -> SandboxServer:
        options = {"match_day": DAY, "clock": FixedClock(NOW), **options}
        api = SandboxServer(**options).start()
        servers.append(api)
        monkeypatch.setenv("AIRFLOW_CONN_SFI_DEFAULT", api.connection(key, auth_type))
        return api

    yield start
    for api in servers:
        api.stop()


def context(run_id: str = "scheduled__2025-03-02") -> Any:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    ti = SimpleNamespace(dag_id="sfi_daily_matches", task_id="land", run_id=run_id, map_index=-1)
    return {"ti": ti, "outlet_events": OutletEventAccessors()}


def operator(destination: Any, **kwargs: Any) -> SfiToObjectStorageOperator:
    kwargs.setdefault("endpoint", ENDPOINT)
    kwargs.setdefault("api_params", {"d": DAY})
    return SfiToObjectStorageOperator(task_id="land", destination=destination, **kwargs)


def land(
    op: SfiToObjectStorageOperator, ctx: Any = None, clock: FixedClock | None = None
) -> tuple[dict[str, Any], list[TaskDeferred]]:
    """Run the task as Airflow would, each wait passed at once by moving the sandbox's ``clock``."""
    ctx = ctx or context()
    deferrals: list[TaskDeferred] = []
    while True:
        try:
            # Resumed as dag.test() resumes it: with the trigger's event, without the deferral's kwargs.
            result = op.execute_complete(ctx, event=None) if deferrals else op.execute(ctx)
            return result, deferrals
        except TaskDeferred as deferred:
            deferrals.append(deferred)
            assert clock is not None, "the task deferred"
            clock.now += (deferred.trigger.moment - pendulum.now("UTC")).total_seconds()


class Log:
    """Stands in for an operator's logger, keeping each message as it would be printed."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        return lambda message, *args, **_: self.lines.append(f"{level.upper()} {message % args}")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def logged(monkeypatch: pytest.MonkeyPatch) -> Log:
    """The operators' log, kept (Airflow's logger property differs between releases: replaced whole)."""
    log = Log()
    monkeypatch.setattr(SfiToObjectStorageOperator, "log", property(lambda self: log))
    return log


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def ids(data: bytes) -> list[str]:
    return [json.loads(line)["id"] for line in data.decode().splitlines()]


# Landing


def test_lands_every_page_as_json_lines_one_page_in_memory_at_a_time(
    start: Callable[..., SandboxServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = start(extra_matches=22, per_page=5)  # 25 matches: 5 pages
    written: list[int] = []
    write_part = module._Store.write_part
    monkeypatch.setattr(
        module._Store,
        "write_part",
        lambda self, page, items: written.append(len(items)) or write_part(self, page, items),
    )
    destination = f"file://{tmp_path}/matches/{DAY}.jsonl"
    ctx = context()
    op = operator(destination)
    result, deferrals = land(op, ctx)
    assert result == {"path": destination, "items": 25, "pages": 5}
    assert deferrals == []
    assert written == [5, 5, 5, 5, 5]
    assert [c.path for c in api.calls()] == ["/v1/matches/day/basic/"] * 5
    # No staging, no temporary object: only the object, each match once, as the API pages them.
    landed = files(tmp_path)
    assert list(landed) == [f"matches/{DAY}.jsonl"]
    from airflow_sfi.hooks.sfi import SfiHook

    expected = [m["id"] for m in SfiHook().paginate(ENDPOINT, d=DAY)]
    assert ids(landed[f"matches/{DAY}.jsonl"]) == expected and len(set(expected)) == 25
    # The default outlet: the destination's folder, the partition under it in the event's extra.
    (outlet,) = op.outlets
    assert outlet == Asset(uri=f"file://{tmp_path}/matches")
    assert dict(ctx["outlet_events"][outlet].extra) == {
        "path": destination,
        "partition": f"{DAY}.jsonl",
        "endpoint": ENDPOINT,
        "params": {"d": DAY},
        "items": 25,
        "pages": 5,
    }


def test_execute_needs_no_task_instance(start: Callable[..., SandboxServer], tmp_path: Path) -> None:
    """A script or a test may call execute() with an empty context: no outlet events then."""
    start()
    result = operator(f"{tmp_path}/{DAY}.jsonl").execute(context={})  # type: ignore[arg-type]
    assert result["items"] == 3 and list(files(tmp_path)) == [f"{DAY}.jsonl"]


def test_a_rerun_replaces_the_object(start: Callable[..., SandboxServer], tmp_path: Path) -> None:
    start(extra_matches=7, per_page=5)
    target = tmp_path / f"{DAY}.jsonl"
    target.write_text('{"id": "from an older run"}\n')
    land(operator(str(target)), context("run_1"))
    first = target.read_bytes()
    assert len(ids(first)) == 10
    land(operator(str(target)), context("run_2"))
    assert target.read_bytes() == first
    assert list(files(tmp_path)) == [f"{DAY}.jsonl"]


def test_a_malformed_page_fails_naming_it_and_keeps_the_previous_object(
    start: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    api = start(extra_matches=22, per_page=5)
    target = tmp_path / f"{DAY}.jsonl"
    land(operator(str(target)), context("run_1"))
    before = files(tmp_path)
    fail_request(api, 3)
    with pytest.raises(SfiResponseError, match=r"matches/day/basic page 3 of 5: .*not JSON"):
        land(operator(str(target)), context("run_2"))
    assert files(tmp_path) == before  # the previous object, and neither staging nor temporary object


def test_a_day_without_matches_lands_an_empty_object(start: Callable[..., SandboxServer], tmp_path: Path) -> None:
    start(match_day="20250302")
    result, _ = land(operator(f"{tmp_path}/{DAY}.jsonl"))
    assert result == {"path": f"file://{tmp_path}/{DAY}.jsonl", "items": 0, "pages": 1}
    assert (tmp_path / f"{DAY}.jsonl").read_bytes() == b""


def test_an_endpoint_without_pages_is_one_call(start: Callable[..., SandboxServer], tmp_path: Path) -> None:
    from airflow_sfi.sandbox import default_matches

    api = start()
    match_id = default_matches()[0].match_id
    result, _ = land(operator(f"{tmp_path}/m.jsonl", endpoint="matches/view/basic", api_params={"i": match_id}))
    assert result["items"] == 1 and result["pages"] == 1
    (call,) = api.calls()
    assert "p" not in call.path
    assert ids((tmp_path / "m.jsonl").read_bytes()) == [match_id]


# Checks before any call


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"endpoint": "matches/day/basics"},
            "no documented endpoint 'matches/day/basics'; did you mean 'matches/day/basic'",
        ),
        ({"api_params": {"d": "2025-03-01"}}, "parameter 'd': a day must be a date or a 'YYYYMMDD' string"),
        ({"api_params": {"d": "20250230"}}, "day '20250230' is not a real date"),
        ({"api_params": {}}, "matches/day/basic needs d"),
        ({"api_params": {"d": DAY, "x": "1"}}, "takes no parameter 'x'"),
        ({"api_params": {"d": DAY, "p": 2}}, "must not set p: the operator asks for every page itself"),
        ({"endpoint": "matches/view/basic", "api_params": {"i": " "}}, "parameter 'i' is empty"),
        ({"api_params": {"d": "{{ ds_nodash }}", "x": "1"}}, "takes no parameter 'x'"),
        ({"destination": "data/m.jsonl"}, "neither a URL .* nor an absolute path"),
        ({"destination": "file:///data/"}, "names a folder"),
        ({"destination": 42}, "destination must be a URL, a path or an ObjectStoragePath, got int"),
    ],
)
def test_bad_arguments_fail_at_dag_parse(kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("destination", "file:///data/m.jsonl")
    with pytest.raises(SfiConfigError, match=f"^land: .*{message}"):
        operator(**kwargs)


def test_templated_arguments_are_checked_once_rendered_before_any_call(
    start: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    api = start()
    destination = str(tmp_path / "{{ ds_nodash }}.jsonl")
    op = operator(destination, endpoint="{{ params.endpoint }}", api_params={"d": "{{ ds }}"})
    rendering = {"ds": "2025-03-01", "ds_nodash": DAY, "params": {"endpoint": ENDPOINT}}
    op.render_template_fields(rendering)  # type: ignore[arg-type]
    assert op.destination == f"{tmp_path}/{DAY}.jsonl"
    with pytest.raises(SfiConfigError, match=r"^land: matches/day/basic: parameter 'd'"):
        op.execute(context())
    op.endpoint = "matches/days/basic"
    with pytest.raises(SfiConfigError, match="did you mean 'matches/day/basic'"):
        op.execute(context())
    assert api.calls() == []


def test_an_endpoint_the_plan_lacks_fails_naming_the_plans(start: Callable[..., SandboxServer], tmp_path: Path) -> None:
    api = start(key="sandbox-key-basic")
    with pytest.raises(SfiConfigError, match=r"matches/day/basic is not in the plan .* it needs PRO or ULTRA or MEGA"):
        land(operator(f"{tmp_path}/m.jsonl"))
    assert [c.status for c in api.calls()] == [401]
    assert files(tmp_path) == {}


def test_an_endpoint_the_auth_mode_lacks_fails_without_a_call(
    start: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    api = start(auth_type="rapidapi")
    with pytest.raises(SfiConfigError, match="token/status is offered by the direct API only"):
        land(operator(f"{tmp_path}/m.jsonl", endpoint="token/status", api_params={}))
    assert api.calls() == []


# The rate limit


def test_pages_beyond_the_window_wait_for_the_reset_without_a_refused_call(
    start: Callable[..., SandboxServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FixedClock(NOW)
    api = start(extra_matches=22, per_page=5, rate_limit=2, rate_window=60, clock=clock)
    op = operator(f"{tmp_path}/m.jsonl")
    log = logged(monkeypatch)
    result, deferrals = land(op, clock=clock)
    assert result["items"] == 25 and result["pages"] == 5
    assert [c.status for c in api.calls()] == [200] * 5
    assert len(deferrals) == 2
    for deferred in deferrals:
        assert isinstance(deferred.trigger, DateTimeTrigger) and deferred.method_name == "execute_complete"
        # Until the window's reset (60 s on), and a second more.
        waited = (deferred.trigger.moment - pendulum.now("UTC")).total_seconds()
        assert 59 < waited <= 61.5
    assert [d.kwargs["page"] for d in deferrals] == [3, 5]
    assert "INFO matches/day/basic: 25 items in 5 pages: 4 more calls are needed and 1 of 2 are left" in log.text
    assert "the job will wait for the reset (2 more windows), without a worker" in log.text
    assert "INFO Rate limit: 0 of 2 calls left; pausing before page 3 of 5" in log.text
    assert "Landed 25 items of matches/day/basic (5 pages, 5 calls, 2 waits for the rate limit)" in log.text


def test_the_plan_is_logged_when_the_pages_fit(
    start: Callable[..., SandboxServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start(extra_matches=22, per_page=5)
    op = operator(f"{tmp_path}/m.jsonl")
    log = logged(monkeypatch)
    land(op)
    assert "INFO matches/day/basic: 25 items in 5 pages: the 4 more calls fit in the 999 of 1000 left" in log.text


@pytest.mark.parametrize("retry_after", [False, True])
def test_a_429_waits_for_the_reset_and_resumes_at_the_same_page(
    start: Callable[..., SandboxServer], tmp_path: Path, retry_after: bool
) -> None:
    clock = FixedClock(NOW)
    api = start(extra_matches=22, per_page=5, clock=clock, retry_after=retry_after)
    fail_request(api, 2, "rate_limit")  # page 2 refused, as if the window were used up (3600 s left)
    result, (deferred,) = land(operator(f"{tmp_path}/m.jsonl"), clock=clock)
    assert 3599 < (deferred.trigger.moment - pendulum.now("UTC")).total_seconds() <= 3601.5
    assert deferred.kwargs["page"] == 2
    assert [c.status for c in api.calls()] == [200, 429, 200, 200, 200, 200]
    assert result["items"] == 25


def test_429s_that_go_on_after_the_resets_fail(start: Callable[..., SandboxServer], tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    api = start(clock=clock)
    api.inject("rate_limit", module.MAX_REFUSALS + 1)
    with pytest.raises(SfiRateLimitError, match="page 1 refused with 429 after 3 waits for the reset"):
        land(operator(f"{tmp_path}/m.jsonl"), clock=clock)
    assert [c.status for c in api.calls()] == [429] * 4
    assert files(tmp_path) == {}


def test_a_429_that_says_nothing_of_when_waits_a_minute() -> None:
    op = operator("file:///data/m.jsonl")
    moment = op._refused(SfiRateLimitError("429"), module._Progress())
    assert 60.5 < (moment - pendulum.now("UTC")).total_seconds() <= 61


def test_a_resumed_task_fails_when_its_staging_is_gone(start: Callable[..., SandboxServer], tmp_path: Path) -> None:
    start(extra_matches=22, per_page=5, rate_limit=2, rate_window=60)
    op, ctx = operator(f"{tmp_path}/m.jsonl"), context()
    with pytest.raises(TaskDeferred):
        op.execute(ctx)
    (staging,) = (tmp_path / module.STAGING).iterdir()
    assert sorted(p.name for p in next(staging.iterdir()).iterdir()) == [
        "part-000001.jsonl",
        "part-000002.jsonl",
        "progress.json",
    ]
    (next(staging.iterdir()) / "part-000002.jsonl").unlink()
    with pytest.raises(SfiError, match="the pages staged before the wait are gone"):
        op.execute_complete(ctx, event=None)


# Object stores


@pytest.fixture
def memory_store() -> Iterator[Any]:
    """An fsspec in-memory file system as the ``memory://`` store: not local, commits only when asked."""
    from airflow.sdk.io import attach
    from airflow.sdk.io.store import _STORE_CACHE
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem()
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]
    attach("memory", fs=fs)
    yield fs
    _STORE_CACHE.pop("memory", None)
    fs.store.clear()


@takes_urls
def test_an_object_store_gets_one_write_and_keeps_the_object_when_a_job_fails(
    start: Callable[..., SandboxServer], memory_store: Any
) -> None:
    api = start(extra_matches=22, per_page=5)
    destination = ObjectStoragePath("memory://bucket/sfi/m.jsonl")
    result, _ = land(operator(destination), context("run_1"))
    assert result["path"] == str(destination)  # memory://bucket/sfi/m.jsonl (memory:///bucket/... on 3.1)
    assert sorted(memory_store.store) == ["/bucket/sfi/m.jsonl"]
    landed = memory_store.cat_file("/bucket/sfi/m.jsonl")
    assert len(ids(landed)) == 25
    fail_request(api, 4)
    with pytest.raises(SfiResponseError, match="page 4 of 5"):
        land(operator(destination), context("run_2"))
    assert sorted(memory_store.store) == ["/bucket/sfi/m.jsonl"]
    assert memory_store.cat_file("/bucket/sfi/m.jsonl") == landed


def test_a_templated_object_storage_path_is_rendered(tmp_path: Path) -> None:
    op = operator(ObjectStoragePath(f"{tmp_path}/{{{{ ds_nodash }}}}.jsonl"))
    assert op.outlets == [Asset(uri=f"file://{tmp_path}")]
    op.render_template_fields({"ds_nodash": DAY})  # type: ignore[arg-type]
    assert op.destination == ObjectStoragePath(f"{tmp_path}/{DAY}.jsonl")


# Outlets and lineage


@pytest.mark.parametrize(
    ("destination", "base"),
    [
        ("file:///data/sfi/{{ ds_nodash }}.jsonl", "file:///data/sfi"),
        ("/data/sfi/d={{ ds }}/matches.jsonl", "file:///data/sfi"),
        ("s3://my_aws@bucket/sfi/{{ ds_nodash }}.jsonl", "s3://bucket/sfi"),
        ("{{ params.landing }}/m.jsonl", None),
        ("file:///{{ params.landing }}.jsonl", None),
    ],
)
def test_the_default_outlet_is_the_destinations_literal_folder(destination: Any, base: str | None) -> None:
    op = operator(destination)
    assert op.outlets == ([Asset(uri=base)] if base else [])


def test_given_outlets_are_kept_and_get_the_partition(start: Callable[..., SandboxServer], tmp_path: Path) -> None:
    start()
    days = Asset("sfi_days")
    ctx = context()
    op = operator(f"{tmp_path}/{DAY}.jsonl", outlets=[days])
    assert op.outlets == [days]
    land(op, ctx)
    extra = ctx["outlet_events"][days].extra
    assert (extra["path"], extra["partition"], extra["items"]) == (f"file://{tmp_path}/{DAY}.jsonl", f"{DAY}.jsonl", 3)


def test_lineage_names_the_endpoint_read_and_the_object_written(
    start: Callable[..., SandboxServer], tmp_path: Path, memory_store: Any
) -> None:
    api = start()
    op = operator(f"{tmp_path}/{DAY}.jsonl")
    land(op)
    assert op._lineage() == {
        "input_namespace": api.url,
        "input_name": "/v1/matches/day/basic/",
        "output_namespace": "file",
        "output_name": f"{tmp_path}/{DAY}.jsonl",
    }
    if _takes_urls():  # a remote store: its scheme and bucket, and the key
        remote, path = operator("memory://bucket/sfi/m.jsonl"), ObjectStoragePath("memory://bucket/sfi/m.jsonl")
        lineage = remote._lineage()
        # memory://bucket and sfi/m.jsonl (3.1's universal-pathlib 0.2 reads no bucket in a memory URL)
        assert (lineage["output_namespace"], lineage["output_name"]) == (f"memory://{path.bucket}", path.key)


def test_openlineage_facets_on_complete(start: Callable[..., SandboxServer], tmp_path: Path) -> None:
    pytest.importorskip(
        "airflow.providers.openlineage.extractors",
        reason="apache-airflow-providers-openlineage is not installed: the facets have no OperatorLineage to fill",
    )
    api = start()
    op = operator(f"{tmp_path}/{DAY}.jsonl")
    land(op)
    lineage = op.get_openlineage_facets_on_complete(None)
    (source,) = lineage.inputs
    (written,) = lineage.outputs
    assert (source.namespace, source.name) == (api.url, "/v1/matches/day/basic/")
    assert (written.namespace, written.name) == ("file", f"{tmp_path}/{DAY}.jsonl")
