"""The platform gate: hosts run a distribution and release the toolkit is tested on.

Hardening lives in distribution details (where sysctls are read, sshd's defaults, apt's source
format, the cgroup modes systemd offers), so a host the toolkit has not been tested on is refused
before anything is written, naming what it found and what is supported.
"""

from __future__ import annotations

from ..model.control import Control, Source
from ..model.kinds import SupportedOs

# (os-release ID, VERSION_ID) -> codename, for every release the test bed proves
SUPPORTED = {("debian", "12"): "bookworm"}


def supported_text() -> str:
    return ", ".join(f"{os_id.capitalize()} {version} ({name})" for (os_id, version), name in
                     SUPPORTED.items())  # fmt: skip


def os_problem(info) -> str | None:
    if (info.os_id, info.os_version) in SUPPORTED:
        return None
    found = f"{info.os_id or 'unknown'} {info.os_version or '?'} ({info.codename})"
    return (
        f"{found} is not a release this toolkit is tested on (supported: {supported_text()}); "
        "Ubuntu clients are not supported yet"
    )


def _resources(settings, info):
    return [SupportedOs(os_problem(info), supported_text())]


OS_GATE = Control(
    id="CCI-TK-03",
    title="The host runs a distribution and release the toolkit is tested on",
    sources=(Source("toolkit", "refuse a host whose distribution is not tested"),),
    rationale="Checked from the host's own /etc/os-release before anything else; a host on "
    "another distribution or release is refused and left untouched while the other hosts go "
    "on. Supported today: " + supported_text() + ". Ubuntu clients (CircleCI's own images are "
    "Ubuntu 22.04) are not supported yet: no Ubuntu archive is reachable to test them.",
    resources=_resources,
    tags=("gate",),
)

CONTROLS = (OS_GATE,)
