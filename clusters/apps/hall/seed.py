"""Seed the catalog from a seed plan: sites, departments and service guides (办事指南).

The seed plan is plain JSON (made on the control side from the spec by
``clusters.hallseed``), so this module needs nothing beyond the hall's own packages::

    {"departments": [{"code": "gat", "name": "公安厅"}, ...],
     "sites": [{"code": "52", "name": "贵州省", "level": "province", "parent": null,
                "kind": "政务服务中心", "windows": 120, "hours": "09:00-17:00",
                "items": [{"dept": "gat", "kind": "administrative", "count": 40}, ...]}, ...]}

Guides are generated deterministically from their item code, at the size of real guides (legal
basis, conditions, a list of materials, the steps, legal and promised time limits, fees), so a
re-seed writes the same rows. Seeding is idempotent: rows are upserted, nothing is deleted.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

_ACTS = [
    "办理",
    "变更",
    "注销",
    "补领",
    "换领",
    "核准",
    "备案",
    "认定",
    "审批",
    "登记",
    "延续",
    "查询",
]
_OBJECTS = {
    "administrative": [
        "许可证",
        "资质",
        "设立登记",
        "执业证书",
        "施工许可",
        "经营许可",
        "准予变更",
        "临时占用",
        "年度检验",
        "特种作业证",
    ],
    "public_service": [
        "社会保障卡",
        "居民户口",
        "医疗费用报销",
        "养老保险关系转移",
        "就业登记",
        "婚姻登记",
        "生育服务证",
        "高龄津贴",
        "最低生活保障",
        "居住证",
    ],
}
_LAWS = [
    "《中华人民共和国行政许可法》",
    "《中华人民共和国社会保险法》",
    "《中华人民共和国户口登记条例》",
    "《优化营商环境条例》",
    "《国务院关于加快推进全国一体化在线政务服务平台建设的指导意见》",
    "《贵州省政务服务条例》",
]
_MATERIALS = [
    "申请表",
    "申请人居民身份证",
    "营业执照",
    "法定代表人身份证明",
    "授权委托书及受托人身份证明",
    "户口簿",
    "场地使用证明",
    "相关资质证明材料",
    "现场照片",
    "承诺书",
    "技术负责人资格证书",
    "近期免冠照片",
]
_STEPS = ["申请", "受理", "审查", "决定", "制证", "送达"]


def _guide(code: str, dept_name: str, kind: str, site_name: str) -> tuple[Any, ...]:
    rnd = random.Random(code)
    obj = rnd.choice(_OBJECTS[kind])
    name = f"{obj}{rnd.choice(_ACTS)}"
    laws = rnd.sample(_LAWS, 2)
    basis = (
        f"1. {laws[0]}第{rnd.randint(2, 80)}条：{dept_name}依法负责本行政区域内{obj}相关事项的"
        f"办理和监督管理工作。2. {laws[1]}第{rnd.randint(2, 60)}条：政务服务事项应当"
        "编制办事指南，明确受理条件、申请材料、办理流程、办理时限和收费标准，并向社会公开。"
    )
    conditions = (
        f"申请人应当符合以下条件：（一）具有完全民事行为能力或依法设立；（二）在{site_name}"
        f"辖区内有固定住所或经营场所；（三）申请材料齐全、符合法定形式；（四）符合{obj}"
        "相关法律法规及技术规范规定的其他条件。"
    )
    materials = [
        {
            "name": m,
            "form": rnd.choice(["原件", "复印件", "原件及复印件", "电子证照"]),
            "copies": rnd.randint(1, 2),
            "required": rnd.random() < 0.8,
            "note": "可通过电子证照库调取，免于提交" if rnd.random() < 0.3 else "",
        }
        for m in rnd.sample(_MATERIALS, rnd.randint(3, 8))
    ]
    steps = [
        {"step": s, "who": dept_name if i else "申请人", "limit_days": rnd.randint(0, 3)}
        for i, s in enumerate(_STEPS[: rnd.randint(4, 6)])
    ]
    legal = rnd.choice([5, 10, 15, 20, 30, 60])
    promised = max(1, legal // rnd.choice([2, 3, 4]))
    fee = "不收费" if rnd.random() < 0.85 else f"工本费{rnd.choice([5, 10, 20])}元"
    return (
        name,
        basis,
        conditions,
        json.dumps(materials, ensure_ascii=False),
        json.dumps(steps, ensure_ascii=False),
        legal,
        promised,
        fee,
        rnd.random() < 0.9,
    )


def item_rows(plan: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    depts = {d["code"]: d["name"] for d in plan["departments"]}
    for site in plan["sites"]:
        for block in site.get("items", []):
            letter = "A" if block["kind"] == "administrative" else "P"
            for n in range(1, int(block["count"]) + 1):
                code = f"{site['code']}-{block['dept']}-{letter}{n:04d}"
                yield (
                    code,
                    site["code"],
                    block["dept"],
                    block["kind"],
                    *_guide(code, depts[block["dept"]], block["kind"], site["name"]),
                )


def check_plan(plan: Any) -> None:
    """Refuse a malformed seed plan with the path of the first problem."""
    if not isinstance(plan, dict):
        raise ValueError("seed plan: expected a JSON object with departments and sites")
    for key in ("departments", "sites"):
        if not isinstance(plan.get(key), list):
            raise ValueError(f"seed plan: {key}: expected a list")
    depts = {d.get("code") for d in plan["departments"] if isinstance(d, dict)}
    seen: set[str] = set()
    for i, site in enumerate(plan["sites"]):
        where = f"seed plan: sites[{i}]"
        if not isinstance(site, dict):
            raise ValueError(f"{where}: expected an object")
        for key in ("code", "name", "level", "kind"):
            if not isinstance(site.get(key), str):
                raise ValueError(f"{where}.{key}: expected a string")
        parent = site.get("parent")
        if parent is not None and parent not in seen:
            raise ValueError(f"{where}.parent: {parent} is not listed before it")
        seen.add(site["code"])
        for j, block in enumerate(site.get("items", [])):
            if block.get("dept") not in depts:
                raise ValueError(f"{where}.items[{j}].dept: unknown department {block.get('dept')}")
            if block.get("kind") not in ("administrative", "public_service"):
                raise ValueError(f"{where}.items[{j}].kind: administrative or public_service")
            if not isinstance(block.get("count"), int) or block["count"] < 0:
                raise ValueError(f"{where}.items[{j}].count: expected a non-negative integer")


ITEM_COLUMNS = (
    "code",
    "site_code",
    "dept",
    "kind",
    "name",
    "basis",
    "conditions",
    "materials",
    "steps",
    "legal_limit_days",
    "time_limit_days",
    "fee",
    "online",
)


async def seed(conn: Any, plan: dict[str, Any], batch: int = 20_000) -> dict[str, int]:
    """Upsert the plan's departments, sites and items; return how many of each were written."""
    check_plan(plan)
    async with conn.transaction():
        await conn.executemany(
            "INSERT INTO departments (code, name) VALUES ($1, $2)"
            " ON CONFLICT (code) DO UPDATE SET name = excluded.name",
            [(d["code"], d["name"]) for d in plan["departments"]],
        )
        await conn.executemany(
            "INSERT INTO sites (code, name, level, parent, kind, windows, hours)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (code) DO UPDATE SET name = excluded.name, level = excluded.level,"
            " parent = excluded.parent, kind = excluded.kind, windows = excluded.windows,"
            " hours = excluded.hours",
            [
                (
                    s["code"],
                    s["name"],
                    s["level"],
                    s.get("parent"),
                    s["kind"],
                    int(s.get("windows", 1)),
                    s.get("hours", "09:00-17:00"),
                )
                for s in plan["sites"]
            ],
        )
        await conn.execute(
            "CREATE TEMP TABLE items_load (LIKE items INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        items = 0
        rows: list[tuple[Any, ...]] = []
        for row in item_rows(plan):
            rows.append(row)
            if len(rows) >= batch:
                await conn.copy_records_to_table("items_load", records=rows, columns=ITEM_COLUMNS)
                items += len(rows)
                rows = []
        if rows:
            await conn.copy_records_to_table("items_load", records=rows, columns=ITEM_COLUMNS)
            items += len(rows)
        cols = ", ".join(ITEM_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in ITEM_COLUMNS[1:])
        await conn.execute(
            f"INSERT INTO items ({cols}) SELECT {cols} FROM items_load"
            f" ON CONFLICT (code) DO UPDATE SET {updates}"
        )
        # the catalog's version went up once with these writes (schema migration 5's trigger):
        # the halls' read caches drop what they hold (see cache.py)
    await conn.execute("ANALYZE items")
    return {"departments": len(plan["departments"]), "sites": len(plan["sites"]), "items": items}
