"""The documentation: the site builds strictly, the README stays short, nothing is said twice, links resolve."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from .conftest import REPO

README_MAX_LINES = 150
MIN_PARAGRAPH = 120  # characters: shorter blocks (headings, one-line pointers) may repeat


def documents() -> list[Path]:
    """README.md, CONTRIBUTING.md and every page under docs/."""
    return [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").rglob("*.md"))]


def paragraphs(text: str) -> list[str]:
    """Blocks of text separated by blank lines, outside code fences and tables, whitespace normalised."""
    blocks: list[str] = []
    current: list[str] = []
    fence = None
    for line in [*text.splitlines(), ""]:
        stripped = line.strip()
        if fence is not None:
            if stripped.startswith(fence):
                fence = None
            continue
        match = re.match(r"(`{3,}|~{3,})", stripped)
        if match:
            fence = match.group(1)
        elif stripped and not stripped.startswith("|") and not stripped.startswith("<!--"):
            current.append(stripped)
            continue
        if current:
            blocks.append(" ".join(current))
            current = []
    return blocks


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    # mkdocs-material is in the test extra: a missing one fails here rather than skipping the check
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING" not in done.stderr, done.stderr[-3000:]
    assert (tmp_path / "site/index.html").is_file()


def test_the_readme_is_short() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_no_paragraph_appears_twice() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for path in documents():
        for block in paragraphs(path.read_text()):
            if len(block) >= MIN_PARAGRAPH:
                where[block].append(str(path.relative_to(REPO)))
    repeated = {block[:80]: places for block, places in where.items() if len(places) > 1}
    assert repeated == {}


def test_the_paragraph_finder_skips_code_and_tables() -> None:
    text = "one\nparagraph\n\n```bash\nnot a paragraph\n\nstill code\n```\n| a | table |\n\n<!-- x -->\nlast\n"
    assert paragraphs(text) == ["one paragraph", "last"]


@pytest.mark.parametrize("name", ["README.md", "CONTRIBUTING.md"])
def test_relative_links_point_to_existing_files(name: str) -> None:
    text = re.sub(r"```.*?```", "", (REPO / name).read_text(), flags=re.S)
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)
    assert targets, f"{name} links to the documentation"
    relative = [t.split("#", 1)[0] for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t) and t[0] != "#"]
    missing = [t for t in relative if t and not (REPO / t).exists()]
    assert missing == []


# the examples marked runnable and the tests that run them as written (a new marker needs a test here)
RUNNABLE = {
    "catalog-table": "tests/test_inputs.py::test_the_readme_catalog_table_example_runs_as_written",
    "cdnow": "tests/test_newcomer.py::test_a_newcomer_follows_the_readme_in_a_fresh_folder",
    "jsonl": "tests/test_newcomer.py::test_a_newcomer_follows_the_readme_in_a_fresh_folder",
    "read-files-with-pandas": "tests/test_newcomer.py::test_a_newcomer_follows_the_readme_in_a_fresh_folder",
}


def test_every_example_marked_runnable_is_run_by_a_test() -> None:
    marked = [m for p in documents() for m in re.findall(r"^<!-- runnable: ([\w-]+) -->$", p.read_text(), re.M)]
    assert sorted(marked) == sorted(RUNNABLE)  # each once
    for name, test in RUNNABLE.items():
        module, function = test.split("::")
        source = (REPO / module).read_text()
        assert f"def {function}(" in source and f'"{name}"' in source, (name, test)
