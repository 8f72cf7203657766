"""Changing the test bed while it runs build-like jobs: the plain deploy refuses what would kill
them, the rollout drains first, a failed canary stops it, a build longer than the deadline is
left alone, and a rollout with nothing to change drains nothing.

The jobs are the stand-in agent's allocations (``cci-harden testbed job``): a process bound to
docker.service, so a Docker restart kills it as it kills a real build.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from .conftest import run_cli, run_pyinfra, ssh

pytestmark = pytest.mark.testbed

# the drain deadline stays the inventory's: it is also Nomad's drain on shutdown (client.hcl)
QUICK = {"CCI_ROLLOUT__POLL_SECONDS": "1", "CCI_ROLLOUT__MAX_UNAVAILABLE": "1"}


def start_job(host: str, seconds: int) -> str:
    proc = run_cli("testbed", "job", host, "--seconds", str(seconds))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["id"]


def job_states() -> dict[str, str]:
    proc = run_cli("testbed", "job", "--status")
    assert proc.returncode == 0, proc.stderr
    return {job["id"]: job["status"] for job in json.loads(proc.stdout)}


def log_max_size(inventory, host: str) -> str:
    daemon = json.loads(ssh(inventory, host, "cat /etc/docker/daemon.json").stdout)
    return daemon["log-opts"]["max-size"]


def node(inventory, host: str) -> dict:
    """The stand-in agent's view of its node, asked on the host as the rollout asks it."""
    me = ssh(inventory, host, "curl -s 127.0.0.1:4646/v1/agent/self").stdout
    node_id = json.loads(me)["stats"]["client"]["node_id"]
    return json.loads(ssh(inventory, host, f"curl -s 127.0.0.1:4646/v1/node/{node_id}").stdout)


def rollout(inventory, tmp_path, *args: str, env: dict) -> tuple[int, dict, str]:
    report = tmp_path / "rollout.json"
    proc = run_cli(
        "rollout", str(inventory.path), *args, "--report", str(report), env=env, timeout=900
    )
    assert report.is_file(), proc.stderr[-3000:]
    record = json.loads(report.read_text())
    return proc.returncode, record, proc.stdout + proc.stderr


def most_out_of_service(record: dict) -> int:
    """The most hosts ineligible at the same moment, from each host's drain and release."""
    events = []
    for host in record["hosts"]:
        if host["drain_started"]:
            end = host["released"] or "9999"
            events += [(host["drain_started"], 1), (end, -1)]
    most = current = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        current += step
        most = max(most, current)
    return most


def restore(inventory) -> None:
    """Back to the inventory's own settings (no job runs: the deploy may restart Docker)."""
    proc = run_pyinfra(inventory.path, "deploys/nomad.py")
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_noop_rollout_drains_nothing(deployed, tmp_path):
    inventory, _ = deployed
    code, record, output = rollout(inventory, tmp_path, env=QUICK)
    assert code == 0, output[-3000:]
    assert {h["outcome"] for h in record["hosts"]} == {"unchanged"}
    assert not any(h["drain_started"] or h["deployed"] for h in record["hosts"])


def test_plain_deploy_refuses_and_rollout_drains_without_killing_a_job(deployed, tmp_path):
    inventory, _ = deployed
    hosts = sorted(h.name for h in inventory.hosts)
    change = {"CCI_DOCKER__LOG_MAX_SIZE": "11m"}
    jobs = {host: start_job(host, 40) for host in hosts}
    started = dt.datetime.now(dt.UTC)
    try:
        deploy = run_pyinfra(inventory.path, "deploys/nomad.py", env=change)
        said = deploy.stdout + deploy.stderr
        assert deploy.returncode != 0
        for host in hosts:
            assert f"refusing host {host}: [CCI-DKR-02] file:/etc/docker/daemon.json" in said
        assert "allocation(s) are running" in said and "cci-harden rollout" in said
        assert all(log_max_size(inventory, h) == "10m" for h in hosts)
        assert {job_states()[j] for j in jobs.values()} == {"running"}

        code, record, output = rollout(inventory, tmp_path, "--batches", "1,100%",
                                       env={**QUICK, **change})  # fmt: skip
        assert code == 0, output[-3000:]
        assert record["batches"] == [hosts[:1], hosts[1:]]
        states = job_states()
        assert [states[j] for j in jobs.values()] == ["finished"] * len(hosts), states
        for host in record["hosts"]:
            assert host["outcome"] == "applied" and host["verify"] == "pass", host
            assert host["eligible_again"] is True and host["drain_started"], host
        canary = record["hosts"][0]
        waited = dt.datetime.fromisoformat(canary["drain_ended"].replace("Z", "+00:00"))
        assert (waited - started).total_seconds() >= 30  # it waited for the job
        assert most_out_of_service(record) == 1
        assert all(log_max_size(inventory, h) == "11m" for h in hosts)
        assert all(node(inventory, h)["SchedulingEligibility"] == "eligible" for h in hosts)
    finally:
        for job in jobs.values():
            while job_states().get(job) == "running":
                time.sleep(2)
        restore(inventory)


def test_a_canary_that_fails_verify_stops_the_rollout(deployed, tmp_path):
    inventory, _ = deployed
    hosts = sorted(h.name for h in inventory.hosts)
    canary = hosts[0]
    change = {"CCI_DOCKER__LOG_MAX_SIZE": "12m"}
    # a listener nothing declared: the deploy cannot remove it, verify fails on it
    ssh(inventory, canary, "systemd-run --unit cci-test-stray python3 -m http.server 7777")
    try:
        code, record, output = rollout(inventory, tmp_path, env={**QUICK, **change})
        assert code == 1
        by_name = {h["host"]: h for h in record["hosts"]}
        assert by_name[canary]["outcome"] == "failed" and by_name[canary]["verify"] == "fail"
        assert by_name[canary]["eligible_again"] is False
        assert "stopped: batch 1" in record["stopped"] and canary in output
        assert node(inventory, canary)["SchedulingEligibility"] == "ineligible"
        for host in hosts[1:]:
            assert by_name[host]["outcome"] == "not reached" and not by_name[host]["deployed"]
            assert log_max_size(inventory, host) == "10m"
            assert node(inventory, host)["SchedulingEligibility"] == "eligible"
        # a rollout of the other hosts would take a second host out of service while the
        # canary still is: the cap (1) counts it and refuses
        limit = [arg for host in hosts[1:] for arg in ("--limit", host)]
        code, record, _ = rollout(inventory, tmp_path, *limit, env={**QUICK, **change})
        assert code == 1 and f"out of service ({canary})" in record["stopped"], record["stopped"]
        assert all(not h["drain_started"] for h in record["hosts"])
    finally:
        ssh(inventory, canary, "systemctl stop cci-test-stray", check=False)
        node_id = node(inventory, canary)["ID"]
        ssh(
            inventory,
            canary,
            'curl -s -X PUT -d \'{"DrainSpec":null,"MarkEligible":true}\' '
            f"127.0.0.1:4646/v1/node/{node_id}/drain",
        )
        restore(inventory)


def test_a_build_longer_than_the_deadline_is_left_running_and_unchanged(deployed, tmp_path):
    inventory, _ = deployed
    host = sorted(h.name for h in inventory.hosts)[0]
    change = {"CCI_DOCKER__LOG_MAX_SIZE": "13m"}
    job = start_job(host, 40)
    try:
        env = {**QUICK, **change, "CCI_ROLLOUT__DRAIN_DEADLINE_SECONDS": "10"}
        # (the shorter deadline also changes client.hcl: the host is left before any change)
        code, record, output = rollout(inventory, tmp_path, "--limit", host, env=env)
        assert code == 1, output[-3000:]
        (entry,) = record["hosts"]
        assert entry["outcome"] == "deferred" and "deadline" in entry["note"], entry
        assert entry["eligible_again"] is True and not entry["deployed"]
        assert job_states()[job] == "running"
        assert log_max_size(inventory, host) == "10m"
        assert node(inventory, host)["SchedulingEligibility"] == "eligible"
        assert node(inventory, host)["DrainStrategy"] is None
    finally:
        ssh(inventory, host, "systemctl stop 'cci-testbed-job-*'", check=False)
        restore(inventory)
