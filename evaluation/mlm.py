"""Top-k masked-token recovery (paper §6.1, Table 3) for any `AutoModelForMaskedLM`.

Masks are chosen once per text, over *words*, as spans (span-aware masking) until 15% of the
words are masked, from a generator seeded by (seed, column, row): every model sees the same masked
words, and models that share a tokenizer (RexBERT, ModernBERT, Ettin) the same masked tokens. Each
model masks the tokens of its own tokenizer that overlap a masked word, after truncating the text
to the block size, and is scored on whether the original token is among its top-k predictions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from rexbert.core.arguments import check_count, check_rate

from .data import EvaluationDataError, clean_text, column, load_split
from .loading import load_pretrained, load_tokenizer, runs_rexbert_code
from .metrics import top_k_from_ranks
from .results import MASKED_TOKEN_RECOVERY, EvalResult

_WORD = re.compile(r"\S+")
MEAN_SPAN_WORDS = 2.0  # span lengths ~ 1 + Poisson(1): single words and short phrases like "64 GB"


@dataclass(frozen=True)
class MaskedText:
    text: str
    spans: tuple[tuple[int, int], ...]  # character spans of the masked words


def choose_masked_words(text: str, rate: float, seed: int, stream: Sequence[int]) -> MaskedText:
    """Masks whole-word spans of `text` until `rate` of its words are masked; deterministic in (seed, stream)."""
    check_rate("rate", rate)  # above 1 the loop below could never reach its target
    words = [m.span() for m in _WORD.finditer(text)]
    target = math.ceil(rate * len(words))
    rng = np.random.default_rng([seed, *stream])
    masked = np.zeros(len(words), dtype=bool)
    while masked.sum() < target:
        start = int(rng.integers(len(words)))
        length = min(1 + int(rng.poisson(MEAN_SPAN_WORDS - 1)), target - int(masked.sum()))
        masked[start:start + length] = True
    return MaskedText(text, tuple(words[i] for i in np.flatnonzero(masked)))


def mask_tokens(masked: MaskedText, tokenizer, block_size: int) -> tuple[list[int], list[int]] | None:
    """(input ids with [MASK]s, labels with -100 elsewhere) for one text, truncated to `block_size`."""
    encoded = tokenizer(masked.text, truncation=True, max_length=block_size, return_offsets_mapping=True)
    ids, labels = list(encoded["input_ids"]), [-100] * len(encoded["input_ids"])
    special = set(tokenizer.all_special_ids)
    for position, (start, end) in enumerate(encoded["offset_mapping"]):
        if ids[position] in special or start == end:
            continue
        if any(start < span_end and span_start < end for span_start, span_end in masked.spans):
            labels[position], ids[position] = ids[position], tokenizer.mask_token_id
    return (ids, labels) if any(label != -100 for label in labels) else None


def load_masked_lm(name: str, implementation: str = "auto", trust_remote_code: bool = False):
    """The model and tokenizer of `name`. ModernBERT-architecture checkpoints run on RexBERT's
    unpadded implementation with `implementation="auto"` (identical outputs, faster);
    `"transformers"` forces transformers' own classes. Code shipped with the model runs only with
    `trust_remote_code=True`."""
    try:
        tokenizer = load_tokenizer(name, trust_remote_code)
        model, info = load_pretrained(name, "MaskedLM", trust_remote_code, implementation)
    except ValueError as error:
        if "Unrecognized configuration class" in str(error):
            raise EvaluationDataError(f"model {name!r} has no masked-language-modelling head.") from error
        raise
    if info["missing_keys"]:  # a head initialised at random would score noise
        missing = ", ".join(sorted(info["missing_keys"])[:4])
        raise EvaluationDataError(f"model {name!r} has no trained masked-language-modelling head (missing {missing}).")
    if tokenizer.mask_token_id is None or not tokenizer.is_fast:
        raise EvaluationDataError(f"model {name!r}: its tokenizer needs a mask token and offsets (a fast tokenizer).")
    return model.eval(), tokenizer


def pack_blocks(examples: list[tuple[list[int], list[int]]], tokenizer, block_size: int):
    """Concatenates the texts' tokens (specials dropped) and cuts them into full `[CLS] ... [SEP]` blocks,
    so every block is `block_size` long; a masked text may straddle two blocks."""
    special = set(tokenizer.all_special_ids)
    stream = [(i, label) for ids, labels in examples for i, label in zip(ids, labels) if i not in special
              or i == tokenizer.mask_token_id]
    body = block_size - 2
    blocks = []
    for start in range(0, len(stream), body):
        chunk = stream[start:start + body]
        if any(label != -100 for _, label in chunk):
            blocks.append(([tokenizer.cls_token_id, *(i for i, _ in chunk), tokenizer.sep_token_id],
                           [-100, *(label for _, label in chunk), -100]))
    return blocks


@torch.inference_mode()
def true_token_ranks(model, tokenizer, examples: list[tuple[list[int], list[int]]], batch_size: int,
                     progress: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(the rank of the original id among the model's scores at each masked position, 0 = best, ties counted in
    its favour; the original ids), over all examples. One integer per position is all that top-k accuracy for
    every k needs: scored by the `topk_recovery` metric module's "ranks" form (`evaluation.metrics.top_k_from_ranks`)."""
    sparse_head = runs_rexbert_code(model)  # RexBERT's head can return the logits of the masked rows only
    ranks, truth = [], []
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))  # similar lengths together
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc=progress, disable=progress is None, leave=False):
        width = max(len(examples[i][0]) for i in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        for row, i in enumerate(batch):
            ids[row, : len(examples[i][0])] = torch.tensor(examples[i][0])
            labels[row, : len(examples[i][1])] = torch.tensor(examples[i][1])
        mask = (torch.arange(width)[None, :] < torch.tensor([len(examples[i][0]) for i in batch])[:, None]).long()
        masked = labels != -100
        if sparse_head:
            logits = model(input_ids=ids, attention_mask=mask, labels=labels, sparse_prediction=True).logits
        else:
            logits = model(input_ids=ids, attention_mask=mask).logits[masked]
        true_ids = labels[masked]
        true_scores = logits.gather(-1, true_ids[:, None].to(logits.device))
        ranks.append((logits > true_scores).sum(-1).cpu().numpy())
        truth.append(true_ids.cpu().numpy())
    return np.concatenate(ranks), np.concatenate(truth)


def evaluate_masked_lm(models: Sequence[str], dataset: str, text_columns: Sequence[str], block_sizes: Sequence[int],
                       ks: Sequence[int] = (1, 3, 5), split: str = "test", rate: float = 0.15, seed: int = 0,
                       batch_size: int = 16, max_texts: int | None = None, implementation: str = "auto",
                       packed: bool = False, show_progress: bool = True,
                       trust_remote_code: bool = False) -> list[EvalResult]:
    """Top-k masked-token accuracy for each model x text column x block size x k. Each text is
    truncated to the block size, or with `packed`, texts are concatenated into full blocks."""
    check_rate("rate", rate)
    for name, values in (("block_sizes", block_sizes), ("ks", ks)):
        if not values:
            raise ValueError(f"{name} is empty; give at least one.")
        for value in values:
            check_count(name, value)
    if min(block_sizes) < 3:  # [CLS] and [SEP] take two tokens of every block
        raise ValueError(f"block_sizes must be at least 3 tokens ([CLS], a token, [SEP]), got {min(block_sizes)}.")
    check_count("batch_size", batch_size)
    if max_texts is not None:
        check_count("max_texts", max_texts)
    data = load_split(dataset, split)
    if max_texts is not None:
        data = data.select(range(min(max_texts, len(data))))
    texts = {name: [clean_text(v) for v in column(data, name)] for name in text_columns}
    masks = {name: [choose_masked_words(t, rate, seed, (c, row)) if t else None for row, t in enumerate(values)]
             for c, (name, values) in enumerate(texts.items())}
    results = []
    for model_name in models:
        model, tokenizer = load_masked_lm(model_name, implementation, trust_remote_code)
        for name in text_columns:
            for block_size in block_sizes:
                length = model.config.max_position_embeddings if packed else block_size
                examples = [e for m in masks[name] if m is not None
                            for e in [mask_tokens(m, tokenizer, length)] if e is not None]
                if packed:
                    examples = pack_blocks(examples, tokenizer, block_size)
                if not examples:
                    raise EvaluationDataError(f"column {name!r} of {dataset} has no text to mask.")
                label = f"{model_name} {name}@{block_size}" if show_progress else None
                ranks, truth = true_token_ranks(model, tokenizer, examples, batch_size, progress=label)
                accuracy = top_k_from_ranks(ranks, ks)
                for k in ks:
                    results.append(EvalResult(
                        model=model_name, task=MASKED_TOKEN_RECOVERY, dataset=str(dataset), split=split,
                        metric=f"top{k}_accuracy", value=accuracy[k], seed=seed,
                        settings={"column": name, "block_size": block_size, "k": k, "mask_rate": rate, "packed": packed,
                                  "masked_tokens": len(truth), "texts": len(examples),
                                  "implementation": implementation},
                    ))
    return results
