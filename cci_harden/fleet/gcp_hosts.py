"""GCP Compute Engine hosts: a managed instance group's running instances, or labelled ones.

Plain HTTPS to the Compute Engine API (no Google client library): an access token from
``GOOGLE_OAUTH_ACCESS_TOKEN`` or ``gcloud auth print-access-token``, sent only to the configured
endpoint. Links the API returns are followed only when they name an instance of the configured
project, and are rebuilt under that endpoint: a response can never send the token elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from ..config.cloud import CloudHosts
from ..config.settings import HostEntry
from ..model.errors import InventoryError
from .bounded_body import read_bounded

COMPUTE_API = "https://compute.googleapis.com"
TOKEN_VARIABLE = "GOOGLE_OAUTH_ACCESS_TOKEN"  # noqa: S105 (a variable's name, no secret)
MAX_BODY_BYTES = 16 * 1024 * 1024  # a page of 500 instances is well under 2 MiB
MAX_PAGES = 200
LISTING_SECONDS = 300  # the whole listing, however many pages and calls


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: urllib would resend the Authorization header wherever it points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise InventoryError(
            f"inventory.source (gcp): the endpoint answered {code} (a redirect); not followed, "
            "the token goes to the configured endpoint only"
        )


_OPENER = urllib.request.build_opener(_NoRedirect)
_INSTANCE_LINK = re.compile(
    r"^https://[A-Za-z0-9.-]+(?::[0-9]+)?/compute/v1/"
    r"(projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/zones/[a-z]+-[a-z]+[0-9]-[a-z]/instances/"
    r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)$",
    re.ASCII,
)


def access_token() -> str:
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if token:
        return token
    gcloud = shutil.which("gcloud")
    if gcloud:
        proc = subprocess.run(
            [gcloud, "auth", "print-access-token"], capture_output=True, text=True, timeout=60
        )
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    raise InventoryError(
        f"inventory.source (gcp): no access token: set {TOKEN_VARIABLE} or log in with "
        "`gcloud auth login` (the account needs compute.instances.list)"
    )


class _Api:
    def __init__(self, source: CloudHosts, token: str):
        self.root = (source.endpoint_url or COMPUTE_API).rstrip("/") + "/compute/v1/"
        self.project = f"projects/{source.project}/"
        self._token = token
        self._deadline = time.monotonic() + LISTING_SECONDS

    def call(self, path: str, method: str = "GET", query: dict | None = None) -> dict:
        url = self.root + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        # the root is COMPUTE_API or endpoint_url, which settings allow only as http(s)
        request = urllib.request.Request(  # noqa: S310
            url,
            method=method,
            data=b"" if method == "POST" else None,
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
        )
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise InventoryError(
                f"inventory.source (gcp): the listing took over {LISTING_SECONDS} s; stopped"
            )
        try:
            with _OPENER.open(request, timeout=min(30, left)) as response:
                body = read_bounded(response, MAX_BODY_BYTES, self._deadline, f"{method} {path}")
        except urllib.error.HTTPError as exc:
            raise InventoryError(
                f"inventory.source (gcp): {method} {path} answered {exc.code}: {_message(exc)}"
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise InventoryError(f"inventory.source (gcp): {method} {path}: {reason}") from None
        try:
            return json.loads(body)
        except ValueError:
            raise InventoryError(f"inventory.source (gcp): {path} answered no JSON") from None

    def pages(self, path: str, key: str, method: str = "GET", query: dict | None = None):
        query = dict(query or {})
        for _ in range(MAX_PAGES):
            page = self.call(path, method, query)
            yield from page.get(key, [])
            token = page.get("nextPageToken")
            if not token:
                return
            query["pageToken"] = token
        raise InventoryError(f"inventory.source (gcp): {path} went on past {MAX_PAGES} pages")

    def instance(self, link: str) -> dict:
        match = _INSTANCE_LINK.fullmatch(link)
        if not match or not match.group(1).startswith(self.project):
            raise InventoryError(f"inventory.source (gcp): unexpected instance link {link[:200]!r}")
        return self.call(match.group(1))


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.load(exc)["error"]["message"]).splitlines()[0][:300]
    except Exception:
        return exc.reason or "error"


def _address(instance: dict, which: str) -> str | None:
    interfaces = instance.get("networkInterfaces") or [{}]
    if which == "private":
        return interfaces[0].get("networkIP")
    configs = interfaces[0].get("accessConfigs") or [{}]
    return configs[0].get("natIP")


def gcp_hosts(source: CloudHosts) -> list[HostEntry]:
    api = _Api(source, access_token())
    if source.instance_group:
        scope = f"zones/{source.zone}" if source.zone else f"regions/{source.region}"
        path = f"{api.project}{scope}/instanceGroupManagers/{source.instance_group}"
        managed = api.pages(f"{path}/listManagedInstances", "managedInstances", method="POST")
        # running and not being deleted, recreated or refreshed: the group's serving members
        links = [
            m["instance"]
            for m in managed
            if m.get("instanceStatus") == "RUNNING" and m.get("currentAction", "NONE") == "NONE"
        ]
        instances = [api.instance(link) for link in links]
        if source.labels:
            instances = [i for i in instances if _labelled(i, source.labels)]
    else:
        terms = ['status = "RUNNING"'] + [
            f'labels.{key} = "{value}"' for key, value in sorted(source.labels.items())
        ]
        instances = list(
            api.pages(
                f"{api.project}zones/{source.zone}/instances",
                "items",
                query={"filter": " AND ".join(f"({t})" for t in terms)},
            )
        )
        instances = [
            i for i in instances if i.get("status") == "RUNNING" and _labelled(i, source.labels)
        ]
    hosts = []
    for instance in instances:
        address = _address(instance, source.address)
        if address:
            hosts.append(HostEntry(name=instance["name"], address=address))
    return sorted(hosts, key=lambda h: h.name)


def _labelled(instance: dict, labels: dict[str, str]) -> bool:
    """Checked here too: the API's filter is the server's, the answer is ours to trust."""
    have = instance.get("labels") or {}
    return all(have.get(key) == value for key, value in labels.items())
