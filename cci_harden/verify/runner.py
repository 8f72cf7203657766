"""Run the verify stage: the pytest plugin (``verify.plugin``) in process.

``verify_inventory`` is what ``cci-harden verify`` runs:
pytest with only the plugins verify needs (no terminal output, no cache), the same tests a
``pytest --cci-inventory`` run collects, and pytest's own JUnit writer when a JUnit report is
asked for; it returns each host's outcomes for the JSON, Markdown and terminal reports.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..config.settings import HostEntry, settings_path
from ..fleet.inventory import Inventory
from ..model.errors import CciHardenError
from .hosts import HostReport
from .plugin import PLUGIN_NAME, LoadedInventory


class _Results:
    """Hands the plugin's session back to the caller once pytest has run."""

    def __init__(self) -> None:
        self.reports: list[HostReport] = []

    def pytest_sessionfinish(self, session) -> None:
        verify = session.config.pluginmanager.get_plugin(PLUGIN_NAME)
        if verify is not None:
            self.reports = verify.host_reports()


def verify_inventory(
    inventory: Inventory,
    hosts: Sequence[HostEntry] | None = None,
    profile: str = "nomad",
    control_ids: Sequence[str] = (),
    waivers: Path | None = None,
    junit: Path | None = None,
    progress: bool = False,
) -> list[HostReport]:
    """Run the verify plugin over ``hosts`` (default: all) in this process."""
    import pytest

    hosts = list(hosts if hosts is not None else inventory.hosts)
    if not hosts:
        return []
    args = [
        str(settings_path(inventory.path)),
        "--cci-inventory",
        str(inventory.path),
        "--cci-profile",
        profile,
        # one option per host: no separator a name could hold
        *(arg for h in hosts for arg in ("--cci-host", h.name)),
        "-p",
        "no:terminal",
        "-p",
        "no:cacheprovider",
        "-p",
        "cci_harden.verify.plugin",
        "-p",
        "testinfra.plugin",
        "--rootdir",
        str(inventory.path.parent),
        "-c",
        "/dev/null",  # the operator's pytest configuration is not ours to read here
        # nor a conftest.py above the inventory (whoever can write a parent directory would
        # run code as the operator); the inventory's NAME.checks/ is below it and still loads
        "--confcutdir",
        str(inventory.path.parent.resolve()),
    ]
    for control_id in control_ids:
        args += ["--cci-control", control_id]
    if waivers is not None:
        args += ["--cci-waivers", str(waivers)]
    if junit is not None:
        args.append(f"--junitxml={junit}")
    if progress:
        args.append("--cci-progress")
    results = _Results()
    # only testinfra and this plugin, loaded by name: fast, and the same on every machine
    saved = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        code = pytest.main(args, plugins=[results, LoadedInventory(inventory)])
    finally:
        if saved is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = saved
    if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        raise CciHardenError(f"verify could not run its tests (pytest exit {int(code)})")
    return results.reports
