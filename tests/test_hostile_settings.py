"""A setting can never change the meaning of what the toolkit renders.

Each value is either refused when settings load (naming the field), or reaches its consumer as
exactly the intended value: the HCL parser, a POSIX shell, OpenSSH's own reading of the
ssh_config (``ssh -G``), apt's (``apt-config dump``), JSON. No host and no root needed.
"""

from __future__ import annotations

import json
import string
import subprocess
import types
import typing
from pathlib import Path

import hcl2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from cci_harden.apply.release import install_script
from cci_harden.config.settings import FleetSettings, load_settings
from cci_harden.controls.nomad import _render_client_hcl
from cci_harden.fleet.inventory import Inventory
from cci_harden.fleet.sshconfig import quoted, render_ssh_config, write_ssh_config
from cci_harden.model.errors import InventoryError, SettingsError
from cci_harden.model.hostinfo import STAND_IN
from cci_harden.model.render import hcl_string

from .conftest import cli_here
from .test_settings import BASE, VALID, error_for, write_inventory

MINIMAL = {
    "name": "acme",
    "inventory": {"hosts": [{"name": "client-1", "address": "192.0.2.10"}]},
    "network": {"admin_cidrs": ["198.51.100.0/24"]},
    "nomad": {"servers": ["nomad.internal:4647"]},
}

# What hostile settings put into a rendered file or command line: each must be refused.
PAYLOADS = [
    "root\nProxyCommand touch /tmp/pwned",
    "x\nStrictHostKeyChecking no",
    "$(touch /tmp/pwned)",
    "`touch /tmp/pwned`",
    'a" ; { DPkg::Pre-Invoke { "touch /tmp/pwned"; }; }',
    "1.6.3\n",
    "1.٦.3",
    "a;b",
    "x\x1b[31m",
    "é",
]


def with_value(section: str, field: str, value) -> dict:
    data = json.loads(json.dumps(MINIMAL))
    data.setdefault(section, {})[field] = value
    return data


STRING_FIELDS = [
    ("inventory", "ssh_user"),
    ("nomad", "release_url"),
    ("nomad", "data_dir"),
    ("nomad", "datacenter"),
    ("nomad", "node_class"),
    ("nomad", "version"),
    ("apt", "proxy"),
    ("docker", "version"),
    ("docker", "repo_url"),
    ("docker", "log_max_size"),
    ("docker", "storage_driver"),
    ("docker", "distribution_codename"),
    ("name", None),
]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize(("section", "field"), STRING_FIELDS)
def test_every_reproduction_is_refused_at_load(section, field, payload):
    data = {**MINIMAL, "name": payload} if field is None else with_value(section, field, payload)
    with pytest.raises(ValidationError) as info:
        FleetSettings.model_validate(data)
    where = section if field is None else f"{section}.{field}"
    assert any(".".join(map(str, e["loc"])).startswith(where) for e in info.value.errors())


def test_host_user_known_hosts_and_key_paths_are_refused_with_a_newline():
    host = {"name": "client-1", "address": "192.0.2.10", "user": "root\nProxyCommand x"}
    with pytest.raises(ValidationError, match="inventory.hosts.0.user"):
        FleetSettings.model_validate({**MINIMAL, "inventory": {"hosts": [host]}})
    for field in ("known_hosts", "ssh_key", "ssh_config"):
        inventory = {**MINIMAL["inventory"], field: "/tmp/k\nStrictHostKeyChecking no"}
        with pytest.raises(ValidationError, match=f"inventory.{field}"):
            FleetSettings.model_validate({**MINIMAL, "inventory": inventory})


@pytest.mark.parametrize("value", ["/", "/etc", "/var/lib", "opt/nomad", "/opt/../etc", "/opt//x"])
def test_data_dir_is_absolute_normalised_and_never_a_system_directory(value):
    with pytest.raises(ValidationError, match="nomad.data_dir"):
        FleetSettings.model_validate(with_value("nomad", "data_dir", value))


@pytest.mark.parametrize(
    "halves",
    [
        ["0.0.0.0/1", "128.0.0.0/1"],
        ["::/1", "8000::/1"],
        ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"],
    ],
)
def test_cidr_lists_that_together_admit_everything_are_refused(halves):
    with pytest.raises(ValidationError, match="admit every"):
        FleetSettings.model_validate(with_value("network", "admin_cidrs", halves))


def test_bad_json_in_an_environment_variable_is_one_line_and_exit_2(tmp_path):
    inventory = write_inventory(tmp_path, VALID)
    proc = cli_here("config", "check", str(inventory), env={"CCI_NETWORK__ADMIN_CIDRS": "[oops"})
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "CCI_NETWORK__ADMIN_CIDRS" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_key_material_in_a_path_field_is_refused_and_never_echoed(tmp_path, monkeypatch):
    pem = (
        "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----"
    )
    message = error_for(tmp_path, BASE + f'[nomad.tls]\nkey_file = "{pem}"\n', monkeypatch)
    assert "nomad.tls.key_file" in message and "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in message
    one_line = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
    message = error_for(tmp_path, BASE + f'[inventory]\nssh_user = "{one_line}"\n', monkeypatch)
    assert one_line not in message


# -- consumers see exactly the intended value ----------------------------------------------------

# Text a value could hold if validation ever let it through: every consumer must still read it
# as one literal value.
hostile_text = st.lists(
    st.sampled_from([*"ab-_./:@ \"'`$(){}[];|&<>\\%#*?!~\n\t", "${x}", "%{y}", "$(id)"]),
    min_size=1,
    max_size=16,
).map("".join)


@settings(max_examples=80, deadline=None)
@given(hostile_text)
def test_hcl_strings_parse_back_to_the_value(value):
    parsed = hcl2.loads(f"name = {hcl_string(value)}\nafter = 1\n")
    assert set(parsed) == {"name", "after"}  # one string token: nothing escaped into the file
    assert hcl_value(parsed["name"]) == value


def hcl_value(literal: str) -> str:
    """An HCL string literal as python-hcl2 returns it (quotes kept) -> the string it holds."""
    return json.loads(literal)  # HCL's escapes are JSON's


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_text)
def test_install_script_takes_a_url_as_one_literal_word(value):
    script = install_script(value, "1.6.3", "amd64", "F" * 40)
    assignments = script[: script.index("refuse()")]  # set -eu and the settings' words
    proc = subprocess.run(
        ["sh", "-c", assignments + 'printf %s "$base"'], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout == value.rstrip("/")  # the script's own rstrip
    subprocess.run(["sh", "-n"], input=script, text=True, check=True)


def test_client_hcl_carries_a_hostile_host_name_as_a_literal(example_settings_path):
    settings = load_settings(example_settings_path)
    # the node name is the host's own hostname: data from the host, never trusted
    info = STAND_IN.__class__(**{**STAND_IN.__dict__, "hostname": 'x"\nplugin "docker" { }'})
    parsed = hcl2.loads(_render_client_hcl(settings, info))
    assert hcl_value(parsed["name"]) == info.hostname
    assert [next(iter(p)) for p in parsed["plugin"]] == ['"raw_exec"']


@pytest.fixture
def example_settings_path() -> Path:
    return Path(__file__).resolve().parents[1] / "inventories" / "prod"


def test_ssh_config_keeps_strict_host_keys_whatever_the_operator_file_says(tmp_path):
    operator = tmp_path / "operator.ssh_config"
    operator.write_text(
        "Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
        "  ProxyCommand touch /tmp/pwned-by-ssh-config\n"
    )
    inventory = write_inventory(
        tmp_path,
        BASE.replace("[inventory]\n", f'[inventory]\nssh_config = "{operator}"\n')
        + '[network]\nadmin_cidrs = ["198.51.100.0/24"]\n',
    )
    loaded = Inventory.load(inventory)
    config = tmp_path / "ssh_config"
    config.write_text(render_ssh_config(loaded, tmp_path / "cm 100%"))
    proc = subprocess.run(
        ["ssh", "-G", "-F", str(config), "client-1"], capture_output=True, text=True, check=True
    )
    effective = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert effective["stricthostkeychecking"] == "true"
    assert effective["userknownhostsfile"] == str(loaded.known_hosts.resolve())
    assert effective["controlpath"].startswith(str(tmp_path / "cm 100%"))
    # the operator's file still adds what we leave unset
    assert "proxycommand" in effective


def _with_operator_config(tmp_path, text: str) -> Inventory:
    operator = tmp_path / "operator.ssh_config"
    operator.write_text(text)
    two_hosts = '{ name = "client-1", address = "192.0.2.10" }, ' + (
        '{ name = "odd-port", address = "192.0.2.77", port = 2222 }]'
    )
    toml = BASE.replace("[inventory]\n", f'[inventory]\nssh_config = "{operator}"\n')
    toml = toml.replace('{ name = "client-1", address = "192.0.2.10" }]', two_hosts)
    return Inventory.load(write_inventory(tmp_path, toml))


def test_no_command_vouches_for_a_key_and_keys_are_looked_up_by_address(tmp_path):
    operator = "Host *\n  ProxyJump bastion.example.test\n  KnownHostsCommand /bin/cat /tmp/k\n"
    loaded = _with_operator_config(tmp_path, operator)
    config = write_ssh_config(loaded, tmp_path / "ssh_config", tmp_path / "cm")
    text = config.read_text()
    assert "  KnownHostsCommand none\n" in text
    effective = subprocess.run(
        ["ssh", "-G", "-F", str(config), "odd-port"], capture_output=True, text=True, check=True
    ).stdout
    assert "proxyjump bastion.example.test" in effective  # what we leave unset still applies
    assert "knownhostscommand" not in effective
    assert "Host client-1\n  HostName 192.0.2.10\n" in text
    assert "  HostKeyAlias 192.0.2.10\n" in text
    # on another port the alias would be [address]:port, which no certificate names: left unset
    assert "HostKeyAlias 192.0.2.77" not in text


@pytest.mark.parametrize(
    "option",
    ["HostKeyAlias 10.0.0.99", "RevokedHostKeys /dev/null"],
)
def test_an_inventory_ssh_config_cannot_change_how_keys_are_trusted(tmp_path, option):
    """Options of ours come first and win; what OpenSSH leaves open (an alias on a port other
    than 22, a revocation list when none is set) is refused as OpenSSH itself reads the file."""
    loaded = _with_operator_config(tmp_path, f"Host odd-port\n  {option}\n")
    with pytest.raises(InventoryError, match=f"sets {option.split()[0].lower()} for odd-port"):
        write_ssh_config(loaded, tmp_path / "ssh_config", tmp_path / "cm")


def test_apt_reads_the_proxy_as_the_intended_value(tmp_path):
    from cci_harden.controls.apt import _proxy_resources

    proxy = "http://apt-proxy.internal:3142/"
    settings = FleetSettings.model_validate(with_value("apt", "proxy", proxy))
    (rendered,) = _proxy_resources(settings, STAND_IN)
    conf = tmp_path / "apt.conf"
    conf.write_text(rendered.content)
    proc = subprocess.run(
        ["apt-config", "-c", str(conf), "dump", "Acquire::http::Proxy"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f'Acquire::http::Proxy "{proxy.rstrip("/")}";' in proc.stdout


def test_loading_a_refused_value_names_field_origin_and_never_tracebacks(tmp_path, monkeypatch):
    message = error_for(
        tmp_path, VALID, monkeypatch, CCI_NOMAD__RELEASE_URL="https://m.internal/$(id)"
    )
    assert "nomad.release_url" in message and "CCI_NOMAD__RELEASE_URL" in message
    with pytest.raises(SettingsError):
        load_settings(write_inventory(tmp_path, VALID + '\n[apt]\nproxy = "ftp://x"\n'))


# -- every string field, found by walking the settings model --------------------------------------


def _string_leaves(model: type[BaseModel], prefix: tuple = ()):
    for name, info in model.model_fields.items():
        yield from _leaves_of(info.annotation, (*prefix, name))


def _leaves_of(annotation, path: tuple):
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _leaves_of(typing.get_args(annotation)[0], path)
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _leaves_of(arg, path)
    elif origin in (list, tuple, set, frozenset):
        yield from _leaves_of(typing.get_args(annotation)[0], (*path, 0))
    elif origin is dict:
        key, value = typing.get_args(annotation)
        yield from _leaves_of(key, (*path, "{key}"))
        yield from _leaves_of(value, (*path, "{value}"))
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield from _string_leaves(annotation, path)
    elif annotation in (str, Path):
        yield path


EVERY_STRING_FIELD = sorted(set(_string_leaves(FleetSettings)), key=str)
# Characters no consumer (an HCL or JSON string, an nginx or ssh_config token, an apt option, a
# shell word once quoted) gives a meaning of its own: an accepted value is made of these only.
# ``*`` and ``?`` are sshd's and nginx's wildcards, meant as such (ssh.allow_users, server_name).
INERT = set(string.ascii_letters + string.digits + "._-:/@+~[]*?,=")


_KEY_FOR = {"groups": "vm", "served_types": "text/x-test", "text_types": "text/x-test"}


def _placed(path: tuple, value: str) -> dict:
    """MINIMAL with ``value`` at ``path`` (a list gets it as its one item, a dict as a key or
    as the one item of a value)."""
    data = json.loads(json.dumps(MINIMAL))
    node = data
    for at, step in enumerate(path[:-1]):
        following = path[at + 1]
        if step == "{key}":
            raise AssertionError("a dict key is always the last step here")
        if step == "{value}":
            node = node.setdefault(_KEY_FOR[path[at - 1]], [] if following == 0 else {})
            continue
        if isinstance(step, int):
            if not node:
                node.append({} if not isinstance(following, int) else [])
            node = node[0]
            continue
        if following == "{key}":
            node[step] = {value: []}
            return data
        node = node.setdefault(step, [] if isinstance(following, int) else {})
    last = path[-1]
    if isinstance(last, int):
        node[:] = [value]
    else:
        node[last] = value
    return data


def _read_back(settings: FleetSettings, path: tuple) -> str:
    node = settings
    for previous, step in zip((None, *path), path, strict=False):
        if step == "{key}":
            return next(iter(node))
        if step == "{value}":
            node = node[_KEY_FOR[previous]]
        elif isinstance(step, int):
            node = node[0]
        else:
            node = getattr(node, step)
    return str(node)


@pytest.mark.parametrize("path", EVERY_STRING_FIELD, ids=lambda p: ".".join(map(str, p)))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=hostile_text)
def test_every_string_field_refuses_or_holds_only_inert_text(path, value):
    """Each value is refused at load, naming its field, or holds only characters that mean
    nothing to any consumer, so it reaches each as exactly the intended value."""
    field = ".".join(str(step) for step in path if step not in ("{key}", "{value}"))
    section = ".".join(str(step) for step in path[:2] if not str(step).startswith("{"))
    try:
        settings_ = FleetSettings.model_validate(_placed(path, value))
    except ValidationError as exc:
        places = [".".join(map(str, e["loc"])) for e in exc.errors()]
        assert any(place.startswith(section) for place in places), (section, places)
        return
    held = _read_back(settings_, path)
    if isinstance(_read_leaf_type(path), type) and path in LOCAL_PATHS:
        # a file on the operator's machine: read there, or written quoted into the ssh_config
        # (see test_ssh_config_reads_local_paths_back_exactly)
        assert held.isascii() and held.isprintable() and not set(held) & set('"\\$'), held
        return
    assert set(held) <= INERT, (field, held)


LOCAL_PATHS = {
    p
    for p in EVERY_STRING_FIELD
    if p[-1]
    in (
        "ssh_key",
        "known_hosts",
        "ssh_config",
        "gpg_key_file",
        "ca_file",
        "cert_file",
        "key_file",
        "client_cert_file",
        "client_key_file",
        "host_ca_file",
        "host_ca_key_file",
        "revoked_host_keys_file",
    )
}


def _read_leaf_type(path: tuple) -> type:
    return Path if path in LOCAL_PATHS else str


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=hostile_text.filter(lambda t: "\n" not in t and "\t" not in t))
def test_ssh_config_reads_local_paths_back_exactly(name):
    """Any local path settings accept reaches OpenSSH as exactly that path (spaces, %, #, $)."""
    try:
        FleetSettings.model_validate(with_value("inventory", "known_hosts", f"/keys/{name}"))
    except ValidationError:
        return
    text = f"Host x\n  UserKnownHostsFile {quoted(Path('/keys') / name)}\n"
    proc = subprocess.run(
        ["ssh", "-G", "-F", "/dev/stdin", "x"], input=text, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    effective = [
        ln.split(" ", 1)[1]
        for ln in proc.stdout.splitlines()
        if ln.startswith("userknownhostsfile ")
    ]
    assert effective == [str(Path("/keys") / name)]


@pytest.mark.parametrize("value", ["/etc", "/srv/../etc", "/", "/var/lib", "srv/artifacts"])
def test_artifacts_root_is_a_directory_of_its_own(value):
    """nginx serves this directory to every job's browser: never a system directory."""
    with pytest.raises(ValidationError, match="artifacts.root_dir"):
        FleetSettings.model_validate(with_value("artifacts", "root_dir", value))


@pytest.mark.parametrize(
    "address", ["fe80::1%eth0", "fe80::1%a b,*", "fe80::1%*", "fe80::1%$(id);x"]
)
def test_an_ipv6_zone_id_is_refused_in_names_and_addresses(address):
    for entry in ({"name": "client-1", "address": address}, {"name": address, "address": "::1"}):
        settings = {**MINIMAL, "inventory": {"hosts": [entry]}}
        with pytest.raises(ValidationError, match="zone id"):
            FleetSettings.model_validate(settings)


def test_a_host_named_like_another_hosts_address_is_refused():
    hosts = [
        {"name": "client-1", "address": "192.0.2.10"},
        {"name": "192.0.2.10", "address": "192.0.2.11"},
    ]
    with pytest.raises(ValidationError, match="192.0.2.10 is another host's address"):
        FleetSettings.model_validate({**MINIMAL, "inventory": {"hosts": hosts}})
    # a host named by its own address is fine
    own = [{"name": "192.0.2.10", "address": "192.0.2.10"}]
    assert FleetSettings.model_validate({**MINIMAL, "inventory": {"hosts": own}})
