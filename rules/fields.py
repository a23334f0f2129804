"""Lead fields that conditions may name, and how to read them from a lead.

Conditions name fields by dotted path (`company.employees`, `attributes.language`).
Contact details (email, phone, names) are not routable fields: routing on them
would put PII into decision traces. `email_domain` is offered instead.
"""

from __future__ import annotations

from rules.events import AttributeValue, Lead

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
    if path == "email_domain":
        return email_domain(lead)
    if path.startswith("attributes."):
        return lead.attributes.get(path[len("attributes.") :])
    if path.startswith("company."):
        if lead.company is None:
            return None
        value: AttributeValue = getattr(lead.company, path[len("company.") :])
        return value
    top: AttributeValue = getattr(lead, path)
    return top
