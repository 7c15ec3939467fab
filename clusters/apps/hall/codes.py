"""Codes: the case code (一件一码), levels from division codes, the states of a case."""

from __future__ import annotations

import re

LEVEL_OF_DIGITS = {2: "province", 4: "city", 6: "county", 9: "township", 12: "village"}
LEVELS = ("province", "city", "county", "township", "village")

#: states of an application (申报), in the order a case usually moves
STATES = ("submitted", "in_progress", "needs_material", "returned", "completed")
STATE_LABELS = {
    "submitted": "待受理",
    "in_progress": "办理中",
    "needs_material": "待补正",
    "returned": "退回",
    "completed": "办结",
}
#: staff actions: (from states, to state, roles allowed)
ACTIONS: dict[str, tuple[tuple[str, ...], str, frozenset[str]]] = {
    "accept": (("submitted",), "in_progress", frozenset({"clerk"})),
    "request-material": (
        ("submitted", "in_progress"),
        "needs_material",
        frozenset({"clerk", "backoffice"}),
    ),
    "approve": (("in_progress",), "completed", frozenset({"backoffice"})),
    "return": (
        ("submitted", "in_progress", "needs_material"),
        "returned",
        frozenset({"clerk", "backoffice"}),
    ),
}
FINAL_STATES = ("returned", "completed")

_CASE_CODE = re.compile(r"^\d{31}$")
_SITE_CODE = re.compile(r"^\d{2}(\d{2}(\d{2}(\d{3}(\d{3})?)?)?)?$")


def site_level(code: str) -> str | None:
    if not _SITE_CODE.match(code):
        return None
    return LEVEL_OF_DIGITS.get(len(code))


def _luhn(digits: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def make_case_code(site: str, yyyymmdd: str, seq: int) -> str:
    """The case code: the site's division code padded to 12 digits, the date, a 10-digit
    sequence number and a Luhn check digit (31 digits in all)."""
    body = f"{site:0<12}{yyyymmdd}{seq % 10**10:010d}"
    return body + str(_luhn(body))


def valid_case_code(code: str) -> bool:
    return bool(_CASE_CODE.match(code)) and _luhn(code[:-1]) == int(code[-1])


def site_of_case_code(code: str) -> str:
    """The site a case code belongs to (the padding stripped back to the level's digits)."""
    padded = code[:12]
    for digits in (12, 9, 6, 4):
        tail = padded[digits - (3 if digits > 6 else 2) : digits]
        if set(tail) != {"0"}:
            return padded[:digits]
    return padded[:2]


def level_of_path(match: dict[str, str]) -> str | None:
    """The level a request addresses, from its path parameters (for per-level faults)."""
    if "site" in match:
        return site_level(match["site"])
    if "item" in match:
        return site_level(match["item"].split("-", 1)[0])
    if "code" in match and valid_case_code(match["code"]):
        return site_level(site_of_case_code(match["code"]))
    return None
