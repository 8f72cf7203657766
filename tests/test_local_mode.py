"""Local mode: an image bake plus its first boot ends where an SSH deploy ends.

A fresh test host (tb4) gets the toolkit installed as a Packer provisioner would (a virtualenv
from wheels, no index), bakes itself with ``cci-harden apply --local --stage image``, and then
gets what cloud-init would write at boot (the Nomad client's private key and certificates) before
its first-boot unit runs. From outside: verify finds nothing, and an SSH deploy changes nothing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cci_harden.apply.first_boot import DONE_FILE, UNIT
from cci_harden.fleet.inventory import Inventory

from .conftest import INVENTORIES, TESTBED_HOSTS, changed_hosts, pyinfra_json, run_cli
from .local_toolkit import install, on_host

pytestmark = pytest.mark.testbed

HOST = "tb4"
IMAGE_INVENTORY = "/etc/cci-harden/inventories/testbed"


@pytest.fixture(scope="module")
def fresh_host(testbed):
    """tb4, booted fresh for this module and removed after it (the others keep running)."""
    for count in (TESTBED_HOSTS, TESTBED_HOSTS + 1):
        proc = run_cli("testbed", "up", "--hosts", str(count), timeout=900)
        assert proc.returncode == 0, proc.stderr
    try:
        yield Inventory.load(INVENTORIES / "testbed")
    finally:
        proc = run_cli("testbed", "up", "--hosts", str(TESTBED_HOSTS), timeout=900)
        assert proc.returncode == 0, proc.stderr


def _send_file(inventory, local: str, remote: str, mode: str = "0644") -> None:
    data = Path(local).read_bytes()
    proc = subprocess.run(
        [
            "ssh",
            "-F",
            str(inventory.ssh_config),
            HOST,
            f'install -d -m 0755 "$(dirname {remote})" && cat > {remote} && chmod {mode} {remote}',
        ],
        input=data,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def baked(fresh_host, tmp_path_factory):
    """tb4 after the image stage: the toolkit, the inventory's settings and the release key in
    the image; no private key."""
    inventory = fresh_host
    executable = install(inventory, HOST, tmp_path_factory.mktemp("local-toolkit"))
    settings = inventory.settings
    _send_file(inventory, str(INVENTORIES / "testbed.toml"), f"{IMAGE_INVENTORY}.toml")
    _send_file(inventory, str(settings.nomad.gpg_key_file), str(settings.nomad.gpg_key_file))
    output = on_host(
        inventory, HOST, f"{executable} apply --local {IMAGE_INVENTORY} --stage image", timeout=1200
    )
    return inventory, executable, output


def test_the_image_stage_writes_no_private_key_and_starts_nothing(baked):
    inventory, _, output = baked
    assert "CCI-NMD-03 left to first boot" in output
    state = on_host(
        inventory,
        HOST,
        "systemctl is-enabled nomad cci-harden-firewall " + UNIT + "; "
        "systemctl is-active nomad cci-harden-firewall; "
        "nft list table inet cci_ingress >/dev/null 2>&1 && echo loaded || echo not-loaded; "
        "ls /etc/nomad.d/tls 2>/dev/null | wc -l; "
        f"test -e {DONE_FILE} && echo done || echo not-done",
    )
    lines = state.split()
    assert lines[:3] == ["enabled", "enabled", "enabled"], state
    assert "active" not in lines[3:5], state  # neither Nomad nor the firewall runs in an image
    assert lines[5:] == ["not-loaded", "0", "not-done"], state


def test_first_boot_ends_where_an_ssh_deploy_ends(baked, tmp_path):
    inventory, _, _ = baked
    tls = inventory.settings.nomad.tls
    # what cloud-init's write_files would put there at boot
    for path, mode in ((tls.ca_file, "0644"), (tls.cert_file, "0644"), (tls.key_file, "0600")):
        _send_file(inventory, str(path), str(path), mode)
    on_host(
        inventory,
        HOST,
        f"systemctl start {UNIT} || {{ journalctl -u {UNIT} --no-pager | tail -80; exit 1; }}",
        timeout=1200,
    )
    # what first boot queued (Nomad's start) runs once it is done
    state = on_host(
        inventory,
        HOST,
        "for i in $(seq 1 60); do systemctl is-active -q nomad && break; sleep 1; done; "
        f"systemctl is-active nomad; test -e {DONE_FILE} && echo done",
    )
    assert state.split() == ["active", "done"], state
    report = tmp_path / "verify.json"
    proc = run_cli("verify", str(inventory.path), "--limit", HOST, "--json", str(report))
    assert proc.returncode == 0, proc.stdout[-4000:]
    again = pyinfra_json(inventory.path, "deploys/nomad.py", "--limit", HOST)
    assert changed_hosts(again) == {}
