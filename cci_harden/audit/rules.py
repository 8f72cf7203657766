"""Hunting rules as data: the defaults shipped beside this file, plus the operator's own."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..model.errors import CciHardenError

SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    actions: tuple[str, ...]
    why: str
    success: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "_pattern",
            re.compile("|".join(fnmatch.translate(p) for p in self.actions)),
        )

    def matches_action(self, action: str) -> bool:
        """Whether the action patterns match; Hunter checks ``success`` itself."""
        return self._pattern.match(action) is not None  # type: ignore[attr-defined]


def _parse(text: str, origin: str) -> list[Rule]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CciHardenError(f"{origin}: not valid TOML: {exc}") from None
    rules = []
    for index, raw in enumerate(data.get("rule", [])):
        where = f"{origin}: rule {index + 1}"
        unknown = set(raw) - {"id", "severity", "actions", "why", "success"}
        if unknown:
            raise CciHardenError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        if not raw.get("id") or not raw.get("actions"):
            raise CciHardenError(f"{where}: needs an id and at least one action pattern")
        if raw.get("severity") not in SEVERITIES:
            raise CciHardenError(f"{where} ({raw['id']}): severity must be one of {SEVERITIES}")
        rules.append(
            Rule(
                raw["id"],
                raw["severity"],
                tuple(raw["actions"]),
                raw.get("why", ""),
                raw.get("success"),
            )
        )
    return rules


def load_rules(extra: Path | None = None) -> list[Rule]:
    text = resources.files(__package__).joinpath("default_rules.toml").read_text()
    rules = {r.id: r for r in _parse(text, "default rules")}
    if extra is not None:
        if not extra.is_file():
            raise CciHardenError(f"rules file {extra} does not exist")
        rules.update({r.id: r for r in _parse(extra.read_text(), str(extra))})
    return list(rules.values())
