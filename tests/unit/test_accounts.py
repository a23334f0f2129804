"""Named accounts: domain normalisation, subdomain walk, email fallback, free mail, account ids."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rules.accounts import FREE_MAIL, AccountIndex, NamedAccount, normalise_domain
from rules.events import Lead

PROPERTY = settings(database=None, deadline=None, max_examples=80)


def lead(company_domain: str | None = None, email: str | None = None, **attributes: Any) -> Lead:
    company = {"domain": company_domain} if company_domain is not None else None
    return Lead.model_validate({"id": "lead-1", "company": company, "email": email, "attributes": attributes})


def account(account_id: str, *domains: str, ids: tuple[str, ...] = (), owner: str = "ann") -> NamedAccount:
    return NamedAccount.model_validate(
        {"id": account_id, "domains": list(domains), "account_ids": list(ids), "owner": {"rep": owner}}
    )


ACCOUNTS = (
    account("acme", "WWW.Acme.COM."),
    account("acme-eu", "eu.acme.com"),
    account("beta", "beta.io", ids=("CRM-42",)),
    account("gamma", ids=("G-7",)),
    account("delta", "delta.co.uk"),
)
INDEX = AccountIndex.build(ACCOUNTS)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("acme.com", "acme.com"),
        ("WWW.Acme.COM.", "acme.com"),
        ("  Acme.com  ", "acme.com"),
        ("https://www.acme.com/about", "acme.com"),
        ("http://Sales.Acme.com", "sales.acme.com"),
        ("acme.com/pricing?x=1", "acme.com"),
        ("www.www.acme.com", "www.acme.com"),
        ("www2.acme.com", "www2.acme.com"),
    ],
)
def test_normalise_domain(raw: str, normal: str) -> None:
    """Case, surrounding space, a scheme, a path, one leading `www.` and a trailing dot are dropped."""
    assert normalise_domain(raw) == normal


MATCHES: list[tuple[str, Lead, str | None]] = [
    ("listed with www and trailing dot", lead("acme.com"), "acme"),
    ("lead domain written loosely", lead("WWW.ACME.com."), "acme"),
    ("lead domain as a URL", lead("https://www.acme.com/contact"), "acme"),
    ("subdomain walks up", lead("eu.sales.acme.com"), "acme"),
    ("most specific listed domain wins", lead("sales.eu.acme.com"), "acme-eu"),
    ("exact subdomain account", lead("eu.acme.com"), "acme-eu"),
    ("a longer name is not a subdomain", lead("notacme.com"), None),
    ("listed domain inside another name", lead("acme.com.evil.io"), None),
    ("public suffix alone never matches", lead("co.uk"), None),
    ("two-label public suffix walk", lead("shop.delta.co.uk"), "delta"),
    ("email domain when no company", lead(email="jane@eu.acme.com"), "acme-eu"),
    ("email domain is lower-cased", lead(email="Jane@ACME.COM"), "acme"),
    ("company domain before email", lead("beta.io", email="jane@acme.com"), "beta"),
    ("unknown company, email matches", lead("startup.dev", email="jane@beta.io"), "beta"),
    ("free-mail email never matches", lead(email="jane@gmail.com"), None),
    ("free-mail company domain is skipped", lead("gmail.com", email="jane@acme.com"), "acme"),
    ("nothing to go on", lead(), None),
    ("account_id attribute", lead(account_id="G-7"), "gamma"),
    ("account_id wins over domain", lead("acme.com", account_id="CRM-42"), "beta"),
    ("account_id wins over email", lead(email="jane@acme.com", account_id="G-7"), "gamma"),
    ("unknown account_id falls back to domains", lead("acme.com", account_id="nope"), "acme"),
    ("account ids are exact", lead(account_id="g-7"), None),
]


@pytest.mark.parametrize(
    ("subject", "expected"), [row[1:] for row in MATCHES], ids=[row[0] for row in MATCHES]
)
def test_named_account_match(subject: Lead, expected: str | None) -> None:
    """account_id first, then the company domain, then the email domain, each walking up subdomains."""
    found = INDEX.match(subject)
    assert (found.id if found else None) == expected


LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)


@PROPERTY
@given(labels=st.lists(LABEL, max_size=4), upper=st.booleans(), www=st.booleans(), dot=st.booleans())
def test_any_subdomain_of_a_listed_domain_matches(
    labels: list[str], upper: bool, www: bool, dot: bool
) -> None:
    """Every subdomain of beta.io, however written, is the beta account (no more specific one is listed)."""
    domain = ".".join([*labels, "beta.io"])
    written = ("www." if www else "") + (domain.upper() if upper else domain) + ("." if dot else "")
    found = INDEX.match(lead(written))
    assert found is not None
    assert found.id == "beta"
    email_found = INDEX.match(lead(email=f"someone@{domain}"))
    assert email_found is not None
    assert email_found.id == "beta"


@PROPERTY
@given(head=LABEL, labels=st.lists(LABEL, max_size=2))
def test_a_name_ending_in_a_listed_domain_without_a_dot_never_matches(head: str, labels: list[str]) -> None:
    """`xbeta.io` (and its subdomains) is not `beta.io`: the walk goes label by label."""
    domain = ".".join([*labels, f"{head}beta.io"])
    assert INDEX.match(lead(domain)) is None


@PROPERTY
@given(free=st.sampled_from(sorted(FREE_MAIL)), user=LABEL)
def test_free_mail_never_matches(free: str, user: str) -> None:
    """A free-mail email or company domain never finds an account, whatever accounts exist."""
    assert INDEX.match(lead(email=f"{user}@{free}")) is None
    assert INDEX.match(lead(free, email=f"{user}@{free.upper()}")) is None


@pytest.mark.parametrize("free", ["gmail.com", "WWW.GMail.com.", "outlook.com", "yahoo.co.uk", "gmx.de"])
def test_listing_a_free_mail_domain_is_an_error(free: str) -> None:
    """A named account may not list a free-mail domain (it would never match): validation fails."""
    with pytest.raises(ValidationError, match="free-mail domain and would never match"):
        account("x", "acme.com", free)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"id": "x", "owner": {"rep": "ann"}}, "needs `domains` or `account_ids`"),
        ({"id": "x", "domains": ["acme"], "owner": {"rep": "ann"}}, "pattern"),
        ({"id": "x", "domains": ["acme.com/x"], "owner": {"rep": "ann"}}, "pattern"),
        ({"id": "x", "domains": ["acme.com"], "owner": {}}, "either a `rep` or a `team`"),
        (
            {"id": "x", "domains": ["acme.com"], "owner": {"rep": "a", "team": "t"}},
            "either a `rep` or a `team`",
        ),
        ({"id": "x", "domains": ["acme.com"]}, "Field required"),
        ({"id": "x", "account_ids": [42], "owner": {"team": "t"}}, "valid string"),
    ],
)
def test_invalid_named_accounts_are_rejected(spec: dict[str, Any], message: str) -> None:
    """A named account needs a key to match on, well-formed domains and exactly one owner."""
    with pytest.raises(ValidationError) as info:
        NamedAccount.model_validate(spec)
    assert message in str(info.value)
