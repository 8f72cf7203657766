"""Local mode: the catalogue applied on the host itself, for image bakes and first boot.

``cci-harden apply --local INVENTORY --stage image`` (a Packer shell provisioner) writes what an
image can carry and a first-boot unit; at the instance's first boot that unit runs
``--stage first-boot``, which is an ordinary converge on the host itself: so a baked image plus
its first boot ends where an SSH deploy ends. pyinfra runs as a child process (``@local``), with
the inventory's settings file and the stage passed as host data.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from ..config.settings import load_settings
from ..controls import PROFILES
from ..fleet.preflight import require_ready
from ..model.errors import CciHardenError
from ..model.hostinfo import STAND_IN
from ..model.plan import FIRST_BOOT, IMAGE, plan_host

# The deploy file pyinfra runs: the same entry point as deploys/PROFILE.py, for a toolkit
# installed without its repository (an image has the package, not the checkout).
DEPLOY = "from cci_harden.apply.deploy import apply_profile\n\napply_profile({profile!r})\n"


def deferred_controls(inventory: Path, profile: str) -> list[tuple[str, str]]:
    """(control id, why) of what an image bake leaves to first boot (missing material)."""
    settings = load_settings(inventory)
    plans = plan_host(PROFILES[profile], settings, STAND_IN, profile, stage=IMAGE)
    return [(p.control.id, p.off) for p in plans if p.deferred]


def this_machine() -> tuple[set[str], set[str]]:
    """This machine's names (short and full) and its addresses, as ``ip`` lists them."""
    names = {socket.gethostname(), socket.getfqdn()}
    names |= {name.split(".", 1)[0] for name in names}
    addresses: set[str] = set()
    try:
        listing = subprocess.run(
            ["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=10
        ).stdout
        for link in json.loads(listing or "[]"):
            addresses |= {a["local"] for a in link.get("addr_info", []) if "local" in a}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass  # nothing matches by address; the names still may
    return names, addresses


def refuse_unlisted_machine(settings, inventory: Path, names: set[str], addresses: set[str]):
    """A plain ``apply --local`` hardens whatever it runs on (sshd, firewall, accounts): refused
    on a machine the inventory does not list, unless the operator said --yes."""
    listed = [h for h in settings.inventory.hosts if h.name in names or str(h.address) in addresses]
    if listed:
        return
    source = " (its hosts come from a cloud listing)" if settings.inventory.source else ""
    raise CciHardenError(
        f"apply --local: this machine ({', '.join(sorted(names))}) is not a host of "
        f"{inventory}{source}; it would be hardened as a Nomad client. Add it to the inventory, "
        "or pass --yes if that is what you mean (image bakes pass --stage)"
    )


def apply_local(
    inventory: Path, profile: str, stage: str, log=print, confirmed: bool = False
) -> int:
    """Run the profile's deploy on this host; pyinfra's exit code."""
    if profile not in PROFILES:
        raise CciHardenError(f"unknown profile {profile!r} (one of {', '.join(PROFILES)})")
    if os.geteuid() != 0:
        raise CciHardenError("apply --local: run as root (it hardens this host)")
    inventory = inventory.resolve()
    settings = load_settings(inventory)  # every bad field at once, exit 2
    if not stage and not confirmed:
        refuse_unlisted_machine(settings, inventory, *this_machine())
    if stage == IMAGE:
        for control_id, why in deferred_controls(inventory, profile):
            log(f"cci-harden: {control_id} {why}")
    else:
        require_ready(settings)
    with tempfile.TemporaryDirectory(prefix="cci-harden-local-") as directory:
        deploy = Path(directory) / f"{profile}.py"
        deploy.write_text(DEPLOY.format(profile=profile))
        command = [
            str(Path(sys.executable).with_name("pyinfra")),
            "-y",
            "@local",
            "--data",
            f"cci_inventory={inventory}",
            "--data",
            f"cci_stage={stage}",
            str(deploy),
        ]
        return subprocess.run(command, check=False).returncode


__all__ = ["FIRST_BOOT", "IMAGE", "apply_local", "deferred_controls"]
