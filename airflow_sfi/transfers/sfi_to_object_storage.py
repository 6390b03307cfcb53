"""
SfiToObjectStorageOperator: land a REST endpoint's items in object storage as one JSON Lines object, page by
page, atomically, waiting out the rate limit without a worker.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import posixpath
import shutil
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import pendulum
from airflow.providers.common.compat.sdk import BaseOperator

from airflow_sfi import defaults
from airflow_sfi.arguments import is_template
from airflow_sfi.exceptions import SfiAuthError, SfiConfigError, SfiError, SfiRateLimitError, SfiResponseError
from airflow_sfi.protocol import endpoints

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context, ObjectStoragePath

    from airflow_sfi.hooks.sfi import SfiHook
    from airflow_sfi.protocol.endpoints import Endpoint
    from airflow_sfi.protocol.envelope import Envelope

STAGING = ".sfi-staging"
"""The hidden folder, next to the destination, that holds a job's pages until they are published."""
UNKNOWN_RESET_WAIT = datetime.timedelta(seconds=60)
"""The wait after a 429 that says neither ``Retry-After`` nor when the window resets (RapidAPI's window)."""
MAX_REFUSALS = 3
"""429s in a row at one page, each followed by a wait, before the task fails."""
WRITE_BLOCK = 5 * 1024 * 1024
"""The write buffer of a remote object: S3's smallest multipart part."""
_PROBES: Mapping[str, str] = {"d": "20000101", "w": "all", "f": "json"}
"""Valid stand-ins for templated parameters, so the rest of a call is checked at DAG parse."""


class SfiToObjectStorageOperator(BaseOperator):
    """
    Land every item of a REST endpoint in one object, as JSON Lines (one item per line), and return where.

    ``SfiToObjectStorageOperator(task_id="land", endpoint="matches/day/basic", api_params={"d": "{{ ds_nodash }}"},
    destination="file:///data/sfi/matches/{{ ds_nodash }}.jsonl")``.

    **Checked before any call**: the endpoint and its parameters against the documented endpoints (at DAG
    parse where they are literal, once rendered otherwise), and the auth mode. A plan that lacks the endpoint
    shows only in the API's answer (401, code 4): the task then fails with an
    :class:`~airflow_sfi.exceptions.SfiConfigError` naming the plans that have it.

    **Atomic**: each page is written to a part in a hidden staging folder next to the destination
    (``.sfi-staging/<name>/<run>/``), as it comes; at the end the parts are streamed into the destination in
    one write (a temporary file renamed onto it on a local file system; one object upload, visible only once
    complete, on an object store), and the staging is deleted. No half-written object is ever visible, a rerun
    replaces the object, and a job that fails (a malformed page: :class:`~airflow_sfi.exceptions.SfiResponseError`)
    leaves the previous object as it was. Memory holds one page at a time.

    **Quota-aware**: page 1 tells how many pages there are, and the rate-limit headers how many calls are
    left: the task logs at INFO whether they fit. When the window is used up (``remaining`` 0), or a 429
    comes, the task defers until the window resets, in the triggerer (``DateTimeTrigger``), and resumes at the
    next page from its staging: no call is made into a closed window, no retry is spent on one.

    **Returns** (XCom) ``{"path": str, "items": int, "pages": int}``, never the data. Each
    :class:`~airflow.sdk.Asset` outlet gets an asset event whose ``extra`` names the partition: ``path``,
    ``partition`` (the path under the destination's untemplated folder), ``endpoint``, ``params``, ``items``,
    ``pages``. Without ``outlets``, the operator declares one: an ``Asset`` for the destination's folder, when
    that part of the destination is not templated.

    :param endpoint: the endpoint, e.g. ``matches/day/basic`` (templated).
    :param api_params: its parameters by the vendor's names, e.g. ``{"d": "{{ ds_nodash }}"}`` (templated);
        not ``p``: the operator pages itself. (Not ``params``: Airflow's operators already take that name.)
    :param destination: the object to write (templated): a URL such as ``file:///data/m.jsonl`` or
        ``s3://my_aws_conn@bucket/m.jsonl`` (the connection before the ``@``), an absolute local path, or an
        :class:`~airflow.sdk.ObjectStoragePath`. The bucket must exist.
    :param dest_conn_id: the connection of the destination's store, when not in the URL (templated).
    :param sfi_conn_id: the Airflow connection of the API (templated).
    """

    template_fields: Sequence[str] = ("endpoint", "api_params", "destination", "dest_conn_id", "sfi_conn_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"api_params": "json"}
    ui_color = "#e8f4ea"
    reset_grace: ClassVar[datetime.timedelta] = datetime.timedelta(seconds=1)
    """Resume this long after the rate limit's reset, so the new window has surely begun on the API's side."""

    def __init__(
        self,
        *,
        endpoint: str,
        destination: str | ObjectStoragePath,
        api_params: Mapping[str, Any] | Any = None,
        dest_conn_id: str | None = None,
        sfi_conn_id: str = defaults.CONN_ID,
        **kwargs: Any,
    ) -> None:
        base = _literal_base(destination)
        if "outlets" not in kwargs and base is not None:
            outlet = _asset(base)
            if outlet is not None:
                kwargs["outlets"] = [outlet]
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.api_params = dict(api_params) if isinstance(api_params, Mapping) else api_params or {}
        self.destination = destination
        self.dest_conn_id = dest_conn_id
        self.sfi_conn_id = sfi_conn_id
        self._base = base
        self._landed: dict[str, Any] | None = None
        problem = _parse_problem(endpoint, self.api_params, destination)
        if problem:
            raise SfiConfigError(f"{self.task_id}: {problem}", problem=problem)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        from airflow.sdk import ObjectStoragePath

        # Jinja renders strings: a path given as an ObjectStoragePath is rendered through its URL.
        if isinstance(self.destination, ObjectStoragePath) and is_template(str(self.destination)):
            path = self.destination
            rendered = self.render_template(str(path), context, jinja_env)
            self.destination = ObjectStoragePath(rendered, conn_id=path.conn_id, **path.storage_options)

    def execute(self, context: Context) -> dict[str, Any]:
        return self._land(context, None)

    def execute_complete(self, context: Context, event: Any = None, **progress: Any) -> dict[str, Any]:
        """
        Resume after a wait for the rate limit's reset, at the page where the job stopped.

        Where it stopped is read from the staging, where the job wrote it before deferring: ``progress``
        (the deferral's kwargs) only stands in when that record is missing. Airflow's ``dag.test()`` (3.0 to
        3.3) resumes with the trigger's event alone, without the deferral's kwargs.
        """
        return self._land(context, _Progress(**progress) if progress else None, resuming=True)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """
        OpenLineage: the endpoint read (namespace: the API's scheme and host) and the object written
        (``file`` and its path, or ``s3://bucket`` and its key).
        """
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage  # type: ignore[import-not-found, unused-ignore]

        landed = self._landed or self._lineage()
        return OperatorLineage(
            inputs=[Dataset(namespace=landed["input_namespace"], name=landed["input_name"])],
            outputs=[Dataset(namespace=landed["output_namespace"], name=landed["output_name"])],
        )

    def _land(self, context: Context, given: _Progress | None, *, resuming: bool = False) -> dict[str, Any]:
        from airflow_sfi.hooks.sfi import SfiHook

        endpoint, query = self._checked()
        target = self._target()
        hook = SfiHook(self.sfi_conn_id)
        endpoint.check_mode(hook.config.auth_type)  # reads the connection; no call
        store = _Store(target, _run_key(context))
        resume_at = None
        try:
            if resuming:
                progress = store.load_progress() or given
                if progress is None or (progress.page > 1 and not store.has_part(progress.page - 1)):
                    raise SfiError(
                        f"{self.task_id}: the pages staged before the wait are gone from {store.staging}; "
                        f"clear the task to land {endpoint.name} again"
                    )
            else:
                progress = _Progress()
                store.discard()  # a previous try's pages: this one starts over
            resume_at = self._fetch(hook, endpoint, query, store, progress)
            if resume_at is None:
                store.publish(progress.page)
            else:
                progress.waits += 1
                store.save_progress(progress)
        except Exception:
            store.discard()
            raise
        if resume_at is not None:
            self._wait(resume_at, progress)
        self.log.info(
            "Landed %d items of %s (%d pages, %d calls, %d waits for the rate limit) in %s",
            progress.items,
            endpoint.name,
            progress.page,
            progress.calls,
            progress.waits,
            target,
        )
        self._landed = self._lineage(hook, target)
        self._record_outlets(context, target, query, progress)
        path = _plain_uri(target) if _is_local(target) else str(target)  # a remote one keeps its connection
        return {"path": path, "items": progress.items, "pages": progress.page}

    def _fetch(
        self, hook: SfiHook, endpoint: Endpoint, query: dict[str, str], store: _Store, progress: _Progress
    ) -> pendulum.DateTime | None:
        """
        Stage pages from ``progress.page`` on: None once the last is staged, else when to resume (the
        window is used up, or the API said 429). ``progress.page`` is then the next page to ask for.
        """
        from airflow_sfi.hooks.sfi import next_page, page_error

        while True:
            page = progress.page
            progress.calls += 1
            try:
                envelope = hook.get(endpoint.name, **query, **({"p": page} if endpoint.paginated else {}))
                following = next_page(endpoint, page, envelope)
            except SfiRateLimitError as exc:
                return self._refused(exc, progress)
            except SfiAuthError as exc:
                if exc.code == 4:
                    problem = (
                        f"{endpoint.name} is not in the plan of connection {self.sfi_conn_id!r}: the API refused "
                        f"it (HTTP {exc.http_status}, code 4); it needs {' or '.join(endpoint.plans)}"
                    )
                    raise SfiConfigError(f"{self.task_id}: {problem}", problem=problem) from None
                raise
            except SfiResponseError as exc:
                raise page_error(endpoint, page, progress.pages, exc) from exc
            progress.refused = 0
            progress.items += store.write_part(page, envelope.result)
            rate = envelope.rate_limit
            if not progress.planned:
                self._log_plan(endpoint, envelope, progress)
            elif envelope.pagination and progress.total is not None and envelope.pagination.items != progress.total:
                self.log.warning(
                    "%s: page %d counts %d items in all, page 1 counted %d: the list changed during the job, "
                    "so items may be missing or repeated at page boundaries",
                    endpoint.name,
                    page,
                    envelope.pagination.items,
                    progress.total,
                )
            del envelope
            if following is None:
                return None
            progress.page = following
            if rate.remaining == 0 and rate.reset_at is not None:
                self.log.info(
                    "Rate limit: 0 of %s calls left; pausing before page %d of %s until the window resets at %s",
                    rate.limit,
                    following,
                    progress.pages or "?",
                    rate.reset_at.isoformat(),
                )
                return max(rate.reset_at, pendulum.now("UTC")) + self.reset_grace

    def _refused(self, exc: SfiRateLimitError, progress: _Progress) -> pendulum.DateTime:
        """A 429 (the hook sleeps out only short ones): when to ask again; fail after :data:`MAX_REFUSALS`."""
        progress.refused += 1
        if progress.refused > MAX_REFUSALS:
            raise SfiRateLimitError(
                f"{self.task_id}: page {progress.page} refused with 429 after {MAX_REFUSALS} waits for the reset: "
                f"{exc}",
                retry_after=exc.retry_after,
                reset_at=exc.reset_at,
                http_status=exc.http_status,
                code=exc.code,
            ) from exc
        now = pendulum.now("UTC")
        reset = exc.reset_at
        if reset is None and exc.retry_after is not None:
            reset = now.add(seconds=exc.retry_after)
        if reset is None or reset <= now:
            reset = now + UNKNOWN_RESET_WAIT
        self.log.warning("%s: page %d waits until %s", exc, progress.page, reset.isoformat())
        return pendulum.instance(reset) + self.reset_grace

    def _wait(self, moment: pendulum.DateTime, progress: _Progress) -> None:
        """Defer until ``moment``: the triggerer waits, no worker does; the task resumes at ``progress.page``."""
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        self.defer(
            trigger=DateTimeTrigger(moment=moment),
            method_name="execute_complete",
            kwargs=dataclasses.asdict(progress),
        )

    def _log_plan(self, endpoint: Endpoint, envelope: Envelope, progress: _Progress) -> None:
        """On page 1: how many pages, and whether the calls they need fit in what the window has left."""
        pagination = envelope.pagination
        progress.planned = True
        progress.pages = pagination.pages if pagination else 1
        progress.total = pagination.items if pagination else len(envelope.result)
        rate = envelope.rate_limit
        needed = max(0, progress.pages - 1)
        what = f"{endpoint.name}: {progress.total} items in {progress.pages} page{'s' if progress.pages != 1 else ''}"
        if rate.remaining is None:
            self.log.info("%s; the API sent no rate limit, so the job cannot plan for it", what)
        elif needed <= rate.remaining:
            self.log.info(
                "%s: the %d more calls fit in the %d of %s left in this window",
                what,
                needed,
                rate.remaining,
                rate.limit,
            )
        else:
            windows = -(-(needed - rate.remaining) // rate.limit) if rate.limit else None
            self.log.info(
                "%s: %d more calls are needed and %d of %s are left until %s: they do not fit, and the job will "
                "wait for the reset%s, without a worker",
                what,
                needed,
                rate.remaining,
                rate.limit,
                rate.reset_at.isoformat() if rate.reset_at else "an unknown time",
                f" ({windows} more window{'s' if windows != 1 else ''})" if windows else "",
            )

    def _checked(self) -> tuple[Endpoint, dict[str, str]]:
        """The rendered endpoint and its query, checked: an :class:`SfiConfigError` before any call."""
        try:
            if not isinstance(self.api_params, Mapping):
                raise SfiConfigError(
                    f"api_params must render to a mapping, got {type(self.api_params).__name__}",
                    problem=f"api_params must render to a mapping, got {type(self.api_params).__name__}",
                )
            endpoint = endpoints.find(self.endpoint)
            if "p" in self.api_params:
                raise _page_param()
            return endpoint, endpoint.query(self.api_params)
        except SfiConfigError as exc:
            raise SfiConfigError(f"{self.task_id}: {exc.problem}", problem=exc.problem) from None

    def _target(self) -> ObjectStoragePath:
        from airflow.sdk import ObjectStoragePath

        destination = self.destination
        if isinstance(destination, ObjectStoragePath):
            if self.dest_conn_id:
                return ObjectStoragePath(str(destination), conn_id=self.dest_conn_id)
            return destination
        problem = _destination_problem(destination)
        if problem:
            raise SfiConfigError(f"{self.task_id}: {problem}", problem=problem)
        url = urllib.parse.urlsplit(_url(destination))
        if url.scheme == "file":
            # A local path goes in without its scheme: Airflow 3.0's ObjectStoragePath refuses any URL under
            # universal-pathlib 0.3, which 3.0 allows.
            return ObjectStoragePath(urllib.parse.unquote(url.path))
        return ObjectStoragePath(url.geturl(), conn_id=self.dest_conn_id or None)

    def _record_outlets(
        self, context: Context, target: ObjectStoragePath, query: Mapping[str, str], progress: _Progress
    ) -> None:
        from airflow.sdk import Asset

        events = context.get("outlet_events")  # absent where a test or a script calls execute() itself
        if events is None:
            return
        uri = _plain_uri(target)
        base = self._base
        partition = uri[len(base) + 1 :] if base and uri.startswith(base + "/") else uri
        for outlet in self.outlets:
            if not isinstance(outlet, Asset):
                continue
            events[outlet].extra.update(
                {
                    "path": uri,
                    "partition": partition,
                    "endpoint": endpoints.find(self.endpoint).name,
                    "params": dict(query),
                    "items": progress.items,
                    "pages": progress.page,
                }
            )

    def _lineage(self, hook: SfiHook | None = None, target: ObjectStoragePath | None = None) -> dict[str, Any]:
        """What OpenLineage reports: the API endpoint read, and the object written."""
        from airflow_sfi.hooks.sfi import SfiHook

        hook = hook or SfiHook(self.sfi_conn_id)
        target = target or self._target()
        url = urllib.parse.urlsplit(hook.config.url(endpoints.find(self.endpoint).path))
        local = _is_local(target)
        return {
            "input_namespace": f"{url.scheme}://{url.netloc}",
            "input_name": url.path,
            "output_namespace": "file" if local else f"{target.protocol}://{target.bucket}",
            "output_name": target.path if local else target.key,
        }


@dataclasses.dataclass
class _Progress:
    """Where a job stands; handed to the resumed task as the deferral's kwargs (so JSON-safe)."""

    page: int = 1  # the page being fetched; once landed, the number of pages
    planned: bool = False  # whether page 1 was fetched and the plan logged
    pages: int | None = None  # how many pages page 1 announced
    total: int | None = None  # how many items page 1 announced
    items: int = 0  # items staged so far
    calls: int = 0  # API calls made so far, 429s included
    waits: int = 0  # waits for the rate limit's reset so far
    refused: int = 0  # 429s in a row at this page


class _Store:
    """
    The destination object and its staging, on any fsspec file system: parts written whole, published at once.

    :param target: the destination object.
    :param run_key: names this task's staging, the same for every resumption of one try.
    """

    def __init__(self, target: ObjectStoragePath, run_key: str) -> None:
        self.fs: Any = target.fs
        self.local = "file" in _protocols(self.fs)
        self.path: str = target.path
        folder, name = posixpath.split(self.path)
        self.folder = folder
        self.staging = posixpath.join(folder, STAGING, name, run_key)
        self.temp = posixpath.join(folder, f".{name}.{run_key}.tmp")

    def part(self, page: int) -> str:
        return posixpath.join(self.staging, f"part-{page:06d}.jsonl")

    def save_progress(self, progress: _Progress) -> None:
        """Record where the job stands, next to its parts, for the task that resumes it."""
        self._write(posixpath.join(self.staging, "progress.json"), json.dumps(dataclasses.asdict(progress)).encode())

    def load_progress(self) -> _Progress | None:
        """Where the job stood when it deferred; None when nothing was recorded."""
        path = posixpath.join(self.staging, "progress.json")
        if not self.local:
            self.fs.invalidate_cache(self.staging)
        if not self.fs.exists(path):
            return None
        return _Progress(**json.loads(self.fs.cat_file(path)))

    def has_part(self, page: int) -> bool:
        if not self.local:
            self.fs.invalidate_cache(self.staging)
        return bool(self.fs.exists(self.part(page)))

    def write_part(self, page: int, items: Iterable[Any]) -> int:
        """Write one page's items as a part, whole or not at all; return how many."""
        lines = [json.dumps(item, ensure_ascii=False, separators=(",", ":")) for item in items]
        self._write(self.part(page), "".join(f"{line}\n" for line in lines).encode())
        return len(lines)

    def _write(self, path: str, data: bytes) -> None:
        """Write ``path`` whole or not at all: renamed into place locally, one PUT on an object store."""
        if self.local:
            os.makedirs(self.staging, exist_ok=True)
            with open(f"{path}.tmp", "wb") as file:
                file.write(data)
            os.replace(f"{path}.tmp", path)
        else:
            self.fs.pipe_file(path, data)

    def publish(self, pages: int) -> None:
        """Stream parts 1 to ``pages`` into the destination in one write, then delete the staging."""
        parts = [self.part(page) for page in range(1, pages + 1)]
        if self.local:
            os.makedirs(self.folder, exist_ok=True)
            with open(self.temp, "wb") as out:
                for part in parts:
                    with open(part, "rb") as file:
                        shutil.copyfileobj(file, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(self.temp, self.path)  # atomic on a POSIX file system
            _sync_folder(self.folder)
        else:
            self._upload(parts)
        self.discard()

    def _upload(self, parts: list[str]) -> None:
        """One object write, committed only once complete (S3: a multipart upload, completed or aborted)."""
        out = self.fs.open(self.path, "wb", autocommit=False, block_size=WRITE_BLOCK)
        try:
            for part in parts:
                with self.fs.open(part, "rb") as file:
                    shutil.copyfileobj(file, out)
            out.close()
        except BaseException:
            out.discard()
            raise
        out.commit()

    def discard(self) -> None:
        """Delete this job's staging and temporary object, if any."""
        if self.local:
            shutil.rmtree(self.staging, ignore_errors=True)
            for folder in (posixpath.dirname(self.staging), posixpath.dirname(posixpath.dirname(self.staging))):
                try:
                    os.rmdir(folder)  # only when empty: other partitions' and runs' staging stay
                except OSError:
                    break
            if os.path.exists(self.temp):
                os.remove(self.temp)
            return
        self.fs.invalidate_cache(self.staging)
        if self.fs.exists(self.staging):
            self.fs.rm(self.staging, recursive=True)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _sync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _run_key(context: Context) -> str:
    """The task instance's run, as a short name: its staging, the same across its deferrals."""
    ti = context.get("ti")  # absent where a test or a script calls execute() itself
    name = "\0".join(str(getattr(ti, field, "")) for field in ("dag_id", "task_id", "run_id", "map_index"))
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def _page_param() -> SfiConfigError:
    problem = "api_params must not set p: the operator asks for every page itself"
    return SfiConfigError(problem, problem=problem)


def _parse_problem(endpoint: object, api_params: object, destination: object) -> str | None:
    """What is wrong with the literal arguments, at DAG parse; templated ones are checked once rendered."""
    try:
        if not is_template(endpoint) and isinstance(api_params, Mapping):
            if not isinstance(endpoint, str):
                return f"endpoint must be a string, got {type(endpoint).__name__}"
            found = endpoints.find(endpoint)
            if "p" in api_params:
                raise _page_param()
            # A templated value is replaced by a valid stand-in, so that names and literal values are checked.
            found.query(
                {
                    name: _PROBES.get(name, "0000000000000000") if is_template(value) else value
                    for name, value in api_params.items()
                }
            )
    except SfiConfigError as exc:
        return exc.problem
    if isinstance(destination, str) and not is_template(destination):
        return _destination_problem(destination)
    if not isinstance(destination, str) and type(destination).__name__ != "ObjectStoragePath":
        return f"destination must be a URL, a path or an ObjectStoragePath, got {type(destination).__name__}"
    return None


def _destination_problem(destination: object) -> str | None:
    if not isinstance(destination, str):
        return f"destination must render to a URL or a path, got {type(destination).__name__}"
    text = destination.strip()
    scheme = urllib.parse.urlsplit(text).scheme if "://" in text else ""
    if not scheme and not text.startswith("/"):
        return f"destination {text[:80]!r} is neither a URL (file://, s3://...) nor an absolute path"
    if text.endswith("/") or not posixpath.basename(text.rstrip("/")):
        return f"destination {text[:80]!r} names a folder: it must name the object to write"
    return None


def _url(destination: str) -> str:
    """A URL for ``destination``: an absolute local path becomes ``file://``."""
    text = destination.strip()
    return text if "://" in text else f"file://{text}"


def _literal_base(destination: object) -> str | None:
    """
    The destination's folder as far as it is not templated, without a connection id (``s3://bucket/prefix``),
    or None: the folder is templated, or the destination is not a URL or a path.
    """
    text = str(destination) if type(destination).__name__ == "ObjectStoragePath" else destination
    if not isinstance(text, str):
        return None
    cut = min((i for i in (text.find(m) for m in ("{{", "{%", "{#")) if i >= 0), default=len(text))
    folder = text[:cut].rpartition("/")[0].strip()
    if not folder or (not folder.startswith("/") and "://" not in folder):
        return None
    parts = urllib.parse.urlsplit(_url(folder))
    netloc = parts.netloc.rpartition("@")[2]
    if not parts.scheme or not (netloc or parts.path.strip("/")):
        return None
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _asset(uri: str) -> Asset | None:
    from airflow.sdk import Asset

    try:
        return Asset(uri=uri)
    except ValueError:  # a scheme whose provider refuses the URI: no default outlet
        return None


def _is_local(target: ObjectStoragePath) -> bool:
    return target.protocol in ("", "file", "local")


def _plain_uri(target: ObjectStoragePath) -> str:
    """``target``'s URL without the connection id."""
    if _is_local(target):
        return f"file://{target.path}"
    return f"{target.protocol}://{target.path}"
