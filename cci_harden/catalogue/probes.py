"""Shared helpers for checks: read probe results out of a snapshot and phrase findings."""

from __future__ import annotations

from .model import Finding, Probe


def service_probe(unit: str) -> Probe:
    return Probe(f"unit:{unit}", f"systemctl is-enabled {unit}; systemctl is-active {unit}")


def service_findings(unit: str, snapshot) -> list[Finding]:
    """A unit must be enabled at boot and running now."""
    lines = snapshot.probe(f"unit:{unit}").output.split() + ["", ""]
    enabled, active = lines[0] or "unknown", lines[1] or "unknown"
    findings = []
    if enabled != "enabled":
        findings.append(Finding(f"{unit} at boot", "enabled", enabled))
    if active != "active":
        findings.append(Finding(f"{unit} now", "active", active))
    return findings


def package_probe(package: str) -> Probe:
    return Probe(
        f"package:{package}",
        f"dpkg-query -W -f '${{Status}}|${{Version}}' {package} 2>/dev/null || echo 'absent|'",
    )


def package_version(package: str, snapshot) -> str | None:
    """The installed version, or None when the package is not installed."""
    status, _, version = snapshot.probe(f"package:{package}").output.strip().partition("|")
    return version if status.endswith("installed") and not status.startswith("deinstall") else None


def directory_probe(path: str) -> Probe:
    return Probe(f"dir:{path}", f"stat -c '%a %U %G' {path} 2>/dev/null || echo missing")


def directory_findings(path: str, mode: int, snapshot, owner: str = "root:root") -> list[Finding]:
    found = snapshot.probe(f"dir:{path}").output.strip()
    if found == "missing":
        return [Finding(path, f"directory {mode:04o} {owner}", "missing")]
    got_mode, user, group = found.split()
    findings = []
    if int(got_mode, 8) != mode:
        findings.append(Finding(f"{path} mode", f"{mode:04o}", f"{int(got_mode, 8):04o}"))
    if f"{user}:{group}" != owner:
        findings.append(Finding(f"{path} owner", owner, f"{user}:{group}"))
    return findings
