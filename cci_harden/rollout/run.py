"""The rollout loop: survey, then batch by batch: deploy what interrupts no build, drain, deploy,
reboot, verify and release what would; stop when a batch or the whole run is over budget.

Hosts out of service at once never exceed ``max_unavailable``, counting the hosts Nomad already
reports ineligible or draining and the hosts an earlier batch left ineligible after a failure.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..config.settings import HostEntry
from ..controls import known_control_ids
from ..fleet.inventory import Inventory
from ..fleet.preflight import require_ready
from ..model.waivers import load_waivers, waivers_path
from .batches import amount, split
from .drain import Drainer, DrainError
from .record import HostRecord, RolloutRecord
from .shell import FleetShell
from .survey import Survey, Surveyor


@dataclass
class Options:
    inventory: Path
    deploy: Path
    profile: str = "nomad"
    sizes: Sequence[str] = ()  # empty: rollout.batches from settings
    limit: Sequence[str] = ()
    dry: bool = False


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Rollout:
    options: Options
    log: Callable[[str], None] = print
    inventory: Inventory = field(init=False)

    def __post_init__(self) -> None:
        self.inventory = Inventory.load(self.options.inventory)
        self.inventory.check_runnable()
        require_ready(self.inventory.settings)
        self.settings = self.inventory.settings.rollout
        self.waiver_file = waivers_path(self.inventory.path)
        self.waivers = load_waivers(
            self.waiver_file, known_control_ids(), [h.name for h in self.inventory.hosts]
        )
        self.shell = FleetShell(self.inventory)
        self.surveyor = Surveyor(self.shell, self.options.profile, self.waivers)
        self.drainer = Drainer(self.shell, self.surveyor.node)
        self.out_of_service: set[str] = set()

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> RolloutRecord:
        try:
            return self._run()
        finally:
            self.shell.close()

    def _run(self) -> RolloutRecord:
        hosts = sorted(self.inventory.select(list(self.options.limit) or None), key=_natural)
        sizes = list(self.options.sizes or self.settings.batches)
        fleet = len(self.inventory.hosts)
        cap = amount(self.settings.max_unavailable, fleet, at_least=1)
        record = RolloutRecord(
            inventory=self.inventory.name,
            started=_now(),
            sizes=sizes,
            max_unavailable=cap,
            drain_deadline_seconds=self.settings.drain_deadline_seconds,
            dry=self.options.dry,
        )
        surveys = self._survey(hosts)
        # every host of the fleet Nomad already reports out of service counts against the cap
        self.out_of_service = {
            name for name, s in surveys.items() if s.error or s.work.out_of_service
        }
        batches = split(hosts, sizes)
        record.batches = [[h.name for h in batch] for batch in batches]
        for number, batch in enumerate(batches, 1):
            for entry in batch:
                record.hosts[entry.name] = HostRecord.planned(
                    entry.name, number, surveys[entry.name]
                )
        if self.options.dry:
            record.finish(_now(), "dry run: nothing was changed")
            return record
        budget_total = amount(self.settings.max_failures_total, len(hosts))
        for number, batch in enumerate(batches, 1):
            self.log(
                f"cci-harden: batch {number}/{len(batches)}: {', '.join(h.name for h in batch)}"
            )
            failed = self._batch(batch, surveys, record, cap)
            budget = amount(self.settings.max_failures_per_batch, len(batch))
            total = sum(1 for h in record.hosts.values() if h.failed)
            stop = ""
            if failed > budget:
                stop = f"batch {number} had {failed} failed host(s), over its budget of {budget}"
            elif total > budget_total:
                stop = f"{total} failed host(s) in all, over the run's budget of {budget_total}"
            elif record.capacity_stop:
                stop = record.capacity_stop
            if stop:
                for later in batches[number:]:
                    for entry in later:
                        record.hosts[entry.name].outcome = "not reached"
                record.finish(_now(), f"stopped: {stop}; later hosts were left untouched")
                return record
        record.finish(_now(), "")
        return record

    def _survey(self, hosts: Sequence[HostEntry]) -> dict[str, Survey]:
        """Every host of the fleet: the selected ones for their plan, the others for the cap."""
        everyone = self.inventory.hosts
        self.surveyor.plan()
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(everyone)))) as pool:
            found = list(pool.map(self.surveyor.survey, everyone))
        return {s.host: s for s in found}

    # -- one batch -------------------------------------------------------------------------------

    def _batch(self, batch, surveys, record: RolloutRecord, cap: int) -> int:
        failed = 0
        direct, drained = [], []
        for entry in batch:
            survey, rec = surveys[entry.name], record.hosts[entry.name]
            if survey.error:
                rec.fail(f"unreachable before any change: {survey.error}")
                failed += 1
            elif not survey.changes:
                rec.outcome = "unchanged"
            elif survey.needs_drain:
                drained.append(entry)
            else:
                direct.append(entry)
        if direct:  # nothing they need interrupts a build: no drain
            self._deploy(direct, record)
            failed += self._verify(direct, record, release=False)
        while drained:
            room = cap - len(self.out_of_service)
            if room <= 0:
                names = ", ".join(sorted(self.out_of_service))
                record.capacity_stop = (
                    f"{len(self.out_of_service)} host(s) out of service ({names}), the most "
                    f"rollout.max_unavailable allows ({cap})"
                )
                for entry in drained:
                    record.hosts[entry.name].outcome = "not reached"
                break
            wave, drained = drained[:room], drained[room:]
            failed += self._drained_wave(wave, surveys, record)
        return failed

    def _drained_wave(self, wave, surveys, record: RolloutRecord) -> int:
        failed = 0
        ready = []
        # every host of the wave ineligible first, so a build drained from one is not placed on
        # the next; then each drained
        for entry in wave:
            rec = record.hosts[entry.name]
            try:
                self.out_of_service.add(entry.name)
                self.drainer.ineligible(entry)
                rec.drain_started = _now()
                deadline = self.settings.drain_deadline_seconds
                self.drainer.drain(entry, deadline if self.settings.force_after_deadline else None)
                ready.append(entry)
            except DrainError as exc:
                rec.fail(f"could not drain: {exc}")
                failed += 1
        grace = self.settings.poll_seconds * 3 if self.settings.force_after_deadline else 0
        until = time.monotonic() + self.settings.drain_deadline_seconds + grace
        idle = []
        for entry in ready:
            rec = record.hosts[entry.name]
            try:
                work = self.drainer.wait_idle(entry, until, self.settings.poll_seconds)
            except DrainError as exc:
                rec.fail(f"lost the agent while draining: {exc}")
                failed += 1
                continue
            rec.drain_ended = _now()
            if work.running:
                rec.outcome = "deferred"
                rec.note = (
                    f"drain deadline ({self.settings.drain_deadline_seconds} s) reached with "
                    f"{len(work.running)} build(s) running: left unchanged"
                )
                self._release(entry, rec)
                continue
            idle.append(entry)
        if not idle:
            return failed
        self._deploy(idle, record)
        for entry in idle:
            if surveys[entry.name].needs_reboot:
                self._reboot(entry, record.hosts[entry.name])
        return failed + self._verify(
            [e for e in idle if not record.hosts[e.name].failed], record, release=True
        )

    def _release(self, entry: HostEntry, rec: HostRecord) -> None:
        try:
            self.drainer.release(entry)
        except DrainError as exc:
            rec.fail(f"could not make it eligible again: {exc}")
            return
        rec.eligible_again = True
        rec.released = _now()
        self.out_of_service.discard(entry.name)

    # -- steps -----------------------------------------------------------------------------------

    def _deploy(self, entries: Sequence[HostEntry], record: RolloutRecord) -> None:
        """The deploy file through pyinfra for these hosts; each host's result is what verify
        finds afterwards (a host pyinfra stopped is still different)."""
        command = [str(Path(sys.executable).with_name("pyinfra")), "-y"]
        for entry in entries:
            command += ["--limit", entry.name]
        command += [str(self.inventory.path), str(self.options.deploy)]
        self.log(f"cci-harden: deploying {', '.join(e.name for e in entries)}")
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYINFRA_PROGRESS": "off"},
        )
        for entry in entries:
            rec = record.hosts[entry.name]
            rec.deployed = True
            if proc.returncode != 0:
                rec.deploy_log = _tail(proc.stderr or proc.stdout)

    def _reboot(self, entry: HostEntry, rec: HostRecord) -> None:
        self.log(f"cci-harden: rebooting {entry.name}")
        self.shell.run(entry, "systemctl reboot", timeout=30)
        self.shell.forget(entry)
        rec.rebooted = True
        time.sleep(self.settings.poll_seconds)
        until = time.monotonic() + self.settings.reboot_timeout_seconds
        while time.monotonic() < until:
            result = self.shell.run(entry, "systemctl is-active nomad", timeout=30)
            if result.stdout.strip() == "active" and self.surveyor.node(entry).agent:
                return
            time.sleep(self.settings.poll_seconds)
        rec.fail(
            f"did not come back with its Nomad agent within "
            f"{self.settings.reboot_timeout_seconds} s of the reboot"
        )

    def _verify(self, entries: Sequence[HostEntry], record: RolloutRecord, release: bool) -> int:
        """verify on these hosts (the operator's own checks included); a host that passes is
        released when it was drained, one that fails stays ineligible and is named."""
        if not entries:
            return 0
        from ..verify.results import build_run  # pytest and testinfra: only when needed
        from ..verify.runner import verify_inventory

        reports = verify_inventory(
            self.inventory,
            entries,
            profile=self.options.profile,
            waivers=self.waiver_file if self.waiver_file.is_file() else None,
        )
        run = build_run(self.inventory.name, reports, self.waivers)
        failing: dict[str, list[str]] = {}
        for cell in run.failing():
            failing.setdefault(cell.host, []).append(cell.outcome.control_id)
        reachable = {r.host: r for r in reports}
        failed = 0
        for entry in entries:
            rec = record.hosts[entry.name]
            report = reachable.get(entry.name)
            if report is None or not report.reachable:
                rec.verify = "unreachable"
                rec.fail(f"verify could not reach it: {report.error if report else 'no report'}")
            elif failing.get(entry.name):
                rec.verify = "fail"
                rec.fail(f"verify failed: {', '.join(sorted(failing[entry.name]))}")
            else:
                rec.verify = "pass"
                rec.outcome = "applied"
                if release:
                    self._release(entry, rec)
            failed += rec.failed
            if rec.failed and release:
                rec.note = (rec.note + "; " if rec.note else "") + "left ineligible"
        return failed


def _natural(host: HostEntry) -> list:
    """tb2 before tb10: the order an operator reads the inventory in."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", host.name)]


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
