"""Lint rendered AWS policies with parliament; a finding is either fixed or suppressed in writing.

``cci-harden render iam`` refuses to write a document with an unsuppressed finding. Suppressions
are data: the document, parliament's issue, the statement (by Sid) and why the finding is wrong
or accepted. A suppression that no longer matches anything is reported too, so a stale excuse
cannot linger after the policy changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .render import Rendered


@dataclass(frozen=True)
class Suppression:
    document: str  # file name pattern (fnmatch-free: exact name)
    issue: str
    sid: str
    justification: str


# The VM service's (3.x) or machine provisioner's (4.x) EC2 policy: the same statements
PROVISIONER_POLICY = r"aws-(vm-service|machine-provisioner)-policy\.json"

SUPPRESSIONS: tuple[Suppression, ...] = (
    *(
        Suppression(
            PROVISIONER_POLICY,
            "RESOURCE_MISMATCH",
            sid,
            "parliament wants every resource type RunInstances can touch in each statement. The "
            "policy splits them on purpose: each condition (the VPC, the ManagedBy request tag) "
            "can only hold for its own resource type, so a single statement would have to drop "
            "the condition or deny every launch. IAM evaluates RunInstances per resource, and "
            "the split statements together cover every resource type it needs.",
        )
        for sid in (
            "LaunchFromImagesAndSnapshots",
            "LaunchOnlyInTheVpc",
            "LaunchOnlyTaggedInstances",
        )
    ),
    Suppression(
        PROVISIONER_POLICY,
        "RESOURCE_STAR",
        "DescribeHasNoResourceLevelPermissions",
        'the Operations Guide\'s ec2:Describe* on "*": the VM service lists instances, volumes, '
        'images and subnets, which EC2 only allows on "*". The few Describe*Attribute actions '
        "parliament names read attributes of resources the VM service can already see; no write "
        "is granted.",
    ),
)


@dataclass(frozen=True)
class LintFinding:
    document: str
    issue: str
    sid: str
    detail: str
    suppressed_by: Suppression | None = None


def _sid_at(text: str, line: int) -> str:
    """The Sid of the statement that starts at ``line`` (1-based) of a rendered document."""
    for candidate in text.splitlines()[line - 1 : line + 20]:
        match = re.search(r'"Sid":\s*"([^"]+)"', candidate)
        if match:
            return match.group(1)
    return "?"


def lint(documents: list[Rendered]) -> list[LintFinding]:
    """parliament's findings (community auditors included) on every JSON policy document."""
    from parliament import analyze_policy_string

    findings = []
    for document in documents:
        if not document.name.endswith(".json") or not document.name.startswith("aws-"):
            continue
        if document.name.endswith("-trust.json"):  # a role's trust policy, not an identity policy
            continue
        policy = analyze_policy_string(document.content, include_community_auditors=True)
        seen = set()
        for finding in policy.findings:
            line = (finding.location or {}).get("line") or 0
            sid = _sid_at(document.content, line) if line else "?"
            key = (finding.issue, sid)
            if key in seen:  # parliament repeats one finding per action it expands
                continue
            seen.add(key)
            rule = next(
                (
                    s
                    for s in SUPPRESSIONS
                    if re.fullmatch(s.document, document.name)
                    and s.issue == finding.issue
                    and s.sid == sid
                ),
                None,
            )
            findings.append(
                LintFinding(document.name, finding.issue, sid, str(finding.detail)[:300], rule)
            )
    return findings


def unused_suppressions(documents: list[Rendered], findings: list[LintFinding]) -> list:
    names = [d.name for d in documents]
    used = {f.suppressed_by for f in findings if f.suppressed_by}
    return [
        s
        for s in SUPPRESSIONS
        if any(re.fullmatch(s.document, name) for name in names) and s not in used
    ]
