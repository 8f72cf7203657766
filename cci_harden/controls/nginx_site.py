"""The nginx site that serves CircleCI artifacts with safe content types.

One table, from the settings (whose defaults are the Operations Guide's two tables), drives both
nginx's own type lookup (serving from disk) and the ``$uri`` map (proxying an object store), so
the two modes cannot disagree.
"""

from __future__ import annotations

from ..config.cloud import ArtifactSettings
from ..model.render import render

SITE_PATH = "/etc/nginx/conf.d/circleci-artifacts.conf"
CONTROL_ID = "CCI-ART-01"


def type_for_extension(settings: ArtifactSettings) -> list[tuple[str, str]]:
    """(extension, Content-Type served), sorted: served types as themselves, text types as text."""
    pairs = {}
    for mime, extensions in settings.served_types.items():
        for extension in extensions:
            pairs[extension] = mime
    for _mime, extensions in settings.text_types.items():
        for extension in extensions:
            pairs[extension] = "text/plain"
    return sorted(pairs.items())


def expected_headers(settings: ArtifactSettings, name: str) -> tuple[str, str | None]:
    """What a request for ``name`` must get: (Content-Type, Content-Disposition or None)."""
    base = name.rsplit("/", 1)[-1]
    extension = base.rsplit(".", 1)[1].lower() if "." in base else ""
    mime = dict(type_for_extension(settings)).get(extension)
    if mime is None:
        return "application/octet-stream", "attachment"
    return mime, None


def nginx_site(settings: ArtifactSettings) -> str:
    return render(
        "artifacts/nginx-site.conf.j2",
        CONTROL_ID,
        artifacts=settings,
        by_extension=type_for_extension(settings),
    )
