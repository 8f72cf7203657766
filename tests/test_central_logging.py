"""Central logging (CCI-OS-08): a client's logs reach a real collector on another test
host over TLS, nothing is lost while the collector is away, and any other peer is refused.

tb3 runs rsyslog as the collector (tests/log_collector.py); tb2 forwards to it by RELP; tb1 is
pointed at it with the wrong name, with another CA, then by syslog over TLS. The VM host's auditd
records are checked in tests/test_vm_hosts.py, where auditd runs.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from cci_harden.controls.central_logging import CA_FILE, FORWARD_FILE, KEY_FILE, SPOOL_DIR

from .conftest import changed_hosts, pyinfra_json, run_cli, ssh
from .log_collector import make_pki, running_collector

pytestmark = pytest.mark.testbed

CLIENT = "tb2"
OTHER = "tb1"
COLLECTOR = "tb3"


@pytest.fixture(scope="module")
def collector(deployed, tmp_path_factory):
    inventory, _ = deployed
    with running_collector(inventory, COLLECTOR, tmp_path_factory.mktemp("log-pki")) as found:
        yield found


@pytest.fixture(scope="module")
def forwarding(collector):
    """tb2 converged with a collector; what the deploy did."""
    result = pyinfra_json(
        collector.inventory.path, "deploys/nomad.py", "--limit", CLIENT, env=collector.env()
    )
    return collector, result


def marker() -> str:
    return f"cci-{uuid.uuid4().hex[:12]}"


def fresh_login(inventory, host: str, command: str) -> None:
    """A new SSH session (not the shared control connection), so sshd logs a login."""
    proc = subprocess.run(
        ["ssh", "-F", str(inventory.ssh_config), "-S", "none", host, command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_the_deploy_validates_and_restarts_only_what_logging_needs(forwarding):
    _, result = forwarding
    changed = changed_hosts(result)
    assert changed[f"[CCI-OS-08] {FORWARD_FILE}"] == [CLIENT]
    restarted = {name for name in changed if " restart " in name}
    assert restarted <= {
        "[CCI-OS-08] restart rsyslog (package rsyslog-relp changed)",
        f"[CCI-OS-08] restart rsyslog ({FORWARD_FILE} changed)",
        "[CCI-OS-08] restart systemd-journald "
        "(/etc/systemd/journald.conf.d/cci-harden-syslog.conf changed)",
    }, restarted


def test_a_login_sudo_and_dockers_daemon_reach_the_collector(forwarding):
    collector, _ = forwarding
    inventory = collector.inventory
    tag = marker()
    fresh_login(inventory, CLIENT, f"logger -t {tag} from-a-login && sudo -u nobody true")
    # Docker's daemon logs to the journal; a restart makes it write lines of its own
    ssh(inventory, CLIENT, "systemctl restart docker")
    lines = collector.wait_for(
        CLIENT,
        lambda found: (
            any(tag in line for line in found) and any(" dockerd " in line for line in found)
        ),
    )
    assert any(f"{CLIENT} {tag} from-a-login" in line for line in lines)
    assert any(" sshd " in line and "Accepted publickey for root" in line for line in lines)
    assert any(" sudo " in line and "USER=nobody" in line for line in lines)
    assert any(f"{CLIENT} dockerd " in line for line in lines)


def _arrived(lines: list[str], tag: str) -> list[str]:
    return [line.split(f" {tag} ", 1)[1] for line in lines if f" {tag} " in line]


def _all_arrive(collector, tag: str, expected: set[str]) -> list[str]:
    """Every expected record arrives, none twice; the collector's lines from the client."""
    lines = collector.wait_for(CLIENT, lambda found: set(_arrived(found, tag)) >= expected, 90)
    assert sorted(_arrived(lines, tag)) == sorted(expected)
    return lines


def test_nothing_is_lost_across_the_collectors_restart(forwarding):
    """The collector stops while the client is sending and starts again later: every record
    arrives, once. RELP: a record leaves the client only when the collector acknowledged it,
    so the ones sent into the closing connection are sent again (syslog over TLS lost the
    first one here)."""
    collector, _ = forwarding
    inventory = collector.inventory
    tag = marker()
    collector.stop()
    try:
        ssh(inventory, CLIENT, f'for i in $(seq 1 200); do logger -t {tag} "record $i"; done')
        fresh_login(inventory, CLIENT, "true")
        ssh(inventory, CLIENT, "sleep 5")
    finally:
        collector.start()
    lines = _all_arrive(collector, tag, {f"record {i}" for i in range(1, 201)})
    assert sum("Accepted publickey" in line for line in lines) >= 2


def test_queued_records_survive_a_restart_of_the_client(forwarding):
    """While the collector is away, what the client queued is saved to disk when rsyslog stops
    and sent once the collector is back. (Records handed to the connection in the moment before
    the client noticed the collector gone are held in memory only: docs/operator-guide.md.)"""
    collector, _ = forwarding
    inventory = collector.inventory
    tag = marker()
    since = ssh(inventory, CLIENT, "date +%s").stdout.strip()
    collector.stop()
    try:
        # until the client notices (its action suspended), records go to the connection; they
        # are what a restart now may lose, so they are not counted
        ssh(
            inventory,
            CLIENT,
            "for i in $(seq 1 60); do "
            f"journalctl -u rsyslog -q --no-pager --since @{since} | "
            "grep -q \"'cci-harden-collector' suspended\" && exit 0; "
            f"logger -t {tag}-probe $i; sleep 1; done; exit 1",
        )
        ssh(inventory, CLIENT, f'for i in $(seq 1 150); do logger -t {tag} "before $i"; done')
        ssh(inventory, CLIENT, "sleep 1; systemctl restart rsyslog")
        spooled = ssh(inventory, CLIENT, f"ls {SPOOL_DIR}").stdout.split()
        assert "cci-harden-collector.qi" in spooled, spooled
        ssh(inventory, CLIENT, f'for i in $(seq 1 150); do logger -t {tag} "after $i"; done')
    finally:
        collector.start()
    expected = {f"{when} {i}" for when in ("before", "after") for i in range(1, 151)}
    _all_arrive(collector, tag, expected)


def test_a_second_converge_changes_nothing_and_verify_passes(forwarding, tmp_path):
    collector, _ = forwarding
    again = pyinfra_json(
        collector.inventory.path, "deploys/nomad.py", "--limit", CLIENT, env=collector.env()
    )
    assert changed_hosts(again) == {}
    report = tmp_path / "report"
    proc = run_cli(
        "verify",
        str(collector.inventory.path),
        "--limit",
        CLIENT,
        "--report-dir",
        str(report),
        env=collector.env(),
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "CCI-OS-08   ok" in proc.stdout


@pytest.mark.parametrize("wrong", ["name", "ca"])
def test_a_collector_without_the_expected_certificate_gets_nothing(forwarding, tmp_path, wrong):
    """tb1 pointed at the collector, expecting another name, or trusting another CA: the TLS
    handshake fails and not one record is sent."""
    collector, _ = forwarding
    inventory = collector.inventory
    if wrong == "name":
        env = collector.env(CCI_LOGGING__COLLECTOR_NAME="someone-else.testbed")
    else:
        make_pki(tmp_path / "foreign")
        env = collector.env(CCI_LOGGING__CA_FILE=str(tmp_path / "foreign" / "ca.pem"))
    pyinfra_json(inventory.path, "deploys/nomad.py", "--limit", OTHER, env=env)
    tag = marker()
    ssh(inventory, OTHER, f"logger -t {tag} must-not-leave")
    errors = ssh(
        inventory,
        OTHER,
        "for i in $(seq 1 30); do "
        "journalctl -u rsyslog --no-pager -q | grep -E 'authentication error|verify|not trusted"
        "|certificate' && break; sleep 1; done",
        check=False,
    ).stdout
    assert errors, "rsyslog on tb1 reported no refused certificate"
    assert not any(tag in line for line in collector.lines(OTHER))


def test_syslog_over_tls_reaches_a_collector_without_relp(forwarding):
    collector, _ = forwarding
    inventory = collector.inventory
    env = collector.env(CCI_LOGGING__TRANSPORT="syslog-tls")
    pyinfra_json(inventory.path, "deploys/nomad.py", "--limit", OTHER, env=env)
    tag = marker()
    ssh(inventory, OTHER, f"logger -t {tag} over-rfc5425")
    lines = collector.wait_for(OTHER, lambda found: any(tag in line for line in found))
    assert f"{OTHER} {tag} over-rfc5425" in lines


def test_without_a_collector_the_forwarding_is_removed(forwarding):
    collector, _ = forwarding
    inventory = collector.inventory
    result = pyinfra_json(inventory.path, "deploys/nomad.py", "--limit", CLIENT, "--limit", OTHER)
    changed = changed_hosts(result)
    removed = f"[CCI-TK-01] remove {FORWARD_FILE} (CCI-OS-08 no longer applies)"
    assert sorted(changed[removed]) == sorted([CLIENT, OTHER])
    for host in (CLIENT, OTHER):
        for path in (FORWARD_FILE, CA_FILE, KEY_FILE):
            assert ssh(inventory, host, f"test ! -e {path}", False).returncode == 0, (host, path)
    tag = marker()
    ssh(inventory, CLIENT, f"logger -t {tag} stays-here")
    lines = collector.wait_for(CLIENT, lambda found: any(tag in line for line in found), 8)
    assert not any(tag in line for line in lines)
