"""The test bed's stand-in NTP and DNS answers, byte by byte (no host, no root)."""

from __future__ import annotations

import socket
import struct

from cci_harden.testbed.services import NTP_EPOCH_OFFSET, dns_reply, ntp_reply


def query(name: str, qtype: int = 1) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return (
        struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0)
        + labels
        + b"\0"
        + struct.pack("!HH", qtype, 1)
    )


def test_every_a_query_gets_the_one_address():
    reply = dns_reply(query("build.example.test"), "10.231.0.250")
    ident, flags, qd, an = struct.unpack("!HHHH", reply[:8])
    assert (ident, flags, qd, an) == (0xBEEF, 0x8180, 1, 1)
    assert socket.inet_ntoa(reply[-4:]) == "10.231.0.250"


def test_other_types_get_no_record_and_replies_are_not_answered():
    reply = dns_reply(query("build.example.test", qtype=28), "10.231.0.250")  # AAAA
    assert struct.unpack("!H", reply[6:8])[0] == 0
    assert dns_reply(reply, "10.231.0.250") is None  # a response is never answered
    assert dns_reply(b"\0" * 5, "10.231.0.250") is None


def test_ntp_reply_is_a_synchronised_server_echoing_the_client_time():
    request = bytes([0x23]) + b"\0" * 39 + b"CLIENTTS"  # v4, mode 3 (client)
    reply = ntp_reply(request, 1_800_000_000.5)
    assert len(reply) == 48
    assert reply[0] == 0x24 and reply[1] == 1  # leap 0, v4, mode 4 (server); stratum 1
    assert reply[24:32] == b"CLIENTTS"  # the origin timestamp is the client's transmit time
    seconds, fraction = struct.unpack("!II", reply[32:40])
    assert seconds - NTP_EPOCH_OFFSET == 1_800_000_000 and fraction == 1 << 31
    assert ntp_reply(bytes([0x24]) + b"\0" * 47, 0) is None  # not a client request
