"""Boilerplate and quality filters tuned for product text.

Stock Gopher/C4 thresholds were set for prose: they drop spec sheets and attribute lists (few
stop words, no terminal punctuation, many numeric tokens, short documents). The tuned values
here were measured on the bundled e-commerce samples (see curation/README.md,
"Quality thresholds"); the datatrove filters themselves are reused unchanged.
"""

from __future__ import annotations

import re

from datatrove.data import Document
from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils.word_tokenizers import WordTokenizer, simple_span_tokenize

from .accounting import TokenAccounting

_WORD = re.compile(r"\w+(?:[-'.,]\w+)*|[^\w\s]")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"'”)]?|\n|$)")


class RegexWordTokenizer(WordTokenizer):
    """Regex words and sentences for English text (already language-filtered).

    datatrove's English tokenizer is spaCy's blank pipeline; on product text its decisions barely
    differ for these statistics (word counts, mean length, stop words) and it costs most of a
    filter's time. Numbers keep their separators ("1,299.99", "USB-C") as one word.
    """

    def __init__(self):
        super().__init__("en")

    def word_tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return list(simple_span_tokenize(text, self.sent_tokenize(text)))


# Measured on the bundled e-commerce samples; each differs from the stock default for a reason.
PRODUCT_GOPHER = dict(
    min_doc_words=8,  # stock 50: titles + a few bullets are complete product records
    max_doc_words=100_000,
    min_avg_word_length=2,  # stock 3: sizes, units and model numbers are short ("XL", "5 oz")
    max_avg_word_length=12,  # stock 10: part numbers and compound product names run long
    max_symbol_word_ratio=0.1,
    max_bullet_lines_ratio=None,  # stock 0.9: feature bullets are the point of a listing
    max_ellipsis_lines_ratio=0.3,
    max_non_alpha_words_ratio=0.5,  # stock 0.8 (alphabetic share): specs are half numbers
    min_stop_words=1,  # stock 2: attribute lists have almost none
)
PRODUCT_C4 = dict(
    split_paragraph=True,
    remove_citations=True,
    filter_no_terminal_punct=False,  # stock True: removes every bullet and spec line
    min_num_sentences=1,  # stock 5: a listing is often one or two sentences plus attributes
    min_words_per_line=1,  # stock 3: "Color: Navy" is a useful line
    max_word_length=1000,
    filter_lorem_ipsum=True,
    filter_javascript=True,
    filter_curly_bracket=True,
    filter_policy=True,
)


class ProductGopherFilter(TokenAccounting, GopherQualityFilter):
    name = "🥇 Gopher Quality (product-tuned)"

    def __init__(self, **overrides):
        super().__init__(**{**PRODUCT_GOPHER, **overrides, "language": RegexWordTokenizer()})


class ProductC4Filter(TokenAccounting, C4QualityFilter):
    name = "⛰ C4 Quality (product-tuned)"

    def __init__(self, **overrides):
        super().__init__(**{**PRODUCT_C4, **overrides, "language": RegexWordTokenizer()})


# Site furniture that is never product content: lines matching these are removed, and a page made
# mostly of them is dropped. ("Add to cart" is commerce, so it is deliberately absent.)
BOILERPLATE_PATTERNS = (
    r"\bcookies?\b.*\b(use|accept|consent|policy|settings)\b",
    r"\ball rights reserved\b",
    r"^\s*(©|copyright)\b",
    r"\b(subscribe|sign up) (to|for) our newsletter\b",
    r"\bprivacy policy\b|\bterms (of use|and conditions|& conditions)\b",
    r"\b(skip to (main )?content|back to top|toggle navigation)\b",
    r"\b(log ?in|sign ?in) (or|/) (register|sign ?up|create an account)\b",
    r"\bfollow us on\b|\bshare (this|on) (facebook|twitter|pinterest)\b",
    r"\benable javascript\b|\byour browser does not support\b",
)


# Advertising around product text (paper §3 removes advertisements): sponsored slots, affiliate
# disclosures, calls to click, coupon codes, cross-sell carousels. Product facts ("Free shipping",
# "Add to cart", prices) stay; measured on the bundled real product text (curation/README.md).
ADVERTISEMENT_PATTERNS = (
    r"^\s*(sponsored|advertisement|advertising|ad|ads|promoted)\s*(:|$|\||-|·)",
    r"\bsponsored (products?|links?|content|results?|ads?)\b",
    r"\b(as an amazon associate|affiliate (link|commission)|we (may )?earn (a )?(small )?commission)\b",
    r"\bclick here (to|for)\b|\bclick (the )?(link|banner)\b",
    r"\b(use|enter|apply) (promo |coupon |discount )?code\b.*\b(off|save|discount)\b",
    r"\b(customers who (bought|viewed) this item also|you may also like|related products|frequently bought "
    r"together|recommended for you|shop (similar|related) items)\b",
    r"\b(limited[- ]time (offer|deal)|deal of the day|today'?s deals?|hot deals?|lowest price ever)\b.*!",
    r"\b(shop now|buy now|order now|get yours)\b\s*[!>»]",
)


class BoilerplateFilter(TokenAccounting, BaseFilter):
    """Removes lines matching `patterns`; drops the page when they make up more than `max_ratio` of its lines."""

    name = "🧹 Boilerplate"
    reason = "boilerplate"

    def __init__(self, patterns: tuple[str, ...] = BOILERPLATE_PATTERNS, max_boilerplate_ratio: float = 0.5):
        super().__init__()
        self.patterns = tuple(patterns)
        self.max_boilerplate_ratio = max_boilerplate_ratio
        self._regex = re.compile("|".join(f"(?:{p})" for p in self.patterns), re.IGNORECASE)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        lines = [line for line in doc.text.splitlines() if line.strip()]
        if not lines:
            return False, f"{self.reason}_empty"
        kept = [line for line in lines if not self._regex.search(line)]
        removed = len(lines) - len(kept)
        if removed / len(lines) > self.max_boilerplate_ratio:
            return False, self.reason
        if removed:
            self.stat_update(f"{self.reason}_lines_removed", value=removed)
            doc.text = "\n".join(kept)
        return True


class AdvertisementFilter(BoilerplateFilter):
    """The same line rule with advertising patterns: ad lines removed, ad pages dropped."""

    name = "📢 Advertisement"
    reason = "advertisement"

    def __init__(self, patterns: tuple[str, ...] = ADVERTISEMENT_PATTERNS, max_ratio: float = 0.5):
        super().__init__(patterns, max_ratio)
