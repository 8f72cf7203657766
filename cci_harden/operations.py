"""pyinfra operations the toolkit adds: a managed file that is validated before it goes live.

pyinfra's ``files.put`` writes straight to the destination and prints file contents with
``--diff``. Hardening a service's configuration needs more: stage the new file beside the old one,
run the service's own validator on it (``sshd -t``, ``nomad config validate``, a JSON parse), and
only then rename it into place, so a bad render never replaces a working configuration; and a
secret's contents never reach a log.
"""

from __future__ import annotations

import posixpath
import shlex
from io import StringIO

from pyinfra import host, logger, state
from pyinfra.api import FileUploadCommand, StringCommand, operation
from pyinfra.facts.files import File, FileContents, Sha256File

from .catalogue.model import DesiredFile


def _owner_mode_differ(remote: dict, desired: DesiredFile) -> bool:
    return (
        int(str(remote.get("mode")), 8) != desired.mode
        or remote.get("user") != desired.user
        or remote.get("group") != desired.group
    )


def in_place_fixes(desired: DesiredFile, remote: dict | None) -> list | None:
    """Commands that make the file on the host right without rewriting it.

    ``None`` when its content must be rewritten; ``[]`` (after logging a no-op) when it is as
    desired; else the chown/chmod that only owner or mode need.
    """
    if not remote or host.get_fact(Sha256File, path=desired.path) != desired.sha256:
        return None
    if not _owner_mode_differ(remote, desired):
        host.noop(f"{desired.path} is as desired")
        return []
    return [
        StringCommand("chown", f"{desired.user}:{desired.group}", desired.path),
        StringCommand("chmod", f"{desired.mode:o}", desired.path),
    ]


def staged_upload(desired: DesiredFile, staged: str) -> list:
    """Commands that put ``desired`` at ``staged`` with its owner and mode, ready to move."""
    directory = posixpath.dirname(desired.path)
    if desired.dir_mode is not None:
        make_dir = StringCommand(
            "install", "-d", "-o", "root", "-g", "root", "-m", f"{desired.dir_mode:o}", directory
        )
    else:
        make_dir = StringCommand("mkdir", "-p", directory)
    # A secret is uploaded inside its own (root-only) directory, never via a shared /tmp.
    upload_temp = (
        posixpath.join(directory, f".{posixpath.basename(desired.path)}.cci-upload")
        if desired.secret
        else host.get_temp_filename(staged)
    )
    return [
        make_dir,
        FileUploadCommand(StringIO(desired.content), staged, remote_temp_filename=upload_temp),
        StringCommand("chown", f"{desired.user}:{desired.group}", staged),
        StringCommand("chmod", f"{desired.mode:o}", staged),
    ]


@operation()
def managed_file(desired: DesiredFile):
    """
    Write ``desired`` atomically, validating it first when it names a validator.

    + desired: the :class:`~cci_harden.catalogue.model.DesiredFile` to write

    **Example:**

    .. code:: python

        managed_file(
            name="[CCI-SSH-01] sshd configuration",
            desired=DesiredFile("/etc/ssh/sshd_config", text, mode=0o600,
                                validate="sshd -t -f {path}"),
        )
    """
    remote = host.get_fact(File, path=desired.path)
    fixes = in_place_fixes(desired, remote)
    if fixes is not None:
        yield from fixes
        return

    if state.config.DIFF:
        _log_diff(desired, bool(remote))

    staged = f"{desired.path}.cci-new"
    yield from staged_upload(desired, staged)
    if desired.validate:
        check = desired.validate.format(path=shlex.quote(staged))
        refusal = shlex.quote(f"cci-harden: refusing {desired.path}: {check} failed")
        yield StringCommand(
            f"if ! {check}; then rm -f {shlex.quote(staged)}; echo {refusal} >&2; exit 1; fi"
        )
    yield StringCommand("mv", "-f", staged, desired.path)


def _log_diff(desired: DesiredFile, exists: bool) -> None:
    verb = "modify" if exists else "create"
    if desired.secret:
        host.log(f"Will {verb} {desired.path} (secret: contents not shown)", logger.info)
        return
    host.log(f"Will {verb} {desired.path}", logger.info)
    current = host.get_fact(FileContents, path=desired.path) if exists else None
    old = set(current or [])
    new_lines = desired.content.splitlines()
    for line in current or []:
        if line not in new_lines:
            logger.info("  - %s", line)
    for line in new_lines:
        if line not in old:
            logger.info("  + %s", line)


@operation()
def refuse(reason: str):
    """
    Stop this host here with ``reason``: nothing after this operation runs on it.

    The other hosts go on. Used where a host itself (its size, its state) rules out the deploy.

    + reason: what is wrong and what to do about it
    """
    message = shlex.quote(f"cci-harden: refusing host {host.name}: {reason}")
    yield StringCommand(f"echo {message} >&2; exit 1")
