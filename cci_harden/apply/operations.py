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
from pyinfra.api.command import QuoteString
from pyinfra.facts.files import FileContents

from ..model.kinds.files import FileState, ManagedFile


def argv(*args: str) -> StringCommand:
    """A command whose every argument is quoted for the shell."""
    return StringCommand(*(QuoteString(str(a)) for a in args))


def in_place_fixes(desired: ManagedFile, current) -> list | None:
    """Commands that make the file on the host right without rewriting it.

    ``current`` is the file's state from the host's snapshot. ``None`` when its content must be
    rewritten; else the chown/chmod that only owner or mode need.
    """
    if not isinstance(current, FileState) or current.sha256 != desired.sha256:
        return None
    return [
        argv("chown", f"{desired.user}:{desired.group}", desired.path),
        argv("chmod", f"{desired.mode:o}", desired.path),
    ]


def staged_upload(desired: ManagedFile, staged: str) -> list:
    """Commands that put ``desired`` at ``staged`` with its owner and mode, ready to move."""
    directory = posixpath.dirname(desired.path)
    if desired.dir_mode is not None:
        make_dir = argv(
            "install", "-d", "-o", "root", "-g", "root", "-m", f"{desired.dir_mode:o}", directory
        )
    else:
        make_dir = argv("mkdir", "-p", directory)
    # A secret is uploaded inside its own (root-only) directory, never via a shared /tmp.
    upload_temp = (
        posixpath.join(directory, f".{posixpath.basename(desired.path)}.cci-upload")
        if desired.secret
        else host.get_temp_filename(staged)
    )
    return [
        make_dir,
        FileUploadCommand(StringIO(desired.content), staged, remote_temp_filename=upload_temp),
        argv("chown", f"{desired.user}:{desired.group}", staged),
        argv("chmod", f"{desired.mode:o}", staged),
    ]


@operation()
def managed_file(desired: ManagedFile, current=None):
    """
    Write ``desired`` atomically, validating it first when it names a validator.

    + desired: the :class:`~cci_harden.model.kinds.ManagedFile` to write
    + current: its state in the host's snapshot (None: missing)

    **Example:**

    .. code:: python

        managed_file(
            name="[CCI-SSH-01] sshd configuration",
            desired=ManagedFile("/etc/ssh/sshd_config", text, mode=0o600,
                                validate="sshd -t -f {path}"),
            current=None,
        )
    """
    fixes = in_place_fixes(desired, current)
    if fixes is not None:
        yield from fixes
        return

    if state.config.DIFF:
        _log_diff(desired, current is not None)

    staged = f"{desired.path}.cci-new"
    yield from staged_upload(desired, staged)
    if desired.validate:
        check = desired.validate.format(path=shlex.quote(staged))
        refusal = shlex.quote(f"cci-harden: refusing {desired.path}: {check} failed")
        yield StringCommand(
            f"if ! {check}; then rm -f {shlex.quote(staged)}; echo {refusal} >&2; exit 1; fi"
        )
    # on disk before it replaces the old file: a crash after the rename never leaves it empty
    yield argv("sync", "--", staged)
    yield argv("mv", "-f", staged, desired.path)


def _log_diff(desired: ManagedFile, exists: bool) -> None:
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


@operation()
def remove_path(path: str):
    """
    Remove a file or link the toolkit manages (never a directory).

    + path: absolute path of the file

    **Example:**

    .. code:: python

        remove_path(name="[CCI-TK-01] remove /etc/x", path="/etc/x")
    """
    yield argv("rm", "-f", "--", path)


@operation()
def shell_quoted(command: list[str]):
    """
    Run one command given as an argument list, each argument quoted for the shell.

    + command: the command and its arguments

    **Example:**

    .. code:: python

        shell_quoted(name="chmod", command=["chmod", "u-s", "/usr/bin/chfn"])
    """
    yield argv(*command)
