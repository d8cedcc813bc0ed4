"""A small evaluator of IAM policy statements, for what moto does not enforce (bucket policies).

It follows AWS's evaluation logic for the parts the stack's policies use: an explicit Deny wins, then
an Allow, otherwise the request is implicitly denied. Action and Resource match with `*` and `?`
wildcards (actions case-insensitively); conditions support the Bool, StringEquals and StringLike
operators, each key ANDed, the values of one key ORed.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

ALLOWED, DENIED, IMPLICITLY_DENIED = "allowed", "explicitly denied", "implicitly denied"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str, case_sensitive: bool) -> bool:
    for pattern in _as_list(patterns):
        if case_sensitive and fnmatch.fnmatchcase(value, pattern):
            return True
        if not case_sensitive and fnmatch.fnmatchcase(value.lower(), pattern.lower()):
            return True
    return False


def _condition_holds(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            if key not in context:
                return False
            actual = context[key]
            if operator == "Bool":
                ok = any(actual.lower() == str(value).lower() for value in _as_list(expected))
            elif operator == "StringEquals":
                ok = actual in _as_list(expected)
            elif operator == "StringLike":
                ok = _matches(expected, actual, case_sensitive=True)
            else:
                raise NotImplementedError(f"condition operator {operator}")
            if not ok:
                return False
    return True


def evaluate(policy: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str] | None = None) -> str:
    """The decision of `policy` on `action` against `resource`, given the request's context keys."""
    context = context or {}
    decision = IMPLICITLY_DENIED
    for statement in _as_list(policy["Statement"]):
        if not _matches(statement["Action"], action, case_sensitive=False):
            continue
        if not _matches(statement["Resource"], resource, case_sensitive=True):
            continue
        if not _condition_holds(statement.get("Condition", {}), context):
            continue
        if statement["Effect"] == "Deny":
            return DENIED
        decision = ALLOWED
    return decision
