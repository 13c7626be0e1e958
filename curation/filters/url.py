"""URL filtering with datatrove's URLFilter and the blocklists inside its wheel (UT1 adult/malware
domains and URLs, LDNOOBW-derived banned words and phrases), plus e-commerce additions from
`curation/data/`: counterfeit, pharma and coupon-spam hosts, words and phrases. Offline: the public
suffix list comes from tldextract's bundled snapshot, never the network."""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.filters import URLFilter

from .accounting import TokenAccounting
from .profanity import BlocklistError, read_list


class ProductURLFilter(TokenAccounting, URLFilter):
    """Drop reasons are datatrove's, prefixed `url_` (url_domain, url_hard_blacklisted, ...).
    A document without a URL is kept (and counted as `no_url`)."""

    name = "😈 URL filter (datatrove lists + e-commerce)"

    def __init__(self, domain_files: tuple[str, ...] = (), word_files: tuple[str, ...] = (),
                 phrase_files: tuple[str, ...] = (), soft_word_threshold: int = 2, use_packaged_lists: bool = True):
        from tldextract import TLDExtract

        def lists(packaged: str, paths: tuple[str, ...]) -> list[str]:
            return (read_list(packaged=packaged) if use_packaged_lists else []) + [
                entry for path in paths for entry in read_list(path)]

        # datatrove's phrases match anywhere in the URL with separators removed: a few are ordinary
        # product names ("golden-shower-head", "big-black-trash-bags"); those are allowed back
        self.allowed_phrases = {p.replace(" ", "") for p in lists("url_allowed_phrases.txt", ())}
        super().__init__(soft_word_threshold=soft_word_threshold,
                         extra_domains=lists("url_blocklist.txt", domain_files),
                         banned_words=lists("url_banned_words.txt", word_files),
                         banned_subwords=lists("url_banned_phrases.txt", phrase_files),
                         use_integrated_lists=use_packaged_lists)
        # the default TLDExtract() fetches the public suffix list over HTTP first
        self.tldextractor = TLDExtract(suffix_list_urls=())

    def download_data(self):
        # "download" extracts the tarball shipped in datatrove's wheel into the HF assets cache
        if self._downloaded:
            return
        try:
            super().download_data()
        except Exception as error:
            raise BlocklistError(f"datatrove's bundled URL blocklist could not be extracted or read: {error} "
                                 "(check that HF_ASSETS_CACHE / ~/.cache/huggingface is writable)") from error
        if self.banned_subwords & self.allowed_phrases:
            import ahocorasick

            self.banned_subwords -= self.allowed_phrases
            self.banned_subwords_automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
            for i, word in enumerate(sorted(self.banned_subwords)):
                self.banned_subwords_automaton.add_word(word, i)
            self.banned_subwords_automaton.make_automaton()

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if not doc.metadata.get("url"):
            self.stat_update("no_url")
            return True
        result = super().filter(doc)
        return result if result is True else (False, f"url_{result[1]}")
