"""Generate docs/settings.md from the settings models, so every documented field exists.

python -m cci_harden.fleet.settings_docs > docs/settings.md
"""

from __future__ import annotations

import json
import typing
from types import UnionType

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from ..config.server import LINES, VERSION_FIELDS
from ..config.settings import ENV_DELIMITER, ENV_PREFIX, FleetSettings
from .onboard import EXAMPLES


def _type_name(annotation) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        optional = len(names) < len(args)
        return " or ".join(names) + (" (optional)" if optional else "")
    if origin is typing.Literal:
        return " / ".join(f"`{a}`" for a in args)
    if origin in (list, tuple, set, frozenset):
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"table of {_type_name(args[0])} to {_type_name(args[1])}"
    if annotation is SecretStr:
        return "secret string"
    name = getattr(annotation, "__name__", str(annotation))
    return {"str": "string", "int": "integer", "bool": "boolean", "Path": "local path"}.get(
        name, name
    )


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True, validated_data={})
    if value is None:
        return ""
    if isinstance(value, BaseModel):
        return ""
    return f"`{json.dumps(value, default=str)}`"


def _code(text: str) -> str:
    name, _, rest = text.partition(" ")
    return f"`{name}` {rest}".strip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(model: type[BaseModel], prefix: tuple[str, ...], within: str = "") -> list[str]:
    """Rows of ``model``'s fields; ``within``: the variable of the list or table holding them."""
    rows, nested = [], []
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        annotation = field.annotation
        origin = typing.get_origin(annotation)
        inner = [a for a in typing.get_args(annotation) or (annotation,) if isinstance(a, type)]
        sub = next((a for a in inner if issubclass(a, BaseModel)), None)
        if sub is not None and origin not in (list, dict):
            nested.append((path, sub, within))
            continue
        env = within or ENV_PREFIX + ENV_DELIMITER.join(path).upper()
        if sub is not None:  # a list or table of sections: its row, then each item's fields
            item = (*path[:-1], path[-1] + ("[]" if origin is list else ".NAME"))
            nested.append((item, sub, f"{env} (the whole list or table, as JSON)"))
        dotted = ".".join(path)
        version = VERSION_FIELDS.get(tuple(path))
        default = _default(field)
        if version:
            default = ", ".join(
                f"{line.name}: `{getattr(line, version)}`"
                if getattr(line, version) is not None
                else f"{line.name}: required"
                for line in LINES
            )
        example = f"`{EXAMPLES[dotted]}`" if dotted in EXAMPLES else ""
        rows.append(
            f"| `{dotted}` | {_cell(_type_name(annotation))} | {_cell(default)} | {_code(env)} | "
            f"{_cell(field.description or '')} | {_cell(example)} |"
        )
    for path, sub, holder in nested:
        rows += _rows(sub, path, holder)
    return rows


def settings_markdown() -> str:
    lines = [
        "# Settings",
        "",
        "Generated from the settings models (`cci_harden/config/`) by",
        "`python -m cci_harden.fleet.settings_docs`; do not edit by hand. Settings live in",
        "`inventories/NAME.toml`; any field can be set by an environment variable instead (lists",
        "and tables as JSON), which wins over the file. A bad value stops the run before any host",
        "is touched, naming the field and where it came from.",
        "",
        "## Server release lines",
        "",
        "`server.version` names the CircleCI Server release line (`4.10`, the default, `4.9`,",
        "`3.4`, ...). Each line",
        "sets the defaults below; a value you set yourself always wins, and `cci-harden config",
        "check` lists which values came from the line.",
        "",
        "| line | released | supported until | Nomad client | Nomad servers | install source | "
        "cgroup | provisioner (AWS ManagedBy tag) | mTLS | server ports | source |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for line in LINES:
        lines.append(
            f"| {line.name} | {line.released or '-'} | {line.support_ends or '-'} | "
            f"{line.nomad_version or 'required (CircleCI build)'} | "
            f"{line.nomad_server_version or '-'} | {line.nomad_install_source} | "
            f"{line.cgroup_version} | {line.provisioner} (`{line.managed_by_tag}`) | "
            f"{'required' if line.mtls_required else 'optional'} | "
            f"{', '.join(map(str, line.server_ports))} | {line.source} |"
        )
    lines += [
        "",
        "CircleCI supports the two most recent lines; a line past its support date is a warning",
        "in `config check` and in verify's reports, not a refusal. A line newer than this table is",
        "refused: upgrade the toolkit. The cgroup column is the mode the Docker runtime needs",
        "(CCI-NMD-08).",
        "",
        "With a 4.x line the deploy and `config check` refuse without `nomad.servers`, all of",
        "`nomad.tls` and `network.nomad_server_cidrs`; a client newer than `nomad.server_version`",
        "is refused.",
        "",
        "## Fields",
        "",
        "| field | type | default | environment variable | what it does | example |",
        "|---|---|---|---|---|---|",
    ]
    lines += _rows(FleetSettings, ())
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_markdown(), end="")
