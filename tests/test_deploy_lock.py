"""The deploy lock's host-side script, run here in a directory of the test's own: it is held
while the deploy's connection lives, by that process and not by whatever later gets its PID."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from cci_harden.apply.lock import lock_script


def _take(directory, anchor: int, wait: int = 0) -> subprocess.CompletedProcess:
    script = lock_script(wait, "tester pid 1", local_pid=anchor, directory=str(directory))
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)


def _free_within(directory, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        probe = subprocess.run(["flock", "-n", str(directory / "deploy.lock"), "true"])
        if probe.returncode == 0:
            return True
        time.sleep(0.2)
    return False


def test_the_lock_lives_as_long_as_its_connection(tmp_path):
    first = subprocess.Popen(["sleep", "60"])
    second = subprocess.Popen(["sleep", "60"])
    try:
        assert _take(tmp_path, first.pid).stdout.strip() == "locked"
        refused = _take(tmp_path, second.pid)
        assert refused.returncode == 1 and "another deploy holds this host" in refused.stderr
        assert "tester pid 1" in refused.stderr
        first.kill()
        first.wait()
        assert _free_within(tmp_path, 5)
        assert _take(tmp_path, second.pid).stdout.strip() == "locked"
    finally:
        for proc in (first, second):  # their holders then let go within a second
            proc.kill()
            proc.wait()


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"), reason="a PID namespace needs root"
)
def test_a_reused_pid_does_not_hold_the_lock(tmp_path):
    """In a PID namespace of its own, the connection's PID goes to a new process right after it
    ends (ns_last_pid); the lock is free all the same."""
    script = lock_script(0, "tester pid 1", local_pid=0, directory=str(tmp_path))
    script = script.replace("conn=0\n", 'conn="$ANCHOR"\n', 1)
    (tmp_path / "take.sh").write_text(script)
    inside = f"""
sleep 300 & anchor=$!
ANCHOR=$anchor sh {tmp_path}/take.sh || exit 3
kill $anchor; wait $anchor 2>/dev/null
echo $((anchor - 1)) > /proc/sys/kernel/ns_last_pid
sleep 300 & again=$!
[ "$again" = "$anchor" ] || {{ echo "pid not reused: $anchor $again"; exit 4; }}
for i in $(seq 50); do
  flock -n {tmp_path}/deploy.lock true && {{ echo free; kill $again; exit 0; }}
  sleep 0.1
done
echo held; kill $again; exit 5
"""
    proc = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", inside],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.split()[-1:] == ["free"], proc.stdout + proc.stderr
