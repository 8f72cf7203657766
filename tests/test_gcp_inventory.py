"""A GCP inventory lists its hosts from Compute Engine (recorded API responses served
over loopback: there is no local server of the real API)."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

from cci_harden.config.cloud import CloudHosts
from cci_harden.fleet import gcp_hosts
from cci_harden.fleet.cloud_hosts import list_hosts
from cci_harden.model.errors import InventoryError

RECORDED = Path(__file__).parent / "fixtures" / "gcp"
TOKEN = "ya29.test-token-never-printed"
ZONE_PATH = "/compute/v1/projects/circleci-eu/zones/europe-west1-b"


class RecordedCompute:
    """Answers the paths a listing asks for with the recorded bodies; keeps every request."""

    def __init__(self):
        self.requests: list[tuple[str, str, dict, str]] = []
        self.forbid = False
        # what each recorded file answers; a test may change one
        self.bodies = {path.name: path.read_bytes() for path in RECORDED.glob("*.json")}
        routes = self.routes()
        seen = self.requests
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                seen.append((method, url.path, query, self.headers.get("Authorization", "")))
                name = routes.get((method, url.path, query.get("pageToken", "")))
                if owner.forbid:
                    name, status = "error-403.json", 403
                else:
                    status = 200 if name else 404
                body = owner.bodies[name] if name else b'{"error": {"message": "?"}}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                self._answer("GET")

            def do_POST(self):  # noqa: N802
                self._answer("POST")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @staticmethod
    def routes() -> dict:
        mig = f"{ZONE_PATH}/instanceGroupManagers/nomad-clients/listManagedInstances"
        routes = {
            ("POST", mig, ""): "mig-page1.json",
            ("POST", mig, "page-2"): "mig-page2.json",
            ("GET", f"{ZONE_PATH}/instances", ""): "zone-page1.json",
            ("GET", f"{ZONE_PATH}/instances", "page-2"): "zone-page2.json",
        }
        for recorded in RECORDED.glob("instance-*.json"):
            name = recorded.stem.removeprefix("instance-")
            routes[("GET", f"{ZONE_PATH}/instances/{name}", "")] = recorded.name
        return routes


@pytest.fixture
def compute(monkeypatch):
    api = RecordedCompute()
    thread = threading.Thread(target=api.server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)
    yield api
    api.server.shutdown()
    api.server.server_close()


def source(api: RecordedCompute, **fields) -> CloudHosts:
    return CloudHosts(
        provider="gcp", project="circleci-eu", zone="europe-west1-b", endpoint_url=api.url, **fields
    )


def test_a_managed_instance_group_lists_its_serving_instances(compute):
    hosts = list_hosts(source(compute, instance_group="nomad-clients"))
    # running with no pending action only: b3m8 is being deleted, c4d5 is still being created
    assert [(h.name, h.address) for h in hosts] == [
        ("nomad-client-7k2p", "10.40.0.11"),
        ("nomad-client-9xq4", "10.40.0.12"),
        ("nomad-client-zz01", "10.40.0.14"),
    ]
    methods = [(m, p.rsplit("/", 1)[-1], q.get("pageToken")) for m, p, q, _ in compute.requests]
    assert methods[:2] == [
        ("POST", "listManagedInstances", None),
        ("POST", "listManagedInstances", "page-2"),
    ]
    assert all(auth == f"Bearer {TOKEN}" for *_, auth in compute.requests)


def test_labels_filter_in_the_api_and_again_on_the_answer(compute):
    hosts = list_hosts(
        source(compute, labels={"circleci": "nomad-client", "env": "prod"}, address="public")
    )
    # zz01 came back from the server (page 2) but is labelled env=staging: not ours
    assert [(h.name, h.address) for h in hosts] == [
        ("nomad-client-7k2p", "203.0.113.11"),
        ("nomad-client-9xq4", "203.0.113.12"),
    ]
    first = compute.requests[0][2]["filter"]
    assert (
        first
        == '(status = "RUNNING") AND (labels.circleci = "nomad-client") AND (labels.env = "prod")'
    )
    assert [q.get("pageToken") for _, _, q, _ in compute.requests] == [None, "page-2"]


def test_an_instance_link_elsewhere_is_refused_before_any_request_there(compute):
    page = json.loads(compute.bodies["mig-page1.json"])
    page.pop("nextPageToken")
    first = page["managedInstances"][0]
    first["instance"] = first["instance"].replace("circleci-eu", "someone-elses")
    compute.bodies["mig-page1.json"] = json.dumps(page).encode()
    with pytest.raises(InventoryError, match="unexpected instance link"):
        list_hosts(source(compute, instance_group="nomad-clients"))
    assert all("someone-elses" not in path for _, path, _, _ in compute.requests)


def test_an_api_error_is_one_line_with_the_apis_reason_and_no_token(compute):
    compute.forbid = True
    with pytest.raises(InventoryError) as error:
        list_hosts(source(compute, instance_group="nomad-clients"))
    message = str(error.value)
    assert "answered 403: Required 'compute.instanceGroupManagers.listManagedInstances'" in message
    assert "\n" not in message and TOKEN not in message


def test_without_a_token_the_error_says_where_to_get_one(compute, monkeypatch):
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(InventoryError, match="set GOOGLE_OAUTH_ACCESS_TOKEN or log in with"):
        list_hosts(source(compute, instance_group="nomad-clients"))
    assert compute.requests == []


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"zone": "europe-west1-b", "instance_group": "g"}, "provider gcp needs project"),
        (
            {
                "project": "circleci-eu",
                "zone": "europe-west1-b",
                "region": "europe-west1",
                "instance_group": "g",
            },
            "exactly one of zone or region",
        ),
        ({"project": "circleci-eu", "zone": "europe-west1-b"}, "name an instance_group or labels"),
        (
            {"project": "circleci-eu", "region": "europe-west1", "labels": {"a": "b"}},
            "labels are listed per zone",
        ),
        (
            {"project": "circleci-eu", "zone": "europe-west1-b", "tags": {"a": "b"}},
            "autoscaling_group and tags are for provider aws",
        ),
        (
            {"project": "circleci-eu", "zone": "europe-west1-b", "labels": {"Env": "x"}},
            "not a GCP label",
        ),
    ],
)
def test_gcp_source_settings_are_refused_with_the_reason(fields, says):
    with pytest.raises(ValidationError, match=says):
        CloudHosts(provider="gcp", **fields)


class HostileCompute:
    """A Compute Engine stand-in that redirects, answers without end or pages without end."""

    def __init__(self, mode: str):
        self.mode, self.seen = mode, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                owner.seen.append((self.path, self.headers.get("Authorization", "")))
                if owner.mode == "redirect" and "elsewhere" not in self.path:
                    self.send_response(307)
                    self.send_header("Location", owner.url + "/elsewhere")
                    self.end_headers()
                    return
                page = len(owner.seen)
                body = json.dumps({"managedInstances": [], "nextPageToken": f"p{page}"}).encode()
                if owner.mode == "huge":
                    body = b'{"pad": "' + b"x" * 4096 + b'"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()


@pytest.mark.parametrize(
    ("mode", "says"),
    [("redirect", "a redirect); not followed"), ("huge", "answered over"), ("endless", "pages")],
)
def test_a_hostile_endpoint_gets_no_token_elsewhere_and_no_unbounded_listing(
    monkeypatch, mode, says
):
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)
    monkeypatch.setattr(gcp_hosts, "MAX_BODY_BYTES", 1024)
    monkeypatch.setattr(gcp_hosts, "MAX_PAGES", 5)
    api = HostileCompute(mode)
    try:
        with pytest.raises(InventoryError, match=re.escape(says)):
            list_hosts(source(api, instance_group="nomad-clients"))
    finally:
        api.server.shutdown()
        api.server.server_close()
    assert all("elsewhere" not in path for path, _ in api.seen)
    assert len(api.seen) <= 5


@pytest.mark.parametrize("url", ["http://compute.example.test", "http://10.0.0.5:8080"])
def test_a_token_never_goes_over_plain_http_off_the_machine(url):
    with pytest.raises(ValidationError, match="use https"):
        CloudHosts(provider="gcp", project="circleci-eu", zone="europe-west1-b",
                   instance_group="g", endpoint_url=url)  # fmt: skip


def test_two_instances_under_one_name_or_address_are_refused():
    from cci_harden.config.settings import HostEntry
    from cci_harden.fleet.cloud_hosts import unique

    one = HostEntry(name="nomad-a", address="10.0.0.5")
    assert unique([one, HostEntry(name="nomad-b", address="10.0.0.6")], "g")
    with pytest.raises(InventoryError, match="with the name nomad-a"):
        unique([one, HostEntry(name="nomad-a", address="10.0.0.7")], "g")
    with pytest.raises(InventoryError, match="with the address 10.0.0.5"):
        unique([one, HostEntry(name="nomad-c", address="10.0.0.5")], "g")
