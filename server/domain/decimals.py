"""Exact decimals as people write them: money, rates and limits in messages, the audit
log and the API's decimal strings."""

from __future__ import annotations

from decimal import Decimal


def plain(value: Decimal) -> str:
    """No exponent, no trailing zeros, no sign on zero: 10.000000 -> "10",
    0.0100000000 -> "0.01", 0E-10 and -0 -> "0"."""
    return format(value.normalize(), "f") if value else "0"
