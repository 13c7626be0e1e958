"""Relevance score from the per-domain fastText classifier and the domain's threshold (paper §3:
"a domain-wise threshold on these scores yields the retained subset")."""

from __future__ import annotations

import os

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from ..classifier import load_classifier
from ..worker_state import LoadedInWorker
from .accounting import TokenAccounting


class DomainScoreFilter(LoadedInWorker, TokenAccounting, BaseFilter):
    """Writes `score` into the metadata; drops documents of a filtered domain below its threshold.

    Directly selected domains (Table 1, right) are kept whole; they are scored when a classifier
    for them exists (score stays None otherwise). A filtered domain without a classifier is an
    error at start-up, not a silent pass or drop.
    """

    name = "🎯 Domain relevance score"
    loaded_in_worker = {"_models": {}}

    def __init__(self, models_dir: str, filter_domains: list[str], direct_domains: list[str]):
        super().__init__()
        self.models_dir = models_dir
        self.filter_domains = set(filter_domains)
        self.direct_domains = set(direct_domains)
        self._models: dict = {}
        missing = [d for d in sorted(self.filter_domains) if not os.path.exists(os.path.join(models_dir, f"{d}.bin"))]
        if missing:
            raise FileNotFoundError(
                f"no classifier for filtered domain(s) {', '.join(missing)} in {models_dir} "
                "(run `rexbert curate distill` first)"
            )

    def _model(self, domain: str):
        if domain not in self._models:  # loaded lazily, once per worker
            try:
                self._models[domain] = load_classifier(self.models_dir, domain)
            except FileNotFoundError:
                self._models[domain] = None
        return self._models[domain]

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        domain = doc.metadata.get("domain")
        if domain not in self.filter_domains and domain not in self.direct_domains:
            return False, "domain_not_selected"
        classifier = self._model(domain)
        score = classifier.score(doc.text) if classifier is not None else None
        doc.metadata["score"] = score
        if domain in self.direct_domains:
            return True
        if score < classifier.threshold:
            return False, "below_threshold"
        return True
