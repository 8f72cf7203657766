"""``cci-harden render bake``: a Packer build and cloud-init user data for local mode.

Both are rendered from the inventory's settings: which files the image carries (the signing keys
and certificates the settings name) and which private keys cloud-init writes at boot, at the
paths the settings give them inside the image. Every value is quoted for the format it lands in
(HCL strings, shell words inside them, JSON strings as YAML).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path, PurePosixPath

from cryptography import x509

from ..config.materials import PreflightError, load_signing_key, tls_configured
from ..config.settings import FleetSettings
from ..model.errors import CciHardenError
from ..model.render import render

IMAGE_INVENTORIES = PurePosixPath("/etc/cci-harden/inventories")
STAGING = PurePosixPath("/tmp/cci-harden")  # noqa: S108  (the build VM's upload directory)
VENV = "/opt/cci-harden"


def _in_image(path: Path) -> PurePosixPath:
    """Where a file the settings name lives in the image: beside the inventory when relative."""
    return PurePosixPath(path) if path.is_absolute() else IMAGE_INVENTORIES / PurePosixPath(path)


def carried_files(settings: FleetSettings) -> list[tuple[str, Path]]:
    """(setting, path as written) of every file an image carries: public keys and certificates
    of the features that are on (a file a switched-off feature names is not copied in)."""
    logging_on = settings.logging.collector is not None
    named = [
        ("nomad.gpg_key_file", settings.nomad.gpg_key_file),
        ("docker.gpg_key_file", settings.docker.gpg_key_file),
        ("nomad.tls.ca_file", settings.nomad.tls.ca_file if tls_configured(settings) else None),
        ("nomad.tls.cert_file", settings.nomad.tls.cert_file if tls_configured(settings) else None),
        ("logging.ca_file", settings.logging.ca_file if logging_on else None),
        ("logging.client_cert_file", settings.logging.client_cert_file if logging_on else None),
    ]
    carried = [(field, path) for field, path in named if path is not None]
    for field, path in carried:
        if ".." in path.parts:
            raise CciHardenError(
                f"render bake: {field} = {str(path)!r} climbs out with '..': Packer would copy "
                "whatever that reaches on the build machine into the image"
            )
    return carried


CERTIFICATE_FIELDS = {
    "nomad.tls.ca_file",
    "nomad.tls.cert_file",
    "logging.ca_file",
    "logging.client_cert_file",
}
SIGNING_KEYS = {"nomad.gpg_key_file": "nomad", "docker.gpg_key_file": "docker"}
MAX_CARRIED_BYTES = 1024 * 1024
PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


def check_carried_files(settings: FleetSettings) -> None:
    """Each file the image would carry lies inside the inventory's directory (links followed)
    and is what its setting says: PEM certificates only, or the pinned OpenPGP public key.

    Packer copies whatever path it is given from the build machine; a setting that named an SSH
    key, cloud credentials or a certificate bundled with its private key would put it in every
    instance."""
    base = settings.inventory_dir.resolve()
    for field, path in carried_files(settings):
        local = settings.local_path(path).resolve()
        if not local.is_relative_to(base):
            raise CciHardenError(
                f"render bake: {field} = {str(path)!r} is {local}, outside the inventory's "
                f"directory {base}: copy the file beside the inventory, name it relative to it, "
                "then render again"
            )
        if not local.is_file():
            raise CciHardenError(f"render bake: {field}: {local} is not a regular file")
        try:
            with local.open("rb") as handle:
                data = handle.read(MAX_CARRIED_BYTES + 1)
        except OSError as exc:
            raise CciHardenError(
                f"render bake: {field}: cannot read {local}: {exc.strerror}"
            ) from None
        if len(data) > MAX_CARRIED_BYTES:
            raise CciHardenError(
                f"render bake: {field}: {local} is over 1 MiB; not a key or certificate"
            )
        if b"PRIVATE KEY" in data:
            raise CciHardenError(
                f"render bake: {field}: {local} holds a private key; an image never carries one "
                "(give the key as *_key_file: cloud-init writes it at boot)"
            )
        if field in SIGNING_KEYS:
            section = SIGNING_KEYS[field]
            pinned = getattr(settings, section).gpg_fingerprint
            try:
                load_signing_key(section, settings, path, pinned)
            except PreflightError as exc:
                raise CciHardenError(f"render bake: {exc}") from None
        elif field in CERTIFICATE_FIELDS:
            labels = set(PEM_LABEL.findall(data))
            try:
                x509.load_pem_x509_certificates(data)
            except ValueError:
                labels = set()
            if labels != {b"CERTIFICATE"}:
                raise CciHardenError(
                    f"render bake: {field}: {local} is not PEM certificates alone; refused"
                )


def refuse_inline_secrets(settings: FleetSettings) -> None:
    """The image carries the settings file: a key written inline in it would be baked in."""
    inline = [
        name
        for name, value in (
            ("nomad.tls.key_pem", settings.nomad.tls.key_pem),
            ("logging.client_key_pem", settings.logging.client_key_pem),
            ("rollout.nomad_token", settings.rollout.nomad_token),
        )
        if value is not None
    ]
    if inline:
        raise CciHardenError(
            f"render bake: {', '.join(inline)} is set, and the image carries the settings file: "
            "give private keys as *_file (cloud-init writes them at boot), leave the token out "
            "of the file and the environment of this render, then render again"
        )


def secret_files(settings: FleetSettings) -> list[tuple[str, Path]]:
    """(setting, path as written) of every private key: written by cloud-init, never baked."""
    named = [
        ("nomad.tls.key_file", settings.nomad.tls.key_file),
        ("logging.client_key_file", settings.logging.client_key_file),
    ]
    return [(field, path) for field, path in named if path is not None]


def _name(inventory: str) -> str:
    """The inventory's file name, which becomes part of paths and commands in the renders."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", inventory, re.ASCII):
        raise CciHardenError(
            f"render bake: inventory name {inventory!r} must be letters, digits, '.', '_' or '-'"
        )
    return inventory


def packer_build(settings: FleetSettings, inventory: str) -> str:
    inventory = _name(inventory)
    refuse_inline_secrets(settings)
    uploads = [
        ("wheels/", str(STAGING / "wheels")),
        (f"inventories/{inventory}.toml", str(STAGING / f"{inventory}.toml")),
    ]
    install = [
        "sudo apt-get update -q",
        "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv gnupg",
        f"sudo python3 -m venv {VENV}",
        f"sudo {VENV}/bin/pip install -q --no-index --find-links {STAGING}/wheels "
        f"{STAGING}/wheels/cci_harden-*.whl",
        f"sudo install -d -m 0755 {IMAGE_INVENTORIES}",
        f"sudo install -m 0644 {STAGING}/{inventory}.toml {IMAGE_INVENTORIES}/{inventory}.toml",
    ]
    for number, (_field, path) in enumerate(carried_files(settings)):
        staged = STAGING / f"file-{number}"
        source = str(path) if path.is_absolute() else f"inventories/{path}"
        uploads.append((source, str(staged)))
        target = _in_image(path)
        install.append(
            "sudo install -D -m 0644 " + " ".join(shlex.quote(str(p)) for p in (staged, target))
        )
    install += [
        f"sudo {VENV}/bin/cci-harden apply --local {IMAGE_INVENTORIES}/{inventory} --stage image",
        f"sudo rm -rf {STAGING}",
    ]
    return render(
        "bake/packer.pkr.hcl.j2",
        "render bake",
        inventory=inventory,
        prepare=[f"mkdir -p {STAGING}"],
        uploads=uploads,
        install=install,
    )


def cloud_init(settings: FleetSettings, inventory: str) -> str:
    inventory = _name(inventory)
    secrets = [
        (str(_in_image(path)), field.replace(".", "_")) for field, path in secret_files(settings)
    ]
    return render("bake/cloud-init.yaml.j2", "render bake", inventory=inventory, secrets=secrets)


HEAD = """# Image bakes and first boot (local mode)

Generated by `python -m cci_harden.cloud.bake > docs/image-bake.md` from the example inventory;
`tests/test_bake_renders.py` keeps it current and parses both renders.

An autoscaling group starts instances all day; hardening each one over SSH after it has started
taking jobs is too late. Local mode applies the same catalogue on the host itself:

1. **Bake** (Packer's shell provisioner): `cci-harden apply --local INVENTORY --stage image`
   writes what an image can carry: packages, Nomad's signed binary, every configuration file,
   accounts, modes, enabled units. It writes no private key (anyone holding the image would hold
   it), starts nothing (no Nomad node registers from the build machine; no firewall cuts
   Packer's SSH) and leaves what runs (loaded rules, live sysctls, dockerd's running
   configuration, the size check) to the instance. A control whose material is not in the image
   (a private key) is left to first boot as a whole, and the bake says so. Last, it installs
   `cci-harden-first-boot.service`.
2. **Boot**: cloud-init writes the private keys (`write_files`, below). The first-boot unit runs
   after `cloud-init.service` and before `nomad.service`: `cci-harden apply --local INVENTORY
   --stage first-boot`, an ordinary converge on the instance, which queues Nomad's start for when
   it is done. It runs once (`/var/lib/cci-harden/first-boot.done`).

A baked image plus its first boot ends where an SSH deploy ends: `tests/test_local_mode.py`
bakes a fresh test host, runs its first boot, then verifies it from outside (nothing found) and
deploys over SSH (nothing changed). Nomad's node name is the host's own hostname on both paths.

Without an image, `cci-harden apply --local INVENTORY --yes` (no stage) does both at once: the
cloud-init `runcmd` of a stock image can install the toolkit and run it. Without a stage the
command hardens whatever machine it runs on, so it refuses one the inventory does not list
(by host name or address) unless told `--yes`.

Paths: files the settings name relative to the inventory are placed beside it in the image
(`/etc/cci-harden/inventories/`); absolute paths stay as they are.

Before it writes the Packer build, `cci-harden render bake INVENTORY --format packer` reads every
file the image would carry: each must lie inside the inventory's directory (links followed),
hold no private key, and be what its setting says (PEM certificates, or the pinned OpenPGP
public key); anything else stops the render with the setting's name. The renders below come
from the example inventory (`inventories/prod`), shown as rendered: its signing keys are not in
this repository and its TLS files are absolute paths outside it, so `render bake` refuses the
example itself until they are placed beside it. The TLS key stays out either way: cloud-init
writes it.
"""


def _doc() -> str:
    """docs/image-bake.md: both renders for the example inventory, and how they fit together."""
    from ..config.settings import load_settings

    example = Path(__file__).resolve().parents[2] / "inventories" / "prod"
    settings = load_settings(example)
    return (
        HEAD
        + "\n## Packer (`--format packer`), for the example inventory\n\n```hcl\n"
        + packer_build(settings, "prod")
        + "```\n\n## cloud-init (`--format cloud-init`), for the example inventory\n\n"
        + "```yaml\n"
        + cloud_init(settings, "prod")
        + "```\n"
    )


if __name__ == "__main__":
    print(_doc(), end="")
