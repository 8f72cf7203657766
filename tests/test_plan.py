"""``cci-harden plan``: every control's state, resources and files per host, with no host."""

from __future__ import annotations

import json

import pytest

from .conftest import INVENTORIES, cli_here
from .test_preflight import complete_example, release_key  # noqa: F401  (a real OpenPGP key)
from .test_waivers import waiver


def example(tmp_path, release_key, extra: str = ""):  # noqa: F811
    return complete_example(tmp_path, release_key, extra=extra)


def states(plan: dict, host: str) -> dict[str, str]:
    (entry,) = [h for h in plan["hosts"] if h["name"] == host]
    return {c["id"]: c["state"] for c in entry["controls"]}


def test_the_plan_shows_each_control_and_writes_every_file_but_secrets(tmp_path, release_key):  # noqa: F811
    inventory = example(tmp_path, release_key)
    out = tmp_path / "plan"
    proc = cli_here("plan", str(inventory), "--format", "json", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["server_line"] == "4.8" and [h["name"] for h in plan["hosts"]] == [
        "nomad-client-1", "nomad-client-2"]  # fmt: skip
    found = states(plan, "nomad-client-1")
    assert found["CCI-SSH-01"] == "on" and found["CCI-NMD-03"] == "on"
    assert found["CCI-OS-08"] == "not applicable"  # no log collector set
    root = out / "nomad-client-1"
    for path in ("etc/ssh/sshd_config.d/00-cci-harden.conf", "etc/nomad.d/client.hcl",
                 "etc/docker/daemon.json", "etc/cci-harden/firewall/ingress.nft"):  # fmt: skip
        assert (root / path).is_file(), path
    assert json.loads((root / "etc/docker/daemon.json").read_text())  # as the deploy writes it
    written = "".join(p.read_text() for p in root.rglob("*") if p.is_file())
    assert "PRIVATE KEY" not in written and "(a secret: not written by plan)" in written
    assert "wrote" in proc.stderr


def test_switches_and_waivers_are_shown_per_host(tmp_path, release_key):  # noqa: F811
    extra = '\n[controls.groups.legacy]\ndisabled = ["CCI-OS-07"]\n'
    inventory = example(tmp_path, release_key, extra)
    toml = inventory.with_suffix(".toml")
    toml.write_text(toml.read_text().replace(
        '{ name = "nomad-client-2", address = "192.0.2.12" }',
        '{ name = "nomad-client-2", address = "192.0.2.12", groups = ["legacy"] }'))  # fmt: skip
    (tmp_path / "prod.waivers.toml").write_text(waiver('"nomad-client-1"', "2030-01-31"))
    plan = json.loads(cli_here("plan", str(inventory), "--format", "json").stdout)
    assert states(plan, "nomad-client-1")["CCI-NET-01"] == "waived"
    assert states(plan, "nomad-client-1")["CCI-OS-07"] == "on"
    assert states(plan, "nomad-client-2")["CCI-OS-07"] == "off"
    assert states(plan, "nomad-client-2")["CCI-NET-01"] == "on"
    table = cli_here("plan", str(inventory), "--host", "nomad-client-2").stdout
    assert "nomad-client-1" not in table and "switched off for group legacy" in table


def test_material_not_yet_supplied_is_named_not_fatal():
    proc = cli_here("plan", str(INVENTORIES / "prod"))
    assert proc.returncode == 0, proc.stderr
    assert "needs material" in proc.stdout and "docker.gpg_key_file: cannot read" in proc.stdout
    assert cli_here("plan", str(INVENTORIES / "prod"), "--host", "nope").returncode == 2


def test_a_diff_says_per_host_what_changes_and_what_it_interrupts():
    from cci_harden.rollout.plan_command import diff_table

    diffs = {
        "inventory": "prod",
        "hosts": [
            {"name": "a", "error": "", "interrupts": "nothing", "changes": []},
            {"name": "b", "error": "Connection refused", "interrupts": "nothing", "changes": []},
            {
                "name": "c",
                "error": "",
                "interrupts": "a restart that kills builds",
                "changes": [
                    {"control": "CCI-DKR-02", "resource": "file:/etc/docker/daemon.json",
                     "interrupts": "a restart that kills builds", "why": "content differs"},
                ],
            },
        ],
    }  # fmt: skip
    text = diff_table(diffs)
    assert "a: nothing to change" in text and "b: UNREACHABLE Connection refused" in text
    assert "c: 1 change(s), at worst a restart that kills builds" in text
    assert "[CCI-DKR-02] file:/etc/docker/daemon.json: a restart that kills builds" in text


def test_plan_writes_nothing_outside_its_folder(tmp_path):
    from cci_harden.fleet.plan_view import write_files
    from cci_harden.model.errors import CciHardenError

    for path in ("/etc/../../outside", "relative/file"):
        plan = {"hosts": [{"name": "h", "files": {path: "x"}}]}
        with pytest.raises(CciHardenError, match="is not a plain absolute path"):
            write_files(plan, tmp_path / "out")
    assert not (tmp_path / "outside").exists()
