"""What the spec grants: which department issues each licence type, which may read which.

The grants file is written from the spec (``security.openbao.seals.exchange_grants``)::

    {"types": {"id-card": {"issuer": "gat", "holder": "citizen"}, ...},
     "reads": {"wjw": ["id-card", "marriage-certificate"], ...}}

A department reads its own types without a grant; any other read needs the type in its list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Grants:
    types: dict[str, dict[str, str]] = field(default_factory=dict)
    reads: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Any) -> Grants:
        if not isinstance(data, dict):
            raise ValueError("expected a mapping with types and reads")
        types = data.get("types", {})
        reads = data.get("reads", {})
        if not isinstance(types, dict) or not isinstance(reads, dict):
            raise ValueError("types and reads must be mappings")
        for code, t in types.items():
            if not isinstance(t, dict) or not isinstance(t.get("issuer"), str):
                raise ValueError(f"types.{code}: expected an issuer")
        out: dict[str, frozenset[str]] = {}
        for dept, codes in reads.items():
            if not isinstance(codes, list):
                raise ValueError(f"reads.{dept}: expected a list of licence types")
            unknown = [c for c in codes if c not in types]
            if unknown:
                raise ValueError(f"reads.{dept}: unknown licence types {unknown}")
            out[dept] = frozenset(codes)
        return cls(types=types, reads=out)

    @classmethod
    def load(cls, path: str) -> Grants:
        with open(path, encoding="utf-8") as fh:
            return cls.parse(json.load(fh))

    def issuer(self, type_code: str) -> str | None:
        t = self.types.get(type_code)
        return t["issuer"] if t else None

    def allows(self, department: str, type_code: str) -> bool:
        issuer = self.issuer(type_code)
        if issuer is None:
            return False
        return department == issuer or type_code in self.reads.get(department, frozenset())
