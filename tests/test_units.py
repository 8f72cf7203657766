"""Each kind names the units a change of it starts or restarts; the deploy's one pass over units
takes them from there, so no kind can restart a unit the pass does not order."""

from __future__ import annotations

from cci_harden.apply.converge import units_of
from cci_harden.config.settings import load_settings
from cci_harden.controls import by_id
from cci_harden.model.kinds import ManagedFile, Service
from cci_harden.model.kinds.ssh import HostCertificate
from cci_harden.model.plan import ControlPlan

from .test_local_mode_plan import _plans
from .test_preflight import complete_example, release_key  # noqa: F401  (a real OpenPGP key)


def test_the_units_of_a_plan_come_from_its_kinds(tmp_path, release_key):  # noqa: F811
    plans = _plans(load_settings(complete_example(tmp_path, release_key)))
    units = units_of(plans)
    assert len(units) == len(set(units))
    named = {u for plan in plans for resource in plan.resources for u in resource.units}
    assert named == set(units) and {"docker", "nomad"} <= named


def test_a_host_certificate_restarts_sshd_in_the_same_pass():
    certificate = HostCertificate(
        "/etc/ssh/ssh_host_ed25519_key-cert.pub",
        "/etc/ssh/ssh_host_ed25519_key.pub",
        "SHA256:ca",
        ("192.0.2.10",),
    )
    plans = [
        ControlPlan(by_id("CCI-OS-08"), (ManagedFile("/etc/x", reload=("rsyslog",)),)),
        ControlPlan(by_id("CCI-SSH-02"), (certificate, Service("cron"))),
    ]
    assert units_of(plans) == ["rsyslog", "ssh", "cron"]
