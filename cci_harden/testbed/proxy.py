"""The apt caching proxy on the bridge: the hosts' only way to Debian packages.

apt-cacher-ng runs with a configuration directory of our own, whose Debian backend is this
machine's own mirror, so the machine's /etc/apt-cacher-ng is never changed. Its cache lives beside
the base image and survives ``down``, so later runs install packages without refetching.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from . import mirror, process
from .layout import DEFAULT_RELEASE, RELEASES, Layout

SYSTEM_CONFIG = Path("/etc/apt-cacher-ng")


def config_dir(layout: Layout) -> Path:
    return layout.state_dir / "apt-cacher-ng"


def _write_config(layout: Layout) -> Path:
    conf = config_dir(layout)
    if conf.exists():
        shutil.rmtree(conf)
    shutil.copytree(SYSTEM_CONFIG, conf)
    (conf / "backends_debian").write_text(mirror.debian_mirror(DEFAULT_RELEASE) + "/\n")
    return conf


def start(layout: Layout) -> int:
    conf = _write_config(layout)
    cache = layout.proxy_cache
    cache.mkdir(parents=True, exist_ok=True)
    logs = layout.state_dir / "apt-cacher-ng-log"
    logs.mkdir(parents=True, exist_ok=True)
    pid = process.spawn(
        [
            "apt-cacher-ng",
            "-c",
            str(conf),
            "ForeGround=1",
            f"BindAddress={layout.bridge_address}",
            f"Port={layout.proxy_port}",
            f"CacheDir={cache}",
            f"LogDir={logs}",
            f"PidFile={layout.state_dir / 'apt-cacher-ng.pid'}",
            f"SocketPath={layout.state_dir / 'apt-cacher-ng.socket'}",
            # Serve index files fetched in the last hour from cache: hosts updating at the same
            # moment otherwise race to replace the same InRelease and some requests hang.
            "FreshIndexMaxAge=3600",
        ],
        layout.state_dir / "apt-cacher-ng.out",
    )
    wait_listening(str(layout.bridge_address), layout.proxy_port, pid)
    prewarm(layout)
    return pid


def prewarm(layout: Layout) -> list[str]:
    """Fetch each suite's InRelease once, one at a time, before hosts ask for them together."""
    import urllib.request

    files = [layout.base_image(r) / "etc/apt/sources.list.d/debian.sources" for r in RELEASES]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": layout.proxy_url}))
    failed = []
    sources = [s for f in files if f.is_file() for s in mirror._parse_deb822(f.read_text())]
    for source in sources:
        for suite in source.suites:
            url = f"{source.uri}/dists/{suite}/InRelease"
            try:
                with opener.open(url, timeout=60) as response:
                    response.read()
            except OSError:
                failed.append(url)  # hosts will fetch it themselves
    return failed


def wait_listening(
    address: str, port: int, pid: int, timeout: float = 15.0, what: str = "apt-cacher-ng"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    from ..model.errors import TestbedError

    raise TestbedError(f"{what} (pid {pid}) did not listen on {address}:{port}")


def running(layout: Layout, pid: int | None) -> bool:
    return process.owns(pid, str(config_dir(layout)))


def stop(layout: Layout, pid: int | None) -> None:
    marker = str(config_dir(layout))
    process.stop(pid, marker)
    for stray in process.find_processes(marker, "apt-cacher-ng"):
        process.stop(stray, marker)
