"""Change sshd's configuration without ever locking the operator out.

A new drop-in is put in place beside a copy of the old one, checked with ``sshd -t`` against the
whole configuration, and sshd is reloaded (existing sessions stay up). Then this machine opens a
fresh SSH connection to the host, exactly as the deploy's own connection was opened (same user,
key, known_hosts, strict host keys). Only if that login works is the change kept; otherwise the
old file is restored, sshd reloaded again, and the host fails with the reason.
"""

from __future__ import annotations

import shlex
import time

import paramiko
from pyinfra import host
from pyinfra.api import FunctionCommand, StringCommand, operation

from ..model.kinds.files import ManagedFile
from .operations import argv, in_place_fixes, staged_upload

RELOAD = "systemctl reload-or-restart ssh 2>/dev/null || systemctl reload-or-restart sshd"


def restore_commands(path: str) -> str:
    previous, absent = shlex.quote(f"{path}.cci-previous"), shlex.quote(f"{path}.cci-absent")
    path = shlex.quote(path)
    return (
        f"if [ -f {absent} ]; then rm -f {path} {absent}; "
        f"elif [ -f {previous} ]; then mv -f {previous} {path}; fi; {RELOAD}"
    )


class LockoutError(Exception):
    """A fresh SSH login failed after the change; the old configuration was restored."""


def fresh_login(
    hostname: str, port: int, user: str, key_file: str | None, known_hosts: str, timeout: int
) -> None:
    """Log in afresh with the deploy's own credentials and run ``true``.

    sshd re-executes itself on reload and stops listening for a moment, so a refused connection
    is retried until ``timeout``; a rejected key or host key is a lockout at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _login_once(hostname, port, user, key_file, known_hosts, timeout)
        except (paramiko.ssh_exception.NoValidConnectionsError, ConnectionError, TimeoutError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.3)


def _login_once(hostname, port, user, key_file, known_hosts, timeout) -> None:
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            hostname,
            port=port,
            username=user,
            key_filename=key_file,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            allow_agent=key_file is None,
            look_for_keys=False,
        )
        _, stdout, _ = client.exec_command("true", timeout=timeout)
        if stdout.channel.recv_exit_status() != 0:
            raise LockoutError("the login worked but running a command failed")
    finally:
        client.close()


def _guard(state, host, path: str, login: dict) -> None:
    sudo = bool(host.data.get("_sudo"))
    try:
        fresh_login(**login)
    except Exception as exc:  # any failure to log in is a lockout
        status, output = host.run_shell_command(StringCommand(restore_commands(path)), _sudo=sudo)
        if not status:
            host.log(f"restore failed: {output.stderr if hasattr(output, 'stderr') else output}")
        restored = (
            "restored the previous configuration and reloaded sshd"
            if status
            else "RESTORING THE PREVIOUS CONFIGURATION FAILED (see above)"
        )
        raise LockoutError(
            f"cci-harden: a fresh SSH login to {login['hostname']} failed after the new sshd "
            f"configuration was loaded ({type(exc).__name__}: {exc}); {restored}. Check the "
            "ssh settings (allow_users, allow_groups, host_key_types) against how the deploy "
            "logs in."
        ) from None
    host.run_shell_command(argv("rm", "-f", f"{path}.cci-previous"), _sudo=sudo)


def login_parameters(timeout: int) -> dict:
    data = host.data
    return {
        "hostname": data.get("ssh_hostname") or host.name,
        "port": int(data.get("ssh_port") or 22),
        "user": data.get("ssh_user") or "root",
        "key_file": data.get("ssh_key"),
        "known_hosts": data.get("ssh_known_hosts_file"),
        "timeout": timeout,
    }


@operation()
def guarded_config(
    desired: ManagedFile,
    current=None,
    login_timeout: int = 20,
    reload: bool = True,
    probe: bool = True,
):
    """
    Install an sshd drop-in only if ``sshd -t`` accepts it and a fresh login still works.

    + desired: the drop-in (``/etc/ssh/sshd_config.d/...``)
    + current: its state in the host's snapshot (None: missing)
    + login_timeout: seconds to wait for the fresh login
    + reload: reload sshd (not in an image bake: sshd reads it when the instance boots)
    + probe: prove a fresh login (not in local mode, which has no SSH connection of its own)

    **Example:**

    .. code:: python

        guarded_config(name="[CCI-SSH-01] sshd", desired=ManagedFile(
            "/etc/ssh/sshd_config.d/00-cci-harden.conf", text, mode=0o600))
    """
    path = desired.path
    fixes = in_place_fixes(desired, current)
    if fixes is not None:
        yield from fixes
        return
    staged = f"{path}.cci-new"
    yield from staged_upload(desired, staged)
    previous, absent = f"{path}.cci-previous", f"{path}.cci-absent"
    q_path, q_previous, q_absent = (shlex.quote(p) for p in (path, previous, absent))
    keep_old = (
        f"if [ -f {q_path} ]; then cp -p {q_path} {q_previous}; rm -f {q_absent}; "
        f"else touch {q_absent}; fi"
    )
    yield StringCommand(keep_old)
    yield argv("sync", "--", staged)
    yield argv("mv", "-f", staged, path)
    refusal = shlex.quote(f"cci-harden: refusing {path}: sshd -t rejects the configuration")
    yield StringCommand(
        f"if ! sshd -t; then {restore_commands(path)}; echo {refusal} >&2; exit 1; fi"
    )
    if reload:
        yield StringCommand(RELOAD)
    if reload and probe:
        yield FunctionCommand(_guard, (path, login_parameters(login_timeout)), {})
    else:
        yield argv("rm", "-f", previous)
    yield argv("rm", "-f", absent)
