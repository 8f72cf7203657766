"""The first-boot unit an image bake leaves behind (``cci-harden apply --local --stage image``).

It runs the same catalogue on the instance at its first boot, for what the image cannot carry.
Its command line is built only from values checked here to be plain absolute paths and a known
profile, so nothing in it can mean more to systemd than a path.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

from pyinfra.operations import files, systemd

from ..controls import PROFILES
from ..model.render import render

UNIT = "cci-harden-first-boot.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"
DONE_FILE = "/var/lib/cci-harden/first-boot.done"
# a path systemd reads as exactly itself: no space, quote, backslash, ``%`` specifier or ``$``
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._/+-]*")


def _plain(what: str, path: str) -> str:
    if not _PLAIN_PATH.fullmatch(path) or "/../" in f"{path}/":
        raise ValueError(
            f"{what} {path!r}: the first-boot unit takes an absolute path of letters, digits "
            "and . _ / + - only"
        )
    return path


def first_boot_unit(inventory: str, profile: str, executable: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}")
    return render(
        "local/cci-harden-first-boot.service.j2",
        "image bake",
        executable=_plain("executable", executable),
        inventory=_plain("inventory", inventory),
        profile=profile,
        done_file=DONE_FILE,
    )


def install_first_boot_unit(inventory: str, profile: str) -> None:
    """Write and enable the unit (started by the next boot, never by the bake)."""
    executable = str(Path(sys.executable).with_name("cci-harden"))
    text = first_boot_unit(str(Path(inventory).resolve()), profile, executable)
    files.put(
        name=f"[image] {UNIT_PATH} (first boot: what the image leaves to the instance)",
        src=io.StringIO(text),
        dest=UNIT_PATH,
        mode="644",
        user="root",
        group="root",
    )
    systemd.service(
        name=f"[image] {UNIT} enabled",
        service=UNIT,
        running=None,  # the next boot starts it, never the bake
        enabled=True,
        daemon_reload=True,
    )
