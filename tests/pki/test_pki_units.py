"""The service PKI without a server: the spec's tls section, the plan, renewal decisions, the
offline root and the intermediate it signs, the administrators' policies."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from govcloud.errors import InputError, OperationError, SpecError
from govcloud.spec import parse
from govcloud.spec.checks import under_domains
from security.identity.plan import check_isolation, make_identity_plan
from security.pki.certs import check_request, renewal_due
from security.pki.plan import EDGE_ROLE, INTERNAL_ROLE, PKI_MOUNT, make_pki_plan
from security.pki.root import RootPaths, constraints_of, ensure_root, sign_intermediate
from security.pki.setup import intermediate_ok

pytestmark = pytest.mark.unit

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _paths(err: SpecError) -> dict[str, str]:
    return {p.path: p.message for p in err.problems}


def test_lab_spec_has_the_tls_section_and_hall_names(lab_raw: dict[str, Any]) -> None:
    spec = parse(lab_raw)
    assert spec.tls.edge.allowed_domains == ["zwfw.guizhou.gov.cn"]
    assert spec.tls.edge.ttl_hours <= spec.tls.max_ttl_hours
    assert spec.regions["52"].hall is not None
    assert spec.regions["52"].hall.server_name == "zwfw.guizhou.gov.cn"


def test_a_ttl_over_the_pki_maximum_is_refused_naming_the_field(lab_raw: dict[str, Any]) -> None:
    lab_raw["tls"]["edge"]["ttl_hours"] = 5000
    lab_raw["tls"]["internal"]["ttl_hours"] = 2161
    with pytest.raises(SpecError) as err:
        parse(lab_raw)
    found = _paths(err.value)
    assert "tls.edge.ttl_hours" in found and "tls.internal.ttl_hours" in found
    assert "2160" in found["tls.edge.ttl_hours"] and "5000" in found["tls.edge.ttl_hours"]


def test_a_hall_name_outside_the_allowed_domains_is_refused_naming_the_field(
    lab_raw: dict[str, Any],
) -> None:
    lab_raw["regions"]["52"]["hall"]["server_name"] = "www.example.com"
    lab_raw["regions"]["52"]["cities"][1]["hall"]["server_name"] = "evilzwfw.guizhou.gov.cn"
    with pytest.raises(SpecError) as err:
        parse(lab_raw)
    found = _paths(err.value)
    assert "www.example.com" in found["regions.52.hall.server_name"]
    assert "tls.edge.allowed_domains" in found["regions.52.hall.server_name"]
    assert "regions.52.cities[1].hall.server_name" in found


def test_a_name_that_is_not_a_dns_name_is_refused_at_its_field(lab_raw: dict[str, Any]) -> None:
    lab_raw["regions"]["52"]["hall"]["server_name"] = "Zwfw Guizhou"
    lab_raw["tls"]["edge"]["allowed_domains"] = ["*.gov.cn"]
    with pytest.raises(SpecError) as err:
        parse(lab_raw)
    text = str(err.value)
    assert "regions.52.hall.server_name" in text
    assert "tls.edge.allowed_domains" in text


def test_two_halls_with_one_name_are_refused(lab_raw: dict[str, Any]) -> None:
    lab_raw["regions"]["52"]["cities"][0]["hall"]["server_name"] = "zwfw.guizhou.gov.cn"
    with pytest.raises(SpecError) as err:
        parse(lab_raw)
    assert "duplicate hall name" in _paths(err.value)["regions.52.cities[0].hall.server_name"]


def test_renew_before_must_be_a_share(lab_raw: dict[str, Any]) -> None:
    lab_raw["tls"]["renew_before"] = 1.5
    with pytest.raises(SpecError) as err:
        parse(lab_raw)
    assert "tls.renew_before" in str(err.value)


def test_names_are_under_a_domain_label_by_label() -> None:
    assert under_domains("zwfw.guizhou.gov.cn", ["zwfw.guizhou.gov.cn"])
    assert under_domains("5201.zwfw.guizhou.gov.cn", ["zwfw.guizhou.gov.cn"])
    assert not under_domains("evilzwfw.guizhou.gov.cn", ["zwfw.guizhou.gov.cn"])
    assert not under_domains("guizhou.gov.cn", ["zwfw.guizhou.gov.cn"])


def test_the_plan_has_one_role_per_use_with_the_spec_ttls(lab_raw: dict[str, Any]) -> None:
    lab_raw["tls"]["edge"]["ttl_hours"] = 48
    plan = make_pki_plan(parse(lab_raw))
    assert plan.mount == PKI_MOUNT
    edge, internal = plan.roles[EDGE_ROLE], plan.roles[INTERNAL_ROLE]
    assert edge.params()["ttl"] == "48h" and edge.params()["max_ttl"] == "2160h"
    assert edge.params()["allow_ip_sans"] is False and edge.params()["client_flag"] is False
    assert internal.params()["client_flag"] is True and internal.params()["allow_ip_sans"] is True
    assert plan.edge_names[0] == "zwfw.guizhou.gov.cn"
    assert set(plan.permitted_domains) == {"zwfw.guizhou.gov.cn", "govcloud.local"}
    assert plan.intermediate_hours == 2 * plan.max_ttl_hours


@pytest.mark.parametrize(
    ("hours_left", "due"),
    [(720, False), (300, False), (245, False), (244, True), (10, True), (0, True), (-5, True)],
)
def test_renewal_is_due_in_the_last_share_of_a_certificates_life(
    hours_left: int, due: bool
) -> None:
    not_before = T0
    not_after = T0 + dt.timedelta(hours=720)
    now = not_after - dt.timedelta(hours=hours_left)
    # 0.34 of 720 h is 244.8 h
    assert renewal_due(not_before, not_after, now, 0.34) is due


def test_a_certificate_with_nonsense_dates_is_renewed() -> None:
    assert renewal_due(T0, T0, T0 - dt.timedelta(days=1), 0.34)


def test_requests_outside_the_role_are_refused_before_anything_is_sent(
    lab_raw: dict[str, Any],
) -> None:
    plan = make_pki_plan(parse(lab_raw))
    assert check_request(plan, "edge", ["zwfw.guizhou.gov.cn"], None) == 720
    with pytest.raises(InputError, match="not under the edge role"):
        check_request(plan, "edge", ["zwfw.guizhou.gov.cn", "www.example.com"], None)
    with pytest.raises(InputError, match=r"tls\.max_ttl_hours"):
        check_request(plan, "edge", ["zwfw.guizhou.gov.cn"], 3000)
    with pytest.raises(InputError, match="--role"):
        check_request(plan, "root", ["zwfw.guizhou.gov.cn"], None)


def _csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intermediate")]))
        .sign(key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    return csr.public_bytes(Encoding.PEM).decode()


def test_the_offline_root_is_made_once_and_signs_a_constrained_intermediate(
    tmp_path: Path, lab_raw: dict[str, Any]
) -> None:
    paths = RootPaths.under(tmp_path)
    key, root = ensure_root(paths)
    assert paths.key.stat().st_mode & 0o777 == 0o600
    assert paths.key.parent.stat().st_mode & 0o777 == 0o700
    _, again = ensure_root(paths)
    assert again.serial_number == root.serial_number
    plan = make_pki_plan(parse(lab_raw))
    inter = sign_intermediate(
        _csr(), key, root, hours=plan.intermediate_hours,
        permitted_domains=plan.permitted_domains, permitted_networks=plan.permitted_networks,
    )  # fmt: skip
    bc = inter.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    assert constraints_of(inter) == (set(plan.permitted_domains), set(plan.permitted_networks))
    assert intermediate_ok(inter, root, plan) is None
    # too little life left for the longest certificate: replaced
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=plan.max_ttl_hours + 24)
    assert "left" in (intermediate_ok(inter, root, plan, now=later) or "")
    # the spec's domains changed: replaced
    plan.permitted_domains = ("zwfw.guizhou.gov.cn",)
    assert "name constraints" in (intermediate_ok(inter, root, plan) or "")
    # signed by another root: replaced
    _, other = ensure_root(RootPaths.under(tmp_path / "other"))
    assert intermediate_ok(inter, other, plan) == "not signed by the offline root"


def test_half_a_root_is_refused_not_replaced(tmp_path: Path) -> None:
    paths = RootPaths.under(tmp_path)
    ensure_root(paths)
    paths.cert.unlink()
    with pytest.raises(OperationError, match="half a PKI root"):
        ensure_root(paths)


def test_the_system_administrator_runs_the_pki_and_isolation_still_holds(
    lab_raw: dict[str, Any],
) -> None:
    plan = make_identity_plan(parse(lab_raw))
    system = plan.policies["govcloud-system-admins"].hcl
    assert f'path "{PKI_MOUNT}/issue/edge"' in system
    assert f'path "{PKI_MOUNT}/intermediate/set-signed"' in system
    audit = plan.policies["govcloud-audit-admins"].hcl
    assert f'path "{PKI_MOUNT}/certs"' in audit and "issue" not in audit.split(PKI_MOUNT, 1)[1]
    for name, policy in plan.policies.items():
        if policy.department is not None:
            assert PKI_MOUNT not in policy.hcl, name
    assert check_isolation(plan) == []
    assert plan.pki is not None and plan.as_dict()["pki"]


def test_days_left_reads_openssls_end_date() -> None:
    from security.compliance.tls import _days_left

    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert _days_left("notAfter=Dec 31 00:00:00 2026 GMT", now) == 30.0
    assert _days_left("notAfter=Jan  1 12:00:00 2027 GMT", now) == 31.5
    assert _days_left("notAfter=Nov 30 00:00:00 2026 GMT", now) == -1.0


def test_every_host_gets_a_log_certificate_and_only_the_log_host_its_address(
    lab_raw: dict[str, Any],
) -> None:
    from infra.plan import make_plan
    from security.pki import hostcerts

    spec = parse(lab_raw)
    hosts = make_plan(spec).hosts
    logs = hostcerts.log_certs(spec, hosts)
    assert [c.host for c in logs] == [h.name for h in hosts]
    assert {c.use for c in logs} == {"log"} and {c.role for c in logs} == {INTERNAL_ROLE}
    by_role = {h.name: h.role for h in hosts}
    assert [c.ips for c in logs if by_role[c.host] == "log"] == [
        (next(h.address for h in hosts if h.role == "log"),)
    ]
    assert all(c.ips == () for c in logs if by_role[c.host] != "log")
    assert all(c.stem == f"{c.host}.govcloud.local" for c in logs)
    assert hostcerts.log_peers(spec) == ["*.govcloud.local"]
    assert hostcerts.log_certs(spec, [h for h in hosts if h.role != "log"]) == []


def test_the_hall_pods_certificate_carries_the_service_name(lab_raw: dict[str, Any]) -> None:
    from infra.plan import make_plan
    from security.pki import hostcerts

    spec = parse(lab_raw)
    hosts = make_plan(spec).hosts
    (svc,) = hostcerts.service_certs(spec, hosts)
    assert (svc.host, svc.use, svc.role, svc.names) == (
        "hall", "service", INTERNAL_ROLE, ("hall.dsjj.govcloud.local",)
    )  # fmt: skip
    uses = [c.use for c in hostcerts.host_certs(spec, hosts, [hostcerts.LOG, hostcerts.SERVICE])]
    assert uses == ["log"] * len(hosts) + ["service"]


def test_runtime_inventory_ships_every_host_to_the_log_host_with_its_own_name(
    lab_raw: dict[str, Any], tmp_path: Path
) -> None:
    from infra.hosts.apply import runtime_inventory
    from infra.plan import make_plan

    plan = make_plan(parse(lab_raw))
    inv = runtime_inventory(plan, tmp_path)
    top = inv["all"]["vars"]
    log = next(h for h in plan.hosts if h.role == "log")
    assert (top["logship_loghost"], top["logship_loghost_name"]) == (
        log.address, "loghost.govcloud.local"
    )  # fmt: skip
    assert top["loghost_tls_peers"] == ["*.govcloud.local"]
    hostvars = {n: v for g in inv["all"]["children"].values() for n, v in g["hosts"].items()}
    assert hostvars[log.name]["logship_loghost"] == ""  # it keeps its own logs
    assert hostvars[log.name]["loghost_tls_name"] == "loghost.govcloud.local"
    assert hostvars["bastion"]["logship_tls_name"] == "bastion.govcloud.local"
