"""Generate docs/controls.md from the catalogue, so the documented controls are the applied ones.

python -m cci_harden.docs > docs/controls.md
"""

from __future__ import annotations

from .catalogue import ALL_CONTROLS, PROFILES
from .catalogue.model import no_files


def controls_markdown() -> str:
    lines = [
        "# Controls",
        "",
        "Generated from the catalogue (`cci_harden/catalogue/`) by `python -m cci_harden.docs`;",
        "do not edit by hand. Every control is applied by the deploys and checked by",
        "`cci-harden verify`.",
        "",
        "| id | title | deploys | source | how verified | test bed | CircleCI jobs |",
        "|---|---|---|---|---|---|---|",
    ]
    for control in ALL_CONTROLS:
        deploys = ", ".join(
            f"`deploys/{name}.py`" for name, profile in PROFILES.items() if control in profile
        )
        how = []
        if control.files is not no_files:
            how.append("managed files: content sha256, mode, owner")
        if control.check is not None:
            how.append("state probes")
        lines.append(
            f"| {control.id} | {control.title} | {deploys} | "
            f"{'; '.join(str(s) for s in control.sources)} | {'; '.join(how)} | "
            f"{control.testbed} | {control.circleci_impact or 'not affected'} |"
        )
    lines += ["", "## Rationale", ""]
    for control in ALL_CONTROLS:
        lines += [f"- **{control.id}**: {control.rationale}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(controls_markdown(), end="")
