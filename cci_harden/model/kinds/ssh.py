"""An sshd host certificate: the host's own key, signed by the operator's SSH CA.

The state is what OpenSSH's own ``ssh-keygen`` reports on the host (``-l`` for the host key,
``-L`` for the certificate, in UTC), so the comparison reads the same fields an OpenSSH client
checks when it trusts the CA: the signer, the key certified, the principals and the validity.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ..control import Finding
from ..hostinfo import HostInfo
from ..interruption import Interruption
from ..resource import Resource, blocks

# a certificate is signed valid from a few minutes back (clocks differ); a day covers it
SIGNING_SLACK = dt.timedelta(days=1)

# characters that make an OpenSSH principal or host pattern match more than one name
PATTERN_CHARACTERS = frozenset(",*?!% \t")


def principals_for(name: str, address: str) -> tuple[str, ...]:
    """The names a client reaches a host by: its inventory name and address, nothing else."""
    return tuple(dict.fromkeys(n for n in (name, address) if n and not n.startswith("@")))


@dataclass(frozen=True)
class CertState:
    host_key: str = ""  # "TYPE BASE64" of the host's public key file; "" when there is none
    host_fingerprint: str = ""
    cert_type: str = ""  # "host certificate" (or "user certificate": wrong); "" when no cert
    cert_key_fingerprint: str = ""
    ca_fingerprint: str = ""
    valid_from: str = ""  # ssh-keygen's "YYYY-MM-DDTHH:MM:SS" in UTC, "" for "forever"
    valid_to: str = ""
    principals: tuple[str, ...] = ()


def _parse_one(lines: list[str]) -> CertState:
    fields: dict[str, str] = {}
    principals: list[str] = []
    in_principals = False
    for line in lines:
        if line.startswith("fp "):
            parts = line.split()
            fields["host_fingerprint"] = parts[2] if len(parts) > 2 else ""
            continue
        if line.startswith("key "):
            fields["host_key"] = " ".join(line.split()[1:3])
            continue
        stripped = line.strip()
        name, _, value = stripped.partition(": ")
        if in_principals and line.startswith(("\t\t", "                ")):
            principals.append(stripped)
            continue
        in_principals = stripped == "Principals:" or stripped.startswith("Principals: ")
        if name == "Type":
            fields["cert_type"] = value.split(" ", 1)[1] if " " in value else value
        elif name == "Public key":
            fields["cert_key_fingerprint"] = value.split()[-1]
        elif name == "Signing CA":
            fields["ca_fingerprint"] = value.split()[1] if len(value.split()) > 1 else ""
        elif name == "Valid" and value.startswith("from "):
            words = value.split()
            fields["valid_from"], fields["valid_to"] = words[1], words[3]
    return CertState(principals=tuple(principals), **fields)


@dataclass(frozen=True)
class HostCertificate(Resource):
    """``path`` certifies the key in ``host_key`` for ``principals``, signed by the CA with
    ``ca_fingerprint``, valid for ``renew_days`` more at least. The deploy signs a new one with
    ``signer`` (the CA's private key on the operator's machine) when it can."""

    kind = "host-certificate"
    interrupts = "a reload of sshd"
    # a certificate belongs to one instance's host key (made at its first boot): never baked
    runtime = True

    path: str
    host_key: str
    ca_fingerprint: str
    principals: tuple[str, ...]
    renew_days: int = 14
    validity_days: int = 90
    signer: str = ""  # "" when the deploy only verifies (certificates come from elsewhere)

    kind_units = ("ssh",)  # sshd presents a new certificate once restarted

    @property
    def key(self) -> str:
        return self.path

    def describe(self) -> str:
        return f"host certificate {self.path} from CA {self.ca_fingerprint}"

    def interruption(self, state) -> Interruption:
        return Interruption.RELOAD  # sshd presents a new certificate to new connections

    @classmethod
    def gather(cls, resources: Sequence[HostCertificate]) -> str:
        parts = []
        for r in resources:
            path, key = shlex.quote(r.path), shlex.quote(r.host_key)
            parts.append(
                f"echo {shlex.quote('@@' + r.path)}; "
                f"ssh-keygen -l -E sha256 -f {key} 2>/dev/null | sed 's/^/fp /'; "
                f"sed -n '1s/^/key /p' {key} 2>/dev/null; "
                f"TZ=UTC ssh-keygen -L -f {path} 2>/dev/null"
            )
        return "; ".join(parts) + "; true"

    @classmethod
    def parse(cls, output: str, resources: Sequence[HostCertificate]) -> dict[str, CertState]:
        found = blocks(output)
        return {r.path: _parse_one(found.get(r.path, [])) for r in resources}

    def compare(self, state: CertState, info: HostInfo, now: dt.datetime | None = None):
        if not state.host_fingerprint:
            return [self.finding(self.host_key, "the host's public key", "missing")]
        if not state.cert_type:
            return [self.finding(self.path, "a host certificate from the CA", "missing")]
        findings: list[Finding] = []
        if state.cert_type != "host certificate":
            findings.append(self.finding(self.path, "host certificate", state.cert_type))
        if state.ca_fingerprint != self.ca_fingerprint:
            findings.append(
                self.finding(f"{self.path} signer", self.ca_fingerprint, state.ca_fingerprint)
            )
        if state.cert_key_fingerprint != state.host_fingerprint:
            findings.append(
                self.finding(
                    f"{self.path} key",
                    f"the host key {state.host_fingerprint}",
                    f"another key {state.cert_key_fingerprint}",
                )
            )
        if sorted(set(state.principals)) != sorted(set(self.principals)):
            # an extra name (another host's, or a pattern such as '*') is as wrong as a missing one
            findings.append(
                self.finding(
                    f"{self.path} principals",
                    ", ".join(self.principals),
                    ", ".join(state.principals) or "none",
                )
            )
        findings += self._validity(state, now or dt.datetime.now(dt.UTC))
        return findings

    def _validity(self, state: CertState, now: dt.datetime) -> list[Finding]:
        def moment(text: str) -> dt.datetime:
            return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)

        if state.valid_from and moment(state.valid_from) > now:
            return [self.finding(f"{self.path} validity", "valid now", f"from {state.valid_from}")]
        if state.valid_to and moment(state.valid_to) < now + dt.timedelta(days=self.renew_days):
            return [
                self.finding(
                    f"{self.path} validity",
                    f"valid for {self.renew_days} more days at least",
                    f"until {state.valid_to}",
                )
            ]
        if not state.valid_to:
            return [self.finding(f"{self.path} validity", "an end date", "forever")]
        if state.valid_from and moment(state.valid_to) - moment(state.valid_from) > (
            dt.timedelta(days=self.validity_days) + SIGNING_SLACK
        ):
            return [
                self.finding(
                    f"{self.path} validity",
                    f"at most {self.validity_days} days",
                    f"from {state.valid_from} until {state.valid_to}",
                )
            ]
        return []
