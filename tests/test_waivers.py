"""Waivers: one matcher for every output, every problem of a file at once, and the review
commands (``cci-harden waivers list|lint``)."""

from __future__ import annotations

import datetime as dt
import json
import textwrap

import pytest

from cci_harden.controls import known_control_ids
from cci_harden.model.control import Finding, Outcome, Status
from cci_harden.model.plan import is_waived, waived_resources
from cci_harden.model.waivers import WaiverError, deciding_waiver, load_waivers
from cci_harden.verify.hosts import HostReport
from cci_harden.verify.results import build_run

from .conftest import cli_here
from .test_settings import VALID, write_inventory

TODAY = dt.date(2026, 12, 3)
FAILING = Outcome("CCI-NET-01", Status.FAIL, (Finding("service:node-exporter", "listens", "no"),))


def waiver(hosts: str, expires: str, why: str = "legacy agent until INFRA-1234") -> str:
    return textwrap.dedent(f"""
        [[waiver]]
        control = "CCI-NET-01"
        hosts = [{hosts}]
        justification = "{why}"
        owner = "platform@example.com"
        expires = {expires}
    """)


def test_an_expired_waiver_and_its_renewal_give_one_answer_in_every_output(tmp_path):
    """The expired waiver names every client, the renewal one client: whichever comes first,
    the plugin, the reports and the deploy all take the current one."""
    for order in ((0, 1), (1, 0)):
        texts = [waiver('"client-*"', "2026-01-31"), waiver('"client-1"', "2027-06-30")]
        path = tmp_path / f"w{order[0]}.toml"
        path.write_text("".join(texts[i] for i in order))
        waivers = load_waivers(path, known_control_ids())  # no inventory: globs cannot be judged
        decided = deciding_waiver(waivers, "CCI-NET-01", "client-1", FAILING, TODAY)
        assert decided is not None and not decided.expired(TODAY)  # the plugin: xfail
        run = build_run(
            "acme", [HostReport("client-1", True, outcomes=[FAILING])], waivers, today=TODAY
        )
        (cell,) = run.cells
        assert cell.outcome.status is Status.WAIVED and cell.waiver == decided  # JSON, JUnit
        accepted = waived_resources(waivers, "CCI-NET-01", "client-1", TODAY)
        assert is_waived("service:node-exporter", accepted)  # the deploy leaves it in place
        # another client is covered by the expired waiver alone: a failure, naming it
        other = build_run(
            "acme", [HostReport("client-2", True, outcomes=[FAILING])], waivers, today=TODAY
        )
        assert other.cells[0].outcome.status is Status.FAIL and other.cells[0].waiver.expired(TODAY)


def test_waivers_that_overlap_on_a_host_are_refused_with_every_other_problem(tmp_path):
    path = tmp_path / "acme.waivers.toml"
    path.write_text(
        waiver('"client-*"', "2026-01-31")
        + waiver('"client-1"', "2027-06-30")
        + waiver('"client-1"', "2027-06-30", why="short")
        + waiver('"client-1"', "2027-06-30").replace("CCI-NET-01", "CCI-ZZZ-09")
    )
    with pytest.raises(WaiverError) as raised:
        load_waivers(path, known_control_ids(), ["client-1", "client-2"])
    message = str(raised.value)
    assert (
        "waiver 3: justification" in message and "waiver 4: unknown control CCI-ZZZ-09" in message
    )
    assert "waivers 1 and 2 both cover CCI-NET-01 on client-1" in message


def test_waivers_for_different_resources_of_one_control_may_stand_together(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text(
        waiver('"client-1"', "2027-06-30") + 'resources = ["service:a"]\n'
        + waiver('"client-1"', "2027-06-30") + 'resources = ["service:b"]\n'
    )  # fmt: skip
    assert len(load_waivers(path, known_control_ids(), ["client-1"])) == 2


def test_lint_names_expired_waivers_and_patterns_that_match_no_host(tmp_path):
    inventory = write_inventory(tmp_path, VALID)  # one host: client-1
    waivers_file = tmp_path / "acme.waivers.toml"
    waivers_file.write_text(waiver('"client-1"', "2030-01-31"))
    clean = cli_here("waivers", "lint", str(inventory))
    assert clean.returncode == 0 and "1 waiver(s), no problem" in clean.stdout
    listed = json.loads(cli_here("waivers", "list", str(inventory), "--format", "json").stdout)
    assert listed["waivers"][0]["covers"] == ["client-1"]
    waivers_file.write_text(waiver('"client-1"', "2020-01-31") + waiver('"old-*"', "2030-01-31"))
    stale = cli_here("waivers", "lint", str(inventory))
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "waiver 1 (CCI-NET-01): expired on 2020-01-31" in stale.stdout
    assert "waiver 2 (CCI-NET-01): its hosts ['old-*'] match no host" in stale.stdout
    waivers_file.write_text(waiver('"client-*"', "2030-01-31") + waiver('"client-1"', "2030-01-31"))
    overlap = cli_here("waivers", "lint", str(inventory))
    assert overlap.returncode == 2 and "both cover CCI-NET-01 on client-1" in overlap.stderr


def test_config_check_names_a_bad_waivers_file_with_every_other_problem(tmp_path):
    inventory = write_inventory(tmp_path, VALID)
    (tmp_path / "acme.waivers.toml").write_text(
        waiver('"client-1"', "2030-01-31") + waiver('"client-*"', "2030-01-31")
    )
    proc = cli_here("config", "check", str(inventory))
    assert proc.returncode == 2 and "not ready to deploy" in proc.stderr
    assert "both cover CCI-NET-01 on client-1" in proc.stderr
    assert "no host key for client-1" in proc.stderr  # the inventory's own problem, same run
