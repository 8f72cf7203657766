"""The snapshot a test host printed right after ``deploys/nomad.py``, kind by kind
(``fixtures/gather-converged-tb1.json``, recorded with the script the deploy and verify both
run), and the host facts it carries: a container, and the same host as a VM would report it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from cci_harden.model.hostinfo import HostInfo

RECORDED: dict[str, str] = json.loads(
    (Path(__file__).parent / "fixtures" / "gather-converged-tb1.json").read_text()
)
CONTAINER = HostInfo.parse(RECORDED["@hostinfo"].splitlines())
VM = dataclasses.replace(CONTAINER, container="none")
