"""Every control's citation can be followed to a section that exists.

Local copies of CircleCI's pages, and of the Server 4.x facts the controls cite by topic, live in
the folders CCI_SOURCE_DOCS_DIR and CCI_SERVER_4X_FILE name (``.ci/run`` sets them when a folder
near the checkout holds them); without them these tests are skipped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cci_harden.controls import ALL_CONTROLS
from cci_harden.controls.sources import PAGES, parse_ref

KINDS = {
    "circleci-page", "server-4x", "circleci", "nomad", "cis-docker", "cis-debian", "dev-sec",
    "toolkit",
}  # fmt: skip
# the local copy of each page
COPIES = {
    "security-ja": "000_39f4a41c94cbc5c1.txt",
    "security": "001_5ac908e8a65ccd2b.txt",
    "server-3x-operations": "002_4e6aa3bc563a6c31.txt",
    "audit-log-ja": "003_d65408c1d30b4d48.txt",
    "incident-hunting": "004_41de0c39afd264e0.txt",
}


def _copies() -> Path:
    folder = Path(os.environ.get("CCI_SOURCE_DOCS_DIR", "/nonexistent"))
    if not folder.is_dir():
        pytest.skip("no local copies of CircleCI's pages: set CCI_SOURCE_DOCS_DIR")
    return folder


def _server_4x() -> str:
    path = Path(os.environ.get("CCI_SERVER_4X_FILE", "/nonexistent"))
    if not path.is_file():
        pytest.skip("no local Server 4.x facts: set CCI_SERVER_4X_FILE")
    return path.read_text()


def _cited(kind: str) -> list[tuple[str, str]]:
    return [(c.id, s.ref) for c in ALL_CONTROLS for s in c.sources if s.kind == kind]


def _headings(text: str) -> set[str]:
    return {line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip()}


def _has_topic(facts: str, topic: str) -> bool:
    return re.search(rf"^- {re.escape(topic)}", facts, re.MULTILINE) is not None


def test_every_source_has_a_known_kind_and_page_refs_parse():
    assert set(COPIES) == set(PAGES)
    kinds = {s.kind for c in ALL_CONTROLS for s in c.sources}
    assert kinds <= KINDS, kinds - KINDS
    for kind in ("circleci-page", "server-4x"):
        for control_id, ref in _cited(kind):
            doc, section = parse_ref(ref)
            assert (doc == "server-4x") == (kind == "server-4x") and section, (control_id, ref)
            assert section != "Hardening", f"{control_id}: the v3.x guide has no Hardening section"


def test_every_page_section_cited_is_a_heading_of_that_page():
    copies = _copies()
    cited = _cited("circleci-page")
    assert cited
    for control_id, ref in cited:
        doc, section = parse_ref(ref)
        assert section in _headings((copies / COPIES[doc]).read_text()), (control_id, doc, section)


def test_every_server_4x_topic_cited_exists():
    facts = _server_4x()
    cited = _cited("server-4x")
    assert cited
    for control_id, ref in cited:
        assert _has_topic(facts, parse_ref(ref)[1]), (control_id, ref)


def test_the_init_checklist_cites_sections_that_exist():
    from cci_harden.fleet.onboard import CHECKLIST

    copies = _copies()
    facts = _server_4x()
    for entry in CHECKLIST:
        doc, section = parse_ref(entry.source)
        if doc == "server-4x":
            assert _has_topic(facts, section), entry
        else:
            assert section in _headings((copies / COPIES[doc]).read_text()), entry
