"""Citations a reader can follow: each names a document and a section that exists in it.

``seed(doc, section, point)``: a file of ``../shared/seeds`` and a section title exactly as the
file spells it; ``notes(section, point)``: a bullet of ``../shared/notes/server-4x.md`` by its
lead words; ``hardening_page(point)``: CircleCI's "Hardening Your Cluster" page, which seed 002
links to for the Nomad ports but does not contain. ``tests/test_sources.py`` checks every
seed and notes citation against the documents themselves.
"""

from __future__ import annotations

from ..model.control import Source

SEED_FILES = {
    "000": "000_39f4a41c94cbc5c1.txt",
    "001": "001_5ac908e8a65ccd2b.txt",
    "002": "002_4e6aa3bc563a6c31.txt",
    "003": "003_d65408c1d30b4d48.txt",
    "004": "004_41de0c39afd264e0.txt",
}
NOTES_FILE = "server-4x.md"

# What each kind of source means, for the legend of docs/controls.md
LEGEND = (
    (
        "seed",
        "a source document in `../shared/seeds/` (`001` = `001_*.txt`) and the section "
        "title as that file spells it; `../shared/seeds/README.md` says what each file is",
    ),
    (
        "notes",
        "`../shared/notes/server-4x.md`, by the lead words of its bullet: what changed for "
        "Nomad clients in Server 4.x (CircleCI's server-terraform modules and the 4.x docs)",
    ),
    (
        "circleci",
        "CircleCI's own material outside the seeds: the server-terraform "
        "`nomad-startup` script, or the Server docs page named",
    ),
    ("nomad", "HashiCorp's Nomad documentation: the configuration block or command named"),
    ("cis-docker", "CIS Docker Benchmark v1.6.0, item numbers"),
    ("cis-debian", "CIS Debian Linux 12 Benchmark v1.1.0, item numbers"),
    (
        "dev-sec",
        "dev-sec.io: the Ansible role (`os-hardening`, `ssh-hardening`) and its InSpec "
        "baseline control ids (`linux-baseline os-XX`, `ssh-baseline sshd-XX`)",
    ),
    ("toolkit", "a requirement of this toolkit itself, no outside source"),
)


def seed(doc: str, section: str, point: str) -> Source:
    if doc not in SEED_FILES:
        raise ValueError(f"no seed {doc}")
    return Source("seed", f"{doc} {section}: {point}")


def notes(section: str, point: str) -> Source:
    return Source("notes", f"{NOTES_FILE} {section}: {point}")


def hardening_page(point: str) -> Source:
    return Source(
        "circleci", f"Server docs, Hardening Your Cluster (linked from seed 002): {point}"
    )


def parse_seed(ref: str) -> tuple[str, str]:
    """(seed file name, section title) of a ``seed`` source's ref."""
    doc, rest = ref.split(" ", 1)
    return SEED_FILES[doc], rest.split(": ", 1)[0]


def parse_notes(ref: str) -> str:
    """The bullet lead words a ``notes`` source cites."""
    return ref.split(" ", 1)[1].split(": ", 1)[0]
