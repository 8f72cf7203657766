"""Strict string types for settings: what a value may contain is decided here, once.

Every value a setting holds may reach a shell command, an sshd or ssh_config line, HCL, an apt
configuration, nftables, nginx or JSON, rendered by a toolkit that runs as root on every client.
So each type is a full match (``fullmatch``, never ``$``, which lets a trailing newline through)
over ASCII only (``\\d`` would accept any script's digits), and none admits a control character,
a quote, a backslash, ``$``, a backtick or ``;``. Rendering still quotes for each consumer; these
types are the first of the two fences.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import types
import typing
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
    field_validator,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _ascii_plain(value: object) -> object:
    """Before any other check: no control character and nothing outside printable ASCII."""
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise ValueError("must not contain control characters (newlines, tabs, escapes)")
        if not value.isascii():
            raise ValueError("must be ASCII")
    return value


_KEYLIKE = re.compile(r"PRIVATE KEY|BEGIN [A-Z ]+-----|[A-Za-z0-9+/=]{40,}")


def looks_like_key(text: str) -> bool:
    """Text that may be key material (PEM, a long base64 run): never printed, wherever it is."""
    return bool(_KEYLIKE.search(text))


def redact(value: object) -> object:
    """``value`` with every string that looks like key material replaced, at any depth."""
    if isinstance(value, str):
        return "**********" if looks_like_key(value) else value
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    return value


def pattern(regex: str, meaning: str):
    """A validator accepting exactly the strings ``regex`` matches in full."""
    compiled = re.compile(regex, re.ASCII)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"must be {meaning}")
        return value

    return check


Plain = BeforeValidator(_ascii_plain)


def plain_deep(value: object) -> object:
    """``_ascii_plain`` on a string and on every string of a list; a table is a section of its
    own (or a typed mapping) and checks itself."""
    if isinstance(value, str):
        return _ascii_plain(value)
    if isinstance(value, list | tuple | set):
        for item in value:
            plain_deep(item)
    return value


class PlainSection(BaseModel):
    """A settings section whose every string, at any depth, is printable ASCII (secrets, which
    are PEM text with newlines, excepted)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_strings(cls, value: object, info: ValidationInfo) -> object:
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and "SecretStr" in str(field.annotation):
            return value
        kind = scalar_kind(field.annotation) if field is not None else None
        if kind == "flag" and value is not None:
            return _flag(value)
        if kind == "whole" and value is not None:
            return _whole(value)
        return plain_deep(value)


def scalar_kind(annotation: object) -> str | None:
    """'flag' for a (possibly optional) bool, 'whole' for an int: the fields whose values are
    taken only as themselves, never converted from look-alikes."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = {a for a in typing.get_args(annotation) if a is not type(None)}
    else:
        members = {annotation}
    if members == {bool}:
        return "flag"
    if members == {int}:
        return "whole"
    return None


def _whole(value: object) -> object:
    """A whole number: a TOML integer, or digits from the environment; never 3.0 or true."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value, re.ASCII):
        return int(value)
    raise ValueError("must be a whole number")


HOST_NAME = (
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def _host(value: str) -> str:
    if "%" in value:
        # an IPv6 zone id carries any text (spaces, commas, '*'): in an ssh_config Host line or
        # a certificate's principals it would match other hosts
        raise ValueError("must not carry an IPv6 zone id ('%...'): name the address alone")
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if len(value) > 253 or not re.fullmatch(HOST_NAME, value, re.ASCII):
        raise ValueError("must be a DNS name or an IP address (letters, digits, '-' and '.')")
    return value


HostName = Annotated[str, Plain, AfterValidator(_host)]
UserName = Annotated[
    str,
    Plain,
    AfterValidator(
        pattern(r"[a-z_][a-z0-9_-]{0,31}", "a Unix user name (a-z, 0-9, '_' and '-', 32 at most)")
    ),
]
Identifier = Annotated[
    str,
    Plain,
    AfterValidator(
        pattern(r"[A-Za-z0-9._-]{1,64}", "letters, digits, '.', '_' or '-' (64 at most)")
    ),
]
ExactVersion = Annotated[
    str,
    Plain,
    AfterValidator(
        pattern(
            r"[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]{1,64})?",
            "an exact version such as 1.6.3 (no ranges, no 'latest')",
        )
    ),
]
# Debian package versions: epoch, upstream, revision (5:28.0.1-1~debian.12~bookworm).
DebianVersion = Annotated[
    str,
    Plain,
    AfterValidator(
        pattern(
            r"([0-9]{1,5}:)?[0-9][A-Za-z0-9.+~-]{0,127}",
            "an exact Debian package version such as 5:28.0.1-1~debian.12~bookworm",
        )
    ),
]

# Directories a setting must never name: making one of them root-only 0700 (Nomad's data
# directory) or watching it as data would break the host.
# (Names to refuse, never used as paths: hence the S108 waivers.)
SYSTEM_DIRECTORIES = frozenset(
    {
        "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt", "/opt",
        "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp",  # noqa: S108
        "/usr", "/usr/bin",
        "/usr/lib", "/usr/local", "/usr/local/bin", "/usr/sbin", "/var", "/var/lib", "/var/log",
        "/var/tmp",  # noqa: S108
        "/etc/ssh", "/etc/systemd", "/etc/docker", "/etc/nomad.d",
    }
)  # fmt: skip
_PATH = r"/[A-Za-z0-9._@+=,/-]*"


def _host_path(value: object) -> str:
    text = str(value)
    if not re.fullmatch(_PATH, text, re.ASCII):
        raise ValueError(
            "must be an absolute path of letters, digits and . _ - @ + = , / (no spaces, quotes "
            "or shell characters)"
        )
    normal = posixpath.normpath(text)
    if normal != text.rstrip("/") or "//" in text:
        raise ValueError(f"must be normalised (write {normal})")
    return normal


def _data_directory(value: str) -> str:
    if value in SYSTEM_DIRECTORIES:
        raise ValueError(f"{value} is a system directory; name a directory of its own (/opt/nomad)")
    return value


# A path on the hosts, rendered into configuration files, scripts and audit rules.
HostPath = Annotated[str, Plain, BeforeValidator(_host_path)]
DataDirectory = Annotated[str, Plain, BeforeValidator(_host_path), AfterValidator(_data_directory)]


def _local_path(value: object) -> object:
    if isinstance(value, str | Path):
        _ascii_plain(str(value))
        if any(c in str(value) for c in '"\\$'):
            # the ssh_config verify writes quotes paths; OpenSSH has no escape for a quote or a
            # backslash there, and expands ${NAME} from the environment in key and known_hosts
            # paths, which would make the file read depend on whoever runs verify
            raise ValueError(f"{str(value)!r}: a local path cannot hold a double quote, \\ or $")
    return value


# A file on the operator's machine (keys, certificates); relative to the inventory when relative.
LocalPath = Annotated[Path, BeforeValidator(_local_path)]

URL_SCHEMES = ("https", "http")
_URL_FORBIDDEN = set("\"'`$;|&<>(){}[]\\ ,*!^")


def _url(value: object) -> str:
    text = str(value)
    _ascii_plain(text)
    bad = sorted(set(text) & _URL_FORBIDDEN)
    if bad:
        shown = ", ".join("a space" if c == " " else repr(c) for c in bad)
        raise ValueError(
            f"must be an http(s) URL without {shown} (a shell or a config format reads them)"
        )
    parts = urlsplit(text)
    if parts.scheme not in URL_SCHEMES:
        raise ValueError(f"must start with {' or '.join(s + '://' for s in URL_SCHEMES)}")
    if not parts.hostname:
        raise ValueError("must name a host")
    _host(parts.hostname)
    if parts.username or parts.password:
        raise ValueError("must not carry credentials (user:password@); use the proxy's own ACL")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or a fragment")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None
    return text


HttpUrl = Annotated[str, BeforeValidator(_url)]


def covers_everything(networks) -> str | None:
    """'IPv4' or 'IPv6' when the networks together admit every address of that family."""
    for version, family, everything in (
        (4, "IPv4", ipaddress.ip_network("0.0.0.0/0")),
        (6, "IPv6", ipaddress.ip_network("::/0")),
    ):
        same = [n for n in networks if n.version == version]
        if everything in list(ipaddress.collapse_addresses(same)):
            return family
    return None


def _flag(value: object) -> object:
    """true or false: a TOML boolean, or exactly "true"/"false" from the environment; never
    "yes", 1 or "on", which pydantic would otherwise take."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ValueError("must be true or false")


Flag = Annotated[bool, BeforeValidator(_flag)]
