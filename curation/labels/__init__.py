"""Binary commerce-relevance labels: an OpenAI-compatible chat client (the real labeler), a cache,
versioned prompts, and two server-free labelers for demos and tests (`RuleLabeler`, `ProvenanceLabeler`)."""

from .cache import LabelCache
from .client import ChatClient, LabelStats, LLMLabeler
from .prompt import PROMPTS, Prompt, get_prompt, parse_answer
from .rules import ProvenanceLabeler, RuleLabeler

__all__ = ["LabelCache", "ChatClient", "LabelStats", "LLMLabeler", "PROMPTS", "Prompt", "get_prompt",
           "parse_answer", "ProvenanceLabeler", "RuleLabeler", "make_labeler"]


def make_labeler(backend: str, cfg, cache_path: str | None = None):
    """`openai`: an LLMLabeler on cfg.base_url/cfg.model; `rules` / `provenance`: the demo labelers."""
    if backend == "rules":
        return RuleLabeler()
    if backend == "provenance":
        return ProvenanceLabeler()
    if backend != "openai":
        raise ValueError(f"unknown labeler backend {backend!r}: expected openai, rules or provenance")
    import os

    client = ChatClient(cfg.base_url, cfg.model, api_key=os.environ.get(cfg.api_key_env), timeout_s=cfg.timeout_s)
    cache = LabelCache(cache_path) if cache_path else None
    return LLMLabeler(client, get_prompt(getattr(cfg, "prompt_version", "v2")), cache=cache,
                      workers=getattr(cfg, "workers", 8), max_retries=getattr(cfg, "max_retries", 4),
                      backoff_s=getattr(cfg, "backoff_s", 1.0), max_chars=getattr(cfg, "max_chars", 4000))
