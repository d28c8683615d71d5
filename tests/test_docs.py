"""The README stays a ten-minute read that starts with what a newcomer types, its pointers lead to
pages that exist, and docs and code give reasons rather than issue numbers (which mean nothing
to a reader without the tracker)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 200

# "issue 12", "issues 3 and 4", "Issue #12", "PR 7": a citation of the tracker in words.
ISSUE_WORDS = re.compile(r"\b(?:issues?|PR|pull request)\s*#?\d+\b", re.IGNORECASE)
# "#12" as a citation: not an HTML colour (`#222;`), an anchor, or a trial number the CLI prints
# as `(#4)` or `` `#4 `` (those follow a parenthesis or a backtick).
HASH_NUMBER = re.compile(r"(?<![\w&#/`(\[])#\d+\b(?![;\w])")


def first_code_block(text: str) -> str:
    match = re.search(r"^```[a-z]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no code block"
    return match.group(1)


def issue_citations(text: str) -> list[str]:
    return [m.group(0) for pattern in (ISSUE_WORDS, HASH_NUMBER) for m in pattern.finditer(text)]


def test_the_readme_is_at_most_200_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines; move detail to a page under docs/ and point to it"
    )


def test_the_readme_starts_with_the_quickstart_and_the_test_command():
    block = first_code_block(README.read_text())
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert any(c.endswith("hpo run studies/quickstart.yaml") and "pip install -e ." in c for c in commands)
    assert any(c.endswith("python -m pytest -q") and "pip install -e '.[dev]'" in c for c in commands)
    assert (ROOT / "studies" / "quickstart.yaml").is_file()


def test_every_docs_page_the_readme_names_exists():
    named = set(re.findall(r"docs/[\w./-]+?\.(?:md|png)\b", README.read_text()))
    assert {"docs/STUDY_FILE.md", "docs/TRAINER.md", "docs/BENCHMARKS.md"} <= named
    missing = sorted(path for path in named if not (ROOT / path).is_file())
    assert not missing, f"README.md names pages that do not exist: {missing}"


def test_docs_pages_link_only_to_pages_that_exist():
    for page in sorted((ROOT / "docs").glob("*.md")):
        for target in re.findall(r"\]\(([\w./-]+\.(?:md|png))(?:#[\w-]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links to {target}, which does not exist"


def test_no_issue_numbers_in_the_readme_the_docs_or_the_code():
    files = [README, *sorted((ROOT / "docs").glob("*.md"))]
    for package in ("hpo", "trainer"):
        files += sorted((ROOT / package).rglob("*.py"))
    found = {
        f"{path.relative_to(ROOT)}:{number}": citations
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if (citations := issue_citations(line))
    }
    assert not found, f"cite the reason, not the issue: {found}"


def test_the_citation_patterns_catch_citations_and_spare_trial_numbers():
    for citation in ("fixed as issue 9 asked", "see #12", "Issue #3", "(issue 12)", "closes #7."):
        assert issue_citations(citation), citation
    assert not issue_citations("best 2.327 (#0) | `#4  eval_loss=1.23` | color: #222;")
