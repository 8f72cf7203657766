"""The secrets inventory the hunting guide asks for, built from environment-variable events.

One row per secret name and place (context or project): when it was last stored, whether it must
be rotated (stored before a given date, e.g. the incident), and a severity from its name.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from ..model.errors import CciHardenError
from .events import Event

STORE_ACTIONS = {"context.env_var.store", "project.env_var.create"}
DELETE_ACTIONS = {"context.env_var.delete", "project.env_var.delete"}

# First match wins; operators put their own patterns in front with --severity-rules.
DEFAULT_SEVERITY_PATTERNS: list[tuple[str, str]] = [
    (
        r"AWS_(SECRET_ACCESS_KEY|ACCESS_KEY_ID|SESSION_TOKEN)|GOOGLE_APPLICATION_CREDENTIALS|"
        r"GCLOUD_SERVICE_KEY|GCP_.*KEY|AZURE_.*(SECRET|PASSWORD)|PRIVATE_KEY|SSH_KEY",
        "critical",
    ),
    (r"TOKEN|API_KEY|SECRET|PASSWORD|PASSWD|PAT$", "high"),
    (r"KEY|CREDENTIAL|AUTH|CERT", "medium"),
    (r".", "low"),
]


@dataclass
class SecretRow:
    name: str
    location: str
    last_stored: str
    stored_by: str
    deleted_at: str = ""
    deleted_by: str = ""
    rotate: str = ""
    severity: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def load_severity_patterns(path: Path | None) -> list[tuple[re.Pattern, str]]:
    patterns = list(DEFAULT_SEVERITY_PATTERNS)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CciHardenError(f"severity rules {path}: {exc}") from None
        patterns = [(p["pattern"], p["severity"]) for p in data.get("severity", [])] + patterns
    try:
        return [(re.compile(p, re.IGNORECASE), s) for p, s in patterns]
    except re.error as exc:
        raise CciHardenError(f"severity rules: bad pattern: {exc}") from None


def _variable_name(event: Event) -> str:
    for key in ("name", "env_var_name", "variable"):
        value = event.payload.get(key)
        if isinstance(value, str) and value:
            return value
    return "(unnamed)"


class SecretsInventory:
    """``exposed_since``: the start of the exposure window (the incident). A secret deleted after
    it was still exposed: deleting a variable does not revoke the credential it held."""

    def __init__(
        self,
        rotate_before: str | None,
        patterns: list[tuple[re.Pattern, str]],
        exposed_since: str | None = None,
    ):
        self.rotate_before = rotate_before
        self.exposed_since = exposed_since
        self.patterns = patterns
        self._rows: dict[tuple[str, str], SecretRow] = {}

    def feed(self, event: Event) -> None:
        if event.action not in STORE_ACTIONS and event.action not in DELETE_ACTIONS:
            return
        if not event.success:
            return
        location = f"{event.target_type}:{event.target_name or event.target_id}"
        name = _variable_name(event)
        row = self._rows.setdefault((location, name), SecretRow(name, location, "", ""))
        if event.action in STORE_ACTIONS:
            if event.occurred_at > row.last_stored:
                row.last_stored = event.occurred_at
                row.stored_by = event.actor_name or event.actor_id
        elif event.occurred_at > row.deleted_at:
            row.deleted_at = event.occurred_at
            row.deleted_by = event.actor_name or event.actor_id

    def rows(self) -> list[SecretRow]:
        for row in self._rows.values():
            row.severity = next(s for p, s in self.patterns if p.search(row.name))
            exposed = self.rotate_before is None or row.last_stored < self.rotate_before
            deleted = bool(row.deleted_at) and row.deleted_at > row.last_stored
            if not exposed:
                row.rotate = "no (stored after)"
            elif deleted and self.exposed_since is None:
                row.rotate = "no (deleted)"
            elif deleted and row.deleted_at < (self.exposed_since or ""):
                row.rotate = "no (deleted before the window)"
            elif deleted:  # exposed in the window; its deletion revoked nothing
                row.rotate = f"yes (deleted {row.deleted_at[:10]} by {row.deleted_by})"
            else:
                row.rotate = "yes"
        order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
        return sorted(
            self._rows.values(), key=lambda r: (order.get(r.severity, 9), r.location, r.name)
        )
