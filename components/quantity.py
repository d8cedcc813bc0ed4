"""Kubernetes memory quantities, parsed exactly (no floats) and rendered back canonically."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_SUB_UNIT = {"m": Decimal("1e-3"), "u": Decimal("1e-6"), "n": Decimal("1e-9")}

# The grammar of resource.Quantity: a signed decimal number, then a binary suffix, a decimal
# suffix or a decimal exponent.
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<decimal>[kMGTPE])|(?P<sub>[mun])|(?P<exp>[eE][+-]?\d+))?$"
)

MI = 2**20


class QuantityError(ValueError):
    """A value that is not a positive, whole number of bytes written as a Kubernetes quantity."""


@dataclass(frozen=True, order=True)
class Memory:
    """An amount of memory in whole bytes, as given in the stack's configuration."""

    bytes: int

    @classmethod
    def parse(cls, raw: object) -> Memory:
        text = _as_text(raw)
        match = _QUANTITY.match(text)
        if not match:
            raise QuantityError(
                f"{text!r} is not a Kubernetes memory quantity; write a number with a binary suffix "
                "such as 768Mi or 2Gi (Ki, Mi, Gi, Ti; decimal k, M, G also work; 'MB' does not)"
            )
        try:
            number = Decimal(match["number"])
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
            raise QuantityError(f"{text!r} is not a number") from exc
        if match["binary"]:
            value = number * _BINARY[match["binary"]]
        elif match["decimal"]:
            value = number * _DECIMAL[match["decimal"]]
        elif match["sub"]:
            value = number * _SUB_UNIT[match["sub"]]
        elif match["exp"]:
            value = number.scaleb(int(match["exp"][1:]))
        else:
            value = number
        if value <= 0:
            raise QuantityError(f"{text!r} must be a positive amount of memory, such as 768Mi")
        if value != value.to_integral_value():
            raise QuantityError(f"{text!r} is not a whole number of bytes; use a value such as 768Mi")
        return cls(int(value))

    @classmethod
    def mebibytes(cls, count: int) -> Memory:
        return cls(count * MI)

    @property
    def mib(self) -> int:
        """Whole mebibytes, rounded down."""
        return self.bytes // MI

    def quantity(self) -> str:
        """The canonical Kubernetes spelling: the largest binary unit that divides it exactly."""
        for suffix, factor in reversed(_BINARY.items()):
            if self.bytes % factor == 0:
                return f"{self.bytes // factor}{suffix}"
        return str(self.bytes)

    def __add__(self, other: Memory) -> Memory:
        return Memory(self.bytes + other.bytes)

    def __str__(self) -> str:
        return self.quantity()


def below_minimum(key: str, size: Memory, minimum: Memory, why: str) -> tuple[str, str] | None:
    """A settings problem for `key` if `size` is under `minimum`; `why` says what needs that much."""
    if size >= minimum:
        return None
    return key, f"{size} is below the minimum {minimum}{why}; raise {key} to {minimum} or more"


def _as_text(raw: object) -> str:
    # Under the mock runtime numbers arrive as floats; 4294967296.0 must still read as bytes.
    if isinstance(raw, bool):
        raise QuantityError(f"{raw!r} is not a memory quantity")
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw).strip()
