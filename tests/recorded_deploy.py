"""The deploy side without a host: the real deploy code and real pyinfra operations, against
recorded host state.

``RecordedHost`` is a stand-in for a host (a pyinfra connector that connects to nothing): it
answers the fact commands pyinfra's own operations send (``dpkg -l``, ``systemctl show``) from
recorded output and runs nothing else. The snapshot the toolkit reads is recorded too, kind by
kind (``fixtures/gather-converged-tb1.json``, or a case's own text). ``deploy_operations`` runs
``apply.deploy.converge_host`` on one host inside a pyinfra state, in pyinfra's API mode, and
returns each operation it added with the exact commands it would run, the way pyinfra's own
operation tests compare commands.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyinfra.api import Config, Inventory, State
from pyinfra.api.command import FileUploadCommand, FunctionCommand, StringCommand
from pyinfra.connectors.base import BaseConnector
from pyinfra.connectors.util import CommandOutput, OutputLine
from pyinfra.context import ctx_host, ctx_state

from cci_harden.apply.converge import Run
from cci_harden.apply.deploy import converge_host
from cci_harden.model.control import Control
from cci_harden.model.gather import HostState
from cci_harden.model.hostinfo import HostInfo
from cci_harden.model.plan import ControlPlan
from cci_harden.model.resource import Resource
from cci_harden.model.snapshot import parse_output
from cci_harden.model.waivers import Waiver

HOST_NAME = "recorded-host"


class RecordedHost(BaseConnector):
    """A stand-in for a host: fact commands are answered from ``host.data.recorded_facts``
    (the first key the command contains; none: no output), every command asked is kept in
    ``asked``, and nothing is ever executed or uploaded."""

    handles_execution = True

    def __init__(self, state, host) -> None:
        super().__init__(state, host)
        self.asked: list[str] = []

    @staticmethod
    def make_names_data(name: str) -> Iterator[tuple[str, dict, list[str]]]:
        yield name, {}, []

    def connect(self) -> None:
        return None

    def run_shell_command(self, command, print_output=False, print_input=False, **arguments):
        text = command.get_raw_value() if isinstance(command, StringCommand) else str(command)
        self.asked.append(text)
        facts: Mapping[str, str] = self.host.data.get("recorded_facts") or {}
        output = next((out for key, out in facts.items() if key in text), "")
        lines = [OutputLine("stdout", line) for line in output.splitlines()]
        return True, CommandOutput(lines)

    def put_file(self, *args, **kwargs):
        raise AssertionError("a recorded host takes no upload: operations are only listed")

    def get_file(self, *args, **kwargs):
        raise AssertionError("a recorded host has no files to fetch")


@dataclass(frozen=True)
class Operation:
    name: str
    commands: tuple[str, ...]


@dataclass
class DeployResult:
    operations: list[Operation]
    left: dict[str, str]  # resource id -> why the deploy left it as it is
    facts_asked: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [op.name for op in self.operations]

    def commands(self) -> list[str]:
        return [c for op in self.operations for c in op.commands]


def _shown(command) -> str:
    if isinstance(command, FileUploadCommand):
        content = command.src.getvalue() if hasattr(command.src, "getvalue") else command.src
        return f"upload {command.dest} <<{content}>>"
    if isinstance(command, FunctionCommand):
        return f"python {command.function.__name__}"
    if isinstance(command, StringCommand):
        return command.get_raw_value()
    return repr(command)


def snapshot_of(outputs: Mapping[str, str], resources: Sequence[Resource], info: HostInfo):
    """A snapshot as the deploy reads it: each kind's recorded output framed the way the
    snapshot script frames it, through the deploy's own parser; ``info`` as the host's facts."""
    token = "0123abcd"
    framed = f"@@cci-snapshot {token}\n" + "".join(
        f"@@probe {kind} {token}\n{text}\n@@end 0 {token}\n" for kind, text in outputs.items()
    )
    snapshot = parse_output(framed, resources)
    snapshot.info = info
    return snapshot


def deploy_operations(
    plans: Sequence[tuple[Control, Sequence[Resource]]],
    outputs: Mapping[str, str],
    settings: Any,
    info: HostInfo,
    *,
    facts: Mapping[str, str] | None = None,
    waivers: Sequence[Waiver] = (),
    stage: str = "",
    local: bool = False,
    today: dt.date | None = None,
) -> DeployResult:
    """What the deploy does on a host whose state is ``outputs`` (kind -> gather output)."""
    control_plans = [ControlPlan(control, tuple(resources)) for control, resources in plans]
    every = [r for plan in control_plans for r in plan.resources]
    state = HostState(info, snapshot_of(outputs, every, info), control_plans, 1)
    inventory = Inventory(([(HOST_NAME, {"recorded_facts": dict(facts or {})})], {}))
    host = inventory.get_host(HOST_NAME)
    host.connector_cls = RecordedHost
    pyinfra_state = State(inventory, Config())
    run = Run(settings, info, stage=stage, local=local)
    with ctx_state.use(pyinfra_state), ctx_host.use(host):
        left = converge_host(state, run, waivers, today or dt.date.today())
        operations = [
            Operation(
                ", ".join(sorted(pyinfra_state.get_op_meta(op_hash).names)),
                tuple(
                    _shown(c)
                    for c in pyinfra_state.get_op_data_for_host(host, op_hash).command_generator()
                ),
            )
            for op_hash in host.op_hash_order
        ]
    return DeployResult(operations, left, list(host.connector.asked))
