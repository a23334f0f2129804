"""Named accounts: company domains and account ids owned by a rep or a team.

Domains are normalised (case, `www.`, trailing dot) and matched on the lead's
company domain and email domain, walking up subdomains (`eu.sales.acme.com`
finds `acme.com`). Free-mail domains never match: a gmail.com address says
nothing about which company a lead works for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from rules.conditions import Name
from rules.events import Lead
from rules.fields import email_domain

FREE_MAIL = frozenset(
    [
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "yahoo.de",
        "ymail.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "outlook.com",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "t-online.de",
        "yandex.ru",
        "yandex.com",
        "mail.ru",
        "qq.com",
        "163.com",
        "126.com",
        "zoho.com",
        "fastmail.com",
        "hey.com",
        "tutanota.com",
        "mail.com",
    ]
)

Domain = Annotated[
    str, StringConstraints(min_length=3, max_length=253, pattern=r"^[A-Za-z0-9.-]+\.[A-Za-z]{2,}\.?$")
]


def normalise_domain(domain: str) -> str:
    domain = domain.strip().lower()
    if "/" in domain or ":" in domain:  # a URL, a path or a port: keep the host
        if "://" in domain:
            domain = domain.split("://", 1)[1]
        domain = domain.split("/", 1)[0].split(":", 1)[0]
    return domain.rstrip(".").removeprefix("www.")


class Owner(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rep: Name | None = None
    team: Name | None = None

    @model_validator(mode="after")
    def _one(self) -> Owner:
        if (self.rep is None) == (self.team is None):
            raise ValueError("an owner is either a `rep` or a `team`")
        return self


class NamedAccount(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Name
    domains: tuple[Domain, ...] = ()
    account_ids: tuple[str, ...] = Field(default=(), description="matched on lead.attributes.account_id")
    owner: Owner

    @model_validator(mode="after")
    def _keys(self) -> NamedAccount:
        if not self.domains and not self.account_ids:
            raise ValueError("a named account needs `domains` or `account_ids`")
        for domain in self.domains:
            if normalise_domain(domain) in FREE_MAIL:
                raise ValueError(f"{domain!r} is a free-mail domain and would never match")
        return self


@dataclass(frozen=True, slots=True)
class AccountIndex:
    by_domain: dict[str, NamedAccount]
    by_account_id: dict[str, NamedAccount]

    @classmethod
    def build(cls, accounts: tuple[NamedAccount, ...]) -> AccountIndex:
        by_domain: dict[str, NamedAccount] = {}
        by_id: dict[str, NamedAccount] = {}
        for account in accounts:
            for domain in account.domains:
                by_domain.setdefault(normalise_domain(domain), account)
            for account_id in account.account_ids:
                by_id.setdefault(account_id, account)
        return cls(by_domain, by_id)

    def match(self, lead: Lead) -> NamedAccount | None:
        account_id = lead.attributes.get("account_id")
        if isinstance(account_id, str | int) and not isinstance(account_id, bool):
            found = self.by_account_id.get(str(account_id))
            if found is not None:
                return found
        company = lead.company.domain if lead.company else None
        found = self._by_domain(company) if company else None
        if found is None:
            email = email_domain(lead)
            if email and email != company:  # the same domain twice is common
                found = self._by_domain(email)
        return found

    def _by_domain(self, raw: str) -> NamedAccount | None:
        """The account of `raw` or of the nearest parent domain listed (`eu.acme.com`, then `acme.com`)."""
        domain = normalise_domain(raw)
        if domain in FREE_MAIL:
            return None
        while "." in domain:  # a bare top-level name never matches
            found = self.by_domain.get(domain)
            if found is not None:
                return found
            domain = domain[domain.index(".") + 1 :]
        return None
