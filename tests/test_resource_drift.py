"""Every resource kind on a real test host: drift made by hand is named by verify (host, control,
resource), repaired by the next deploy, and a second deploy changes nothing. Switches and waivers
mean the same to both sides."""

from __future__ import annotations

import json
import time

import pytest

from cci_harden.model.interruption import Interruption

from .conftest import changed_hosts, pyinfra_json, run_cli, ssh

pytestmark = pytest.mark.testbed

HOST = "tb1"
OVERRIDE = "/etc/sysctl.d/99-zz-local.conf"

# (shell command making the drift, control id, resource id named by verify)
DRIFTS = [
    ("apt-get remove -y -q libpam-tmpdir", "CCI-OS-04", "package:libpam-tmpdir"),
    ("chmod 2777 /var/log/journal", "CCI-OS-07", "directory:/var/log/journal"),
    ("systemctl disable -q apt-daily.timer", "CCI-OS-07", "service:apt-daily.timer"),
    ("systemctl mask -q apt-daily-upgrade.timer", "CCI-OS-07", "service:apt-daily-upgrade.timer"),
    ("systemctl stop nomad", "CCI-NMD-05", "service:nomad"),
    ("chown nobody /etc/issue", "CCI-SSH-01", "file:/etc/issue"),
    ("chmod 0666 /run/docker.sock", "CCI-DKR-04", "mode:/run/docker.sock"),
    (
        f"echo 'net.ipv4.conf.all.send_redirects = 1' > {OVERRIDE}",
        "CCI-OS-01",
        "sysctl:net.ipv4.conf.all.send_redirects",
    ),
    ("usermod -s /bin/bash daemon", "CCI-OS-04", "accounts:uid<1000"),
    ("chmod u+s /usr/bin/newgrp", "CCI-OS-05", "setuid:/usr/bin/newgrp"),
    (
        "sed -i 's/^UMASK.*/UMASK 022/' /etc/login.defs",
        "CCI-OS-04",
        "config-line:/etc/login.defs:UMASK",
    ),
    (
        "nft delete rule inet cci_ingress input handle $(nft -a list chain inet cci_ingress input"
        " | awk '/Nomad RPC/ {print $NF; exit}')",
        "CCI-NET-01",
        "nft-table:ingress",
    ),
]


def verify_json(inventory, tmp_path, name: str, *extra: str, env=None) -> tuple[int, dict]:
    report = tmp_path / f"{name}.json"
    proc = run_cli(
        "verify", str(inventory.path), "--limit", HOST, "--json", str(report), *extra, env=env
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    (host,) = json.loads(report.read_text())["hosts"]
    return proc.returncode, {o["control"]: o for o in host["outcomes"]}


def named(outcomes: dict, repairable_only: bool = False) -> set[tuple[str, str]]:
    """(control, resource) of every finding of a failing control. ``repairable_only`` leaves out
    what this host cannot show or change (a container's kernel-wide sysctl): no deploy acts on it.
    """
    return {
        (cid, f["resource"])
        for cid, o in outcomes.items()
        if o["status"] == "fail"
        for f in o["findings"]
        if f["verifiable"] or not repairable_only
    }


def plan_diff(inventory) -> list[dict]:
    """``cci-harden plan --diff`` of the host: the changes its deploy would make."""
    proc = run_cli("plan", str(inventory.path), "--diff", "--host", HOST, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (host,) = json.loads(proc.stdout)["hosts"]
    return host["changes"]


def test_each_kind_of_drift_is_named_and_repaired(deployed, tmp_path):
    inventory, _ = deployed
    try:
        for command, _control, _resource in DRIFTS:
            ssh(inventory, HOST, command)
        rc, outcomes = verify_json(inventory, tmp_path, "drifted")
        assert rc == 1
        assert {(c, r) for _, c, r in DRIFTS} <= named(outcomes), named(outcomes)
        sysctl = outcomes["CCI-OS-01"]["findings"]
        assert any(OVERRIDE in f["found"] for f in sysctl), sysctl

        # the plan, read from the host, predicts the deploy: the resources verify names that a
        # deploy can change, and the deploy then changes nothing for a control the plan did not name
        planned = plan_diff(inventory)
        assert {(c["control"], c["resource"]) for c in planned} == named(outcomes, True)
        assert {c["interrupts"] for c in planned} <= {i.label for i in Interruption}

        repaired = pyinfra_json(inventory.path, "deploys/nomad.py", "--limit", HOST)
        assert repaired["results"]["failed_hosts"] == []
        tags = {name[1:].split("]", 1)[0] for name in changed_hosts(repaired)}
        assert tags <= {c["control"] for c in planned}, tags
        assert plan_diff(inventory) == []
        rc, outcomes = verify_json(inventory, tmp_path, "repaired")
        assert rc == 0, named(outcomes)
        # the other file's line is replaced by a comment saying why
        assert (
            "disabled by cci-harden (CCI-OS-01)" in ssh(inventory, HOST, f"cat {OVERRIDE}").stdout
        )
        again = pyinfra_json(inventory.path, "deploys/nomad.py", "--limit", HOST)
        assert changed_hosts(again) == {}
    finally:
        ssh(
            inventory, HOST, f"rm -f {OVERRIDE}; systemctl unmask -q apt-daily-upgrade.timer", False
        )


def test_a_switched_off_control_is_neither_applied_nor_checked_and_its_files_go(deployed, tmp_path):
    inventory, _ = deployed
    off = {"CCI_CONTROLS__DISABLED": '["CCI-OS-03"]'}
    limits = "/etc/security/limits.d/10-cci-harden.conf"
    rc, outcomes = verify_json(inventory, tmp_path, "off-before", env=off)
    assert outcomes["CCI-OS-03"]["status"] == "not-applicable"
    assert "controls.disabled" in outcomes["CCI-OS-03"]["note"]
    # the manifest still lists CCI-OS-03's files: verify says the deploy will remove them
    assert rc == 1 and ("CCI-TK-01", "manifest:/var/lib/cci-harden/managed/nomad.json") in named(
        outcomes
    )
    result = pyinfra_json(inventory.path, "deploys/nomad.py", "--limit", HOST, env=off)
    removed = [name for name in changed_hosts(result) if "CCI-OS-03 no longer applies" in name]
    assert f"[CCI-TK-01] remove {limits} (CCI-OS-03 no longer applies)" in removed
    assert ssh(inventory, HOST, f"test -e {limits}", check=False).returncode == 1
    rc, _ = verify_json(inventory, tmp_path, "off-after", env=off)
    assert rc == 0
    # switched on again: the next deploy puts the files back
    result = pyinfra_json(inventory.path, "deploys/nomad.py", "--limit", HOST)
    assert f"[CCI-OS-03] {limits}" in changed_hosts(result)
    assert verify_json(inventory, tmp_path, "on-again")[0] == 0


def test_a_waiver_leaves_its_deviation_in_place_on_both_sides(deployed, tmp_path):
    inventory, _ = deployed
    waivers = tmp_path / "waivers.toml"
    waivers.write_text(
        '[[waiver]]\ncontrol = "CCI-OS-07"\nhosts = ["tb1"]\n'
        'resources = ["service:apt-daily.timer"]\n'
        'justification = "maintenance window handled by the image pipeline"\n'
        'owner = "platform@example.com"\nexpires = 2099-12-31\n'
    )
    live = inventory.path.with_name(inventory.path.name + ".waivers.toml")
    ssh(inventory, HOST, "systemctl disable -q apt-daily.timer")
    try:
        live.write_text(waivers.read_text())
        rc, outcomes = verify_json(inventory, tmp_path, "waived")
        assert rc == 0 and outcomes["CCI-OS-07"]["status"] == "waived"
        result = pyinfra_json(inventory.path, "deploys/nomad.py", "--limit", HOST)
        assert changed_hosts(result) == {}
        assert ssh(
            inventory, HOST, "systemctl is-enabled apt-daily.timer", False
        ).stdout.strip() == ("disabled")
        # a deviation the waiver does not name still fails and is still repaired
        ssh(inventory, HOST, "chmod 2777 /var/log/journal")
        rc, outcomes = verify_json(inventory, tmp_path, "partly")
        assert rc == 1 and outcomes["CCI-OS-07"]["status"] == "fail"
    finally:
        live.unlink(missing_ok=True)
    result = pyinfra_json(inventory.path, "deploys/nomad.py", "--limit", HOST)
    assert "[CCI-OS-07] apt-daily.timer enabled" in " ".join(changed_hosts(result))
    time.sleep(0.5)
    assert verify_json(inventory, tmp_path, "unwaived")[0] == 0
