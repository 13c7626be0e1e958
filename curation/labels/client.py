"""Client for OpenAI-compatible chat-completions servers (vLLM, TGI, llama.cpp serving Phi-4) and
the labeler on top: threads, timeouts, retries with exponential backoff, strict answer parsing."""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx2

from .cache import LabelCache
from .prompt import Prompt, parse_answer


class RetryableError(Exception):
    """Timeouts, connection errors, 429/5xx, bodies that are not the protocol's JSON."""


class LabelServerError(ValueError):
    """The server refused the request for good (4xx other than 429): retrying cannot help."""


class ChatClient:
    """`timeout_s` bounds the whole request (connect, send, wait, read), not each socket read: a server
    that trickles its reply a byte at a time is cut off at the deadline."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 60.0,
                 max_tokens: int = 8):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx2.Client(timeout=timeout_s, headers=headers)

    def _post(self, payload: dict) -> tuple[int, bytes]:
        deadline = time.monotonic() + self.timeout_s
        with self._http.stream("POST", self.url, json=payload) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if time.monotonic() > deadline:
                    raise RetryableError(f"no complete reply within timeout_s={self.timeout_s}")
            return response.status_code, bytes(body)

    def complete(self, messages: list[dict]) -> str:
        payload = {"model": self.model, "messages": messages, "temperature": 0.0, "max_tokens": self.max_tokens}
        try:
            status, body = self._post(payload)
        except httpx2.TimeoutException as error:
            raise RetryableError(f"timeout: {type(error).__name__}") from None
        except httpx2.TransportError as error:
            raise RetryableError(f"connection: {type(error).__name__}") from None
        # Never quote the body: an error page may echo the request, Authorization header included.
        if status == 429 or status >= 500:
            raise RetryableError(f"HTTP {status}")
        if status >= 400:
            raise LabelServerError(f"{self.url} answered HTTP {status} (check base_url, model and the API key)")
        try:
            return json.loads(body)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise RetryableError(f"malformed response body ({len(body)} bytes)") from None

    def close(self) -> None:
        self._http.close()


@dataclass
class LabelStats:
    requested: int = 0
    cached: int = 0
    labelled: int = 0
    unparseable: int = 0  # replies that were not exactly one allowed answer (each retried)
    errors: int = 0  # retryable transport/server errors (each retried)
    failed: int = 0  # items with no label after all retries
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


class LLMLabeler:
    """Labels (text, domain) pairs with `prompt` through `client`; results land in `cache` as they come."""

    name = "openai"

    def __init__(self, client: ChatClient, prompt: Prompt, cache: LabelCache | None = None, workers: int = 8,
                 max_retries: int = 4, backoff_s: float = 1.0, max_chars: int = 4000, seed: int = 0):
        self.client = client
        self.prompt = prompt
        self.cache = cache
        self.workers = workers
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_chars = max_chars  # long pages: the opening decides, and tokens cost money
        self._random = random.Random(seed)

    @property
    def model_id(self) -> str:
        return self.client.model

    def _label_one(self, text: str, domain: str, stats: LabelStats) -> int | None:
        if self.cache is not None:
            cached = self.cache.get(self.client.model, self.prompt.version, text)
            if cached is not None:
                stats.add(cached=1)
                return cached
        messages = self.prompt.messages(text[: self.max_chars], domain)
        for attempt in range(self.max_retries + 1):
            if attempt:
                # exponential backoff with jitter, so a recovering server is not hit by every thread at once
                time.sleep(self.backoff_s * 2 ** (attempt - 1) * (0.5 + self._random.random()))
            try:
                reply = self.client.complete(messages)
            except RetryableError:
                stats.add(errors=1)
                continue
            label = parse_answer(reply)
            if label is None:
                stats.add(unparseable=1)
                continue
            if self.cache is not None:
                self.cache.put(self.client.model, self.prompt.version, text, label, raw=reply)
            stats.add(labelled=1)
            return label
        stats.add(failed=1)
        return None

    def label(self, texts: list[str], domains: list[str],
              progress: bool = False) -> tuple[list[int | None], LabelStats]:
        from tqdm.auto import tqdm

        stats = LabelStats(requested=len(texts))
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [pool.submit(self._label_one, t, d, stats) for t, d in zip(texts, domains)]
            labels = [f.result() for f in tqdm(futures, desc=f"label ({self.client.model})", disable=not progress)]
        return labels, stats
