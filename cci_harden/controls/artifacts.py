"""The artifact server: nginx in front of the object store, enforcing CircleCI's content types."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model.control import Control
from ..model.kinds import ManagedFile, NginxConfig, Package, Service
from .nginx_site import CONTROL_ID, SITE_PATH, nginx_site
from .sources import circleci_page

if TYPE_CHECKING:
    from ..config.settings import FleetSettings
    from ..model.hostinfo import HostInfo

DEFAULT_SITE = "/etc/nginx/sites-enabled/default"

# The staged site is checked inside a minimal http context, so a bad render never goes live.
_VALIDATE = (
    '( t=$(mktemp) && printf "events {{}}\\nhttp {{ include %s; }}\\n" {path} > "$t" '
    '&& nginx -t -q -c "$t"; rc=$?; rm -f "$t"; exit $rc )'
)


def _site_resources(settings: FleetSettings, info: HostInfo):
    return [
        # The package starts nginx with Debian's default site; the site's change below restarts
        # it, also in the run that installs it.
        Package("nginx"),
        ManagedFile(
            SITE_PATH,
            nginx_site(settings.artifacts),
            validate=_VALIDATE,
            reload=("nginx",),
        ),
        # no default site: it would serve /var/www/html on port 80
        ManagedFile(DEFAULT_SITE, present=False, reload=("nginx",), created_by="nginx"),
        Service("nginx"),
        NginxConfig(),
    ]


ARTIFACT_TYPES = Control(
    id=CONTROL_ID,
    nist=("SC-18", "SI-10"),
    title="Artifacts are served only as allowlisted types, as text, or as downloads",
    sources=(
        circleci_page(
            "server-3x-operations",
            "CircleCI Server v3.x Build Artifacts",
            "safe and rendered-as-text types",
        ),
    ),
    rationale="An artifact is whatever a job uploaded; served with the type its uploader chose, "
    "HTML or SVG would run script in the viewer's session. nginx decides the type from the name "
    "alone: allowlisted types as themselves, script-capable types as text/plain with nosniff, "
    "everything else as an attachment, with a sandboxing CSP on every response.",
    resources=_site_resources,
    circleci_impact="jobs are unaffected; viewers of HTML reports see their source instead "
    "of a rendered page (as CircleCI's own serveUnsafeArtifacts: false does)",
    tags=("artifacts",),
)

CONTROLS = (ARTIFACT_TYPES,)
