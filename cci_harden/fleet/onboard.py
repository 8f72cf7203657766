"""``cci-harden init NAME``: a new server install's inventory, documented, and its checklist.

The settings file is generated from the settings models themselves, so every field appears with
its description and safe default, and the file can never document a field that does not exist.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..config.materials import tls_configured
from ..config.server import LATEST
from ..config.settings import SCHEMA_VERSION, FleetSettings, load_settings
from ..controls.sources import page_ref, server_4x_ref
from ..model.errors import CciHardenError

INVENTORY_FILE = '''\
"""Nomad clients of server install {name}; settings in {name}.toml beside this file.

Run: pyinfra inventories/{name} deploys/nomad.py
"""

from cci_harden.fleet.inventory import pyinfra_groups

# nomad_clients (every host), and a group for each name in hosts[].groups
globals().update(pyinfra_groups(__file__))
'''

# Values that must be the operator's own; written commented out, with an example.
EXAMPLES: dict[str, str] = {
    "inventory.hosts": '[{ name = "nomad-client-1", address = "192.0.2.11" }]',
    "network.admin_cidrs": '["198.51.100.0/28"]',
    "network.nomad_server_cidrs": '["192.0.2.0/26"]',
    "network.cluster_cidrs": '["192.0.2.64/26"]',
    "network.rerun_ssh_cidrs": '["203.0.113.0/24"]',
    "network.vm_subnet_cidrs": '["192.0.2.128/26"]',
    "network.vcs_cidrs": '["198.51.100.128/25"]',
    "nomad.release_url": '"https://releases.example.internal/nomad"',
    "nomad.gpg_fingerprint": '"798AEC654E5C15428C8E42EEAA16FCBCA621E701"',
    "nomad.gpg_key_file": '"keys/hashicorp-release.asc"',
    "nomad.servers": '["nomad.circleci.internal:4647"]',
    "nomad.tls.ca_file": '"/path/to/nomad/ca.pem"',
    "nomad.tls.cert_file": '"/path/to/nomad/client.pem"',
    "nomad.tls.key_file": '"/path/to/nomad/client-key.pem"',
}
# Written as values, not left to defaults: the server line is the operator's decision (a later
# toolkit's newer default line must not move an install), and a new install starts from the
# distribution's Docker (no extra repository key to fetch).
SAFE_DEFAULTS: dict[str, str] = {
    "schema_version": str(SCHEMA_VERSION),
    "server.version": json.dumps(LATEST),
    "docker.install_source": '"docker.io"',
}


@dataclass(frozen=True)
class ChecklistItem:
    item: str
    source: str  # as controls cite it (see controls/sources.py)
    controls: str = ""  # control ids enforcing it; empty: the operator's
    # None when the settings make the controls enforce it; else what still has to be set
    pending: Callable[[FleetSettings], str | None] = lambda settings: None


def _restricted_egress(settings: FleetSettings) -> str | None:
    return None if settings.network.restrict_egress else "set network.restrict_egress = true"


def _mtls(settings: FleetSettings) -> str | None:
    if tls_configured(settings):
        return None
    if settings.server.line.mtls_required:
        return "fill in nomad.tls (the deploy refuses without it)"
    return "fill in nomad.tls"


CHECKLIST: list[ChecklistItem] = [
    ChecklistItem(
        "Each Nomad client keeps 2 vCPU and 4 GB for coordinating builds",
        page_ref("server-3x-operations", "Nomad Clients"),
        "CCI-NMD-01, CCI-NMD-04",
    ),
    ChecklistItem(
        "Nomad clients no larger than 128 GB / 64 CPUs unless CircleCI agrees",
        page_ref("server-3x-operations", "Nomad Clients"),
        "CCI-NMD-01",
    ),
    ChecklistItem(
        "Nomad clients reach VM service machines on 22 (SSH) and 2376 (remote Docker)",
        page_ref("server-3x-operations", "CircleCI Server v3.x Operations Overview"),
        "CCI-NET-01",
        _restricted_egress,
    ),
    ChecklistItem(
        "Nomad clients reach the VCS on 22 (git) and 80/443 (API)",
        page_ref("server-3x-operations", "GitHub"),
        "CCI-NET-01",
        _restricted_egress,
    ),
    ChecklistItem(
        "Nomad clients and the cluster reach object storage (artifacts, caches, audit logs)",
        page_ref("server-3x-operations", "CircleCI Server v3.x Operations Overview"),
    ),
    ChecklistItem(
        "mTLS between Nomad clients and the Nomad control plane",
        server_4x_ref("mTLS between clients and servers is mandatory"),
        "CCI-NMD-03, CCI-NMD-04",
        _mtls,
    ),
    ChecklistItem(
        "Job containers cannot reach the cloud metadata endpoint or internal ranges",
        server_4x_ref("Job egress"),
        "CCI-NET-02",
    ),
    ChecklistItem(
        "Docker's default seccomp profile plus clone/setns/unshare for user namespaces",
        page_ref("security", "Integrations"),
        "CCI-DKR-03",
    ),
    ChecklistItem(
        "Minimise the secrets builds need; rotate them regularly and as people leave",
        page_ref("security", "Checklist To Using CircleCI Securely as a Customer"),
    ),
    ChecklistItem(
        "Keep secrets out of logs: no env/printenv, no echo, tools that print on error",
        page_ref("security", "Checklist To Using CircleCI Securely as a Customer"),
    ),
    ChecklistItem(
        "Least privilege in the VCS organisation and for cloud credentials (IAM)",
        page_ref("security", "Checklist To Using CircleCI Securely as a Customer"),
    ),
    ChecklistItem(
        "Restricted contexts shared only with the teams that need them",
        page_ref("security", "Checklist To Using CircleCI Securely as a Customer"),
    ),
    ChecklistItem(
        "Audit who holds SSH keys (cci-harden audit hunt flags new ones)",
        page_ref("security", "Checklist To Using CircleCI Securely as a Customer"),
    ),
    ChecklistItem(
        "Two-factor authentication on the VCS for every member",
        page_ref("security", "Checklist To Using CircleCI Securely as a Customer"),
    ),
    ChecklistItem(
        "Decide whether forked pull requests may receive environment variables",
        page_ref("security", "Checklist To Using CircleCI Securely as a Customer"),
    ),
    ChecklistItem(
        "Choose the GitHub instance once: it cannot be changed after setup",
        page_ref("server-3x-operations", "GitHub"),
    ),
]


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
        )
    return json.dumps(str(value))


def _section(model: type[BaseModel], instance: BaseModel, prefix: str) -> list[str]:
    lines: list[str] = []
    nested: list[tuple[str, type[BaseModel], BaseModel]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if key == "name":
            continue  # written in the header
        value = getattr(instance, name)
        if isinstance(value, BaseModel):
            nested.append((key, type(value), value))
            continue
        if field.description:
            lines.append(f"# {field.description}")
        if key in SAFE_DEFAULTS:
            lines.append(f"{name} = {SAFE_DEFAULTS[key]}")
        elif key in EXAMPLES:
            lines.append(f"# {name} = {EXAMPLES[key]}   # example: set your own")
        elif value is None:
            lines.append(f"# {name} =   # unset")
        else:
            dumped = value
            if isinstance(value, list) and value and isinstance(value[0], BaseModel):
                dumped = [v.model_dump(mode="json") for v in value]
            elif not isinstance(value, bool | int | float | str | list | dict | Path):
                dumped = str(value)
            # left as the default: a later toolkit's default (a newer Nomad for the server line,
            # a tighter limit) then reaches this inventory; uncomment to pin it
            lines.append(f"# {name} = {_toml_value(dumped)}   # default")
    for key, sub_model, sub in nested:
        lines += ["", f"[{key}]"]
        lines += _section(sub_model, sub, f"{key}.")
    return lines


def settings_toml(name: str) -> str:
    defaults = FleetSettings.model_construct()
    header = [
        f"# Settings of server install {name!r}, written by `cci-harden init {name}`.",
        "# Every field is listed with its description and default. Defaults stay commented out,",
        "# so a later toolkit's defaults apply: uncomment a line to pin it. Lines marked",
        "# 'example' need your own values before a deploy: `cci-harden config check` names what",
        "# is missing.",
        "# Any field can be overridden by environment, e.g. CCI_NOMAD__VERSION=1.7.7.",
        "",
        f"name = {json.dumps(name)}",
    ]
    body = _section(FleetSettings, defaults, "")
    return "\n".join(header + body) + "\n"


def checklist_text(settings: FleetSettings) -> str:
    """What these settings make the deploy enforce and verify, and what they do not (yet)."""
    enforced = [c for c in CHECKLIST if c.controls and c.pending(settings) is None]
    pending = [c for c in CHECKLIST if c.controls and c.pending(settings) is not None]
    lines = [
        "Pre-flight checklist (from CircleCI's documentation)",
        "",
        "Enforced and verified by cci-harden:",
    ]
    lines += [f"  [x] {c.item} ({c.source}; {c.controls})" for c in enforced]
    if pending:
        lines += ["", "Enforced once the settings say so:"]
        lines += [
            f"  [ ] {c.item} ({c.source}; {c.controls}): {c.pending(settings)}" for c in pending
        ]
    lines += ["", "Stays with the operator:"]
    lines += [f"  [ ] {c.item} ({c.source})" for c in CHECKLIST if not c.controls]
    return "\n".join(lines)


def init_inventory(name: str, directory: Path) -> list[Path]:
    if not name.replace("-", "").replace("_", "").isalnum():
        raise CciHardenError(f"inventory name {name!r}: use letters, digits, '-' and '_'")
    inventory = directory / name
    settings = directory / f"{name}.toml"
    existing = [p for p in (inventory, settings) if p.exists()]
    if existing:
        raise CciHardenError(
            f"{', '.join(str(p) for p in existing)} already exists; init never overwrites an "
            "inventory (choose another name, or edit the existing one)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    settings.write_text(settings_toml(name))
    inventory.write_text(INVENTORY_FILE.format(name=name))
    try:
        load_settings(inventory)
    except CciHardenError:
        inventory.unlink()
        settings.unlink()
        raise
    return [inventory, settings]
