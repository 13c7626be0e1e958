"""Server-free labelers FOR DEMOS AND TESTS ONLY. They stand in for the LLM so the whole chain runs
offline; neither is a substitute for `LLMLabeler` on real data."""

from __future__ import annotations

import re

from .client import LabelStats

# Words that mark product/shopping text; chosen by hand for the demo, not learned.
COMMERCE_TERMS = (
    "price", "prices", "buy", "bought", "purchase", "purchased", "order", "ordered", "shipping", "delivery",
    "warranty", "product", "products", "brand", "model", "size", "color", "colour", "material", "cotton",
    "leather", "stainless", "battery", "charger", "usb", "bluetooth", "inch", "inches", "mm", "cm", "gb", "mb",
    "oz", "lbs", "pack", "set", "review", "reviews", "rating", "stars", "recommend", "camera", "lens", "zoom",
    "screen", "display", "features", "feature", "compatible", "compatibility", "dimensions", "weight",
    "cheap", "expensive", "worth", "money", "store", "seller", "amazon", "ebay", "cart", "discount", "sale",
    "deal", "returned", "refund", "quality", "easy", "durable", "fits", "fit",
)
_TERMS = re.compile(r"\b(?:" + "|".join(COMMERCE_TERMS) + r")\b", re.IGNORECASE)
_WORDS = re.compile(r"\w+")


class RuleLabeler:
    """Keyword labeler (demo/test stand-in for the LLM): relevant when commerce terms make up at
    least `min_ratio` of the words, or at least `min_hits` of them appear."""

    name = "rules"
    model_id = "rules-keyword-v1"

    def __init__(self, min_ratio: float = 0.04, min_hits: int = 4):
        self.min_ratio = min_ratio
        self.min_hits = min_hits

    def label_text(self, text: str) -> int:
        words = len(_WORDS.findall(text)) or 1
        hits = len(_TERMS.findall(text))
        return int(hits / words >= self.min_ratio or hits >= self.min_hits)

    def label(self, texts: list[str], domains: list[str], progress: bool = False):
        stats = LabelStats(requested=len(texts), labelled=len(texts))
        return [self.label_text(t) for t in texts], stats


class ProvenanceLabeler:
    """Labels by where a sample came from (demo/test stand-in): relevant iff its `source` says so.

    For samples built from known e-commerce and general text (the bundled demo corpus records the
    origin of each document in `source_label`); `label` takes the labels of the records."""

    name = "provenance"
    model_id = "provenance"

    def label(self, texts: list[str], domains: list[str], progress: bool = False, sources: list | None = None):
        if sources is None or any(s is None for s in sources):
            raise ValueError("the provenance labeler needs a 'source_label' (0/1) on every sample")
        stats = LabelStats(requested=len(texts), labelled=len(texts))
        return [int(s) for s in sources], stats
