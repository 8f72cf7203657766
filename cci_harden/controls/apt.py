"""Package management controls."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model.control import Control, Source
from ..model.kinds import ManagedFile

if TYPE_CHECKING:
    from ..config.settings import FleetSettings
    from ..model.hostinfo import HostInfo

APT_PROXY_FILE = "/etc/apt/apt.conf.d/80cci-harden-proxy"


def _proxy_resources(settings: FleetSettings, info: HostInfo):
    proxy = str(settings.apt.proxy).rstrip("/")
    return [
        ManagedFile(
            APT_PROXY_FILE,
            "// Managed by cci-harden (CCI-APT-01): apt fetches through the fleet's proxy.\n"
            f'Acquire::http::Proxy "{proxy}";\n'
            "// A stalled proxy connection is retried instead of hanging the deploy.\n"
            'Acquire::http::Timeout "30";\n'
            'Acquire::Retries "3";\n',
        )
    ]


APT_PROXY = Control(
    id="CCI-APT-01",
    nist=("CM-6", "SC-7"),
    title="apt fetches packages through the configured proxy",
    sources=(Source("toolkit", "air-gapped installs: an internal apt proxy"),),
    rationale="Hosts without a route to the internet install packages through the operator's "
    "apt-cacher-ng or mirror; the proxy is a setting, never a host name in code.",
    resources=_proxy_resources,
    applies=lambda settings: settings.apt.proxy is not None,
    tags=("baseline", "apt"),
)

CONTROLS = (APT_PROXY,)
