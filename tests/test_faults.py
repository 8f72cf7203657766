"""A deploy survives what fails around it, and one more run always finishes the job.

Each test breaks something on the test bed while a deploy runs (a host killed mid-install, the
apt proxy stopped, a full disk, the SSH connection cut, a second deploy, the apt lock held),
checks what the operator sees, then one more deploy must converge every host with verify clean.
Only what the test bed started is killed or stopped, by the PIDs it recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cci_harden.apply.lock import lock_script
from cci_harden.testbed import proxy
from cci_harden.testbed.layout import Layout
from cci_harden.testbed.process import pid_alive
from cci_harden.testbed.state import TestbedState

from .conftest import BIN, REPO, TESTBED_HOSTS, run_cli, run_pyinfra, ssh

pytestmark = pytest.mark.testbed

# Installed by the deploy; purged by a test so the next deploy has apt work to do on that host.
PACKAGES = "debsums apt-show-versions auditd"
QUICK = {"CCI_DEPLOY__APT_LOCK_WAIT_SECONDS": "20", "CCI_DEPLOY__LOCK_WAIT_SECONDS": "3"}


def converges(inventory) -> None:
    """One deploy brings every host back; verify is then clean."""
    deploy = run_pyinfra(inventory.path, "deploys/nomad.py")
    assert deploy.returncode == 0, deploy.stderr[-3000:]
    verify = run_cli("verify", str(inventory.path))
    assert verify.returncode == 0, verify.stdout[-3000:]


def start_deploy(inventory, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "pyinfra"), "-y", str(inventory.path), "deploys/nomad.py"],
        cwd=REPO,
        env={**os.environ, "PYINFRA_PROGRESS": "off", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(inventory, host: str, command: str, timeout: float) -> bool:
    """Poll ``command`` on ``host`` until it succeeds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ssh(inventory, host, command, check=False).returncode == 0:
            return True
        time.sleep(0.05)
    return False


def forget_connection(inventory, host: str) -> None:
    """Close ssh's shared connection to a host that went away, so the next command dials anew."""
    subprocess.run(
        ["ssh", "-F", str(inventory.ssh_config), "-O", "exit", host], capture_output=True
    )


def kill_host(name: str) -> None:
    """SIGKILL the host's init: every process on it ends at once, as at a power cut; its disk
    (the overlay) keeps whatever was written."""
    record = TestbedState.load(Layout().state_file).hosts[name]
    children = Path(f"/proc/{record.pid}/task/{record.pid}/children").read_text().split()
    os.kill(int(children[0]), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while pid_alive(record.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(record.pid), f"{name} did not stop"


def bring_back() -> None:
    """``testbed up`` boots what is down (hosts, the proxy) and keeps what runs."""
    proc = run_cli("testbed", "up", "--hosts", str(TESTBED_HOSTS), timeout=600)
    assert proc.returncode == 0, proc.stderr


def test_a_host_killed_while_dpkg_runs_converges_on_the_next_run(deployed):
    inventory, _ = deployed
    ssh(inventory, "tb2", f"apt-get purge -y -q {PACKAGES} >/dev/null 2>&1")
    run = start_deploy(inventory)
    try:
        caught = wait_until(inventory, "tb2", "pgrep -x dpkg >/dev/null", timeout=300)
        kill_host("tb2")
    finally:
        out, err = run.communicate(timeout=900)
    assert caught, "dpkg never ran on tb2"
    assert run.returncode != 0 and "tb2" in err  # the lost host is reported...
    assert "[tb1] Error" not in err and "[tb3] Error" not in err  # ...the others went on
    forget_connection(inventory, "tb2")
    bring_back()
    left = ssh(inventory, "tb2", "ls -A /var/lib/dpkg/updates | wc -l; dpkg --audit | wc -l")
    print("left by the kill (journal entries, audit lines):", left.stdout.split())
    converges(inventory)


def test_a_package_cut_off_mid_unpack_is_reinstalled_by_the_deploy(deployed):
    """What a kill during unpacking leaves: the package marked reinstall-required and
    half-installed; dpkg --configure -a cannot finish it, only a reinstall."""
    inventory, _ = deployed
    ssh(
        inventory,
        "tb1",
        "perl -0pi -e 's/(Package: debsums\n(?:.+\n)*?)Status: install ok installed/"
        "$1Status: install reinstreq half-installed/' /var/lib/dpkg/status && "
        "dpkg --audit | grep -q debsums",
    )
    verify = run_cli("verify", str(inventory.path), "--limit", "tb1")
    assert verify.returncode == 1 and "dpkg --audit" in verify.stdout, verify.stdout[-2000:]
    converges(inventory)
    assert ssh(inventory, "tb1", "dpkg-query -W -f='${db:Status-Abbrev}' debsums").stdout == "ii "


def test_an_interrupted_dpkg_journal_is_reported_then_finished_by_the_deploy(deployed):
    """The state a kill leaves, made on purpose: apt would refuse every install until someone
    ran dpkg --configure -a by hand."""
    inventory, _ = deployed
    ssh(
        inventory,
        "tb3",
        "dpkg-query -s debsums | sed '/^$/q' > /var/lib/dpkg/updates/0000 && "
        "apt-get install -y -q hostname 2>&1 | grep -q 'dpkg was interrupted'",
    )
    verify = run_cli("verify", str(inventory.path), "--limit", "tb3")
    assert verify.returncode == 1 and "CCI-TK-02" in verify.stdout, verify.stdout[-2000:]
    assert "dpkg journal" in verify.stdout
    converges(inventory)


def test_a_second_deploy_waits_for_the_first_and_a_dead_holder_frees_the_host(deployed):
    inventory, _ = deployed
    holder = "tester@bench pid 4242 since 2026-11-30T00:00:00Z"
    hold = subprocess.Popen(
        [
            "ssh",
            "-F",
            str(inventory.ssh_config),
            "-S",
            "none",
            "tb1",
            lock_script(5, holder) + "\nsleep 600",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert hold.stdout is not None and hold.stdout.readline().strip() == "locked"
        blocked = run_pyinfra(inventory.path, "deploys/nomad.py", env=QUICK)
        assert blocked.returncode != 0
        assert f"[tb1] cci-harden: another deploy holds this host: {holder}" in blocked.stderr
        assert "[tb2] Error" not in blocked.stderr and "[tb3] Error" not in blocked.stderr
    finally:
        # the holder dies as a run does: its connection ends; the lock goes with it
        ssh(inventory, "tb1", "pkill -f 'slee[p] 600' || true")
        hold.kill()
        hold.wait(30)
    # two deploys at once: never a wait on a cycle; the older run finishes every host, the
    # younger leaves to it what it holds, naming it
    first = start_deploy(inventory)
    time.sleep(0.5)
    second = start_deploy(inventory)
    started = time.monotonic()
    _, first_err = first.communicate(timeout=900)
    _, second_err = second.communicate(timeout=900)
    assert time.monotonic() - started < 120
    assert first.returncode == 0, first_err[-2000:]
    assert second.returncode == 0 or "another deploy holds this host" in second_err, second_err
    converges(inventory)


def test_a_held_apt_lock_is_waited_for_and_said(deployed):
    inventory, _ = deployed
    ssh(inventory, "tb3", "apt-get purge -y -q debsums >/dev/null 2>&1")
    ssh(
        inventory,
        "tb3",
        "nohup apt-get -q -o DPkg::Pre-Invoke::='sleep 12' install --reinstall -y hostname "
        ">/dev/null 2>&1 </dev/null &",
    )
    assert wait_until(inventory, "tb3", "grep -q POSIX /proc/locks && pgrep -x apt-get", 60)
    deploy = run_pyinfra(inventory.path, "deploys/nomad.py")
    assert deploy.returncode == 0, deploy.stderr[-3000:]
    assert "[tb3] dpkg's lock is held by" in deploy.stderr + deploy.stdout
    converges(inventory)


def test_a_full_disk_leaves_the_old_file_whole(deployed):
    inventory, _ = deployed
    target = "/etc/docker/seccomp"
    drifted = '{"defaultAction": "SCMP_ACT_ALLOW"}\n'
    ssh(
        inventory,
        "tb1",
        f"cp -a {target} /tmp/seccomp-before && mount -t tmpfs -o size=64k tmpfs {target} && "
        f"printf '%s' '{drifted}' > {target}/circleci.json && "
        f"(dd if=/dev/zero of={target}/filler bs=1k 2>/dev/null || true)",
    )
    try:
        failed = run_pyinfra(inventory.path, "deploys/nomad.py")
        assert failed.returncode != 0 and "[tb1]" in failed.stderr
        kept = ssh(inventory, "tb1", f"cat {target}/circleci.json").stdout
        assert kept == drifted  # the old file, whole: never empty, never partly written
        ssh(inventory, "tb1", f"rm -f {target}/filler")
        converges(inventory)
        assert not ssh(inventory, "tb1", f"ls -A {target} | grep cci-", check=False).stdout
    finally:
        ssh(inventory, "tb1", f"umount {target} || true; rm -rf /tmp/seccomp-before", check=False)
    converges(inventory)


def test_the_apt_proxy_stopping_mid_run_is_named_and_the_next_run_converges(deployed):
    inventory, _ = deployed
    layout = Layout()
    ssh(inventory, "tb2", f"apt-get purge -y -q {PACKAGES} >/dev/null 2>&1")
    ssh(inventory, "tb2", "apt-get clean")  # nothing cached on the host: it needs the proxy
    run = start_deploy(inventory, QUICK)
    try:
        assert wait_until(inventory, "tb2", "pgrep -x apt-get >/dev/null", timeout=300)
        proxy.stop(layout, TestbedState.load(layout.state_file).proxy_pid)
    finally:
        _, err = run.communicate(timeout=900)
    try:
        assert run.returncode != 0
        address = f"{layout.bridge_address}:{layout.proxy_port}"
        assert "[tb2]" in err and (address in err or "apt-get update failed" in err), err[-3000:]
        assert "[tb1] Error" not in err and "[tb3] Error" not in err
    finally:
        bring_back()
    converges(inventory)


def test_a_dropped_ssh_connection_mid_run_converges_on_the_next_run(deployed):
    inventory, _ = deployed
    ssh(inventory, "tb3", f"apt-get purge -y -q {PACKAGES} >/dev/null 2>&1")
    run = start_deploy(inventory)
    try:
        assert wait_until(inventory, "tb3", "pgrep -x apt-get >/dev/null", timeout=300)
        # every SSH session on the host ends, the deploy's among them (sshd itself stays up)
        ssh(inventory, "tb3", "pkill -KILL -f 'ssh[d]: root@' || true", check=False)
    finally:
        _, err = run.communicate(timeout=900)
    assert run.returncode != 0 and "tb3" in err
    forget_connection(inventory, "tb3")
    converges(inventory)
