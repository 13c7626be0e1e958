"""Every relative link in the project's markdown files leads somewhere: the file exists and, for `file#anchor`
or `#anchor`, the file has a heading with that GitHub anchor. The README links to the pages beside the code,
so a moved or renamed section must not leave a dead link behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {"node_modules", "__pycache__", "rexbert-demo", "rexbert-output", "runs", "build", "dist",
             "templates"}  # card templates: Jinja sources of generated cards, linking files beside the card
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def markdown_files() -> list[Path]:
    """The repository's markdown files (git's list when this is a checkout, else a walk without work folders)."""
    try:
        command = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "*.md"]
        listed = subprocess.run(command, cwd=ROOT, capture_output=True, check=True, timeout=30).stdout.decode()
        files = [ROOT / name for name in listed.split("\0") if name]
        if files:
            return [f for f in files if f.is_file() and not skipped(f)]
    except (OSError, subprocess.SubprocessError):
        pass
    return [p for p in ROOT.rglob("*.md") if not skipped(p)]


def skipped(path: Path) -> bool:
    return any(part.startswith(".") or part in SKIP_DIRS or part.endswith(".egg-info")
               for part in path.relative_to(ROOT).parts)


def prose_lines(text: str):
    """(line number, line without inline code) for the lines outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, INLINE_CODE.sub("", line)


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped, spaces to `-`."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            slug = github_anchor(match.group(2))
            found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return found


def dead_links(path: Path) -> list[str]:
    dead = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto: ...
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(ROOT)}:{number}: {target}"
            if not linked.exists():
                dead.append(f"{where} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor.lower() not in anchors(linked):
                dead.append(f"{where} (no heading with anchor #{anchor} in {linked.relative_to(ROOT)})")
    return dead


def test_github_anchors_are_computed_as_github_does():
    assert github_anchor("Pretraining: the three-phase curriculum") == "pretraining-the-three-phase-curriculum"
    assert github_anchor("`rexbert embed`: a catalog into Parquet") == "rexbert-embed-a-catalog-into-parquet"
    assert github_anchor("1. Never destroy what the user did not create") == \
        "1-never-destroy-what-the-user-did-not-create"


def test_a_dead_link_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "a.md").write_text("# Top\n\n## Part two\n\n[ok](#part-two) [ok](b.md#b) [bad](#nope) "
                                   "[bad](missing.md) `[code](missing.md)`\n```\n[fenced](missing.md)\n```\n")
    (tmp_path / "b.md").write_text("# B\n")
    assert dead_links(tmp_path / "a.md") == ["a.md:5: #nope (no heading with anchor #nope in a.md)",
                                             "a.md:5: missing.md (no such file)"]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    assert dead_links(path) == []


TEST_FILE = re.compile(r"\btests/((?:\w+/)?test_\w+\.py)\b")
TEST_NAME = re.compile(r"(?<![\w/.])(test_\w+)\b(?!\.py)")


def test_every_test_the_docs_name_exists():
    """A promise that names its test (docs/reliability.md, the READMEs) names one that is there."""
    defined = {name for path in (ROOT / "tests").rglob("test_*.py")
               for name in re.findall(r"^\s*def (test_\w+)", path.read_text(encoding="utf-8"), re.MULTILINE)}
    missing = []
    for path in markdown_files():
        text = path.read_text(encoding="utf-8")
        missing += [f"{path.relative_to(ROOT)}: tests/{name}" for name in TEST_FILE.findall(text)
                    if not (ROOT / "tests" / name).is_file()]
        missing += [f"{path.relative_to(ROOT)}: {name}" for name in TEST_NAME.findall(text) if name not in defined]
    assert missing == []


def linked_pages(path: Path) -> set[Path]:
    pages = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            file_part = target.partition("#")[0]
            if file_part and not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                linked = (path.parent / file_part).resolve()
                if linked.suffix == ".md" and linked.is_file():
                    pages.add(linked)
    return pages


def test_every_page_is_reachable_from_the_readme():
    """The README is the front door: every markdown page of the project is a few links away from it."""
    seen, todo = set(), [(ROOT / "README.md").resolve()]
    while todo:
        page = todo.pop()
        if page not in seen:
            seen.add(page)
            todo += linked_pages(page) - seen
    unreachable = sorted(str(p.relative_to(ROOT)) for p in markdown_files() if p.resolve() not in seen)
    assert unreachable == []
