"""Tokens dropped per reason, next to datatrove's own per-reason document counts."""

from __future__ import annotations

from datatrove.pipeline.filters.base_filter import get_filter_result


class TokenAccounting:
    """Mixin for a BaseFilter: adds `dropped_tokens` and `dropped_tokens_<reason>` stats.

    datatrove counts dropped documents by reason and the token length of forwarded ones; the
    dataset card also wants the tokens each reason removed, which only the filter sees.
    """

    def filter_batch(self, batch):
        results = super().filter_batch(batch)
        for doc, result in zip(batch, results):
            keep, reason = get_filter_result(result)
            if not keep:
                tokens = doc.metadata.get("token_count", 0)
                self.stat_update("dropped_tokens", value=tokens)
                self.stat_update(f"dropped_tokens_{reason or 'unspecified'}", value=tokens)
        return results
