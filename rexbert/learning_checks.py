"""Did the model learn? Checks that tell a trained encoder from one stuck at the unigram stage.

A model that predicts only the most frequent tokens still loads, runs and scores a few percent of
masked words; these checks say so plainly instead: held-out loss that is non-finite or did not fall
during a phase, fill-mask answers that do not depend on the context, and sentence embeddings that
collapsed onto one direction.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

FILL_MASK_PROMPTS = (
    "The battery [MASK] is very short.",
    "This camera takes great [MASK] in low light.",
    "It is easy to [MASK] and the price is right.",
)
UNRELATED_TEXTS = (
    "Stainless steel water bottle, 750 ml, keeps drinks cold for 24 hours.",
    "The customer service was rude and the refund took six weeks.",
    "Fellow citizens, we meet today to renew the promise of our founders.",
    "He walked to the school in the rain and said nothing to anyone.",
)
COLLAPSED_COSINE = 0.95  # mean cosine between unrelated texts above this: the embeddings carry no content


def heldout_losses(phase_dir: str | Path) -> list[tuple[int, float]]:
    """(step, held-out MLM loss) at each evaluation of a phase, from its metrics.jsonl (a torn last line is skipped)."""
    losses = []
    path = Path(phase_dir) / "metrics.jsonl"
    if not path.is_file():
        return losses
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "eval/loss" in record:
            losses.append((int(record["step"]), float(record["eval/loss"])))
    return losses


def phase_problems(phase_dir: str | Path) -> list[str]:
    """What is wrong with a phase's held-out loss: missing, non-finite, or not lower at the end than at its start."""
    name = Path(phase_dir).name
    losses = heldout_losses(phase_dir)
    if not losses:
        return [f"{name}: no held-out loss was recorded"]
    bad = [step for step, loss in losses if not math.isfinite(loss)]
    if bad:
        return [f"{name}: held-out loss is not finite at step(s) {bad}"]
    (_, first), (last_step, last) = losses[0], losses[-1]
    if last >= first:
        return [f"{name}: held-out loss did not improve ({first:.3f} at its start, {last:.3f} at step {last_step})"]
    return []


def fill_mask(model, tokenizer, prompts=FILL_MASK_PROMPTS, top_k: int = 3) -> dict[str, list[str]]:
    """The top-k tokens a masked-LM predicts at `[MASK]` for each prompt."""
    import torch

    answers = {}
    model.eval()
    for prompt in prompts:
        batch = tokenizer(prompt.replace("[MASK]", tokenizer.mask_token), return_tensors="pt")
        with torch.no_grad():
            logits = model(**batch).logits[0]
        position = (batch["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]
        answers[prompt] = [tokenizer.decode(int(i)).strip() for i in logits[position].topk(top_k).indices]
    return answers


def mean_cosine(encoder, tokenizer, texts=UNRELATED_TEXTS) -> float:
    """Mean cosine similarity between the mean-pooled embeddings of unrelated texts (lower: more content)."""
    import torch

    batch = tokenizer(list(texts), return_tensors="pt", padding=True)
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].to(hidden.dtype)
    pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    similarity = pooled @ pooled.T
    off_diagonal = similarity[~torch.eye(len(texts), dtype=torch.bool)]
    return float(off_diagonal.mean())


def model_checks(model_dir: str | Path) -> dict:
    """Fill-mask answers and embedding spread of a saved masked-LM folder, with the problems they show."""
    from transformers import AutoTokenizer

    from modeling_rexbert import RexBertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = RexBertForMaskedLM.from_pretrained(model_dir).eval()
    answers = fill_mask(model, tokenizer)
    cosine = mean_cosine(model.model, tokenizer)
    problems = []
    if len({a[0] for a in answers.values()}) == 1:  # a context-aware model changes its first guess with the context
        problems.append(f"{Path(model_dir).name}: fill-mask gives the same first answer for every context "
                        f"({next(iter(answers.values()))[0]!r}): the model still mostly predicts token frequencies")
    if cosine > COLLAPSED_COSINE:
        problems.append(f"{Path(model_dir).name}: embeddings of unrelated texts have collapsed (mean cosine {cosine:.3f})")
    return {"fill_mask": answers, "unrelated_texts_mean_cosine": round(cosine, 4), "problems": problems}
