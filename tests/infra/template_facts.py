"""Reading the synthesized template: stable resource names and what a value refers to."""

from __future__ import annotations

import json
import re
from typing import Any

_HASH = re.compile(r"[0-9A-F]{8}$")


def base_name(logical_id: str) -> str:
    """A logical id without CDK's 8-character hash: `PayInLedgerTableB5C1E7A3` -> `PayInLedgerTable`."""
    return _HASH.sub("", logical_id)


def references(value: Any) -> list[str]:
    """Logical ids a template value refers to (Ref / Fn::GetAtt), pseudo parameters left out."""
    if isinstance(value, dict):
        if "Ref" in value:
            return [] if str(value["Ref"]).startswith("AWS::") else [value["Ref"]]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return [target[0] if isinstance(target, list) else target.split(".")[0]]
        return [ref for v in value.values() for ref in references(v)]
    if isinstance(value, list):
        return [ref for v in value for ref in references(v)]
    return []


def resource_name(value: Any) -> str:
    """A statement resource as `<base name>[/suffix]`, e.g. `SettlementBucket/reports/*`, or the literal."""
    if isinstance(value, str):
        return value
    refs = references(value)
    suffix = ""
    if isinstance(value, dict) and "Fn::Join" in value:
        last = value["Fn::Join"][1][-1]
        if isinstance(last, str) and last.startswith("/"):
            suffix = last
    return ",".join(base_name(r) for r in refs) + suffix


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def by_base_name(template: dict[str, Any], resource_type: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """{base name: (logical id, resource)} for one resource type."""
    return {
        base_name(logical_id): (logical_id, resource)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def joined_text(value: Any) -> str:
    """An Fn::Join (e.g. a dashboard body) as text, each reference written `${LogicalId}`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(joined_text(p) for p in parts)
    if isinstance(value, dict) and "Ref" in value:
        return "${" + str(value["Ref"]) + "}"
    refs = references(value)
    return "${" + ",".join(refs) + "}" if refs else json.dumps(value)
