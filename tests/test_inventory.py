"""Inventories: pyinfra runs exactly as operators type it, and never silently against no host."""

from __future__ import annotations

import pytest

from .conftest import INVENTORIES, cli_here, run_pyinfra
from .test_settings import BASE, write_inventory

KNOWN = (
    "192.0.2.10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
)


def test_prod_example_without_host_keys_fails_before_connecting():
    proc = run_pyinfra(INVENTORIES / "prod", "deploys/nomad.py")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no host key for nomad-client-1, nomad-client-2" in proc.stderr
    assert "keyed by the host's address" in proc.stderr and "'192.0.2.11 ssh-ed25519" in proc.stderr
    assert "Connecting to hosts" not in proc.stdout + proc.stderr


def test_inventory_with_zero_hosts_fails(tmp_path):
    inventory = write_inventory(tmp_path, 'name = "empty"\n')
    proc = run_pyinfra(inventory, "deploys/nomad.py")
    assert proc.returncode == 2
    assert "has no hosts" in proc.stderr


@pytest.mark.parametrize("runner", ["pyinfra", "cci-harden"])
def test_a_settings_file_given_as_the_inventory_is_one_line(runner):
    settings_file = str(INVENTORIES / "prod.toml")
    if runner == "pyinfra":
        proc = run_pyinfra(settings_file, "deploys/nomad.py")
    else:
        proc = cli_here("verify", settings_file)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{INVENTORIES / 'prod'}" in proc.stderr.splitlines()[-1]


def test_limit_matching_no_host_fails(tmp_path):
    inventory = write_inventory(tmp_path, BASE)
    (tmp_path / "acme.known_hosts").write_text(KNOWN)
    proc = run_pyinfra(inventory, "deploys/nomad.py", "--limit", "client-9*")
    assert proc.returncode == 2
    assert "--limit client-9* matches no host" in proc.stderr


def test_bad_settings_fail_pyinfra_before_any_host(tmp_path):
    inventory = write_inventory(tmp_path, BASE + '[nomad]\nversion = "1.x"\n')
    proc = run_pyinfra(inventory, "deploys/nomad.py")
    assert proc.returncode == 2
    assert "nomad.version" in proc.stderr and "Connecting" not in proc.stdout + proc.stderr


def test_cli_refuses_directory_and_missing_inventory():
    proc = cli_here("config", "check", "inventories")
    assert proc.returncode == 2 and "is a directory" in proc.stderr
    proc = cli_here("config", "check", "inventories/typo")
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_a_mistyped_inventory_is_an_error_not_a_deploy_to_no_host():
    """pyinfra runs an unknown path as zero hosts and exits 0; config.py makes it exit 2."""
    proc = run_pyinfra("inventories/does-not-exist", "deploys/nomad.py")
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert "the inventory has no hosts (a mistyped inventory path?" in proc.stderr
    assert "Beginning operation run" not in proc.stdout + proc.stderr


def test_a_group_named_like_pyinfras_own_is_refused(tmp_path):
    toml = BASE.replace('address = "192.0.2.10" }', 'address = "192.0.2.10", groups = ["all"] }')
    proc = cli_here("config", "check", str(write_inventory(tmp_path, toml)))
    assert proc.returncode == 2
    assert "inventory.hosts.0.groups: group name(s) all are pyinfra's own" in proc.stderr


def test_a_cert_authority_line_is_refused_in_one_line_not_a_traceback(tmp_path):
    """paramiko 4 (pyinfra's SSH client) fails on a known_hosts file with a marker line."""
    inventory = write_inventory(tmp_path, BASE)
    ca = KNOWN.replace("192.0.2.10", "@cert-authority *.example.test")
    (tmp_path / "acme.known_hosts").write_text(ca + KNOWN)
    proc = run_pyinfra(inventory, "deploys/nomad.py")
    assert proc.returncode == 2
    says = "acme.known_hosts line 1: @cert-authority lines cannot be read by paramiko"
    assert says in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_malformed_known_hosts_line_is_one_line(tmp_path):
    inventory = write_inventory(tmp_path, BASE)
    (tmp_path / "acme.known_hosts").write_text("192.0.2.10 ssh-ed25519 not-base64!\n")
    proc = cli_here("config", "check", str(inventory))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "a line is not a known_hosts entry" in proc.stderr
