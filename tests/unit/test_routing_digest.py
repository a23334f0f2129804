"""The routing digest stored with every assigned lead never changes for the same lead.

A changed digest would make every untouched lead look edited on its next update and
route it again, so the values are pinned (computed by the first implementation).
"""

from __future__ import annotations

import pytest

from rules.events import Lead
from rules.fields import routing_digest

FULL = {
    "id": "lead-1",
    "country": "de",
    "region": "DE-BY",
    "email": "Jane@Example.COM",
    "company": {"name": "Ünïcode GmbH", "employees": 250, "annual_revenue": 1.5e7, "industry": "saas"},
    "source": "web",
    "attributes": {"zeta": 1, "ä": "ö", "none": None, "flag": True, "ratio": 2.5},
}


@pytest.mark.parametrize(
    ("lead", "digest"),
    [(FULL, "f09089d4bcdd87c8"), ({"id": "lead-2"}, "bb75c2ae2d8f94d0")],
)
def test_routing_digest_is_pinned(lead: dict[str, object], digest: str) -> None:
    """Non-ASCII text, every kind of attribute value and an empty lead hash as they always did."""
    assert routing_digest(Lead.model_validate(lead)) == digest


def test_attribute_order_and_contact_details_do_not_change_the_digest() -> None:
    """Attributes are hashed in key order; email, phone and names are not routing fields."""
    reordered = {**FULL, "attributes": dict(reversed(list(FULL["attributes"].items()))),  # type: ignore[attr-defined]
                 "phone": "+49 89 123", "first_name": "Jane"}  # fmt: skip
    assert routing_digest(Lead.model_validate(reordered)) == "f09089d4bcdd87c8"
