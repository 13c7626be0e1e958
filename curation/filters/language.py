"""English language ID with py3langid, whose model ships inside the wheel: no download at run time
(datatrove's own LanguageFilter fetches a fastText lid model from the Hub, which fails offline)."""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from ..worker_state import LoadedInWorker
from .accounting import TokenAccounting


class OfflineLanguageFilter(LoadedInWorker, TokenAccounting, BaseFilter):
    """Keeps a document when P(language) >= `min_score` for one of `languages`.

    Attribute lists such as "Color: Navy" carry too few n-grams to identify (py3langid gives them
    to Latin or Luxembourgish with low confidence), so texts shorter than `min_chars` are kept
    unless another language wins with confidence >= `short_text_confidence`.
    """

    name = "🌍 Language ID (py3langid, offline)"
    loaded_in_worker = {"_identifier": None}

    def __init__(self, languages: tuple[str, ...] = ("en",), min_score: float = 0.1, min_chars: int = 50,
                 short_text_confidence: float = 0.5, max_chars: int = 2000):
        super().__init__()
        self.languages = tuple(languages)
        self.min_score = min_score
        self.min_chars = min_chars
        self.short_text_confidence = short_text_confidence
        self.max_chars = max_chars  # the first KBs decide; scoring 1 MB pages buys nothing
        self._identifier = None

    @property
    def identifier(self):
        if self._identifier is None:  # built lazily: the model loads in each worker, not in the pickle
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return self._identifier

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text[: self.max_chars]
        ranking = self.identifier.rank(text)
        top, confidence = ranking[0]
        wanted = max(p for lang, p in ranking if lang in self.languages)
        doc.metadata["language"] = top
        doc.metadata["language_score"] = round(float(confidence), 4)
        if wanted >= self.min_score:
            return True
        if len(text.strip()) < self.min_chars and confidence < self.short_text_confidence:
            return True
        return False, f"language_{top}"
