"""The artifact server: nginx in front of the object store, enforcing the seed's content types."""

from __future__ import annotations

from ..artifacts.nginx import CONTROL_ID, SITE_PATH, nginx_site
from .model import Applied, Control, DesiredFile, Finding, Probe, Source
from .probes import package_probe, package_version, service_findings, service_probe

DEFAULT_SITE = "/etc/nginx/sites-enabled/default"

# The staged site is checked inside a minimal http context, so a bad render never goes live.
_VALIDATE = (
    '( t=$(mktemp) && printf "events {{}}\\nhttp {{ include %s; }}\\n" {path} > "$t" '
    '&& nginx -t -q -c "$t"; rc=$?; rm -f "$t"; exit $rc )'
)


def _site_files(settings, info):
    return [
        DesiredFile(
            SITE_PATH,
            nginx_site(settings.artifacts),
            validate=_VALIDATE,
            reload=("nginx",),
        )
    ]


def _site_apply(settings, info) -> Applied:
    from pyinfra.operations import files

    removed = files.link(
        name=f"[{CONTROL_ID}] no default site (it would serve /var/www/html on port 80)",
        path=DEFAULT_SITE,
        present=False,
    )
    return Applied(restart_on={"nginx": [removed]})


_PROBES = (
    package_probe("nginx"),
    service_probe("nginx"),
    Probe(
        "nginx-default-site",
        f"test -e {DEFAULT_SITE} -o -L {DEFAULT_SITE} && echo present || echo absent",
    ),
    Probe("nginx-config-test", "nginx -t -q 2>&1 && echo ok"),
)


def _site_check(settings, info, snapshot) -> list[Finding]:
    findings = []
    if package_version("nginx", snapshot) is None:
        findings.append(Finding("package nginx", "installed", "absent"))
    findings += service_findings("nginx", snapshot)
    if snapshot.probe("nginx-default-site").output.strip() != "absent":
        findings.append(Finding(DEFAULT_SITE, "absent", "present"))
    test = snapshot.probe("nginx-config-test").output.strip()
    if not test.endswith("ok"):
        first = (test.splitlines() or ["no output"])[0][:120]
        findings.append(Finding("nginx -t", "configuration valid", first))
    return findings


ARTIFACT_TYPES = Control(
    id=CONTROL_ID,
    title="Artifacts are served only as allowlisted types, as text, or as downloads",
    sources=(
        Source("seed", "002 Server 3.x operations guide: Build Artifacts, safe and unsafe types"),
    ),
    rationale="An artifact is whatever a job uploaded; served with the type its uploader chose, "
    "HTML or SVG would run script in the viewer's session. nginx decides the type from the name "
    "alone: allowlisted types as themselves, script-capable types as text/plain with nosniff, "
    "everything else as an attachment, with a sandboxing CSP on every response.",
    files=_site_files,
    apply=_site_apply,
    # Not in ``services``: the package starts nginx with Debian's default site before the site
    # file is written, so nginx must restart on the file's change (``reload`` above) even in
    # the run that installed it.
    packages=lambda settings: ["nginx"],
    probes=_PROBES,
    check=_site_check,
    circleci_impact="jobs are unaffected; viewers of HTML reports see their source instead "
    "of a rendered page (as CircleCI's own serveUnsafeArtifacts: false does)",
    tags=("artifacts",),
)

CONTROLS = (ARTIFACT_TYPES,)
