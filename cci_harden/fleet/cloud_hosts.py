"""Hosts listed from the cloud each run: an autoscaling group's or a managed instance group's
instances, or tagged (labelled) ones.

Instances of an autoscaled fleet come and go; the inventory names where to find them and every
command (deploy, verify, config check) lists them when it loads the inventory: running
instances only, named by instance id (AWS) or name (GCP), reached at their private address (or
public). Their host keys are checked as always: from the known_hosts file.
"""

from __future__ import annotations

import time

from ..config.cloud import CloudHosts
from ..config.settings import HostEntry
from ..model.errors import InventoryError

MAX_PAGES = 200
LISTING_SECONDS = 300


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
    ids: list[str] | None = None
    if source.autoscaling_group:
        groups = session.client("autoscaling", endpoint_url=source.endpoint_url, config=config)
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
    ec2 = session.client("ec2", endpoint_url=source.endpoint_url, config=config)
    filters = [{"Name": "instance-state-name", "Values": ["running"]}]
    filters += [{"Name": f"tag:{key}", "Values": [value]} for key, value in source.tags.items()]
    arguments = {"Filters": filters, **({"InstanceIds": ids} if ids else {})}
    hosts = []
    pages = ec2.get_paginator("describe_instances").paginate(**arguments)
    for number, page in enumerate(pages, 1):
        if number > MAX_PAGES or time.monotonic() > deadline:
            raise InventoryError(
                f"inventory.source: listing {source.where} went past {MAX_PAGES} pages or "
                f"{LISTING_SECONDS} s; stopped"
            )
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                field = "PrivateIpAddress" if source.address == "private" else "PublicIpAddress"
                address = instance.get(field)
                if address:
                    hosts.append(HostEntry(name=instance["InstanceId"], address=address))
    return sorted(hosts, key=lambda h: h.name)
