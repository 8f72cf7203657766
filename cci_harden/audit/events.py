"""The audit-log export format: its columns, its events, and how one row is validated.

Field rules come from CircleCI's audit-log documentation: ``action`` is lowercase dotted words,
``id`` a UUID, ``occurred_at`` ISO-8601 UTC with up to nine fraction digits, and ``actor``,
``target`` and ``scope`` JSON blobs that always carry ``id`` and ``type``.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

COLUMNS = (
    "action",
    "actor",
    "target",
    "payload",
    "occurred_at",
    "metadata",
    "id",
    "version",
    "scope",
    "success",
    "request",
)

# Every event CircleCI's pages list (the Security Features page and the newer, longer
# Japanese Audit Logs page).
KNOWN_ACTIONS = frozenset(
    {
        "context.create",
        "context.delete",
        "context.env_var.delete",
        "context.env_var.store",
        "project.env_var.create",
        "project.env_var.delete",
        "project.settings.update",
        "project.ssh_key.create",
        "project.ssh_key.delete",
        "project.api_token.create",
        "schedule.create",
        "schedule.update",
        "schedule.delete",
        "user.create",
        "user.logged_in",
        "user.logged_out",
        "workflow.job.approve",
        "workflow.job.finish",
        "workflow.job.scheduled",
        "workflow.job.start",
        "org.workflows.deleted",
    }
)

_ACTION = re.compile(r"[a-z]+(?:_[a-z]+)*(?:\.[a-z]+(?:_[a-z]+)*)+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TIME = re.compile(
    r"(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):([0-5]\d):([0-5]\d)"
    r"(?:\.(\d{1,9}))?(?:Z|\+00:00)",
    re.ASCII,  # ASCII digits only: \d would take any script's digits
)


class RowError(ValueError):
    """A row that is not a valid audit event; the message says which field and why."""


def normalise_time(value: str) -> str:
    """``occurred_at`` as ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ``: sorts as text in time order."""
    match = _TIME.fullmatch(value)
    if match is None:
        raise RowError(
            f"occurred_at {value[:40]!r} is not ISO-8601 UTC (e.g. 2017-12-21T13:50:54.474Z)"
        )
    fraction = (match.group(7) or "").ljust(9, "0")
    return f"{value[:19]}.{fraction}Z"


class _Entity(msgspec.Struct):
    """actor, target and scope: always an id and a type, likely a name."""

    id: str | int
    type: str
    name: str | None = None


class _Request(msgspec.Struct):
    id: str | int
    ip_address: str | None = None
    client_trace_id: str | None = None


_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "actor": msgspec.json.Decoder(_Entity),
    "target": msgspec.json.Decoder(_Entity),
    "scope": msgspec.json.Decoder(_Entity),
    "request": msgspec.json.Decoder(_Request),
    "payload": msgspec.json.Decoder(dict),
    "metadata": msgspec.json.Decoder(dict[str, str]),
}


_ACTOR = _DECODERS["actor"].decode
_TARGET = _DECODERS["target"].decode
_PAYLOAD = _DECODERS["payload"].decode
_METADATA = _DECODERS["metadata"].decode
_REQUEST = _DECODERS["request"].decode


def _blob(name: str, text: str):
    """Decode and check a JSON blob; the typed decoders enforce required keys in C."""
    if not text:
        raise RowError(f"{name} is empty")
    try:
        return _DECODERS[name].decode(text)
    except msgspec.ValidationError as exc:
        raise RowError(f"{name}: {exc}") from None
    except msgspec.DecodeError:
        raise RowError(f"{name} is not valid JSON") from None
    except RecursionError:
        raise RowError(f"{name} is too deeply nested") from None


class Event(msgspec.Struct, array_like=True, gc=False):
    """One valid audit event; a compact struct because workers send them to the main process."""

    key: bytes  # the id's 16 bytes; ``id`` spells it out
    action: str
    occurred_at: str  # normalised, see normalise_time
    actor_id: str
    actor_name: str
    target_type: str
    target_id: str
    target_name: str
    success: bool
    ip: str
    payload: dict

    @property
    def id(self) -> str:
        """The event id, lower case (CircleCI's ids are UUIDs)."""
        return key_to_id(self.key)

    @property
    def hour(self) -> int:
        return int(self.occurred_at[11:13])

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "action": self.action,
            "occurred_at": self.occurred_at,
            "actor": self.actor_name or self.actor_id,
            "target": self.target_name or self.target_id,
            "target_type": self.target_type,
            "success": self.success,
            "ip": self.ip,
        }


def key_to_id(key: bytes) -> str:
    text = key.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def parse_row(row: list[str]) -> Event:
    """Validate one CSV row (in COLUMNS order) and return its event."""
    if len(row) != len(COLUMNS):
        raise RowError(f"has {len(row)} fields, expected {len(COLUMNS)}")
    action, actor, target, payload, occurred_at, metadata, id_, version, scope, success, request = (
        row
    )
    if not _ACTION.fullmatch(action):
        raise RowError(f"action {action[:40]!r} is not lowercase dotted words")
    if not _UUID.fullmatch(id_):
        raise RowError(f"id {id_[:40]!r} is not a UUID")
    when = normalise_time(occurred_at)
    if not version.isdigit():
        raise RowError(f"version {version[:10]!r} is not a number")
    flag = success.lower()
    if flag not in ("true", "false"):
        raise RowError(f"success {success[:10]!r} is not true or false")
    try:
        actor_blob = _ACTOR(actor)
        target_blob = _TARGET(target)
        payload_blob = _PAYLOAD(payload) if payload else {}
        if scope:
            _ACTOR(scope)
        if metadata:
            _METADATA(metadata)
        ip = (_REQUEST(request).ip_address or "") if request else ""
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        # the fast path failed: find which blob, and say why (actor and target are required)
        for name, text in (
            ("actor", actor),
            ("target", target),
            ("payload", payload),
            ("scope", scope),
            ("metadata", metadata),
            ("request", request),
        ):
            if text or name in ("actor", "target"):
                _blob(name, text)
        raise RowError("a JSON field could not be read") from None
    return Event(
        key=bytes.fromhex(id_.replace("-", "")),
        action=action,
        occurred_at=when,
        actor_id=str(actor_blob.id),
        actor_name=actor_blob.name or "",
        target_type=target_blob.type,
        target_id=str(target_blob.id),
        target_name=target_blob.name or "",
        success=flag == "true",
        ip=ip,
        payload=payload_blob,
    )
