"""``cci-harden verify`` hands the plugin the inventory it loaded: a cloud fleet is listed once
per run, and the hosts reported are the hosts listed (nothing dropped between two listings)."""

from __future__ import annotations

from cci_harden.config.settings import HostEntry, load_settings
from cci_harden.fleet.inventory import Inventory
from cci_harden.verify import plugin
from cci_harden.verify.runner import verify_inventory

from .test_settings import VALID, write_inventory


def test_the_plugin_takes_the_inventory_it_is_handed(tmp_path, monkeypatch):
    path = write_inventory(tmp_path, VALID)
    # as a cloud listing gives them: nothing listens on port 1 of loopback, so each is
    # unreachable at once, and reported
    listed = (HostEntry(name="i-0a1", address="127.0.0.1", port=1),
              HostEntry(name="i-0b2", address="127.0.0.1", port=1))  # fmt: skip
    inventory = Inventory(path=path, settings=load_settings(path), listed=listed)

    def second_listing(*args, **kwargs):
        raise AssertionError("the inventory was loaded (and a cloud fleet listed) again")

    monkeypatch.setattr(plugin.Inventory, "load", second_listing)
    reports = verify_inventory(inventory, control_ids=["CCI-SSH-01"])
    assert [r.host for r in reports] == ["i-0a1", "i-0b2"]
    assert all(not r.reachable for r in reports)
