"""``cci-harden controls``: the catalogue as a table, JSON or Markdown, from the declarations."""

from __future__ import annotations

import json

from . import PROFILES
from .docs import _example_settings, _summary, declared


def rows(profile: str | None) -> list[dict]:
    """One row per control of ``profile`` (every profile when None), catalogue order."""
    from . import ALL_CONTROLS, LIFECYCLE, RECOVERY

    settings = _example_settings()
    # every profile's deploy also finishes an interrupted run first and removes what a dropped
    # control left last: they belong to each profile's listing
    chosen = ALL_CONTROLS if profile is None else (*PROFILES[profile], RECOVERY, LIFECYCLE)
    listed = []
    for control in chosen:
        profiles = [name for name, members in PROFILES.items() if control in members]
        listed.append(
            {
                "id": control.id,
                "title": control.title,
                "profiles": profiles or sorted(PROFILES),
                "sources": [str(s) for s in control.sources],
                "frameworks": control.frameworks(),
                "resources": _summary(declared(control, settings)),
                "circleci_impact": control.circleci_impact or "not affected",
            }
        )
    return listed


def render(profile: str | None, fmt: str) -> str:
    listed = rows(profile)
    if fmt == "json":
        return json.dumps(listed, indent=2) + "\n"
    if fmt == "md":
        lines = [
            "| id | title | sources | frameworks | resources | CircleCI jobs |",
            "|---|---|---|---|---|---|",
        ]
        for row in listed:
            cells = [
                row["id"],
                row["title"],
                "; ".join(row["sources"]),
                "; ".join(f"{name} {', '.join(ids)}" for name, ids in row["frameworks"].items()),
                row["resources"],
                row["circleci_impact"],
            ]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines) + "\n"
    width = max(len(r["id"]) for r in listed)
    return "\n".join(f"{r['id']:<{width}}  {r['title']}" for r in listed) + "\n"
