"""Make a deploy to no host an error: pyinfra itself runs an unknown inventory path as zero hosts
and exits 0 ("is neither an inventory file..."), which a scheduled job would take for success.

``config.py`` at the top of the checkout (pyinfra reads it before the inventory) calls
``refuse_empty_inventory``; it wraps pyinfra's ``State.init`` so that, once the inventory is
loaded, an empty one ends the run with exit 2 and a line saying why.
"""

from __future__ import annotations

import sys
from functools import wraps

from pyinfra.api.state import State


def refuse_settings_file_as_inventory(argv: list[str]) -> None:
    """``pyinfra inventories/prod.toml ...`` would load the TOML as Python and print a
    traceback: one line instead, naming the inventory to give."""
    for argument in argv[1:]:
        if argument.endswith(".toml") and not argument.startswith("-"):
            print(
                f"cci-harden: error: {argument} is an inventory's settings file; give the "
                f"inventory itself: {argument.removesuffix('.toml')}",
                file=sys.stderr,
            )
            raise SystemExit(2)


def refuse_empty_inventory() -> None:
    refuse_settings_file_as_inventory(sys.argv)
    if getattr(State.init, "_cci_guarded", False):
        return
    original = State.init

    @wraps(original)
    def init(self, inventory, config, *args, **kwargs):
        if len(inventory) == 0:
            print(
                "cci-harden: error: the inventory has no hosts (a mistyped inventory path? "
                "pyinfra takes an unknown path for a host list); nothing was deployed",
                file=sys.stderr,
            )
            raise SystemExit(2)
        return original(self, inventory, config, *args, **kwargs)

    init._cci_guarded = True  # type: ignore[attr-defined]
    State.init = init  # type: ignore[method-assign]
