"""Issue 16: every control's citation can be followed to a section that exists.

The seeds and notes live beside the checkout (``../shared``); CCI_SEEDS_DIR and CCI_NOTES_DIR
point elsewhere, and ``.ci/run`` sets them on this machine.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cci_harden.controls import ALL_CONTROLS
from cci_harden.controls.sources import NOTES_FILE, SEED_FILES, parse_notes, parse_seed

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"seed", "notes", "circleci", "nomad", "cis-docker", "cis-debian", "dev-sec", "toolkit"}


def _folder(variable: str, name: str) -> Path:
    folder = Path(os.environ.get(variable) or ROOT.parent / "shared" / name)
    if not folder.is_dir():
        pytest.skip(f"{name} not found at {folder}; set {variable}")
    return folder


def _cited(kind: str) -> list[tuple[str, str]]:
    return [(c.id, s.ref) for c in ALL_CONTROLS for s in c.sources if s.kind == kind]


def _headings(text: str) -> set[str]:
    return {line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip()}


def test_every_source_has_a_known_kind_and_seed_refs_parse():
    kinds = {s.kind for c in ALL_CONTROLS for s in c.sources}
    assert kinds <= KINDS, kinds - KINDS
    for control_id, ref in _cited("seed"):
        file, section = parse_seed(ref)
        assert file in SEED_FILES.values() and section, (control_id, ref)
        assert section != "Hardening", f"{control_id}: seed 002 has no Hardening section"


def test_every_seed_section_cited_is_a_heading_of_that_seed():
    seeds = _folder("CCI_SEEDS_DIR", "seeds")
    cited = _cited("seed")
    assert cited
    for control_id, ref in cited:
        file, section = parse_seed(ref)
        assert section in _headings((seeds / file).read_text()), (control_id, file, section)


def test_every_notes_bullet_cited_exists():
    notes = (_folder("CCI_NOTES_DIR", "notes") / NOTES_FILE).read_text()
    cited = _cited("notes")
    assert cited
    for control_id, ref in cited:
        lead = parse_notes(ref)
        assert re.search(rf"^- {re.escape(lead)}", notes, re.MULTILINE), (control_id, lead)


def test_the_init_checklist_cites_sections_that_exist():
    from cci_harden.fleet.onboard import CHECKLIST

    seeds = _folder("CCI_SEEDS_DIR", "seeds")
    notes = (_folder("CCI_NOTES_DIR", "notes") / NOTES_FILE).read_text()
    for entry in CHECKLIST:
        kind, where = entry.source.split(" ", 1)
        if kind == "seed":
            doc, section = where.split(" ", 1)
            assert section in _headings((seeds / SEED_FILES[doc]).read_text()), entry
        else:
            assert kind == "notes", entry
            lead = where.split(": ", 1)[1]
            assert re.search(rf"^- {re.escape(lead)}", notes, re.MULTILINE), entry
