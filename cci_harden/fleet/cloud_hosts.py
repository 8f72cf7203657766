"""Hosts listed from the cloud each run: an autoscaling group's or a managed instance group's
instances, or tagged (labelled) ones.

Instances of an autoscaled fleet come and go; the inventory names where to find them and every
command (deploy, verify, config check) lists them when it loads the inventory: running
instances only, named by instance id (AWS) or name (GCP), reached at their private address (or
public). Their host keys are checked as always: from the known_hosts file.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from ..config.cloud import CloudHosts
from ..config.settings import HostEntry
from ..model.errors import InventoryError
from .bounded_body import read_bounded

MAX_PAGES = 200
LISTING_SECONDS = 300
MAX_BODY_BYTES = 16 * 1024 * 1024  # a page of 1,000 instances is well under 4 MiB


def unique(hosts: list[HostEntry], where: str) -> list[HostEntry]:
    """Each listed instance once, by name and by address: two instances answering to one name
    (or one address) would share a known_hosts line, a certificate and a report row."""
    for what, values in (
        ("name", [h.name for h in hosts]),
        ("address", [h.address for h in hosts]),
    ):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise InventoryError(
                f"inventory.source: {where} lists more than one instance with the {what} "
                f"{', '.join(repeated[:5])}; refused"
            )
    return hosts


def list_hosts(source: CloudHosts) -> list[HostEntry]:
    try:
        if source.provider == "gcp":
            from .gcp_hosts import gcp_hosts

            return unique(gcp_hosts(source), source.where)
        return unique(_aws_hosts(source), source.where)
    except InventoryError:
        raise
    except Exception as exc:  # botocore or HTTP: credentials, endpoint, throttling, denied
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InventoryError(
            f"inventory.source: cannot list the instances in {source.where} ({reason})"
        ) from None


def _aws_hosts(source: CloudHosts) -> list[HostEntry]:
    import boto3
    from botocore.config import Config

    # every call bounded; the listing as a whole too (below)
    config = Config(connect_timeout=10, read_timeout=30, retries={"max_attempts": 3})
    deadline = time.monotonic() + LISTING_SECONDS
    session = boto3.session.Session(region_name=source.region)

    def client(service: Literal["autoscaling", "ec2"]) -> Any:
        made = session.client(service, endpoint_url=source.endpoint_url, config=config)
        _bound_bodies(made, deadline)
        return made

    ids: list[str] | None = None
    if source.autoscaling_group:
        groups = client("autoscaling")
        found = groups.describe_auto_scaling_groups(
            AutoScalingGroupNames=[source.autoscaling_group]
        )["AutoScalingGroups"]
        if not found:
            raise InventoryError(
                f"inventory.source.autoscaling_group {source.autoscaling_group}: no such group "
                f"in {source.region}"
            )
        ids = [i["InstanceId"] for i in found[0]["Instances"] if i["LifecycleState"] == "InService"]
        if not ids:
            return []
    ec2 = client("ec2")
    filters = [{"Name": "instance-state-name", "Values": ["running"]}]
    filters += [{"Name": f"tag:{key}", "Values": [value]} for key, value in source.tags.items()]
    arguments = {"Filters": filters, **({"InstanceIds": ids} if ids else {})}
    hosts = []
    pages = ec2.get_paginator("describe_instances").paginate(**arguments)
    for number, page in enumerate(pages, 1):
        if time.monotonic() > deadline:
            raise InventoryError(
                f"inventory.source: listing {source.where} took over {LISTING_SECONDS} s; stopped"
            )
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                field = "PrivateIpAddress" if source.address == "private" else "PublicIpAddress"
                address = instance.get(field)
                if address:
                    hosts.append(HostEntry(name=instance["InstanceId"], address=address))
        if number >= MAX_PAGES and page.get("NextToken"):
            raise InventoryError(
                f"inventory.source: listing {source.where} went past {MAX_PAGES} pages; stopped"
            )
    return sorted(hosts, key=lambda h: h.name)


def _bound_bodies(client, deadline: float) -> None:
    """Every answer to ``client`` read with the body cap and the listing's deadline.

    botocore reads each answer whole before parsing it; sending the request here, with the
    client's own HTTP session, lets the read stop at either bound. botocore follows no redirect
    (its HTTP session sends with redirects off)."""
    http = client._endpoint.http_session  # noqa: SLF001  (botocore's hook point for sending)

    def send(request, **_):
        request.stream_output = True  # the session leaves the body unread
        response = http.send(request)
        where = f"{request.method} {request.url.split('?', 1)[0]}"
        response._content = read_bounded(response.raw, MAX_BODY_BYTES, deadline, where)  # noqa: SLF001
        return response

    client.meta.events.register("before-send", send)
