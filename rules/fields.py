"""Lead fields that conditions may name, and how to read them from a lead.

Conditions name fields by dotted path (`company.employees`, `attributes.language`).
Contact details (email, phone, names) are not routable fields: routing on them
would put PII into decision traces. `email_domain` is offered instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import lru_cache
from operator import attrgetter

from rules.events import AttributeValue, Lead

FieldGetter = Callable[[Lead], AttributeValue]

_COMPANY = ("name", "domain", "employees", "annual_revenue", "industry")
_TOP = ("country", "region", "postal_code", "source", "product", "priority")
ROUTABLE = frozenset((*_TOP, "email_domain", *(f"company.{f}" for f in _COMPANY)))


def check_field_path(path: str) -> str:
    """Validate a field path; return it unchanged or raise ValueError."""
    if path in ROUTABLE:
        return path
    if path.startswith("attributes.") and len(path) > len("attributes."):
        return path
    raise ValueError(f"unknown field {path!r}: use one of {', '.join(sorted(ROUTABLE))} or attributes.<name>")


def email_domain(lead: Lead) -> str | None:
    if not lead.email or "@" not in lead.email:
        return None
    return lead.email.rsplit("@", 1)[1].strip().lower() or None


def field_value(lead: Lead, path: str) -> AttributeValue:
    """The value at `path`, or None when absent."""
    return field_getter(path)(lead)


@lru_cache(maxsize=256)
def field_getter(path: str) -> FieldGetter:
    """A function reading `path` from a lead: the path is parsed once, not per lead."""
    if path == "email_domain":
        return email_domain
    if path.startswith("attributes."):
        name = path[len("attributes.") :]
        return lambda lead: lead.attributes.get(name)
    if path.startswith("company."):
        name = path[len("company.") :]

        def company_field(lead: Lead) -> AttributeValue:
            value: AttributeValue = None if lead.company is None else getattr(lead.company, name)
            return value

        return company_field

    top_field: FieldGetter = attrgetter(path)  # no Python frame: top-level fields are read most
    return top_field


# json.dumps(..., sort_keys=True, default=str, separators=(",", ":")) builds an encoder
# like this one on every call; its output is the same. (Not orjson: its bytes differ
# for non-ASCII text, and a stored digest must not change.)
_DIGEST_JSON = json.JSONEncoder(sort_keys=True, default=str, separators=(",", ":"))


def routing_digest(lead: Lead) -> str:
    """A fingerprint of everything routing may read of a lead (contact details aside):
    two versions of a lead with the same digest route the same way."""
    fields: dict[str, object] = {path: get(lead) for path, get in _DIGEST_FIELDS}
    fields["attributes"] = lead.attributes  # the encoder sorts its keys
    return hashlib.sha256(_DIGEST_JSON.encode(fields).encode()).hexdigest()[:16]


_DIGEST_FIELDS = tuple((path, field_getter(path)) for path in sorted(ROUTABLE))
