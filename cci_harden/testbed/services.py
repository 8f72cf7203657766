"""Stand-in network services the test bed answers with, run inside its own service namespace.

NTP (so VM hosts sync time without reaching the internet), DNS (every A query answered with one
test-bed address) and HTTP on every address the namespace holds: the cloud metadata address and an
"internal service" inside a blocked range. The HTTP reply names the address that answered, so a
test can tell which destination a job reached. Standard library only: it runs as
``python -m cci_harden.testbed.services`` under ``ip netns exec``.
"""

from __future__ import annotations

import argparse
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)


def ntp_timestamp(seconds: float) -> bytes:
    whole = int(seconds) + NTP_EPOCH_OFFSET
    fraction = int((seconds % 1) * (1 << 32))
    return struct.pack("!II", whole, fraction)


def ntp_reply(request: bytes, now: float) -> bytes | None:
    """A server reply (mode 4, stratum 1, synchronised) to a client request, or None."""
    if len(request) < 48 or request[0] & 0x07 != 3:
        return None
    version = (request[0] >> 3) & 0x07
    header = struct.pack("!BBbb", (0 << 6) | (version << 3) | 4, 1, 6, -20)
    root = struct.pack("!II", 0, 0)  # root delay and dispersion: a local reference clock
    stamp = ntp_timestamp(now)
    return header + root + b"TBED" + stamp + request[40:48] + stamp + ntp_timestamp(time.time())


def dns_reply(query: bytes, answer: str) -> bytes | None:
    """Answer a standard query: one A record for any name asked for A, none for other types."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    end = 12
    while end < len(query) and query[end] != 0:
        end += query[end] + 1
    end += 5  # the root label, QTYPE, QCLASS
    if end > len(query):
        return None
    question = query[12:end]
    qtype = struct.unpack("!H", question[-4:-2])[0]
    records = b""
    if qtype == 1:
        records = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(answer)
    header = struct.pack("!HHHHHH", ident, 0x8180, 1, 1 if records else 0, 0, 0)
    return header + question + records


def _serve_udp(address: str, port: int, reply) -> None:
    """Bound to one address: a reply must come from the address the client asked, or a
    connected client (busybox nslookup, timesyncd) drops it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    while True:
        data, peer = sock.recvfrom(2048)
        response = reply(data)
        if response:
            sock.sendto(response, peer)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = f"cci-testbed {self.connection.getsockname()[0]}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002
        print(f"http {self.client_address[0]} -> {self.connection.getsockname()[0]} {args[0]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ntp-address", required=True, help="where NTP answers")
    parser.add_argument("--dns-address", required=True, help="where DNS answers")
    parser.add_argument("--dns-answer", required=True, help="the address every A query gets")
    parser.add_argument("--marker", help="ignored: lets the test bed find this process by PID")
    args = parser.parse_args(argv)
    socket.inet_aton(args.dns_answer)
    threads = [
        threading.Thread(
            target=_serve_udp, args=(args.ntp_address, 123, lambda d: ntp_reply(d, time.time()))
        ),
        threading.Thread(
            target=_serve_udp,
            args=(args.dns_address, 53, lambda d: dns_reply(d, args.dns_answer)),
        ),
    ]
    for thread in threads:
        thread.daemon = True
        thread.start()
    # every address of the service namespace: the reply names the one asked
    ThreadingHTTPServer(("0.0.0.0", 80), _Handler).serve_forever()  # noqa: S104


if __name__ == "__main__":
    main()
