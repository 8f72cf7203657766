"""The platform gate: hosts run a distribution and release the toolkit is tested on.

Hardening lives in distribution details (where sysctls are read, sshd's defaults, apt's source
format, the cgroup modes systemd offers), so a host the toolkit has not been tested on is refused
before anything is written, naming what it found and what is supported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model.control import Control, Source
from ..model.kinds import SupportedOs
from ..model.releases import release_of, supported_text

if TYPE_CHECKING:
    from ..config.settings import FleetSettings
    from ..model.hostinfo import HostInfo


def os_problem(info, settings=None) -> str | None:
    release = release_of(info)
    if release is None:
        found = f"{info.os_id or 'unknown'} {info.os_version or '?'} ({info.codename})"
        return (
            f"{found} is not a release this toolkit is tested on (supported: "
            f"{supported_text()}); Ubuntu clients are not supported yet"
        )
    nomad = getattr(settings, "nomad", None)
    if (
        release.cgroup_v1_forced
        and nomad is not None
        and nomad.cgroup_version == "v1"
        and not nomad.allow_deprecated_cgroup_v1
    ):
        return (
            f"{release.title}: cgroup v1 (nomad.cgroup_version, the mode CircleCI documents for "
            f"the Docker runtime) boots there only when systemd {release.systemd} is forced "
            "(SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1), and systemd is removing it; set "
            "nomad.allow_deprecated_cgroup_v1 = true to run it anyway, or nomad.cgroup_version = "
            '"v2" (which CircleCI documents as unsupported for the Docker runtime)'
        )
    return None


def _resources(settings: FleetSettings, info: HostInfo):
    return [SupportedOs(os_problem(info, settings), supported_text())]


OS_GATE = Control(
    id="CCI-TK-03",
    nist=("CM-2",),
    title="The host runs a distribution and release the toolkit is tested on",
    sources=(Source("toolkit", "refuse a host whose distribution is not tested"),),
    rationale="Checked from the host's own /etc/os-release before anything else; a host on "
    "another distribution or release is refused and left untouched while the other hosts go "
    "on. Supported today: " + supported_text() + ". On Debian 13, whose systemd boots cgroup v1 "
    "only when forced, a host set to v1 is refused unless nomad.allow_deprecated_cgroup_v1 says "
    "so. Ubuntu clients (CircleCI's own images are Ubuntu 22.04) are not supported yet: no "
    "Ubuntu archive is reachable to test them.",
    resources=_resources,
    tags=("gate",),
)

CONTROLS = (OS_GATE,)
