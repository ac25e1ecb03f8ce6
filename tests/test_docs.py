"""The docs name only files that exist.

Every backticked token in README.md and docs/**/*.md that looks like a repository path is
checked against the tracked tree: a token whose first component is a top-level entry of the
repository must exist from the root (globs allowed); a shorter one (``lake.py``,
``ingest/probe.py``, written relative to a folder named beside it) must be the tail of some
tracked path. Locations the platform creates at run time (the git-ignored lake, media,
manifest and Dagster home under ``data/``) and files an operator provides are exempt; a
``layer/name`` token must be a declared lake table.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import pytest

from resources.schemas import ALL_TABLES
from resources.store.models import MIRRORED

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PATH_TOKEN = re.compile(r"^[\w.*{}/-]+$")
FILE_EXT = (".py", ".md", ".yaml", ".yml", ".json", ".toml", ".lock", ".sh", ".txt", ".cfg", ".ini")
# Created at run time (git-ignored), provided by the operator, or inside an installed package:
# never in the repository.
NOT_IN_REPO = (
    "data/lake",
    "data/media",
    "data/manifest",
    "data/dagster_home",
    "data/demo",
    ".streamlit/",
    "dagster.yaml",
    "skvideo/",
)
# ``bronze/uploads``, ``gold/execution_costs``: a lake table (and the asset of the same key).
LAYERS = ("bronze", "silver", "gold")


def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def _path_tokens(text: str) -> set[str]:
    tokens = set()
    for raw in re.findall(r"`([^`\n]+)`", text):
        token = raw.strip().rstrip(",.:;")
        if not PATH_TOKEN.match(token) or token.startswith(("/", "-")) or "://" in token:
            continue
        if "/" in token or token.endswith(FILE_EXT):
            tokens.add(token)
    return tokens


def _exists(token: str, tracked: list[str], top: set[str]) -> bool:
    pattern = token.rstrip("/")
    if pattern.split("/")[0] in top:  # anchored at the repository root
        candidates = [pattern, f"{pattern}/*"]
    else:  # relative to a folder named beside it
        candidates = [pattern, f"*/{pattern}", f"{pattern}/*", f"*/{pattern}/*"]
    return any(fnmatch.fnmatch(p, c) for p in tracked for c in candidates)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_doc_names_exists(doc: Path):
    tracked = _tracked()
    top = {p.split("/")[0] for p in tracked}
    # Lake tables are named <layer>/<name>, the store's mirrored tables store/<table> (their asset keys).
    tables = {spec.path for spec in ALL_TABLES} | {f"store/{t}" for t in MIRRORED}
    missing = sorted(
        t
        for t in _path_tokens(doc.read_text(encoding="utf-8"))
        if not t.startswith(NOT_IN_REPO)
        and not (t in tables if t.split("/")[0] in LAYERS else (t in tables or _exists(t, tracked, top)))
    )
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


def test_nothing_cites_files_outside_the_repository():
    """The project's code and docs stand alone: no reference to a design file kept elsewhere."""
    offenders = [
        p
        for p in _tracked()
        if p.endswith((".py", ".md", ".yaml", ".toml"))
        and p != "tests/test_docs.py"
        and re.search(r"DESIGN\.md|\.\./shared", (ROOT / p).read_text(encoding="utf-8"))
    ]
    assert not offenders, f"cite files outside the repository: {offenders}"
