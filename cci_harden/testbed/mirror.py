"""Read Debian package sources from this machine's own apt configuration.

The test bed must use whatever mirror the machine is configured for; no host name is written into
code. Both the deb822 ``*.sources`` format and the one-line ``sources.list`` format are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..model.errors import TestbedError

APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")
APT_SOURCES_LIST = Path("/etc/apt/sources.list")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]

    def is_security(self) -> bool:
        return any(suite.endswith("-security") for suite in self.suites)


def _parse_deb822(text: str) -> list[AptSource]:
    sources = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            sources.append(
                AptSource(
                    uri=uri.rstrip("/"),
                    suites=tuple(fields.get("suites", "").split()),
                    components=tuple(fields.get("components", "main").split()),
                )
            )
    return sources


def _parse_one_line(text: str) -> list[AptSource]:
    sources = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 3 or words[0] != "deb":
            continue
        words = [w for w in words[1:] if not w.startswith("[")]
        sources.append(AptSource(words[0].rstrip("/"), (words[1],), tuple(words[2:]) or ("main",)))
    return sources


def machine_apt_sources(
    sources_dir: Path = APT_SOURCES_DIR, sources_list: Path = APT_SOURCES_LIST
) -> list[AptSource]:
    """All enabled ``deb`` sources of this machine, in apt's reading order."""
    sources: list[AptSource] = []
    if sources_list.is_file():
        sources += _parse_one_line(sources_list.read_text())
    if sources_dir.is_dir():
        for path in sorted(sources_dir.iterdir()):
            if path.suffix == ".sources":
                sources += _parse_deb822(path.read_text())
            elif path.suffix == ".list":
                sources += _parse_one_line(path.read_text())
    return sources


def _serving(suite: str, sources: list[AptSource]) -> list[AptSource]:
    wanted = {suite, f"{suite}-updates", f"{suite}-security"}
    chosen = []
    for source in sources:
        suites = tuple(s for s in source.suites if s in wanted)
        if suites:
            chosen.append(AptSource(source.uri, suites, source.components))
    return chosen if any(suite in s.suites for s in chosen) else []


def debian_sources(suite: str, sources: list[AptSource] | None = None) -> list[AptSource]:
    """The machine's sources that serve ``suite`` (and its -updates and -security companions).

    A machine lists only its own release; its mirror serves the others too, so for a release it
    does not list, its own release's sources are taken with the suite names changed."""
    sources = machine_apt_sources() if sources is None else sources
    chosen = _serving(suite, sources)
    own_releases = [s for source in sources for s in source.suites if "-" not in s]
    for own in dict.fromkeys(own_releases):
        if chosen:
            break
        chosen = [
            AptSource(s.uri, tuple(suite + name[len(own) :] for name in s.suites), s.components)
            for s in _serving(own, sources)
        ]
    if not chosen:
        raise TestbedError(
            f"this machine's apt configuration has no Debian source to take '{suite}' from "
            f"(looked in {APT_SOURCES_LIST} and {APT_SOURCES_DIR}/*.sources)"
        )
    return chosen


def debian_mirror(suite: str, sources: list[AptSource] | None = None) -> str:
    """The URI of the machine's main archive for ``suite``: the one debootstrap needs."""
    for source in debian_sources(suite, sources):
        if suite in source.suites:
            return source.uri
    raise AssertionError("unreachable: debian_sources guarantees a main source")


def render_deb822(sources: list[AptSource]) -> str:
    """The sources as a deb822 file, for a test host's ``/etc/apt/sources.list.d``."""
    stanzas = [
        "Types: deb\n"
        f"URIs: {s.uri}\n"
        f"Suites: {' '.join(s.suites)}\n"
        f"Components: {' '.join(s.components)}\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        for s in sources
    ]
    return "\n".join(stanzas)
