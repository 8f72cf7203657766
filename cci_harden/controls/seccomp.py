"""The seccomp profile CircleCI's Nomad clients give Docker: Docker's default, plus user namespaces.

CircleCI appends one rule to Docker's default profile so that jobs can create user namespaces
(``clone``, ``setns``, ``unshare``; CircleCI Security Features page, Integrations: Docker).
Docker's default grows with each engine (fchmodat2, cachestat, map_shadow_stack, mseal, ...): a
base older than the engine would refuse those to every job. So the base is the default of the
engine being installed, one vendored file per engine line (``data/README.md`` says where each came
from), chosen from the settings and the host's release; the rendered bytes depend only on this
package's version, the settings and the release.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from ..model.releases import release_for

if TYPE_CHECKING:
    from ..config.settings import FleetSettings
    from ..model.hostinfo import HostInfo

PROFILE_PATH = "/etc/docker/seccomp/circleci.json"

# CircleCI's addition, exactly as the Security Features page gives it.
CIRCLECI_ADDITION = {
    "comment": "Allow create user namespaces",
    "names": ["clone", "setns", "unshare"],
    "action": "SCMP_ACT_ALLOW",
    "args": [],
    "includes": {},
    "excludes": {},
}


@dataclass(frozen=True)
class EngineDefault:
    """Docker's default profile for one engine line, and where the vendored copy came from."""

    engine: str  # "28.5"
    major: int
    source: str  # the Debian package and version the file was taken from, unmodified
    sha256: str

    @property
    def file(self) -> str:
        return f"data/docker-default-seccomp-{self.engine}.json"


ENGINE_DEFAULTS = (
    EngineDefault(
        "20.10",
        20,
        "golang-github-docker-docker-dev 20.10.24+dfsg1-1+deb12u1 (Debian 12), "
        "profiles/seccomp/default.json",
        "e5e91f884647e7332b3f89280777752f563df4f1372a186f14ddb7bf2f55cf61",
    ),
    EngineDefault(
        "26.1",
        26,
        "golang-github-docker-docker-dev 26.1.5+dfsg1-9+deb13u1 (Debian 13), "
        "profiles/seccomp/default.json",
        "9c1025c88ccaa517b648da571961838744ea2137f176bfe6a48b21294cae9c76",
    ),
    EngineDefault(
        "28.5",
        28,
        "docker.io source 28.5.2+dfsg4 (Debian unstable), "
        "engine/vendor/github.com/moby/profiles/seccomp/default.json (moby/profiles v0.1.0)",
        "01536f1d1df938ae611eba20d6349e0de7a99b6ecdee1549427a0b01b8301e28",
    ),
)


def engine_major(settings: FleetSettings, info: HostInfo | None = None) -> int:
    """The Docker engine major version the settings install on the host (docker-ce pinned: its
    version; Debian's docker.io: the release's own, 20 on Debian 12 and 26 on 13, Debian 12's
    without a host; docker-ce unpinned: the newest line vendored)."""
    docker = settings.docker
    if docker.install_source == "docker.io":
        return release_for(info).docker_io_major
    match = re.match(r"(?:[0-9]+:)?([0-9]+)\.", docker.version or "")
    return int(match.group(1)) if match else ENGINE_DEFAULTS[-1].major


def default_for(major: int) -> EngineDefault:
    """The newest vendored default no newer than the engine (the oldest for older engines)."""
    fitting = [d for d in ENGINE_DEFAULTS if d.major <= major]
    return fitting[-1] if fitting else ENGINE_DEFAULTS[0]


@cache
def docker_default(engine: str) -> dict:
    entry = next(d for d in ENGINE_DEFAULTS if d.engine == engine)
    text = resources.files("cci_harden").joinpath(entry.file).read_text()
    return json.loads(text)


def circleci_profile(major: int) -> dict:
    profile = copy.deepcopy(docker_default(default_for(major).engine))
    profile["syscalls"].append(copy.deepcopy(CIRCLECI_ADDITION))
    return profile


@cache
def render_profile(major: int) -> str:
    """The profile as written to hosts: same inputs, same bytes."""
    return json.dumps(circleci_profile(major), indent=2) + "\n"
