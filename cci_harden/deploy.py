"""Apply catalogue controls to the current pyinfra host; called from the files in ``deploys/``.

Settings come from the inventory the host was loaded from (``host.data.cci_inventory``), so the
deploy and ``cci-harden verify`` always read the same file.
"""

from __future__ import annotations

from functools import lru_cache

from pyinfra import host
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from .catalogue import Control
from .hostinfo import HostInfoFact
from .operations import managed_file
from .settings import FleetSettings, load_settings


@lru_cache(maxsize=8)
def _settings(inventory_path: str) -> FleetSettings:
    return load_settings(inventory_path)


def current_settings() -> FleetSettings:
    path = host.data.get("cci_inventory")
    if not path:
        raise RuntimeError(
            f"host {host.name} was not loaded from a cci-harden inventory "
            "(run: pyinfra inventories/NAME deploys/...)"
        )
    return _settings(path)


def apply_controls(controls: tuple[Control, ...]) -> None:
    """Write each control's files, run its extra operations, restart what changed."""
    settings = current_settings()
    info = host.get_fact(HostInfoFact)
    for control in controls:
        if not control.applies(settings):
            continue
        writes_by_unit: dict[str, list] = {}
        for desired in control.files(settings, info):
            op = managed_file(name=f"[{control.id}] {desired.path}", desired=desired)
            for unit in desired.reload:
                writes_by_unit.setdefault(unit, []).append(op)
        if control.apply is not None:
            control.apply(settings, info)
        for unit, ops in writes_by_unit.items():
            systemd.service(
                name=f"[{control.id}] restart {unit} (its configuration changed)",
                service=unit,
                restarted=True,
                _if=any_changed(*ops),
            )
