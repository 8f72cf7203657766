"""An inventory that lists its hosts from AWS each run (moto's server as the API).

The test bed's hosts stand for EC2 instances: each is registered in moto with the host's address
as its private address, tagged, and attached to an autoscaling group. The inventory names the
group (or the tags) instead of a host list; deploy and verify reach exactly the running instances,
and the nightly report says which hosts joined and which vanished.
"""

from __future__ import annotations

import json

import boto3
import pytest

from .conftest import run_cli, run_pyinfra
from .test_artifacts import CREDENTIALS, s3_endpoint  # noqa: F401  (moto's server, module-wide)

pytestmark = pytest.mark.testbed

REGION = "us-east-1"
GROUP = "nomad-clients"


@pytest.fixture
def ec2_fleet(deployed, s3_endpoint, monkeypatch):  # noqa: F811
    inventory, _ = deployed
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=s3_endpoint)
    autoscaling = boto3.client("autoscaling", region_name=REGION, endpoint_url=s3_endpoint)
    subnet_cidr = str(inventory.settings.network.admin_cidrs[0])
    vpc = ec2.create_vpc(CidrBlock=subnet_cidr)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=subnet_cidr)["Subnet"]["SubnetId"]
    image = ec2.describe_images()["Images"][0]["ImageId"]

    def launch(address: str) -> str:
        return ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            SubnetId=subnet,
            PrivateIpAddress=address,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": "cci-fleet", "Value": "test"}]}
            ],
        )["Instances"][0]["InstanceId"]

    # tb3 stays out for now: the test launches it later, as a new instance joining the fleet
    ids = {h.name: launch(h.address) for h in inventory.hosts if h.name != "tb3"}
    if not autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
        "AutoScalingGroups"
    ]:
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=GROUP,
            InstanceId=next(iter(ids.values())),
            MinSize=0,
            MaxSize=10,
            VPCZoneIdentifier=subnet,
        )
    autoscaling.attach_instances(AutoScalingGroupName=GROUP, InstanceIds=list(ids.values()))
    yield inventory, ec2, autoscaling, ids, launch, s3_endpoint
    for instance in ec2.describe_instances()["Reservations"]:
        for item in instance["Instances"]:
            if item["State"]["Name"] != "terminated":
                ec2.terminate_instances(InstanceIds=[item["InstanceId"]])
    # the hosts were deployed under their instance ids (node names): give them theirs back
    restored = run_pyinfra(inventory.path, "deploys/nomad.py")
    assert restored.returncode == 0, restored.stderr[-2000:]


def cloud_inventory(inventory, tmp_path, source: str) -> str:
    """A copy of the test bed's inventory whose hosts come from ``source`` (TOML lines)."""
    text = inventory.path.with_name("testbed.toml").read_text()
    start = text.index("hosts = [")
    end = text.index("]\n", start) + 2
    text = text[:start] + text[end:]
    text = text.replace(
        'known_hosts = "testbed.known_hosts"', f'known_hosts = "{inventory.known_hosts}"'
    )
    text = text.replace('ssh_config = "testbed.ssh_config"\n', "")
    text = text.replace("[apt]", f"[inventory.source]\n{source}\n[apt]", 1)
    (tmp_path / "cloud").write_text(inventory.path.read_text())
    (tmp_path / "cloud.toml").write_text(text)
    return str(tmp_path / "cloud")


def hosts_in(report) -> list[str]:
    return sorted(h["name"] for h in json.loads(report.read_text())["hosts"])


def test_a_cloud_inventory_deploys_and_verifies_the_instances_it_lists(ec2_fleet, tmp_path):
    inventory, ec2, _, ids, launch, endpoint = ec2_fleet
    env = {**CREDENTIALS}
    by_group = cloud_inventory(
        inventory,
        tmp_path,
        f'region = "{REGION}"\nautoscaling_group = "{GROUP}"\nendpoint_url = "{endpoint}"',
    )
    check = run_cli("config", "check", by_group, env=env)
    assert check.returncode == 0 and "2 host(s)" in check.stderr, check.stderr
    deploy = run_pyinfra(by_group, "deploys/nomad.py", env=env)
    assert deploy.returncode == 0, deploy.stderr[-3000:]
    assert all(f"[{i}]" in deploy.stdout + deploy.stderr for i in ids.values())
    night1 = tmp_path / "night1.json"
    verify = run_cli("verify", by_group, "--json", str(night1), env=env)
    assert verify.returncode == 0, verify.stdout[-2000:]
    assert hosts_in(night1) == sorted(ids.values())

    # overnight one instance is scaled in and a new one starts: one vanished, one joined
    gone = ids["tb2"]
    ec2.terminate_instances(InstanceIds=[gone])
    fresh = launch(next(h.address for h in inventory.hosts if h.name == "tb3"))
    by_tags = cloud_inventory(
        inventory,
        tmp_path,
        f'region = "{REGION}"\ntags = {{ cci-fleet = "test" }}\nendpoint_url = "{endpoint}"',
    )
    deploy = run_pyinfra(by_tags, "deploys/nomad.py", env=env)  # the new instance converges
    assert deploy.returncode == 0 and f"[{fresh}]" in deploy.stdout + deploy.stderr
    assert f"[{gone}]" not in deploy.stdout + deploy.stderr
    night2 = tmp_path / "night2.json"
    after = run_cli("verify", by_tags, "--previous", str(night1), "--json", str(night2), env=env)
    assert after.returncode == 0, after.stdout[-2000:]
    assert f"host vanished: {gone}" in after.stdout and f"host joined:   {fresh}" in after.stdout
    assert hosts_in(night2) == sorted([ids["tb1"], fresh])
    drift = json.loads(night2.read_text())["drift"]
    assert drift["joined"] == [fresh] and drift["vanished"] == [gone]


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ('tags = { cci-fleet = "nobody" }', "lists no running instance"),
        (f'autoscaling_group = "{GROUP}"', "inventory.source: cannot list the instances"),
    ],
    ids=["nothing-listed", "api-unreachable"],
)
def test_a_source_that_lists_nothing_or_cannot_be_read_says_so(ec2_fleet, tmp_path, source, says):
    inventory, *_, endpoint = ec2_fleet
    if "autoscaling_group" in source:
        endpoint = "http://127.0.0.1:9"  # nothing listens there
    settings = f'region = "{REGION}"\n{source}\nendpoint_url = "{endpoint}"'
    proc = run_cli(
        "config", "check", cloud_inventory(inventory, tmp_path, settings), env={**CREDENTIALS}
    )
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
