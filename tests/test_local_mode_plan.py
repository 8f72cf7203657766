"""Local mode without a host: what an image bake plans, and the first-boot unit it writes."""

from __future__ import annotations

import dataclasses

import pytest

from cci_harden import controls as catalogue
from cci_harden.apply.first_boot import DONE_FILE, first_boot_unit
from cci_harden.config.settings import load_settings
from cci_harden.model.errors import CciHardenError
from cci_harden.model.hostinfo import HostInfo
from cci_harden.model.kinds import ManagedFile, ManifestEntry, Package
from cci_harden.model.plan import IMAGE, plan_host, settle
from cci_harden.model.snapshot import Snapshot

from .conftest import INVENTORIES

VM = HostInfo(4, 16384, "debian", "12", "bookworm", container="none")


@pytest.fixture(scope="module")
def settings():
    return load_settings(INVENTORIES / "prod")


def _plans(settings, stage: str = ""):
    return plan_host(catalogue.CATALOGUE, settings, VM, "nomad", stage=stage)


def _every_resource(settings) -> dict:
    """What a full converge manages, control by control (those whose material is here)."""
    found = {}
    for control in catalogue.CATALOGUE:
        try:
            found.update({r.id: r for r in control.resources(settings, VM)})
        except CciHardenError:
            continue
    return found


def test_an_image_carries_what_is_on_disk_and_no_private_key(settings):
    full = _every_resource(settings)
    toolkit = (catalogue.LIFECYCLE, catalogue.RECOVERY)
    plans = [p for p in _plans(settings, IMAGE) if p.control not in toolkit]
    image = {r.id: r for p in plans for r in p.resources}
    assert image and set(image) < set(full)
    left = {full[i].kind for i in set(full) - set(image)}
    # what runs (a loaded table, a live sysctl, dockerd's running configuration, the size of
    # the machine that bakes) is made on the instance; files and packages are in the image
    assert {"sysctl", "nft-table", "docker-runtime", "host-size"} <= left
    assert not any(full[i].runtime for i in image)
    assert not any(isinstance(r, ManagedFile) and r.secret for r in image.values())
    assert any(isinstance(r, Package) for r in image.values())


def test_a_control_whose_material_is_not_in_the_image_is_left_to_first_boot(settings):
    # the example inventory names key files that do not exist on this machine
    plans = {p.control.id: p for p in _plans(settings, IMAGE)}
    nomad_tls = plans["CCI-NMD-03"]
    assert nomad_tls.deferred and nomad_tls.off.startswith("left to first boot: nomad.tls")
    assert not plans["CCI-OS-01"].deferred


def test_what_a_deferred_control_managed_stays_listed_until_first_boot(settings):
    plans = _plans(settings, IMAGE)
    (manifest,) = plans[-1].resources
    listed = ManifestEntry("file", "/etc/nomad.d/tls/client-key.pem", "CCI-NMD-03")
    host_manifest = dataclasses.replace(manifest, entries=(listed,))
    snapshot = Snapshot(states={"manifest": {manifest.key: ((listed,), host_manifest.content())}})
    (settled,) = settle(plans, snapshot)[-1].resources
    assert listed in settled.entries  # not taken for dropped: the image stage did not decide it
    assert settled.stale(((listed,), "")) == []


def test_the_first_boot_unit_runs_the_same_catalogue_once_before_nomad():
    unit = first_boot_unit("/etc/cci-harden/inventories/prod", "nomad", "/opt/cci/bin/cci-harden")
    assert (
        "ExecStart=/opt/cci/bin/cci-harden apply --local /etc/cci-harden/inventories/prod "
        "--stage first-boot --profile nomad" in unit
    )
    assert "Before=nomad.service" in unit and f"ConditionPathExists=!{DONE_FILE}" in unit
    assert f"ExecStartPost=/usr/bin/touch {DONE_FILE}" in unit
    # enabling it makes Nomad require it: a failed first boot leaves Nomad stopped
    install = unit.split("[Install]", 1)[1].split()
    assert "RequiredBy=nomad.service" in install


@pytest.mark.parametrize(
    "inventory",
    [
        "relative/prod",
        "/etc/x y/prod",
        "/etc/%h/prod",
        "/etc/$HOME/prod",
        "/etc/../root/prod",
        "/etc/prod\nExecStartPre=/bin/sh",
    ],
)
def test_the_unit_takes_only_plain_absolute_paths(inventory):
    with pytest.raises(ValueError, match="absolute path of letters"):
        first_boot_unit(inventory, "nomad", "/opt/cci/bin/cci-harden")


def test_a_plain_local_apply_refuses_a_machine_the_inventory_does_not_list(settings, monkeypatch):
    from cci_harden.apply import local_run

    prod = INVENTORIES / "prod"
    listed = settings.inventory.hosts[0]
    # by name or by address: the machine is one of the fleet's hosts
    local_run.refuse_unlisted_machine(settings, prod, {listed.name}, set())
    local_run.refuse_unlisted_machine(settings, prod, {"other"}, {str(listed.address)})
    with pytest.raises(CciHardenError, match=r"\(laptop\) is not a host of .*pass --yes"):
        local_run.refuse_unlisted_machine(settings, prod, {"laptop"}, {"10.9.9.9"})

    def tripwire(*args, **kwargs):
        raise AssertionError("pyinfra was started on this machine")

    monkeypatch.setattr(local_run.os, "geteuid", lambda: 0)
    monkeypatch.setattr(local_run, "this_machine", lambda: ({"laptop"}, {"10.9.9.9"}))
    monkeypatch.setattr(local_run.subprocess, "run", tripwire)
    with pytest.raises(CciHardenError, match="is not a host of"):
        local_run.apply_local(prod, "nomad", "")
