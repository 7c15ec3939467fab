"""Holder identifiers and their check characters.

- The citizen ID number (公民身份号码, GB 11643-1999): 17 digits (a 6-digit division code, the
  date of birth as YYYYMMDD, a 3-digit sequence) and a check character computed with ISO 7064
  MOD 11-2: weights 2^(17-i) mod 11, check = (12 - sum mod 11) mod 11, 10 written "X".
- The unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters over the 31
  characters 0-9 and A-Z without I, O, Z, S, V; the registration authority, the organisation
  type, a 6-digit division code, a 9-character organisation code and a check character:
  weights 3^i mod 31, check = 31 - (sum mod 31), 31 written "0".
"""

from __future__ import annotations

import datetime as dt

ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
ID_CHECK = "10X98765432"  # check character for (sum mod 11) = 0..10
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_VALUE = {c: i for i, c in enumerate(USCC_CHARS)}
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


class BadIdentifier(ValueError):
    """A holder identifier that is not well formed; the message says what is wrong."""


def citizen_id_check(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11]


def check_citizen_id(value: str) -> str:
    """The ID number, upper-cased, or :class:`BadIdentifier`."""
    v = value.strip().upper()
    if len(v) != 18:
        raise BadIdentifier(f"a citizen ID number has 18 characters, got {len(v)}")
    if not (v[:17].isascii() and v[:17].isdigit()):
        raise BadIdentifier("a citizen ID number starts with 17 digits")
    if not (v[17].isdigit() or v[17] == "X"):
        raise BadIdentifier("a citizen ID number ends with a digit or X")
    try:
        born = dt.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise BadIdentifier(f"characters 7-14 are not a date of birth ({v[6:14]})") from None
    if born.year < 1900:
        raise BadIdentifier(f"characters 7-14 are not a date of birth ({v[6:14]})")
    want = citizen_id_check(v[:17])
    if v[17] != want:
        raise BadIdentifier("the check character does not match (GB 11643)")
    return v


def uscc_check(first17: str) -> str:
    total = sum(USCC_VALUE[c] * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def check_credit_code(value: str) -> str:
    """The unified social credit code, upper-cased, or :class:`BadIdentifier`."""
    v = value.strip().upper()
    if len(v) != 18:
        raise BadIdentifier(f"a unified social credit code has 18 characters, got {len(v)}")
    bad = sorted({c for c in v if c not in USCC_VALUE})
    if bad:
        raise BadIdentifier(
            f"a unified social credit code uses 0-9 and A-Z without I, O, Z, S, V; got {bad}"
        )
    if not v[2:8].isdigit():
        raise BadIdentifier("characters 3-8 of a credit code are a division code (digits)")
    if v[17] != uscc_check(v[:17]):
        raise BadIdentifier("the check character does not match (GB 32100)")
    return v


#: the identifier each kind of holder is looked up by
CHECKS = {"citizen": check_citizen_id, "enterprise": check_credit_code}


def check_holder(kind: str, value: str) -> str:
    try:
        return CHECKS[kind](value)
    except KeyError:
        raise BadIdentifier(f'unknown holder kind "{kind}"') from None


def make_citizen_id(division: str, born: str, seq: int) -> str:
    """A well-formed ID number (for seeds and tests)."""
    first17 = f"{division}{born}{seq:03d}"
    return first17 + citizen_id_check(first17)


def make_credit_code(division: str, org: int) -> str:
    """A well-formed credit code: authority 9 (market regulation), type 1 (enterprise)."""
    body = f"91{division}"
    n = org
    for _ in range(9):
        body += USCC_CHARS[n % 31]
        n //= 31
    return body + uscc_check(body)
