"""One deploy at a time per host: a lock held for exactly as long as the deploy's SSH connection
(or, run on the host itself, the deploy's own process).

The first thing a deploy reads from a host is this "fact": it starts, on the host, a holder
process that takes ``/run/cci-harden/deploy.lock`` with flock(1), writes who holds it and since
when, and keeps it until the SSH connection the deploy came in on ends (that process, known by
its PID and its start time: a PID the kernel hands to a later process holds nothing). So the
lock is released when the deploy finishes, and also when it dies, is killed or loses its
network: a stale lock cannot outlive its run (a reboot clears /run as well). A second deploy waits
``deploy.lock_wait_seconds`` for it, then stops on that host naming the holder; the other hosts
go on.

Two runs over the same hosts at once would each take some hosts and wait for the others'
(every run keeps its connections, and so its locks, until its last host is done). So the
younger run (the later start time, which the holder file records) waits at most
``YIELD_SECONDS`` for a host an older run holds, then leaves that host to it; the older run
waits its full time. One of the two always goes on; nothing waits on a cycle.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import secrets
import shlex
import socket
import time
from functools import cache

from pyinfra.api import FactBase

from ..model.text import printable

LOCK_DIR = "/run/cci-harden"

YIELD_SECONDS = 10

_SCRIPT = r"""
dir={dir}; lock="$dir/deploy.lock"; holder="$dir/deploy.holder"; me={started}
mkdir -p "$dir" && chmod 0700 "$dir" || exit 1
conn={anchor}
if [ "$conn" = ssh ]; then
  conn=$$
  while [ "$conn" -gt 1 ]; do
    case "$(cat /proc/$conn/comm 2>/dev/null)" in sshd*) break ;; esac
    conn=$(sed 's/.*) //' /proc/$conn/stat | cut -d' ' -f2)
  done
  if [ "$conn" -le 1 ]; then
    echo "cci-harden: no SSH connection found to tie the deploy lock to" >&2; exit 1
  fi
fi
# the connection's start time with its PID: a PID reused by a later process holds nothing
born=$(sed 's/.*) //' /proc/$conn/stat 2>/dev/null | cut -d' ' -f20)
[ -n "$born" ] || {{ echo "cci-harden: process $conn is gone" >&2; exit 1; }}
wait={wait}
if ! flock -n "$lock" true; then
  since=$(sed -n 1p "$holder" 2>/dev/null | cut -d' ' -f1)
  older=$(printf '%s\n%s\n' "${{since:-0}}" "$me" | sort -g | head -n 1)
  if [ "$older" != "$me" ] && [ "$wait" -gt {yield_seconds} ]; then wait={yield_seconds}; fi
fi
ready="$dir/ready.{token}"
setsid -w flock -w "$wait" "$lock" sh -c '
  printf "%s %s\n" "$5" "$1" > "$2.new" && mv -f "$2.new" "$2"
  : > "$3"
  while [ "$(sed "s/.*) //" /proc/$4/stat 2>/dev/null | cut -d" " -f20)" = "$6" ]; do
    sleep 1
  done
  rm -f "$3"' holder {holder} "$holder" "$ready" "$conn" "$me" "$born" </dev/null >/dev/null 2>&1 &
waiter=$!
while [ ! -e "$ready" ]; do
  if ! kill -0 "$waiter" 2>/dev/null; then
    echo "cci-harden: another deploy holds this host:" \
      "$(sed -n '1s/^[^ ]* //p' "$holder" 2>/dev/null || echo unknown); waited $wait s" \
      "(deploy.lock_wait_seconds; a run that started later waits {yield_seconds} s at most)" >&2
    exit 1
  fi
  sleep 0.02
done
echo locked
"""


STARTED = time.time()  # this run's start, to tell the older of two runs


@cache
def holder_text() -> str:
    """Who this deploy is, as the next one will be told: user@machine, pid, start time."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    started = dt.datetime.fromtimestamp(STARTED, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return printable(f"{user}@{socket.gethostname()} pid {os.getpid()} since {started}")


def lock_script(
    wait: int,
    holder: str,
    started: float | None = None,
    local_pid: int | None = None,
    directory: str = LOCK_DIR,
) -> str:
    """The host-side script (every value quoted for the shell). ``local_pid``: a local run
    (``pyinfra @local``) ties the lock to that process, as an SSH deploy ties it to sshd's."""
    return _SCRIPT.format(
        anchor="ssh" if local_pid is None else int(local_pid),
        dir=shlex.quote(directory),
        token=secrets.token_hex(8),
        wait=int(wait),
        yield_seconds=YIELD_SECONDS,
        holder=shlex.quote(holder),
        started=f"{STARTED if started is None else started:.6f}",
    )


class DeployLock(FactBase):
    """This host's deploy lock, taken for the life of the SSH connection ("locked")."""

    def command(self, wait: int, holder: str, local: bool = False) -> str:
        return lock_script(wait, holder, local_pid=os.getpid() if local else None)

    def process(self, output) -> str:
        return "\n".join(output)
