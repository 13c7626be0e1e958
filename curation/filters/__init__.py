"""datatrove filter steps for Ecom-niverse: each small, each counting drops by reason (documents and tokens)."""

from .accounting import TokenAccounting
from .language import OfflineLanguageFilter
from .profanity import BlocklistFilter
from .quality import AdvertisementFilter, BoilerplateFilter, ProductC4Filter, ProductGopherFilter, RegexWordTokenizer
from .score import DomainScoreFilter
from .url import ProductURLFilter

__all__ = [
    "TokenAccounting", "OfflineLanguageFilter", "BlocklistFilter", "BoilerplateFilter", "ProductC4Filter",
    "ProductGopherFilter", "RegexWordTokenizer", "DomainScoreFilter", "AdvertisementFilter", "ProductURLFilter",
]
