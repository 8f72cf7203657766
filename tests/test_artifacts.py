"""Artifact content types, from the Operations Guide's tables to nginx responses and S3 metadata.

The bucket audit runs against moto's standalone S3 server on loopback (a real HTTP S3 endpoint,
started and stopped here by PID); the nginx matrix runs over real HTTP on a test-bed host.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from cci_harden.config.cloud import ArtifactSettings
from cci_harden.controls.nginx_site import expected_headers

from .conftest import BIN, pyinfra_json, run_cli, ssh

# The Operations Guide's two tables (Build Artifacts), category and type as printed,
# with the MIME type each row names.
GUIDE_SAFE = {
    ("Text", "Plain"): "text/plain",
    ("Application", "json"): "application/json",
    ("Image", "png"): "image/png",
    ("Image", "jpg"): "image/jpeg",
    ("Image", "gif"): "image/gif",
    ("Image", "bmp"): "image/bmp",
    ("Video", "webm"): "video/webm",
    ("Video", "ogg"): "video/ogg",
    ("Video", "mp4"): "video/mp4",
    ("Audio", "webm"): "audio/webm",
    ("Audio", "aac"): "audio/aac",
    ("Audio", "mp4"): "audio/mp4",
    ("Audio", "mpeg"): "audio/mpeg",
    ("Audio", "ogg"): "audio/ogg",
    ("Audio", "wav"): "audio/wav",
}
GUIDE_AS_TEXT = {
    ("Text", "html"): "text/html",
    ("Text", "css"): "text/css",
    ("Text", "javascript"): "text/javascript",
    ("Text", "ecmascript"): "text/ecmascript",
    ("Application", "javascript"): "application/javascript",
    ("Application", "ecmascript"): "application/ecmascript",
    ("Text", "xml"): "text/xml",
}


def test_default_allowlist_is_the_guides_two_tables():
    settings = ArtifactSettings()
    assert set(settings.served_types) == set(GUIDE_SAFE.values())
    assert set(settings.text_types) == set(GUIDE_AS_TEXT.values())
    for mime in GUIDE_SAFE.values():
        assert settings.safe_type(mime) == mime
    for mime in GUIDE_AS_TEXT.values():
        assert settings.safe_type(mime) == "text/plain"
    assert settings.safe_type("image/svg+xml") == "application/octet-stream"
    assert settings.safe_type("TEXT/HTML; charset=utf-8") == "text/plain"


def test_an_extension_listed_for_two_types_is_refused():
    with pytest.raises(ValueError, match="'js' is listed for both"):
        ArtifactSettings(served_types={"text/plain": ["js"]})


# -- the bucket audit, against a local S3 endpoint ------------------------------------------------

PLANTED = {
    # key: (stored Content-Type, the type the audit must leave or set)
    "ok/report.png": ("image/png", None),
    "ok/results.json": ("application/json", None),
    "ok/build.log": ("text/plain; charset=utf-8", None),
    "ok/archive.tar.gz": ("application/octet-stream", None),
    "bad/index.html": ("text/html", "text/plain"),
    "bad/app.js": ("application/javascript", "text/plain"),
    "bad/SHOUT.HTML": ("TEXT/HTML", "text/plain"),
    "bad/logo.svg": ("image/svg+xml", "application/octet-stream"),
    "bad/setup.exe": ("application/x-msdownload", "application/octet-stream"),
    "bad/page.xhtml": ("application/xhtml+xml", "application/octet-stream"),
}
BUCKET = "circleci-artifacts-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    port = _free_port()
    proc = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("moto_server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret"}


@pytest.fixture
def planted(s3_endpoint, tmp_path, monkeypatch):
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    from cci_harden.cloud.artifacts.bucket_audit import s3_client

    client = s3_client(s3_endpoint, "us-east-1")
    existing = [b["Name"] for b in client.list_buckets()["Buckets"]]
    if BUCKET in existing:
        for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    else:
        client.create_bucket(Bucket=BUCKET)
    for key, (stored, _) in PLANTED.items():
        client.put_object(
            Bucket=BUCKET,
            Key=key,
            Body=b"<script>alert(document.cookie)</script>",
            ContentType=stored,
            CacheControl="max-age=60",
            Metadata={"job": "build-42"},
        )
    inventory = tmp_path / "s3"
    inventory.write_text("hosts = []\n")
    (tmp_path / "s3.toml").write_text(
        f'[storage]\nbuckets = ["{BUCKET}"]\nendpoint_url = "{s3_endpoint}"\n'
    )
    return client, inventory


def test_bucket_audit_finds_exactly_the_planted_unsafe_objects(planted):
    _client, inventory = planted
    proc = run_cli("artifacts", "audit", str(inventory), "--json", env=CREDENTIALS)
    assert proc.returncode == 1, proc.stderr
    found = {row["key"]: row for row in map(json.loads, proc.stdout.splitlines())}
    expected = {k: v for k, v in PLANTED.items() if v[1] is not None}
    assert set(found) == set(expected)
    for key, (stored, safe) in expected.items():
        assert (found[key]["stored_type"], found[key]["safe_type"]) == (stored, safe)
        assert found[key]["fixed"] is False
    assert "10 object(s) examined" in proc.stderr
    assert "testing-secret" not in proc.stdout + proc.stderr
    # the flags every results-writing command shares: --format and --output
    out = inventory.parent / "flagged.jsonl"
    again = run_cli(
        "artifacts",
        "audit",
        str(inventory),
        "--format",
        "jsonl",
        "--output",
        str(out),
        env=CREDENTIALS,
    )
    assert again.returncode == 1 and again.stdout == "" and out.read_text() == proc.stdout


def test_bucket_audit_fix_rewrites_types_and_keeps_metadata(planted):
    client, inventory = planted
    fixed = run_cli("artifacts", "audit", str(inventory), "--fix", env=CREDENTIALS)
    assert fixed.returncode == 0, fixed.stderr
    assert "6 outside the allowlist; 6 fixed" in fixed.stderr
    for key, (stored, safe) in PLANTED.items():
        head = client.head_object(Bucket=BUCKET, Key=key)
        assert head["ContentType"] == (safe or stored), key
        assert head["Metadata"] == {"job": "build-42"}, key
        assert head["CacheControl"] == "max-age=60", key
        if safe == "application/octet-stream":
            assert head["ContentDisposition"] == "attachment", key
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert body == b"<script>alert(document.cookie)</script>"
    again = run_cli("artifacts", "audit", str(inventory), env=CREDENTIALS)
    assert again.returncode == 0, again.stderr
    assert "0 outside the allowlist" in again.stderr


def test_bucket_audit_names_a_missing_bucket(planted):
    _client, inventory = planted
    proc = run_cli(
        "artifacts", "audit", str(inventory), "--bucket", "no-such-bucket", env=CREDENTIALS
    )
    assert proc.returncode == 2
    assert "bucket no-such-bucket:" in proc.stderr and "Traceback" not in proc.stderr


# -- nginx on a test-bed host, over real HTTP ---------------------------------------------------

ARTIFACT_HOST = "tb3"
MATRIX_NAMES = [
    # one name per row of the guide's tables ...
    "notes.txt", "results.json", "shot.png", "photo.jpg", "photo.jpeg", "anim.gif", "scan.bmp",
    "clip.webm", "clip.ogv", "clip.mp4", "voice.weba", "voice.aac", "voice.m4a", "song.mp3",
    "song.ogg", "sound.wav",
    "report.html", "style.css", "app.js", "module.mjs", "legacy.es", "feed.xml",
    # ... and the tricky ones: double extensions, upper case, no extension, unknown, SVG.
    "report.html.png", "shot.png.html", "REPORT.HTML", "Shot.PNG", "README", "Makefile.",
    "tool.exe", "archive.tar.gz", "logo.svg", "dir/nested/page.htm", "x.php",
]  # fmt: skip


def _serve_and_fetch(testbed, names: list[str]) -> dict[str, dict[str, str]]:
    """GET every name from the host's nginx with curl on the host; name -> lower-cased headers.

    Real HTTP on the host itself: the Nomad client firewall and sshd's no-forwarding rule stay
    as the deploys left them.
    """
    ssh(testbed, ARTIFACT_HOST,
        "command -v curl >/dev/null || (timeout 120 apt-get -q update >/dev/null && "
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends curl "
        ">/dev/null)")  # fmt: skip
    script = "; ".join(
        f"echo '@@ {name}'; curl -s -o /dev/null -D - --retry 5 --retry-connrefused "
        f"http://127.0.0.1:8080/{name}"
        for name in names
    )
    output = ssh(testbed, ARTIFACT_HOST, script).stdout
    responses: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("@@ "):
            current = responses.setdefault(line[3:], {})
        elif line.startswith("HTTP/"):
            current["status"] = line.split()[1]
        elif ":" in line:
            key, _, value = line.partition(":")
            current[key.strip().lower()] = value.strip()
    assert set(responses) == set(names)
    return responses


def _assert_matrix(responses, settings):
    for name, headers in responses.items():
        assert headers["status"] == "200", name
        content_type, disposition = expected_headers(settings, name)
        assert headers["content-type"] == content_type, name
        assert headers.get("content-disposition") == disposition, name
        assert headers["x-content-type-options"] == "nosniff", name
        assert "sandbox" in headers["content-security-policy"], name


@pytest.mark.testbed
def test_nginx_serves_every_guide_row_and_tricky_name_safely(testbed):
    files = " ".join(MATRIX_NAMES)
    ssh(testbed, ARTIFACT_HOST,
        "mkdir -p /srv/circleci-artifacts/dir/nested && cd /srv/circleci-artifacts && "
        f"for f in {files}; do echo '<script>alert(1)</script>' > \"$f\"; done")  # fmt: skip
    pyinfra_json(testbed.path, "deploys/artifacts.py", "--limit", ARTIFACT_HOST)
    again = pyinfra_json(testbed.path, "deploys/artifacts.py", "--limit", ARTIFACT_HOST)
    assert not any(op["success"] for op in again["results"]["operations"])
    settings = ArtifactSettings()
    responses = _serve_and_fetch(testbed, MATRIX_NAMES)
    _assert_matrix(responses, settings)
    # Spot checks in plain words, so a bug in expected_headers cannot hide a bug in nginx.
    assert responses["report.html"]["content-type"] == "text/plain"
    assert responses["REPORT.HTML"]["content-type"] == "text/plain"
    assert responses["report.html.png"]["content-type"] == "image/png"
    assert responses["shot.png.html"]["content-type"] == "text/plain"
    assert responses["README"]["content-disposition"] == "attachment"
    assert responses["logo.svg"]["content-type"] == "text/plain"
    verify = run_cli(
        "verify", "--profile", "artifacts", str(testbed.path), "--limit", ARTIFACT_HOST
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.testbed
def test_nginx_in_front_of_an_object_store_ignores_the_stored_type(testbed):
    """A stand-in store on the host serves everything as inline text/html; nginx must not."""
    ssh(testbed, ARTIFACT_HOST, "cat > /etc/nginx/conf.d/zz-test-store.conf <<'EOF'\n"
        "server {\n listen 127.0.0.1:8081;\n root /srv/circleci-artifacts;\n types { }\n"
        " default_type text/html;\n add_header Content-Disposition inline;\n}\nEOF")  # fmt: skip
    env = {"CCI_ARTIFACTS__UPSTREAM": "http://127.0.0.1:8081"}
    try:
        proc = subprocess.run(
            [str(BIN / "pyinfra"), "-y", "--limit", ARTIFACT_HOST, str(testbed.path),
             "deploys/artifacts.py"],
            capture_output=True, text=True, env={**os.environ, "PYINFRA_PROGRESS": "off", **env},
            timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        _assert_matrix(_serve_and_fetch(testbed, MATRIX_NAMES), ArtifactSettings())
    finally:
        ssh(testbed, ARTIFACT_HOST, "rm -f /etc/nginx/conf.d/zz-test-store.conf")
        restored = subprocess.run(
            [str(BIN / "pyinfra"), "-y", "--limit", ARTIFACT_HOST, str(testbed.path),
             "deploys/artifacts.py"],
            capture_output=True, text=True, env={**os.environ, "PYINFRA_PROGRESS": "off"},
            timeout=600,
        )  # fmt: skip
        assert restored.returncode == 0, restored.stderr[-2000:]


@pytest.mark.testbed
def test_the_on_host_check_refuses_a_broken_site_and_accepts_the_rendered_one(testbed):
    """The validator managed_file runs before the rename: real nginx, the staged file alone."""
    import shlex

    from cci_harden import controls as catalogue
    from cci_harden.model.hostinfo import STAND_IN

    (site,) = (
        r
        for r in catalogue.by_id("CCI-ART-01").resources(testbed.settings, STAND_IN)
        if r.kind == "file" and r.present
    )
    broken = site.content.replace("server_tokens off;", "server_tokens off; no_such_directive 1;")
    for name, text, expected in (("good", site.content, 0), ("broken", broken, 1)):
        staged = f"/tmp/cci-site-{name}.conf"
        ssh(testbed, ARTIFACT_HOST, f"cat > {staged} <<'EOF'\n{text}EOF")
        check = site.validate.format(path=shlex.quote(staged))
        proc = ssh(testbed, ARTIFACT_HOST, check, check=False)
        assert (proc.returncode != 0) == bool(expected), (name, proc.stderr)
        if expected:
            assert "no_such_directive" in proc.stderr


def test_fix_keeps_tags_acl_grants_and_redirect_and_says_what_it_changed(planted):
    client, inventory = planted
    key = "bad/index.html"  # planted as text/html: rewritten to text/plain
    client.put_object_tagging(
        Bucket=BUCKET, Key=key, Tagging={"TagSet": [{"Key": "team", "Value": "web ui=1"}]}
    )
    client.put_object_acl(Bucket=BUCKET, Key=key, ACL="public-read")
    client.copy_object(
        Bucket=BUCKET,
        Key=key,
        CopySource={"Bucket": BUCKET, "Key": key},
        MetadataDirective="REPLACE",
        ContentType="text/html",
        CacheControl="max-age=60",
        Metadata={"job": "build-42"},
        WebsiteRedirectLocation="/elsewhere.html",
    )
    client.put_object_acl(Bucket=BUCKET, Key=key, ACL="public-read")
    fixed = run_cli("artifacts", "audit", str(inventory), "--fix", env=CREDENTIALS)
    assert fixed.returncode == 0, fixed.stderr
    assert f"fixed    s3://{BUCKET}/{key}  text/html -> text/plain" in fixed.stdout
    head = client.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "text/plain"
    assert head.get("WebsiteRedirectLocation") == "/elsewhere.html"
    tags = client.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]
    assert tags == [{"Key": "team", "Value": "web ui=1"}]
    grants = client.get_object_acl(Bucket=BUCKET, Key=key)["Grants"]
    assert any(
        g["Permission"] == "READ" and g["Grantee"].get("URI", "").endswith("/AllUsers")
        for g in grants
    ), grants


def test_a_large_object_is_copied_part_by_part_with_its_properties(planted, monkeypatch):
    from cci_harden.cloud.artifacts import bucket_audit
    from cci_harden.config.cloud import ArtifactSettings

    client, _ = planted
    monkeypatch.setattr(bucket_audit, "SINGLE_COPY_LIMIT", 8 * 2**20)
    monkeypatch.setattr(bucket_audit, "PART_BYTES", 5 * 2**20)
    body = bytes(range(256)) * (11 * 2**20 // 256)
    key = "big/page.html"
    client.put_object(
        Bucket=BUCKET,
        Key=key,
        Body=body,
        ContentType="text/html",
        Metadata={"job": "build-43"},
        Tagging="keep=yes",
    )
    _, flagged = bucket_audit.audit_bucket(
        client, BUCKET, ArtifactSettings(), prefix="big/", fix=True
    )
    assert [(f.key, f.fixed, f.error) for f in flagged] == [(key, True, "")]
    head = client.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "text/plain" and head["Metadata"] == {"job": "build-43"}
    assert client.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"] == [
        {"Key": "keep", "Value": "yes"}
    ]
    assert client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body


def test_an_object_that_vanishes_while_audited_is_reported_and_the_rest_go_on(planted, monkeypatch):
    from cci_harden.cloud.artifacts import bucket_audit
    from cci_harden.config.cloud import ArtifactSettings

    client, _ = planted
    listed = bucket_audit._keys

    def keys_then_one_deleted(client_, bucket, prefix):
        keys = list(listed(client_, bucket, prefix))
        client.delete_object(Bucket=BUCKET, Key=keys[0])  # gone between listing and HEAD
        return keys

    monkeypatch.setattr(bucket_audit, "_keys", keys_then_one_deleted)
    examined, flagged = bucket_audit.audit_bucket(client, BUCKET, ArtifactSettings())
    assert examined == len(PLANTED)
    vanished = [f for f in flagged if f.vanished]
    assert len(vanished) == 1 and not vanished[0].fixed
    expected = {k for k, v in PLANTED.items() if v[1] is not None} - {vanished[0].key}
    assert {f.key for f in flagged if not f.vanished} == expected
