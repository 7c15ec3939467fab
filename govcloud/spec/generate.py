"""Spec generators: the small lab spec and a province at real (Guizhou) scale.

Both are deterministic: the same profile, seed and scale give the same bytes.
"""

from __future__ import annotations

import random
from typing import Any

from govcloud.errors import InputError

PROFILES = ("lab", "guizhou")

# Guizhou's nine prefecture-level divisions and their county-level counts (88 in all)
GUIZHOU_CITIES: tuple[tuple[str, str, int], ...] = (
    ("5201", "贵阳市", 10),
    ("5202", "六盘水市", 4),
    ("5203", "遵义市", 14),
    ("5204", "安顺市", 6),
    ("5205", "毕节市", 8),
    ("5206", "铜仁市", 10),
    ("5223", "黔西南布依族苗族自治州", 8),
    ("5226", "黔东南苗族侗族自治州", 16),
    ("5227", "黔南布依族苗族自治州", 12),
)
GUIZHOU_TOWNSHIPS = 1521
GUIZHOU_VILLAGES = 17342
GUIZHOU_ADMIN_ITEMS = 1337
GUIZHOU_PUBLIC_ITEMS = 236

# 59 provincial departments: (code, name)
PROVINCIAL_DEPARTMENTS: tuple[tuple[str, str], ...] = (
    ("fgw", "发展和改革委员会"),
    ("jyt", "教育厅"),
    ("kjt", "科学技术厅"),
    ("gxt", "工业和信息化厅"),
    ("mzw", "民族宗教事务委员会"),
    ("gat", "公安厅"),
    ("mzt", "民政厅"),
    ("sft", "司法厅"),
    ("czt", "财政厅"),
    ("rst", "人力资源和社会保障厅"),
    ("zrzyt", "自然资源厅"),
    ("sthjt", "生态环境厅"),
    ("zjt", "住房和城乡建设厅"),
    ("jtt", "交通运输厅"),
    ("slt", "水利厅"),
    ("nynct", "农业农村厅"),
    ("swt", "商务厅"),
    ("whlyt", "文化和旅游厅"),
    ("wjw", "卫生健康委员会"),
    ("tyjrt", "退役军人事务厅"),
    ("yjt", "应急管理厅"),
    ("sjt", "审计厅"),
    ("wsb", "外事办公室"),
    ("gzw", "国有资产监督管理委员会"),
    ("scjgj", "市场监督管理局"),
    ("gdj", "广播电视局"),
    ("tyj", "体育局"),
    ("tjj", "统计局"),
    ("ybj", "医疗保障局"),
    ("lyj", "林业局"),
    ("nyj", "能源局"),
    ("lsj", "粮食和物资储备局"),
    ("dsjj", "大数据发展管理局"),
    ("xczxj", "乡村振兴局"),
    ("jrj", "地方金融监督管理局"),
    ("jgswj", "机关事务管理局"),
    ("rfb", "人民防空办公室"),
    ("xfj", "信访局"),
    ("yjj", "药品监督管理局"),
    ("zscqj", "知识产权局"),
    ("swj", "税务局"),
    ("gjjzx", "住房公积金管理中心"),
    ("cl", "残疾人联合会"),
    ("qxj", "气象局"),
    ("dzj", "地震局"),
    ("txglj", "通信管理局"),
    ("yzglj", "邮政管理局"),
    ("yczmj", "烟草专卖局"),
    ("xfjyzd", "消防救援总队"),
    ("hg", "海关"),
    ("daj", "档案局"),
    ("chdxj", "测绘地理信息局"),
    ("gxs", "供销合作社"),
    ("kx", "科学技术协会"),
    ("hszh", "红十字会"),
    ("rmyh", "中国人民银行分行"),
    ("jyglj", "监狱管理局"),
    ("jdglj", "戒毒管理局"),
    ("mhglj", "民用航空管理局"),
)

_SYLLABLES = (
    "安白碧长城大丹东凤福高关和红花黄建金井开兰乐力联龙马梅"
    "民明南平青清庆仁三山石双水顺太桃天田铜万文西响新兴阳永玉云长镇中竹"
)


# e-licence types (电子证照): (code, name, issuing department, holder)
LICENCE_TYPES: tuple[tuple[str, str, str, str], ...] = (
    ("id-card", "居民身份证", "gat", "citizen"),
    ("household-register", "居民户口簿", "gat", "citizen"),
    ("business-licence", "营业执照", "scjgj", "enterprise"),
    ("marriage-certificate", "结婚证", "mzt", "citizen"),
    ("birth-certificate", "出生医学证明", "wjw", "citizen"),
    ("social-security-card", "社会保障卡", "rst", "citizen"),
)
# which licence types each lab department reads through the exchange
LAB_LICENCE_READS: dict[str, list[str]] = {
    "gat": ["marriage-certificate", "birth-certificate"],
    "wjw": ["id-card", "marriage-certificate"],
    "mzt": ["id-card", "birth-certificate"],
    "dsjj": ["id-card", "business-licence", "marriage-certificate", "birth-certificate"],
}


def _licences(depts: list[dict[str, Any]], reads: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The licence types whose issuer is among ``depts`` (issuers are granted the library);
    each department's read grants, kept to those types."""
    by_code = {d["code"]: d for d in depts}
    types = []
    for code, name, issuer, holder in LICENCE_TYPES:
        if issuer not in by_code:
            continue
        types.append({"code": code, "name": name, "issuer": issuer, "holder": holder})
        grants = by_code[issuer].setdefault("grants", [])
        if "e-licence" not in grants:
            grants.append("e-licence")
    known = {t["code"] for t in types}
    for code, wanted in reads.items():
        dept = by_code.get(code)
        if dept is None or "exchange" not in dept.get("grants", []):
            continue
        dept["licence_reads"] = [t for t in wanted if t in known]
    return types


def _name(rng: random.Random, suffix: str) -> str:
    return rng.choice(_SYLLABLES) + rng.choice(_SYLLABLES) + suffix


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` split into ``parts`` positive integers, unevenly but deterministically."""
    weights = [rng.uniform(0.5, 1.5) for _ in range(parts)]
    scale = (total - parts) / sum(weights)
    counts = [1 + int(w * scale) for w in weights]
    for i in range(total - sum(counts)):
        counts[i % parts] += 1
    return counts


def _hall(
    kind: str, windows: int, depts: list[str] | None = None, *, name: str | None = None
) -> dict[str, Any]:
    hall: dict[str, Any] = {"kind": kind, "windows": windows, "hours": "09:00-17:00"}
    if depts:
        hall["departments"] = depts
    if name:
        hall["server_name"] = name
    return hall


#: the province's government-service portal (贵州政务服务网): the halls' public names are it and
#: one name per city below it
PORTAL = "zwfw.guizhou.gov.cn"


def _tls() -> dict[str, Any]:
    return {
        "max_ttl_hours": 2160,
        "renew_before": 0.34,
        "edge": {"ttl_hours": 720, "allowed_domains": [PORTAL]},
        "internal": {"ttl_hours": 720, "allowed_domains": ["govcloud.local"]},
    }


HALL_NODE_PORT = 30080  # the online hall's port on every node, which the edge forwards to


def _department(
    code: str,
    name: str,
    rng: random.Random,
    *,
    admin: int,
    public: int,
    levels: list[str],
    cpu: int,
    mem: int,
    disk: int,
    vm: bool = False,
    vm_hosts: int = 0,
) -> dict[str, Any]:
    dept: dict[str, Any] = {
        "code": code,
        "name": name,
        "levels": levels,
        "items": {"administrative": admin, "public_service": public},
        "tenant": {
            "cpu": cpu,
            "memory_gib": mem,
            "storage_gib": disk,
            "environments": ["prod", "test"],
        },
        "apps": [{"name": f"{code}-portal", "level": levels[0]}],
    }
    if vm:
        dept["tenant"].update({"deploy": "vm", "vm_hosts": 1})
    elif vm_hosts:
        dept["tenant"]["vm_hosts"] = vm_hosts  # IaaS hosts beside its Kubernetes tenant
    if code == "dsjj" and vm_hosts:
        # the online hall: citizens reach it through the edge on a node port; its pods reach
        # its database on the department's own host
        dept["tenant"]["edge"] = [{"app": "hall", "port": 8080, "node_port": HALL_NODE_PORT}]
        dept["tenant"]["reaches"] = [{"host": f"{code}-vm-1", "ports": [5432]}]
    if rng.random() < 0.6:
        dept["grants"] = ["exchange", "e-licence"]
    return dept


def _datacenter(
    name: str,
    racks: int,
    rack_kw: float,
    hosts: list[dict[str, Any]],
    pools: dict[str, Any],
    ups_kva: float,
    cooling_kw: float,
) -> dict[str, Any]:
    return {
        "name": name,
        "grade": "B",
        "rooms": [
            {
                "name": "主机房1",
                "racks": [{"name": f"R{i + 1:02d}", "kw": rack_kw} for i in range(racks)],
            }
        ],
        "power": {
            "utility_feeds": 2,
            "ups": {
                "units": 3,
                "unit_kva": ups_kva,
                "power_factor": 0.9,
                "redundancy": "N+1",
                "battery_minutes": 15,
            },
            "generators": {
                "units": 2,
                "unit_kw": 2 * ups_kva,
                "redundancy": "N+1",
                "fuel_hours": 12,
            },
        },
        "cooling": {"units": 3, "unit_kw": cooling_kw, "redundancy": "N+1"},
        "pools": pools,
        "hosts": hosts,
    }


def _identity() -> dict[str, Any]:
    return {
        "auth_methods": ["userpass"],
        "admins": {"system": ["sysadmin"], "security": ["secadmin"], "audit": ["auditadmin"]},
        "mfa": True,
        "ssh_cert_ttl_minutes": 30,
        "ssh_cert_max_ttl_minutes": 120,
    }


def lab() -> dict[str, Any]:
    rng = random.Random(1)
    depts = [
        _department(
            "gat",
            "公安厅",
            rng,
            admin=40,
            public=10,
            levels=["province", "city", "county", "township"],
            cpu=4,
            mem=8,
            disk=100,
        ),
        _department(
            "rst",
            "人力资源和社会保障厅",
            rng,
            admin=30,
            public=20,
            levels=["province", "city", "county", "township", "village"],
            cpu=4,
            mem=8,
            disk=100,
        ),
        _department(
            "scjgj",
            "市场监督管理局",
            rng,
            admin=35,
            public=5,
            levels=["province", "city", "county"],
            cpu=2,
            mem=4,
            disk=50,
        ),
        _department(
            "wjw",
            "卫生健康委员会",
            rng,
            admin=20,
            public=15,
            levels=["province", "city", "county", "township", "village"],
            cpu=2,
            mem=4,
            disk=50,
        ),
        _department(
            "mzt",
            "民政厅",
            rng,
            admin=15,
            public=15,
            levels=["province", "county", "township", "village"],
            cpu=2,
            mem=4,
            disk=50,
            vm=True,
        ),
        _department(
            "dsjj",
            "大数据发展管理局",
            rng,
            admin=5,
            public=5,
            levels=["province"],
            cpu=4,
            mem=8,
            disk=200,
            vm_hosts=1,  # the hall's database (dsjj-vm-1): the department's own IaaS host
        ),
    ]
    licences = _licences(depts, LAB_LICENCE_READS)
    dept_codes = [d["code"] for d in depts]
    cities = []
    for ci, (ccode, cname) in enumerate((("5201", "贵阳市"), ("5203", "遵义市"))):
        counties = []
        for ki in range(2):
            kcode = f"{ccode}{ki + 2:02d}"
            townships = []
            for ti in range(2):
                tcode = f"{kcode}{ti + 1:03d}"
                villages = [
                    {"code": f"{tcode}{vi + 1:03d}", "name": _name(rng, "村")} for vi in range(2)
                ]
                townships.append(
                    {
                        "code": tcode,
                        "name": _name(rng, "镇"),
                        "hall": _hall("便民服务中心", 4),
                        "villages": villages,
                    }
                )
            counties.append(
                {
                    "code": kcode,
                    "name": _name(rng, "县" if ki else "区"),
                    "population": 300_000 + 50_000 * (ci + ki),
                    "hall": _hall("政务服务中心", 30, dept_codes[:4]),
                    "townships": townships,
                }
            )
        cities.append(
            {
                "code": ccode,
                "name": cname,
                "hall": _hall("政务服务中心", 60, dept_codes, name=f"{ccode}.{PORTAL}"),
                "counties": counties,
            }
        )
    hosts = [
        {"name": "bastion", "role": "bastion", "rack": "R01", "kw": 0.4},
        *({"name": f"bao-{i}", "role": "identity", "rack": f"R0{i}", "kw": 0.4} for i in (1, 2, 3)),
        {"name": "loghost", "role": "log", "rack": "R02", "kw": 0.6},
        {"name": "compute-1", "role": "compute", "rack": "R03", "kw": 0.8},
        {"name": "compute-2", "role": "compute", "rack": "R04", "kw": 0.8},
        {"name": "k8s-cp", "role": "control-plane", "rack": "R01", "kw": 0.5},
        {"name": "registry", "role": "registry", "rack": "R02", "kw": 0.4},
        {"name": "hall-1", "role": "hall", "rack": "R03", "kw": 0.5},
        {"name": "hall-2", "role": "hall", "rack": "R04", "kw": 0.5},
        {"name": "shared-1", "role": "shared", "rack": "R02", "kw": 0.4},
        {"name": "backup-1", "role": "storage", "rack": "R03", "kw": 0.5},
    ]
    pools = {
        "compute": {"vcpus": 32, "memory_gib": 64, "cpu_overcommit": 2.0},
        "storage": {"capacity_gib": 2000},
    }
    return {
        "version": 1,
        "name": "lab",
        "regions": {
            "52": {
                "name": "贵州省",
                "population": 38_560_000,
                "hall": _hall("政务服务中心", 120, dept_codes, name=PORTAL),
                "cities": cities,
            }
        },
        "departments": depts,
        "licences": licences,
        "datacenter": _datacenter("实验数据中心", 4, 6.0, hosts, pools, ups_kva=10, cooling_kw=8),
        "network": {
            "supernets": {
                "extranet": "10.0.0.0/8",
                "intranet": "172.16.0.0/12",
                "datacenter": "10.255.0.0/16",
            },
            "allocation": {"headroom": 0.25},
        },
        "identity": _identity(),
        "load": {"peak_factor": 3.0, "surge_factor": 8.0},
        "tls": _tls(),
    }


def guizhou(scale: float = 1.0, seed: int = 52) -> dict[str, Any]:
    """Guizhou at real scale; ``scale`` multiplies the number of villages (for benchmarks)."""
    rng = random.Random(seed)
    n_depts = len(PROVINCIAL_DEPARTMENTS)
    admin = _split(GUIZHOU_ADMIN_ITEMS, n_depts, rng)
    public = [0] * n_depts
    for i, n in enumerate(_split(GUIZHOU_PUBLIC_ITEMS, n_depts // 2, rng)):
        public[i * 2] = n
    levels_all = ["province", "city", "county", "township", "village"]
    depts = []
    for i, (code, name) in enumerate(PROVINCIAL_DEPARTMENTS):
        served = levels_all[: rng.randint(1, 5)]
        depts.append(
            _department(
                code,
                name,
                rng,
                admin=admin[i],
                public=public[i],
                levels=served,
                cpu=rng.choice((8, 16, 24, 32)),
                mem=rng.choice((32, 64, 96)),
                disk=rng.choice((500, 1000, 2000)),
                vm=i % 10 == 3,
            )
        )
    licences = _licences(
        depts,
        {d["code"]: [t for t, _, issuer, _ in LICENCE_TYPES if issuer != d["code"]] for d in depts},
    )
    dept_codes = [d["code"] for d in depts]

    n_counties = sum(c[2] for c in GUIZHOU_CITIES)
    towns_per_county = _split(GUIZHOU_TOWNSHIPS, n_counties, rng)
    villages_per_town = _split(round(GUIZHOU_VILLAGES * scale), GUIZHOU_TOWNSHIPS, rng)
    county_i = town_i = 0
    cities = []
    for ccode, cname, ncounties in GUIZHOU_CITIES:
        counties = []
        for k in range(ncounties):
            kcode = f"{ccode}{k + 1:02d}"
            townships = []
            for t in range(towns_per_county[county_i]):
                tcode = f"{kcode}{t + 1:03d}"
                villages = [
                    f"{tcode}{v + 1:03d} {_name(rng, '村')}"
                    for v in range(villages_per_town[town_i])
                ]
                townships.append(
                    {"code": tcode, "name": _name(rng, rng.choice("镇乡")), "villages": villages}
                )
                town_i += 1
            counties.append(
                {
                    "code": kcode,
                    "name": _name(rng, rng.choice("县区")),
                    "hall": _hall("政务服务中心", 30, dept_codes[:20]),
                    "townships": townships,
                }
            )
            county_i += 1
        cities.append(
            {
                "code": ccode,
                "name": cname,
                "hall": _hall("政务服务中心", 60, dept_codes[:40], name=f"{ccode}.{PORTAL}"),
                "counties": counties,
            }
        )

    hosts: list[dict[str, Any]] = [
        {"name": "bastion-1", "role": "bastion", "rack": "R01", "kw": 0.4},
        {"name": "bastion-2", "role": "bastion", "rack": "R02", "kw": 0.4},
        *({"name": f"bao-{i}", "role": "identity", "rack": f"R0{i}", "kw": 0.5} for i in (1, 2, 3)),
        {"name": "loghost-1", "role": "log", "rack": "R04", "kw": 0.8},
        {"name": "k8s-cp-1", "role": "control-plane", "rack": "R01", "kw": 0.6},
        {"name": "registry-1", "role": "registry", "rack": "R02", "kw": 0.6},
        *(
            {"name": f"compute-{i + 1}", "role": "compute", "rack": f"R{5 + i % 12:02d}", "kw": 0.9}
            for i in range(32)
        ),
        *(
            {"name": f"storage-{i + 1}", "role": "storage", "rack": f"R{17 + i % 4:02d}", "kw": 1.2}
            for i in range(8)
        ),
        *(
            {"name": f"hall-{i + 1}", "role": "hall", "rack": f"R{21 + i % 4:02d}", "kw": 0.6}
            for i in range(12)
        ),
        *(
            {"name": f"shared-{i + 1}", "role": "shared", "rack": f"R{21 + i % 4:02d}", "kw": 0.6}
            for i in range(4)
        ),
    ]
    pools = {
        "compute": {
            "vcpus": 2048,
            "memory_gib": 4096,
            "cpu_overcommit": 1.5,
            "memory_overcommit": 1.2,
        },
        "storage": {"capacity_gib": 200_000, "overcommit": 1.0},
    }
    return {
        "version": 1,
        "name": "guizhou",
        "regions": {
            "52": {
                "name": "贵州省",
                "population": 38_560_000,
                "hall": _hall("政务服务中心", 120, dept_codes, name=PORTAL),
                "cities": cities,
            }
        },
        "departments": depts,
        "licences": licences,
        "datacenter": _datacenter(
            "省政务云数据中心", 24, 8.0, hosts, pools, ups_kva=60, cooling_kw=50
        ),
        "network": {
            "supernets": {
                "extranet": "10.0.0.0/8",
                "intranet": "172.16.0.0/12",
                "datacenter": "10.255.0.0/16",
            }
        },
        "identity": _identity(),
        "load": {"peak_factor": 3.0, "surge_factor": 8.0},
        "tls": _tls(),
    }


def generate(profile: str, *, scale: float = 1.0, seed: int | None = None) -> dict[str, Any]:
    if profile == "lab":
        if scale != 1.0:
            raise InputError("--scale applies to the guizhou profile only")
        return lab()
    if profile == "guizhou":
        if not 0 < scale <= 50:
            raise InputError(f"--scale: expected a number in (0, 50], got {scale:g}")
        return guizhou(scale, 52 if seed is None else seed)
    raise InputError(f"--profile: expected one of {', '.join(PROFILES)}, got {profile!r}")


def dump(data: dict[str, Any]) -> str:
    """YAML text for a generated spec, block style, one village a line."""
    import yaml

    try:
        from yaml import CSafeDumper as Dumper
    except ImportError:  # pragma: no cover
        from yaml import SafeDumper as Dumper  # type: ignore[assignment]
    header = f"# govcloud spec ({data['name']}): generated by `govcloud spec generate`\n"
    return header + yaml.dump(
        data,
        Dumper=Dumper,
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=False,
        width=100,
    )
