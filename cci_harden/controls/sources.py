"""Citations a reader can follow: each names a public document by its title and a section that
exists in it.

``circleci_page(doc, section, point)``: one of CircleCI's pages below and a section title exactly
as the page spells it; ``server_4x(topic, point)``: what CircleCI's Server 4.x docs and its
server-terraform modules say on a topic; ``hardening_page(point)``: CircleCI's "Hardening Your
Cluster" page, which the Server v3.x Operations Guide links to for the Nomad ports but does not
contain. ``tests/test_sources.py`` checks every section against local copies of the documents.
"""

from __future__ import annotations

import re

from ..model.control import Source

# CircleCI's public documents the controls and the onboarding checklist cite, by public title
PAGES = {
    "security": "CircleCI Security Features page",
    "security-ja": "CircleCI Security Features page (Japanese edition)",
    "server-3x-operations": "CircleCI Server v3.x Operations Guide",
    "audit-log-ja": "CircleCI Audit Logs page (Japanese edition)",
    "incident-hunting": "CircleCI Cybersecurity Incident Hunting Guide",
}
SERVER_4X = "CircleCI Server 4.x docs and server-terraform"
_REF = re.compile(r'(?P<title>.+?), (?:section|topic) "(?P<section>[^"]+)"')

# What each kind of source means, for the legend of docs/controls.md
LEGEND = (
    (
        "circleci-page",
        "one of CircleCI's public pages by its title (" + "; ".join(PAGES.values()) + "), "
        'then the section title as that page spells it (`, section "Nomad Clients"`)',
    ),
    (
        "server-4x",
        "CircleCI's Server 4.x documentation and its public server-terraform modules (nomad-aws, "
        "nomad-gcp): what changed for Nomad clients since the v3.x guide, by topic",
    ),
    (
        "circleci",
        "other CircleCI material: the server-terraform `nomad-startup` script, or the Server "
        "docs page named",
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


def page_ref(doc: str, section: str) -> str:
    """``Title, section "Section"``: how controls and the checklist name a place in a page."""
    if doc not in PAGES:
        raise ValueError(f"no CircleCI page {doc!r}")
    return f'{PAGES[doc]}, section "{section}"'


def circleci_page(doc: str, section: str, point: str) -> Source:
    return Source("circleci-page", f"{page_ref(doc, section)}: {point}")


def server_4x_ref(topic: str) -> str:
    return f'{SERVER_4X}, topic "{topic}"'


def server_4x(topic: str, point: str) -> Source:
    return Source("server-4x", f"{server_4x_ref(topic)}: {point}")


def hardening_page(point: str) -> Source:
    return Source(
        "circleci",
        "Server docs, Hardening Your Cluster (linked from the Server v3.x Operations Guide): "
        + point,
    )


def parse_ref(ref: str) -> tuple[str, str]:
    """(page key or ``server-4x``, section or topic) of a page or Server 4.x reference."""
    match = _REF.match(ref)
    keys = {t: k for k, t in PAGES.items()} | {SERVER_4X: "server-4x"}
    if not match or match["title"] not in keys:
        raise ValueError(f"not a page reference: {ref!r}")
    return keys[match["title"]], match["section"]
