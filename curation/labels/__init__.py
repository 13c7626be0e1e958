"""Binary commerce-relevance labels: an OpenAI-compatible chat client (the real labeler), a cache,
versioned prompts, and two server-free labelers for demos and tests (`RuleLabeler`, `ProvenanceLabeler`)."""

from .cache import LabelCache
from .client import ChatClient, LabelStats, LLMLabeler
from .prompt import PROMPTS, Prompt, get_prompt, parse_answer
from .rules import ProvenanceLabeler, RuleLabeler

__all__ = ["LabelCache", "ChatClient", "LabelStats", "LLMLabeler", "PROMPTS", "Prompt", "get_prompt",
           "parse_answer", "ProvenanceLabeler", "RuleLabeler", "make_labeler"]


def make_labeler(cfg, cache_path: str | None = None):
    """The labeler `cfg` (a `curation.config.LabelerConfig`, its backend checked when the config was
    loaded) describes: `openai` is an LLMLabeler on cfg.base_url / cfg.model; `rules` / `provenance` are
    the demo labelers."""
    if cfg.backend != "openai":
        return {"rules": RuleLabeler, "provenance": ProvenanceLabeler}[cfg.backend]()
    import os

    client = ChatClient(cfg.base_url, cfg.model, api_key=os.environ.get(cfg.api_key_env), timeout_s=cfg.timeout_s)
    cache = LabelCache(cache_path) if cache_path else None
    return LLMLabeler(client, get_prompt(cfg.prompt_version), cache=cache, workers=cfg.workers,
                      max_retries=cfg.max_retries, backoff_s=cfg.backoff_s, max_chars=cfg.max_chars)
