"""The host's own Nomad agent, asked over its local API: is it running builds, is it draining.

Commands run on the host as root (over the SSH connection the deploy or the rollout already
has): ``curl`` to the agent's HTTP API on loopback, where the client configuration keeps it, with
the ACL token read from a root-only header file when one is configured. No port is opened to the
operator; the token never appears on a command line. Everything here is text in and text
out, so the deploy's fact and the rollout build and read the same requests.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

API_PORT = 4646
# curl reads this header file (X-Nomad-Token: ...); written 0600 by the deploy when
# rollout.nomad_token is set (CCI-NMD-07)
TOKEN_HEADER_FILE = "/etc/nomad.d/cci-harden-api-token"  # noqa: S105  (a path, not a token)
_NODE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STATUS_MARK = "@@cci-nomad-status"
# the agent's HTTP API as the client's configuration serves it: on loopback (CCI-NMD-04)
BASE_URL = f"http://127.0.0.1:{API_PORT}"


def _curl() -> str:
    """A curl call to the local agent; ``$@`` holds the token header when there is one."""
    return 'curl -sS --max-time 10 -w "\\n@@http %{http_code}\\n" "$@"'


def _prelude() -> str:
    token = shlex.quote(TOKEN_HEADER_FILE)
    return (
        f"set --; [ -r {token} ] && set -- -H @{token}; "
        f"base={BASE_URL}; "
        f'self=$({_curl()} "$base/v1/agent/self" 2>&1); '
        "node=$(printf '%s' \"$self\" | tr -d ' \\n' | "
        'grep -o \'"node_id":"[0-9a-f-]\\{36\\}"\' | head -n1 | cut -d\'"\' -f4); '
    )


def status_command() -> str:
    """Read-only: the agent's node, its drain state and its allocations, in blocks."""
    curl = _curl()
    return (
        # no agent running: no build runs through it (and nothing to ask)
        "systemctl is-active --quiet nomad.service || "
        f"{{ echo {STATUS_MARK} @@noagent; exit 0; }}; "
        "command -v curl >/dev/null || { echo '@@nocurl'; exit 0; }; "
        + _prelude()
        + f"echo {STATUS_MARK}; echo @@self; printf '%s\\n' \"$self\"; "
        'if [ -n "$node" ]; then '
        f'echo @@node; {curl} "$base/v1/node/$node" 2>&1; '
        f'echo @@allocs; {curl} "$base/v1/node/$node/allocations" 2>&1; fi; true'
    )


def action_command(action: str, body: dict) -> str:
    """A PUT on the agent's own node (``eligibility`` or ``drain``) with a JSON body."""
    if action not in ("eligibility", "drain"):
        raise ValueError(f"unknown node action {action}")
    payload = shlex.quote(json.dumps(body, separators=(",", ":")))
    return (
        _prelude()
        + '[ -n "$node" ] || { printf "no node id from the agent: %s\\n" "$self" >&2; exit 3; }; '
        + f'{_curl()} -X PUT --data-binary {payload} "$base/v1/node/$node/{action}"'
    )


def drain_body(deadline_seconds: int | None, ignore_system: bool = True) -> dict:
    """``None``: no deadline (Nomad never stops a batch allocation); else stopped after it."""
    nanos = 0 if deadline_seconds is None else deadline_seconds * 1_000_000_000
    return {
        "DrainSpec": {"Deadline": nanos, "IgnoreSystemJobs": ignore_system},
        "MarkEligible": False,
        "Meta": {"message": "cci-harden rollout"},
    }


def undrain_body(eligible: bool = True) -> dict:
    return {"DrainSpec": None, "MarkEligible": eligible, "Meta": {}}


def eligibility_body(eligible: bool) -> dict:
    return {"Eligibility": "eligible" if eligible else "ineligible"}


@dataclass(frozen=True)
class Allocation:
    id: str
    job: str
    job_type: str
    status: str


@dataclass(frozen=True)
class NodeWork:
    """What the local agent says about its node; ``error`` when it could not be asked."""

    agent: bool = False  # an agent answered on the local API
    node_id: str = ""
    name: str = ""
    eligible: bool = True
    draining: bool = False
    allocations: tuple[Allocation, ...] = field(default_factory=tuple)
    error: str = ""

    @property
    def running(self) -> list[Allocation]:
        return [a for a in self.allocations if a.status in ("running", "pending")]

    @property
    def out_of_service(self) -> bool:
        return self.agent and (not self.eligible or self.draining)

    def describe(self) -> str:
        if self.error:
            return self.error
        if not self.agent:
            return "no Nomad agent answers"
        state = "draining" if self.draining else "eligible" if self.eligible else "ineligible"
        return f"{state}, {len(self.running)} allocation(s) running"


def _http_blocks(text: str) -> tuple[str, int]:
    body, _, code = text.rpartition("@@http ")
    try:
        return body.strip(), int(code.strip() or 0)
    except ValueError:
        return text.strip(), 0


def parse_status(output: str) -> NodeWork:
    if f"{STATUS_MARK} @@noagent" in output:
        return NodeWork()
    if "@@nocurl" in output:
        return NodeWork(
            agent=True, error="curl is not installed on the host, where Nomad's agent runs"
        )
    if STATUS_MARK not in output:
        return NodeWork(error=f"no answer from the status command: {output.strip()[:200]}")
    sections: dict[str, str] = {}
    name = ""
    for line in output.split(STATUS_MARK, 1)[1].splitlines():
        if line in ("@@self", "@@node", "@@allocs"):
            name = line[2:]
            sections[name] = ""
        elif name:
            sections[name] += line + "\n"
    body, code = _http_blocks(sections.get("self", ""))
    if code == 0:
        return NodeWork()  # nothing listens: no agent runs, so no build runs through it
    if code != 200:
        return NodeWork(agent=True, error=f"the agent refused /v1/agent/self: HTTP {code} {body}")
    node_body, node_code = _http_blocks(sections.get("node", ""))
    allocs_body, allocs_code = _http_blocks(sections.get("allocs", ""))
    if node_code != 200 or allocs_code != 200:
        return NodeWork(
            agent=True,
            error=f"the agent did not describe its node: HTTP {node_code or allocs_code} "
            f"{(node_body or allocs_body)[:200]}",
        )
    try:
        node = json.loads(node_body)
        allocs = json.loads(allocs_body)
        node_id = str(node["ID"])
        allocations = tuple(
            Allocation(
                str(a.get("ID", "")),
                str(a.get("JobID", "")),
                str(a.get("JobType") or (a.get("Job") or {}).get("Type", "")),
                str(a.get("ClientStatus", "")),
            )
            for a in allocs
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return NodeWork(agent=True, error=f"unreadable answer from the agent: {exc}")
    if not _NODE_ID.fullmatch(node_id):
        return NodeWork(agent=True, error=f"the agent named a malformed node id {node_id[:40]!r}")
    return NodeWork(
        agent=True,
        node_id=node_id,
        name=str(node.get("Name", "")),
        eligible=node.get("SchedulingEligibility") == "eligible",
        draining=node.get("DrainStrategy") is not None,
        allocations=allocations,
    )


def parse_action(output: str) -> tuple[bool, str]:
    body, code = _http_blocks(output)
    return code == 200, f"HTTP {code} {body[:200]}"
