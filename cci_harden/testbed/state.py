"""The test bed's record of what it created, written before each resource is made.

``down`` reads this record to remove exactly what ``up`` made, by PID, mount point and name, even
when ``up`` failed half-way: every resource is recorded as intended before it is created.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .layout import DEFAULT_RELEASE


@dataclass
class HostRecord:
    name: str
    index: int
    address: str
    netns: str
    veth: str
    merged: str
    pid: int | None = None
    release: str = DEFAULT_RELEASE  # the Debian codename its base image is


@dataclass
class VmRecord:
    name: str
    index: int
    address: str
    tap: str
    mac: str
    directory: str
    pid: int | None = None
    release: str = DEFAULT_RELEASE
    # GRUB is installed on its disk: it boots through its own bootloader, not the test bed's
    # direct kernel boot (only its very first boot is direct)
    bootloader: bool = False


@dataclass
class TestbedState:
    __test__ = False

    bridge: str | None = None
    proxy_pid: int | None = None
    mirror_pid: int | None = None
    services_pid: int | None = None
    inotify_instances_before: int | None = None  # this machine's limit before up raised it
    hosts: dict[str, HostRecord] = field(default_factory=dict)
    vms: dict[str, VmRecord] = field(default_factory=dict)
    written_files: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> TestbedState:
        if not path.is_file():
            return cls()
        raw = json.loads(path.read_text())
        hosts = {name: HostRecord(**record) for name, record in raw.pop("hosts", {}).items()}
        vms = {name: VmRecord(**record) for name, record in raw.pop("vms", {}).items()}
        return cls(hosts=hosts, vms=vms, **raw)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))
        os.replace(tmp, path)
