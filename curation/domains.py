"""Paper Table 1 as data: the FineFineWeb domains Ecom-niverse draws from.

FineFineWeb (`m-a-p/FineFineWeb`) stores each domain in its own folder named by a lowercase id
(`hobby/hobby_000001.jsonl`, `music_and_dance/...`); `finefineweb_id` is that folder name.
"""

from __future__ import annotations

from dataclasses import dataclass

FINEFINEWEB_REPO = "m-a-p/FineFineWeb"


@dataclass(frozen=True)
class Domain:
    name: str  # as printed in the paper
    finefineweb_id: str
    needs_filter: bool  # True: classifier + threshold; False: taken whole ("directly selected")


# Left block of Table 1: "Filter required"; right block: "Directly selected".
DOMAINS: tuple[Domain, ...] = (
    Domain("Hobby", "hobby", True),
    Domain("News", "news", True),
    Domain("Health", "health", True),
    Domain("Entertainment", "entertainment", True),
    Domain("Travel", "travel", True),
    Domain("Food", "food", True),
    Domain("Automotive", "automotive", True),
    Domain("Sports", "sports", True),
    Domain("Music & Dance", "music_and_dance", True),
    Domain("Fashion", "fashion", False),
    Domain("Beauty", "beauty", False),
    Domain("Celebrity", "celebrity", False),
    Domain("Movie", "movie", False),
    Domain("Photo", "photo", False),
    Domain("Painting", "painting", False),
)

_BY_ID = {d.finefineweb_id: d for d in DOMAINS}


class UnknownDomainError(ValueError):
    pass


def get_domain(domain_id: str) -> Domain:
    try:
        return _BY_ID[domain_id]
    except KeyError:
        known = ", ".join(sorted(_BY_ID))
        raise UnknownDomainError(f"unknown domain {domain_id!r}; Table 1 domains: {known}") from None


def filter_domains() -> list[str]:
    return [d.finefineweb_id for d in DOMAINS if d.needs_filter]


def direct_domains() -> list[str]:
    return [d.finefineweb_id for d in DOMAINS if not d.needs_filter]


def resolve(domain_ids: list[str] | None) -> list[Domain]:
    """Table 1 domains by id (all of them when None); unknown ids are an error that lists the known ones."""
    return list(DOMAINS) if not domain_ids else [get_domain(d) for d in domain_ids]
