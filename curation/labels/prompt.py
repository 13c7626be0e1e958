"""Versioned labelling prompts. A new wording is a new version: the cache and the audit log key on
it, so labels from different prompts never mix."""

from __future__ import annotations

import re
from dataclasses import dataclass

RELEVANT, NOT_RELEVANT = 1, 0


@dataclass(frozen=True)
class Prompt:
    version: str
    system: str
    user_template: str  # {domain} and {text}

    def messages(self, text: str, domain: str) -> list[dict]:
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.user_template.format(domain=domain, text=text)}]


_DEFINITION = """A document is COMMERCE-RELEVANT when a shopper, seller or marketplace would use it to \
find, compare, choose, buy, sell, use or review a product or a purchasable service. That includes \
product listings, titles, descriptions, specifications and attribute lists (size, color, material, \
capacity, compatibility), prices and offers, buying guides, comparisons, product reviews and \
ratings, how-to-use or care instructions for a product, and store or brand pages about products.
It is NOT commerce-relevant when products are absent or incidental: news, politics, history, \
speeches, fiction, opinion, general science or health information, recipes without product \
recommendations, event reports, biographies, or navigation and legal boilerplate alone."""

PROMPTS: dict[str, Prompt] = {
    "v1": Prompt(
        "v1",
        "You label web documents for an e-commerce corpus. Answer with one word: Relevant or Not Relevant.",
        "Is this document about shopping or products?\n\nDocument:\n{text}\n\nAnswer:",
    ),
    # v2: an operational definition (the audit of v1 showed recipes, news about companies and
    # biographies labelled Relevant) and a fixed answer format.
    "v2": Prompt(
        "v2",
        "You label web documents for an e-commerce corpus.\n" + _DEFINITION
        + "\nReply with exactly one of: RELEVANT or NOT_RELEVANT. No other words.",
        "FineFineWeb domain: {domain}\n\nDocument:\n<<<\n{text}\n>>>\n\nLabel (RELEVANT or NOT_RELEVANT):",
    ),
}


class UnknownPromptError(ValueError):
    pass


def get_prompt(version: str) -> Prompt:
    try:
        return PROMPTS[version]
    except KeyError:
        raise UnknownPromptError(f"unknown prompt version {version!r}; known: {', '.join(PROMPTS)}") from None


# The whole reply, after trimming whitespace, quotes, a trailing period and markdown emphasis, must be
# one of these; anything else ("Relevant, because...", "Yes") is unparseable and is retried.
_ANSWERS = {"relevant": RELEVANT, "not relevant": NOT_RELEVANT, "not_relevant": NOT_RELEVANT,
            "irrelevant": NOT_RELEVANT}
_TRIM = re.compile(r"^[\s\"'`*]+|[\s\"'`*.]+$")


def parse_answer(reply: str | None) -> int | None:
    """1 (relevant), 0 (not relevant) or None (unparseable)."""
    if not isinstance(reply, str):
        return None
    return _ANSWERS.get(_TRIM.sub("", reply).lower())
