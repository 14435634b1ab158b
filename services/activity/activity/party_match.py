"""Is the party named on a contract the lead's company? Pure.

The project's one company-name comparison (`salesrail.text`): legal forms, place prefixes and
brackets dropped, then rapidfuzz; two names in different cities score low whatever the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from salesrail.text import company_similarity


@dataclass(frozen=True)
class PartyMatch:
    party_name: str
    company_name: str | None  # None: the lead's company is not known here yet
    score: float  # 0..100
    threshold: float

    @property
    def matched(self) -> bool:
        return self.company_name is not None and self.score >= self.threshold

    def explain(self) -> str:
        if self.company_name is None:
            return "the lead's company is not known yet, so the contract's party cannot be checked"
        verdict = "matches" if self.matched else "does not match"
        return (
            f"the contract's party {self.party_name!r} {verdict} the lead's company "
            f"{self.company_name!r} (similarity {self.score:.0f}, needed {self.threshold:.0f})"
        )


def match_party(party_name: str, company_name: str | None, *, threshold: float) -> PartyMatch:
    score = company_similarity(party_name, company_name) if company_name else 0.0
    return PartyMatch(party_name.strip(), company_name, round(score, 1), threshold)
