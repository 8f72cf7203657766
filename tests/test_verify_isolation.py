"""verify runs only the code the operator meant: no conftest.py from above the inventory, and
every host asked for is in the reports or the run stops, whatever its name holds.

The one host is on loopback with nothing listening: verify reaches no machine.
"""

from __future__ import annotations

import subprocess

import pytest

from cci_harden.fleet.inventory import Inventory
from cci_harden.model.errors import CciHardenError
from cci_harden.verify.runner import verify_inventory

from .test_settings import VALID, write_inventory


@pytest.fixture
def nested_inventory(tmp_path):
    """An inventory two directories below a directory someone else could write to."""
    outer = tmp_path / "shared"
    inner = outer / "site" / "inventories"
    inner.mkdir(parents=True)
    (outer / "conftest.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('imported')\n")
    toml = VALID.replace('address = "192.0.2.10"', 'address = "127.0.0.1", port = 9')
    inventory = write_inventory(inner, toml)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "key")], check=True
    )
    key = " ".join((tmp_path / "key.pub").read_text().split()[:2])
    (inner / "acme.known_hosts").write_text(f"[127.0.0.1]:9 {key}\n")
    (inner / "acme.checks").mkdir()
    (inner / "acme.checks" / "conftest.py").write_text(
        f"open({str(tmp_path / 'checks-ran')!r}, 'w').write('imported')\n"
    )
    return Inventory.load(inventory), tmp_path


def test_a_conftest_above_the_inventory_is_never_imported(nested_inventory):
    inventory, tmp_path = nested_inventory
    (report,) = verify_inventory(inventory, control_ids=["CCI-SSH-01"])
    assert (report.host, report.reachable) == ("client-1", False)
    assert not (tmp_path / "ran").exists()
    assert (tmp_path / "checks-ran").exists()  # the inventory's own site checks still load


def test_a_host_not_in_the_inventory_stops_the_run(nested_inventory):
    inventory, _ = nested_inventory
    stranger = inventory.hosts[0].model_copy(update={"name": "client-9"})
    with pytest.raises(CciHardenError, match="pytest exit 4"):
        verify_inventory(inventory, hosts=[stranger], control_ids=["CCI-SSH-01"])
