"""The Packer and cloud-init examples, rendered from settings, parse and say the same
thing as the settings (docs/image-bake.md is generated from them)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import hcl2
import pytest
import yaml

from cci_harden.cloud.bake import (
    IMAGE_INVENTORIES,
    _doc,
    carried_files,
    cloud_init,
    packer_build,
    secret_files,
)
from cci_harden.config.settings import load_settings
from cci_harden.model.errors import CciHardenError

from .conftest import INVENTORIES, REPO, cli_here
from .test_hostile_settings import hcl_value
from .test_preflight import complete_example, release_key  # noqa: F401  (a real OpenPGP key)

PROD = load_settings(INVENTORIES / "prod")


def test_the_doc_is_generated_from_the_renders():
    assert (REPO / "docs" / "image-bake.md").read_text() == _doc(), (
        "run python -m cci_harden.cloud.bake > docs/image-bake.md"
    )


def test_the_packer_build_parses_and_its_commands_are_shell():
    parsed = hcl2.loads(packer_build(PROFILE_SETTINGS, "prod"))
    (build,) = parsed["build"]
    provisioners = [
        (hcl_value(kind), {key: _unquoted(value) for key, value in block.items()})
        for p in build["provisioner"]
        for kind, block in p.items()
    ]
    files = [block for kind, block in provisioners if kind == "file"]
    shells = [block for kind, block in provisioners if kind == "shell"]
    commands = [line for shell in shells for line in shell["inline"]]
    for command in commands:
        subprocess.run(["sh", "-n", "-c", command], check=True)
    assert commands[-2].endswith(f"apply --local {IMAGE_INVENTORIES}/prod --stage image")
    # every file the settings name that an image may carry is uploaded, and no private key
    sources = {f["source"] for f in files}
    for _field, path in carried_files(PROFILE_SETTINGS):
        assert (str(path) if path.is_absolute() else f"inventories/{path}") in sources
    for _field, path in secret_files(PROFILE_SETTINGS):
        assert str(path) not in sources and not any(str(path) in c for c in commands)


def test_cloud_init_writes_each_private_key_root_only():
    text = cloud_init(PROFILE_SETTINGS, "prod")
    assert text.startswith("#cloud-config\n")
    data = yaml.safe_load(text)
    written = {entry["path"]: entry for entry in data["write_files"]}
    assert set(written) == {str(path) for _f, path in secret_files(PROFILE_SETTINGS)}
    assert all(e["permissions"] == "0600" and e["owner"] == "root:root" for e in written.values())


def test_relative_paths_land_beside_the_inventory_in_the_image(tmp_path):
    toml = (
        (INVENTORIES / "prod.toml")
        .read_text()
        .replace(
            'key_file = "/etc/circleci-server/nomad/client-key.pem"', 'key_file = "keys/client.key"'
        )
    )
    (tmp_path / "fleet.toml").write_text(toml)
    settings = load_settings(tmp_path / "fleet")
    (entry,) = yaml.safe_load(cloud_init(settings, "fleet"))["write_files"]
    assert entry["path"] == f"{IMAGE_INVENTORIES}/keys/client.key"


@pytest.mark.parametrize("name", ["prod;reboot", "../prod", "prod prod", ""])
def test_an_inventory_name_that_would_change_a_command_is_refused(name):
    with pytest.raises(CciHardenError, match="inventory name"):
        packer_build(PROFILE_SETTINGS, name)


def bakeable(directory: Path, release_key) -> Path:  # noqa: F811
    """The example inventory with its carried files beside it: a pinned key and PEM certificates."""
    return complete_example(directory, release_key, name="fleet")


def test_the_command_writes_what_the_module_renders(tmp_path, release_key):  # noqa: F811
    inventory = bakeable(tmp_path, release_key)
    out = tmp_path / "bake.pkr.hcl"
    proc = cli_here("render", "bake", str(inventory), "--format", "packer", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == packer_build(load_settings(inventory), "fleet")


def _swap(inventory: Path, field: str, value: str) -> None:
    toml = inventory.with_suffix(".toml")
    key = field.rsplit(".", 1)[1]
    text, count = re.subn(rf'(?m)^{key} = ".*"$', f'{key} = "{value}"', toml.read_text(), count=1)
    assert count == 1
    toml.write_text(text)


@pytest.mark.parametrize(
    ("field", "make", "says"),
    [
        ("nomad.tls.ca_file", lambda d: "/etc/hostname", "outside the inventory's directory"),
        ("nomad.tls.ca_file", lambda d: _link(d, "/etc/hostname"), "outside the inventory's"),
        ("nomad.tls.cert_file", lambda d: _bundle(d), "holds a private key"),
        (
            "nomad.tls.ca_file",
            lambda d: _write(d, "ssh-ed25519 AAAA op@laptop\n"),
            "PEM certificates alone",
        ),
        ("nomad.gpg_key_file", lambda d: "tls/ca.pem", "not an OpenPGP public key"),
        ("nomad.gpg_key_file", lambda d: "tls", "not a regular file"),
    ],
    ids=["absolute", "link-out", "bundled-key", "not-a-cert", "cert-as-key", "directory"],
)
def test_a_carried_file_that_is_outside_or_not_what_it_claims_stops_the_render(
    tmp_path,
    release_key,  # noqa: F811
    field,
    make,
    says,  # noqa: F811
):
    inventory = bakeable(tmp_path, release_key)
    _swap(inventory, field, make(tmp_path))
    out = tmp_path / "bake.pkr.hcl"
    proc = cli_here("render", "bake", str(inventory), "--format", "packer", "-o", str(out))
    assert proc.returncode == 2 and says in proc.stderr and field in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def _link(directory: Path, target: str) -> str:
    (directory / "tls" / "outside.pem").symlink_to(target)
    return "tls/outside.pem"


def _bundle(directory: Path) -> str:
    both = directory / "tls" / "client.pem"
    both.write_bytes(both.read_bytes() + (directory / "tls" / "client-key.pem").read_bytes())
    return "tls/client.pem"


def _write(directory: Path, text: str) -> str:
    (directory / "tls" / "odd.pem").write_text(text)
    return "tls/odd.pem"


PROFILE_SETTINGS = PROD


def _unquoted(value):
    if isinstance(value, list):
        return [_unquoted(v) for v in value]
    return hcl_value(value) if isinstance(value, str) and value.startswith('"') else value


def test_a_bake_never_carries_an_inline_key(tmp_path):
    """The image carries the settings file: a key written in it would be in every instance."""
    pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA" + "A" * 42 + "\n"
    toml = (INVENTORIES / "prod.toml").read_text().replace(
        'key_file = "/etc/circleci-server/nomad/client-key.pem"',
        f'key_pem = """{pem}-----END PRIVATE KEY-----\n"""',
    )  # fmt: skip
    (tmp_path / "fleet.toml").write_text(toml)
    with pytest.raises(CciHardenError, match="nomad.tls.key_pem is set"):
        packer_build(load_settings(tmp_path / "fleet"), "fleet")


def test_only_files_of_features_that_are_on_are_carried_and_none_climbs_out(tmp_path):
    settings = load_settings(INVENTORIES / "prod")
    off = settings.model_copy(update={"logging": settings.logging.model_copy(
        update={"collector": None, "ca_file": Path("/home/op/.ssh/id_ed25519")})})  # fmt: skip
    assert "logging.ca_file" not in dict(carried_files(off))
    climbing = settings.model_copy(update={"docker": settings.docker.model_copy(
        update={"gpg_key_file": Path("keys/../../.aws/credentials")})})  # fmt: skip
    with pytest.raises(CciHardenError, match="climbs out"):
        carried_files(climbing)
