"""The rollout's decisions without a host: batch sizes, budgets, what the local Nomad agent's
answers mean, and the record it writes. Agent answers are shaped as Nomad's HTTP API returns
them (agent/self, node, node allocations)."""

from __future__ import annotations

import json
import subprocess

import pytest

from cci_harden.config.settings import load_settings
from cci_harden.model.errors import CciHardenError, SettingsError
from cci_harden.model.interruption import Disruption, Interruption
from cci_harden.model.nomad_api import (
    STATUS_MARK,
    action_command,
    drain_body,
    parse_action,
    parse_status,
    status_command,
    undrain_body,
)
from cci_harden.rollout.batches import amount, parse_sizes, split
from cci_harden.rollout.record import HostRecord, RolloutRecord
from cci_harden.rollout.survey import Survey

from .test_settings import VALID, write_inventory

NODE_ID = "5e1a2b3c-0000-4111-8222-93334444aaaa"


def agent_output(node: dict | None = None, allocs: list | None = None, self_code: int = 200):
    me = {"stats": {"client": {"node_id": NODE_ID}}}
    text = f"{STATUS_MARK}\n@@self\n{json.dumps(me)}\n@@http {self_code}\n"
    if node is not None:
        text += (
            f"@@node\n{json.dumps(node)}\n@@http 200\n@@allocs\n{json.dumps(allocs)}\n@@http 200\n"
        )
    return text


# -- batches and budgets ---------------------------------------------------------------------------


def test_batches_start_with_a_canary_and_the_last_size_repeats():
    hosts = [f"h{i}" for i in range(10)]
    assert split(hosts, ["1", "30%", "100%"]) == [
        ["h0"],
        ["h1", "h2", "h3"],
        ["h4", "h5", "h6", "h7", "h8", "h9"],
    ]
    assert split(hosts, ["3"]) == [hosts[0:3], hosts[3:6], hosts[6:9], hosts[9:]]
    assert split(["a", "b", "c"], ["1", "10%", "100%"]) == [["a"], ["b"], ["c"]]
    assert split([], ["1"]) == []


def test_shares_round_up_and_caps_are_at_least_one():
    assert amount("10%", 3) == 1 and amount("10%", 25) == 3 and amount("100%", 7) == 7
    assert amount("0", 50) == 0 and amount("0%", 50, at_least=1) == 1
    with pytest.raises(CciHardenError, match="neither a count"):
        amount("ten", 5)


@pytest.mark.parametrize("text", ["", "0", "1,x", "1,0%", "-1"])
def test_bad_batch_sizes_are_refused(text):
    with pytest.raises(CciHardenError):
        parse_sizes(text)


def test_rollout_settings_are_strict(tmp_path):
    with pytest.raises(SettingsError) as info:
        load_settings(
            write_inventory(
                tmp_path,
                VALID + '[rollout]\nbatches = ["1", "ten"]\nmax_unavailable = "150%"\n'
                'drain_deadline_seconds = 5\nforce_after_deadline = "yes"\n',
            )
        )
    text = str(info.value)
    for field in ("rollout.batches", "rollout.max_unavailable", "drain_deadline_seconds",
                  "force_after_deadline"):  # fmt: skip
        assert field in text, text
    with pytest.raises(SettingsError, match="nomad_token"):
        load_settings(write_inventory(tmp_path, VALID + '[rollout]\nnomad_token = "a b;c"\n'))


# -- the local agent's answers ---------------------------------------------------------------------


def test_a_busy_node_reports_its_running_batch_allocations():
    work = parse_status(
        agent_output(
            {"ID": NODE_ID, "Name": "tb1", "SchedulingEligibility": "eligible",
             "DrainStrategy": None},
            [
                {"ID": "a1", "JobID": "build-1", "JobType": "batch", "ClientStatus": "running"},
                {"ID": "a2", "JobID": "build-0", "JobType": "batch", "ClientStatus": "complete"},
            ],
        )
    )  # fmt: skip
    assert work.agent and not work.error and work.eligible and not work.draining
    assert [a.id for a in work.running] == ["a1"]
    assert not work.out_of_service
    assert work.describe() == "eligible, 1 allocation(s) running"


def test_a_draining_or_ineligible_node_is_out_of_service():
    draining = parse_status(
        agent_output(
            {"ID": NODE_ID, "SchedulingEligibility": "ineligible",
             "DrainStrategy": {"DrainSpec": {"Deadline": 0}}},
            [],
        )
    )  # fmt: skip
    assert draining.draining and draining.out_of_service and not draining.running


def test_no_agent_means_no_build_but_a_refusing_agent_is_not_taken_for_idle():
    assert parse_status(f"{STATUS_MARK} @@noagent\n").agent is False
    assert parse_status(f"{STATUS_MARK}\n@@self\ncurl: (7) refused\n@@http 000\n").agent is False
    refused = parse_status(agent_output(self_code=403))
    assert refused.agent and "HTTP 403" in refused.error
    assert "curl is not installed" in parse_status("@@nocurl\n").error
    assert parse_status("").error  # the command did not run as expected


def test_a_malformed_node_id_is_refused():
    work = parse_status(
        agent_output({"ID": "../../v1/jobs", "SchedulingEligibility": "eligible"}, [])
    )
    assert "malformed node id" in work.error


def test_the_commands_are_valid_sh_and_carry_no_token():
    for command in (
        status_command(),
        action_command("drain", drain_body(None)),
        action_command("drain", undrain_body()),
        action_command("eligibility", {"Eligibility": "ineligible"}),
    ):
        proc = subprocess.run(["sh", "-n", "-c", command], capture_output=True, text=True)
        assert proc.returncode == 0, (command, proc.stderr)
        assert "X-Nomad-Token:" not in command  # read by curl from the root-only file
    with pytest.raises(ValueError):
        action_command("purge", {})


def test_drain_bodies_follow_nomads_api():
    assert drain_body(None)["DrainSpec"] == {"Deadline": 0, "IgnoreSystemJobs": True}
    assert drain_body(90)["DrainSpec"]["Deadline"] == 90 * 10**9
    assert undrain_body() == {"DrainSpec": None, "MarkEligible": True, "Meta": {}}
    assert parse_action('{"EvalIDs":[]}\n@@http 200\n')[0]
    ok, said = parse_action("permission denied\n@@http 403\n")
    assert not ok and "403" in said


# -- the record ------------------------------------------------------------------------------------


def _survey(name, interruption=None, agent=True, running=0):
    from cci_harden.model.nomad_api import Allocation, NodeWork

    allocations = tuple(Allocation(str(i), "job", "batch", "running") for i in range(running))
    disruptions = (
        [Disruption(interruption, "CCI-DKR-02", "file:/etc/docker/daemon.json", "content")]
        if interruption is not None
        else []
    )
    return Survey(name, disruptions, NodeWork(agent=agent, allocations=allocations))


def test_a_survey_drains_only_for_a_build_killing_change_on_a_running_agent():
    assert _survey("a", Interruption.RESTART_KILLS_BUILDS).needs_drain
    assert not _survey("b", Interruption.RESTART_KEEPS_BUILDS).needs_drain
    assert not _survey("c", Interruption.RESTART_KILLS_BUILDS, agent=False).needs_drain
    assert _survey("d", Interruption.REBOOT).needs_reboot
    assert not _survey("e").changes


def test_dry_lines_say_per_host_whether_it_drains_and_why():
    record = RolloutRecord("fleet", "now", ["1", "100%"], 1, 3600, dry=True)
    record.batches = [["a"], ["b", "c"]]
    record.hosts = {
        "a": HostRecord.planned("a", 1, _survey("a", Interruption.RESTART_KILLS_BUILDS, running=2)),
        "b": HostRecord.planned("b", 2, _survey("b", Interruption.RELOAD)),
        "c": HostRecord.planned("c", 2, _survey("c")),
    }
    text = "\n".join(record.lines())
    assert "a: drain, then deploy; needs a restart that kills builds" in text
    assert "eligible, 2 allocation(s) running" in text
    assert "b: deploy, no drain; needs a reload" in text
    assert "c: nothing to do" in text
    assert record.exit_code() == 0


def test_exit_code_is_one_unless_every_host_settled():
    record = RolloutRecord("fleet", "now", ["1"], 1, 3600)
    record.hosts = {"a": HostRecord("a", 1, outcome="applied"), "b": HostRecord("b", 1)}
    record.hosts["b"].outcome = "unchanged"
    assert record.exit_code() == 0
    record.hosts["b"].outcome = "deferred"
    assert record.exit_code() == 1
    record.hosts["b"].drain_started = "t"
    record.hosts["b"].fail("verify failed: CCI-DKR-02")
    assert record.hosts["b"].eligible_again is False and record.exit_code() == 1
    assert json.loads(json.dumps(record.to_json()))["hosts"][1]["outcome"] == "failed"
