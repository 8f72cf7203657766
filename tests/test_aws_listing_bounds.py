"""An EC2 endpoint that redirects, pages without end, answers too much or trickles: the
listing stops at its bounds, follows nothing and says why in one line (loopback stand-in)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cci_harden.config.cloud import CloudHosts
from cci_harden.fleet import cloud_hosts
from cci_harden.fleet.cloud_hosts import list_hosts
from cci_harden.model.errors import InventoryError

NS = "http://ec2.amazonaws.com/doc/2016-11-15/"


def page(number: int) -> bytes:
    """An empty page that always promises another."""
    return (
        f'<DescribeInstancesResponse xmlns="{NS}"><requestId>r{number}</requestId>'
        f"<reservationSet></reservationSet><nextToken>p{number}</nextToken>"
        "</DescribeInstancesResponse>"
    ).encode()


ONE_PAGE = (
    f'<DescribeInstancesResponse xmlns="{NS}"><requestId>r</requestId><reservationSet><item>'
    "<reservationId>r-1</reservationId><instancesSet><item><instanceId>i-0abc</instanceId>"
    "<privateIpAddress>10.0.0.5</privateIpAddress></item></instancesSet></item>"
    "</reservationSet></DescribeInstancesResponse>"
).encode()


class HostileEc2:
    """EC2's query protocol on loopback, answering as ``mode`` says."""

    def __init__(self, mode: str):
        self.mode, self.seen = mode, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.seen.append(self.path)
                if owner.mode == "redirect" and "elsewhere" not in self.path:
                    self.send_response(307)
                    self.send_header("Location", owner.url + "/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = page(len(owner.seen))
                if owner.mode == "one page":
                    body = ONE_PAGE
                if owner.mode == "huge":
                    body = body.replace(b"<reservationSet>", b"<reservationSet>" + b" " * 8192)
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if owner.mode == "trickle":
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.05)
                        if owner.closed.is_set():
                            return
                else:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.closed = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self):
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def credentials(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("redirect", "cannot list the instances"),
        ("endless", "went past 5 pages"),
        ("huge", "answered over 4096 bytes"),
        ("trickle", "answered too slowly"),
    ],
)
def test_a_hostile_ec2_endpoint_is_bounded_and_followed_nowhere(
    credentials, monkeypatch, mode, says
):
    monkeypatch.setattr(cloud_hosts, "MAX_PAGES", 5)
    monkeypatch.setattr(cloud_hosts, "MAX_BODY_BYTES", 4096)
    monkeypatch.setattr(cloud_hosts, "LISTING_SECONDS", 1)
    api = HostileEc2(mode)
    source = CloudHosts(
        provider="aws", region="us-east-1", tags={"cci-fleet": "test"}, endpoint_url=api.url
    )
    started = time.monotonic()
    try:
        with pytest.raises(InventoryError, match=says) as raised:
            list_hosts(source)
    finally:
        api.close()
    assert "\n" not in str(raised.value)
    assert not any("elsewhere" in path for path in api.seen)
    assert len(api.seen) <= 5 and time.monotonic() - started < 10


def test_a_well_formed_answer_still_lists_its_instances(credentials):
    api = HostileEc2("one page")
    source = CloudHosts(
        provider="aws", region="us-east-1", tags={"cci-fleet": "test"}, endpoint_url=api.url
    )
    try:
        (host,) = list_hosts(source)
    finally:
        api.close()
    assert (host.name, host.address) == ("i-0abc", "10.0.0.5")
