"""The documentation holds together: links resolve, the README stays short, its DAGs are the example DAGs."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = sorted([README, *(REPO / "docs").glob("*.md")])
README_MAX_LINES = 200

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_CODE_SPAN = re.compile(r"`+[^`]*`+")
_EXAMPLE_HEADER = re.compile(r"^# (example_dags/[\w./-]+\.py)\s*$")


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) for every line outside fenced code blocks."""
    lines, in_code = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            in_code = not in_code
            continue
        if not in_code:
            lines.append((number, line))
    return lines


def _code_blocks(text: str) -> list[list[str]]:
    """The lines of every fenced code block, fences excluded."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if _FENCE.match(line):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lowercased, punctuation but ``-`` and ``_`` dropped."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps letters, digits and _
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link that is not to another site."""
    links = []
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        for match in _LINK.finditer(_CODE_SPAN.sub("", line)):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
                continue  # https:, mailto:, ...
            links.append((number, target))
    return links


def test_slug_follows_github() -> None:
    assert slug("5. Suite cost") == "5-suite-cost"
    assert slug("7. Production: PostgreSQL, Celery, two triggerers, under chaos") == (
        "7-production-postgresql-celery-two-triggerers-under-chaos"
    )
    assert slug("Live events: a DAG run per goal") == "live-events-a-dag-run-per-goal"
    assert slug("`SfiWsTokenOperator`") == "sfiwstokenoperator"
    assert slug("What differs, and why") == "what-differs-and-why"
    assert slug("token_store and dag.test()") == "token_store-and-dagtest"


def test_the_pages_exist() -> None:
    names = {path.name for path in DOCS}
    for page in (
        "connection.md",
        "rotation.md",
        "live-feed.md",
        "sandbox.md",
        "compatibility.md",
        "production.md",
        "secrets.md",
        "failure-modes.md",
        "benchmarks.md",
    ):
        assert page in names


@pytest.mark.parametrize("page", DOCS, ids=lambda path: str(path.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for number, target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / unquote(file_part)).resolve() if file_part else page
        where = f"{page.relative_to(REPO)}:{number}: {target}"
        if not destination.exists():
            broken.append(f"{where}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{where}: no heading with that anchor")
    assert not broken, "\n".join(broken)


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines, at most {README_MAX_LINES}"


def test_readme_example_dags_are_the_files() -> None:
    copies = []
    for block in _code_blocks(README.read_text(encoding="utf-8")):
        match = _EXAMPLE_HEADER.match(block[0]) if block else None
        if match:
            copies.append((match.group(1), block[1:]))
    assert copies, "README.md copies no example DAG"
    for name, shown in copies:
        source = REPO / name
        assert source.is_file(), f"README.md shows {name}, which does not exist"
        expected = [line.rstrip() for line in source.read_text(encoding="utf-8").strip("\n").splitlines()]
        got = [line.rstrip() for line in "\n".join(shown).strip("\n").splitlines()]
        assert got == expected, f"README.md's copy of {name} differs from the file: copy it again"


_TREE_ENTRY = re.compile(r"^((?:│   |    )*)[├└]── (\S+)")


def _drawn_modules() -> set[str]:
    """The modules the README's Development tree draws, as paths under airflow_sfi/."""
    block = next(b for b in _code_blocks(README.read_text()) if b and b[0].strip() == "airflow_sfi/")
    drawn: set[str] = set()
    parents: list[str] = []
    for line in block[1:]:
        match = _TREE_ENTRY.match(line)
        if not match:
            continue
        depth, name = len(match.group(1)) // 4, match.group(2)
        parents = parents[:depth]
        if name.endswith("/"):
            parents.append(name.rstrip("/"))
            if name == "sandbox/":  # drawn on one line: "sandbox/  ...: rest.py, live.py, ..."
                drawn.update(f"sandbox/{m}" for m in re.findall(r"(\w+\.py)", line))
        else:
            drawn.add("/".join([*parents, name]))
    return drawn


def _modules() -> set[str]:
    package = REPO / "airflow_sfi"
    return {
        p.relative_to(package).as_posix()
        for p in package.rglob("*.py")
        if p.name != "__init__.py" or p.parent == package
        if not (p.parent.name == "sandbox" and p.name in ("__init__.py", "__main__.py"))
    }


def test_the_readme_draws_every_module_and_no_other() -> None:
    assert _drawn_modules() == _modules()


def test_unit_tests_mirror_the_package_one_to_one() -> None:
    expected = {
        str(Path(m).with_name(f"test_{Path(m).stem.strip('_')}.py"))
        for m in _modules() | {"sandbox/__main__.py"}
        if m != "__init__.py"
    }
    found = {p.relative_to(REPO / "tests" / "unit").as_posix() for p in (REPO / "tests" / "unit").rglob("test_*.py")}
    assert expected - found == set(), "modules without a test module"
    assert found - expected == set(), "test modules without a module"
