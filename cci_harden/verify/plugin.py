"""The verify stage as a pytest plugin: one test per host and control, beside operators' own checks.

    pytest --cci-inventory inventories/prod [-k CCI-DKR] [--junitxml=verify.xml]

collects ``CONTROL-ID[host]`` for every control of the profile on every host of the inventory.
Each host is read once, through testinfra's backend (the same gather script the deploy runs),
all hosts in parallel, before the first of their tests; every test of a host then compares its
control's resources with that snapshot. A host that cannot be reached is an error of each of its
tests, not a failure; a waived failure is an xfail naming owner and expiry; what a host cannot
show (a container's kernel) or a control switched off is a skip with the reason.

Operators' own testinfra modules in ``inventories/NAME.checks/`` run in the same session against
the same hosts (testinfra's ``host`` fixture), over the same strict ssh_config. Without
``--cci-inventory`` the plugin does nothing. ``cci-harden verify`` runs this plugin in process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..config.settings import settings_path
from ..fleet.host_trust import write_ca_known_hosts
from ..fleet.inventory import Inventory
from ..fleet.sshconfig import write_ssh_config
from ..model.control import Control, Finding, Outcome, Status
from ..model.errors import CciHardenError, InventoryError
from ..model.gather import GatherPlan, HostState, first_gather, gather_host
from ..model.plan import planned_control_ids
from ..model.profiles import PROFILE_NAMES
from ..model.text import printable
from ..model.verdict import evaluate
from ..model.waivers import Waiver, deciding_waiver, load_waivers, waivers_path
from .hosts import HostReport, Unreachable, run_script, testinfra_host

PLUGIN_NAME = "cci-harden-verify"
SITE_PREFIX = "SITE:"  # control id of an operator's own check in the reports


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cci-harden", "cci-harden verify")
    group.addoption("--cci-inventory", help="verify this inventory's hosts (inventories/prod)")
    group.addoption(
        "--cci-profile",
        default="nomad",
        choices=PROFILE_NAMES,
        help="which deploy's controls to check (default: nomad)",
    )
    group.addoption(
        "--cci-control", action="append", default=[], help="only this control id (repeatable)"
    )
    group.addoption(
        "--cci-host", action="append", default=[], help="only this host (repeat for more)"
    )
    group.addoption("--cci-hosts", help=argparse.SUPPRESS)  # the comma form, kept for scripts
    group.addoption("--cci-waivers", help="waiver file (default: inventories/NAME.waivers.toml)")
    group.addoption(
        "--cci-progress", action="store_true", help="say on stderr as each host is read"
    )


@dataclass
class HostResult:
    """What the session learned about one host: its snapshot, or why there is none."""

    state: HostState | None = None
    error: str = ""
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    site: dict[str, Outcome] = field(default_factory=dict)


class LoadedInventory:
    """What ``cci-harden verify`` hands the plugin in process: the inventory it has loaded (and
    listed, for a cloud source), so one run lists the fleet once and reports exactly those
    hosts."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory


class VerifySession:
    """The plugin's state for one pytest session (registered as a plugin itself)."""

    def __init__(self, config: pytest.Config) -> None:
        from .. import controls as catalogue

        option = config.option
        handed = next(
            (p for p in config.pluginmanager.get_plugins() if isinstance(p, LoadedInventory)), None
        )
        if handed is not None and handed.inventory.path == Path(option.cci_inventory):
            self.inventory = handed.inventory  # loaded once by the front door (a cloud listing)
        else:
            self.inventory = Inventory.load(option.cci_inventory)
        self.profile = option.cci_profile
        wanted = {h for h in (option.cci_hosts or "").split(",") if h} | set(option.cci_host)
        unknown = sorted(wanted - {h.name for h in self.inventory.hosts})
        if unknown:  # never a host silently left out of the reports
            raise InventoryError(f"not in inventory {self.inventory.name}: {', '.join(unknown)}")
        self.hosts = [h for h in self.inventory.hosts if not wanted or h.name in wanted]
        self.controls: tuple[Control, ...] = catalogue.PROFILES[self.profile]
        self.lifecycle = not option.cci_control
        if option.cci_control:
            self.controls = catalogue.select(ids=tuple(option.cci_control), profile=self.profile)
        waiver_file = (
            Path(option.cci_waivers) if option.cci_waivers else waivers_path(self.inventory.path)
        )
        self.waivers: list[Waiver] = load_waivers(
            waiver_file, catalogue.known_control_ids(), [h.name for h in self.hosts]
        )
        self.results: dict[str, HostResult] = {h.name: HostResult() for h in self.hosts}
        self._tmp = tempfile.TemporaryDirectory(prefix="cci-verify-")
        self.ssh_config = Path(self._tmp.name) / "ssh_config"
        control_dir = Path(self._tmp.name) / "cm"
        control_dir.mkdir(mode=0o700)
        ca_known_hosts = None
        if self.inventory.settings.ssh.host_ca_file is not None:  # OpenSSH checks certificates
            ca_known_hosts = write_ca_known_hosts(self.inventory, Path(self._tmp.name))
        # always our own file, our options first; the inventory's ssh_config is included after
        write_ssh_config(self.inventory, self.ssh_config, control_dir, ca_known_hosts)
        self.progress = bool(option.cci_progress)
        self._read = 0
        self._read_lock = threading.Lock()
        self._gathered: set[str] = set()
        self._planned: GatherPlan | None = None
        # an xdist worker reads only the hosts it is given (tests of one host go together)
        self.worker = hasattr(config, "workerinput")
        self.settings_file = settings_path(self.inventory.path).resolve()
        self.checks_dir = self.inventory.path.with_name(self.inventory.path.name + ".checks")

    def close(self) -> None:
        self._tmp.cleanup()

    # -- collection ------------------------------------------------------------------------------

    @pytest.hookimpl
    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector):
        if file_path.resolve() == self.settings_file:
            return InventoryFile.from_parent(parent, path=file_path, verify=self)
        return None

    # -- reading the hosts -------------------------------------------------------------------------

    def gather(self, names: set[str]) -> None:
        """Read the hosts ``names`` not read yet, in parallel; each host once per session."""
        hosts = [h for h in self.hosts if h.name in names and h.name not in self._gathered]
        if not hosts:
            return
        self._gathered |= {h.name for h in hosts}
        if self._planned is None:
            self._planned = first_gather(
                self.controls, self.inventory.settings, self.profile, self.lifecycle
            )
        planned = self._planned

        def read(entry) -> None:
            conn = testinfra_host(self.inventory, entry, self.ssh_config)
            result = self.results[entry.name]
            try:
                result.state = gather_host(
                    lambda script: run_script(conn, script),
                    self.controls,
                    self.inventory.settings,
                    self.profile,
                    entry.name,
                    planned,
                    entry.address,
                )
            except Unreachable as exc:
                result.error = str(exc).splitlines()[-1] if str(exc) else "unreachable"
            if self.progress:
                with self._read_lock:
                    self._read += 1
                    state = "unreachable" if result.error else "read"
                    print(
                        f"cci-harden: {entry.name} {state} ({self._read}/{len(hosts)})",
                        file=sys.stderr,
                        flush=True,
                    )

        with ThreadPoolExecutor(max_workers=max(1, min(16, len(hosts)))) as pool:
            list(pool.map(read, hosts))

    def host_reports(self) -> list[HostReport]:
        """The session's results in the shape the reports are built from."""
        reports = []
        for entry in self.hosts:
            result = self.results[entry.name]
            if result.error:
                reports.append(HostReport(entry.name, False, result.error))
                continue
            if result.state is None:
                continue  # no test of this host was selected
            outcomes = [*result.outcomes.values(), *result.site.values()]
            reports.append(
                HostReport(
                    entry.name,
                    True,
                    outcomes=outcomes,
                    remote_commands=result.state.remote_commands,
                )
            )
        return reports

    # -- operators' own checks -----------------------------------------------------------------

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        module = report.nodeid.partition("::")[0]
        if "::" not in report.nodeid or Path(module).name == self.settings_file.name:
            return  # not an operator's check: our own control tests report through runtest
        host = _site_host(report.nodeid)
        if host not in self.results:
            return
        if report.when != "call" and not (report.failed or report.skipped):
            return
        module, _, test = report.nodeid.partition("::")
        check = f"{SITE_PREFIX}{Path(module).name}::{test.split('[', 1)[0]}"
        if report.passed:
            outcome = Outcome(check, Status.PASS)
        elif report.skipped:
            outcome = Outcome(check, Status.NOT_APPLICABLE, note="skipped")
        else:
            message = str(report.longreprtext).strip().splitlines()
            said = [line[1:].strip() for line in message if line.startswith("E ")]
            what = said[0] if said else (message[-1] if message else "failed")
            finding = Finding(what[:300], "pass", "fail", True, f"site:{check[len(SITE_PREFIX) :]}")
            outcome = Outcome(check, Status.FAIL, (finding,))
        self.results[host].site.setdefault(check, outcome)


_SITE_HOST = re.compile(r"\[(?:[a-z]+://)?([A-Za-z0-9._-]+)\]$")


def _site_host(nodeid: str) -> str:
    match = _SITE_HOST.search(nodeid)
    return match.group(1) if match else ""


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("cci_inventory", None):
        return
    try:
        session = VerifySession(config)
    except CciHardenError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.pluginmanager.register(session, PLUGIN_NAME)
    config.addinivalue_line("markers", "xdist_group(name): tests of one host run together")
    # the inventory's own settings file is what yields the tests; its checks folder runs too
    paths = [str(session.settings_file)]
    if session.checks_dir.is_dir():
        paths.append(str(session.checks_dir))
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        config.args[:] = paths
    else:
        config.args[:] = [*config.args, *[p for p in paths if p not in config.args]]
    # testinfra's host fixture: the same hosts, the same strict ssh_config
    config.option.hosts = ",".join(f"ssh://{h.name}" for h in session.hosts)
    config.option.ssh_config = str(session.ssh_config)
    if any(session.inventory.user_for(h) != "root" for h in session.hosts):
        config.option.sudo = True


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if session is not None:
        session.close()


class InventoryFile(pytest.File):
    """The inventory's settings file: its hosts and the profile's controls."""

    def __init__(self, *, verify: VerifySession, **kwargs) -> None:
        super().__init__(**kwargs)
        self.verify = verify

    def collect(self):
        ids = planned_control_ids(self.verify.controls, self.verify.lifecycle)
        for entry in self.verify.hosts:
            for control_id in ids:
                item = ControlItem.from_parent(
                    self,
                    name=f"{control_id}[{entry.name}]",
                    host=entry.name,
                    control_id=control_id,
                )
                item.add_marker(pytest.mark.xdist_group(name=entry.name))
                yield item


class ControlFailed(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.control_id)
        self.outcome = outcome


class HostUnreachable(Exception):
    pass


class ControlItem(pytest.Item):
    """One control on one host."""

    def __init__(self, *, host: str, control_id: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.host = host
        self.control_id = control_id

    @property
    def verify(self) -> VerifySession:
        parent = self.parent
        if not isinstance(parent, InventoryFile):
            raise TypeError("control items are collected from an inventory file")
        return parent.verify

    def setup(self) -> None:
        if self.verify.worker:
            names = {self.host}
        else:  # every selected host at once, in parallel, before the first test
            names = {i.host for i in self.session.items if isinstance(i, ControlItem)}
        self.verify.gather(names)
        result = self.verify.results[self.host]
        if result.error:
            raise HostUnreachable(f"{self.host}: {result.error}")

    def runtest(self) -> None:
        result = self.verify.results[self.host]
        state = result.state
        if state is None:
            raise HostUnreachable(f"{self.host}: not read")
        plan = next(p for p in state.plans if p.control.id == self.control_id)
        outcome = evaluate(plan, state.snapshot, state.info)
        result.outcomes[self.control_id] = outcome
        if outcome.status is Status.NOT_APPLICABLE:
            pytest.skip(f"not applicable: {outcome.note}")
        if outcome.status is Status.NOT_VERIFIABLE:
            pytest.skip(
                "not verifiable on this host: " + "; ".join(f.what for f in outcome.findings)
            )
        if outcome.status is Status.FAIL:
            today = dt.datetime.now(dt.UTC).date()
            waiver = deciding_waiver(
                self.verify.waivers, self.control_id, self.host, outcome, today
            )
            if waiver is not None and not waiver.expired(today):
                pytest.xfail(
                    f"waived by {waiver.owner} until {waiver.expires}: {waiver.justification}"
                )
            raise ControlFailed(outcome)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ControlFailed):
            lines = [f"{self.control_id} fails on {self.host}:"]
            for finding in excinfo.value.outcome.findings:
                lines.append(f"  {printable(finding.resource)}: {finding.line()}")
            return "\n".join(lines)
        if isinstance(excinfo.value, HostUnreachable):
            return f"host unreachable: {printable(str(excinfo.value))}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"{self.control_id}[{self.host}]"
