"""``cci-harden known-hosts INVENTORY --scan FILE --fingerprints FILE``: the inventory's
known_hosts, built only from keys the operator has vouched for.

``ssh-keyscan`` asks a host for its keys over the network, which anyone on the path can answer;
the fingerprints come from a channel the operator trusts (the cloud console's boot log, the
image build, the host's own console). Each scanned key whose SHA256 fingerprint is on the
operator's list becomes a known_hosts line, keyed by the host's address as the inventory gives
it (``[address]:port`` off port 22); a scanned key that is not on the list is named and left out,
and a host left with no vouched key is named. Nothing is accepted on first use.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..model.errors import EXIT_DRIFT, EXIT_OK, CciHardenError
from ..model.outputs import inventory_command
from ..model.text import printable

if TYPE_CHECKING:  # the inventory and its settings models load when the command runs
    from .inventory import Inventory

FINGERPRINT = re.compile(r"SHA256:([A-Za-z0-9+/]{43})")
KEY_TYPES = {
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
}


def fingerprint(blob_b64: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob (base64, as a known_hosts line has it)."""
    digest = hashlib.sha256(base64.b64decode(blob_b64, validate=True)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def vouched(text: str) -> set[str]:
    """Every SHA256 fingerprint in the operator's text, however it is laid out (ssh-keygen -l
    output, a console log, a list)."""
    return {f"SHA256:{m}" for m in FINGERPRINT.findall(text)}


def scanned(text: str) -> list[tuple[str, str, str]]:
    """(host, key type, base64 blob) for each key line of ssh-keyscan output."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or line.lstrip().startswith("#") or fields[1] not in KEY_TYPES:
            continue
        try:
            base64.b64decode(fields[2], validate=True)
        except (binascii.Error, ValueError):
            continue
        found.append((fields[0], fields[1], fields[2]))
    return found


def build(inventory: Inventory, scan: str, fingerprints: set[str]):
    """(known_hosts lines, refused keys, hosts without a vouched key)."""
    lines, refused, missing = [], [], []
    keys = scanned(scan)
    for host in inventory.hosts:
        lookup = str(host.address) if host.port == 22 else f"[{host.address}]:{host.port}"
        ours = [(kind, blob) for name, kind, blob in keys if name in (lookup, str(host.address))]
        good = [(kind, blob) for kind, blob in ours if fingerprint(blob) in fingerprints]
        for kind, blob in ours:
            if (kind, blob) not in good:
                refused.append(
                    f"{host.name} ({lookup}): {kind} {fingerprint(blob)} is not vouched for"
                )
        if not good:
            missing.append(host.name)
        lines += [f"{lookup} {kind} {blob}" for kind, blob in good]
    return lines, refused, missing


def _read(option: str, path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise CciHardenError(f"{option} {path}: {exc.strerror}") from None


def _cmd_known_hosts(args: argparse.Namespace) -> int:
    from .inventory import Inventory

    inventory = Inventory.load(args.inventory)
    fingerprints = vouched(_read("--fingerprints", args.fingerprints))
    if not fingerprints:
        raise CciHardenError(f"--fingerprints {args.fingerprints}: no SHA256 fingerprint in it")
    lines, refused, missing = build(inventory, _read("--scan", args.scan), fingerprints)
    for line in refused:
        print(f"cci-harden: refused: {printable(line)}", file=sys.stderr)
    if missing:
        print(f"cci-harden: no vouched key for {', '.join(missing)}", file=sys.stderr)
    text = "".join(f"{line}\n" for line in lines)
    if args.write:
        inventory.known_hosts.write_text(text)
        print(f"wrote {len(lines)} key(s) to {inventory.known_hosts}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_DRIFT if refused or missing else EXIT_OK


def add_parser(commands) -> None:
    known = inventory_command(
        commands,
        "known-hosts",
        "build the inventory's known_hosts from ssh-keyscan output and fingerprints you vouch "
        "for; exit 1 if a key was refused or a host has none",
    )
    known.add_argument("--scan", required=True, help="ssh-keyscan output (- for stdin)")
    known.add_argument(
        "--fingerprints",
        required=True,
        help="text holding the SHA256 fingerprints from a channel you trust (- for stdin)",
    )
    known.add_argument(
        "--write", action="store_true", help="replace INVENTORY.known_hosts (default: stdout)"
    )
    known.set_defaults(func=_cmd_known_hosts)
