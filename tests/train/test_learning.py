"""The training recipe learns from context, not only token frequencies (the "unigram stage").

A model that predicts every masked token from token frequencies alone cannot score a masked-token
loss below the entropy of the masked tokens' own frequency distribution (that distribution is the
best such guess). A short run of the demo's recipe (its init and optimiser, a tiny model) on 30 real
reviews must go well below it on fresh masks of those reviews: a regression that leaves the model at
the unigram stage (a masking or label bug, attention that sees nothing, an init or LR that stalls
it, as the demo once did) fails here in a minute instead of in a 10-minute demo.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch

from training.collator import MLMCollator
from training.config import load_phase_config
from training.loop import train_phase
from training.masking import MaskingConfig
from training.shards import ShardedCorpus

pytestmark = pytest.mark.slow  # trains until the model learns

CORPUS = Path(__file__).parents[2] / "rexbert" / "corpus" / "ecommerce.jsonl"
TINY = {"num_hidden_layers": 2, "hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 2}
STEPS = 200
DEMO_PHASE1 = Path(__file__).parents[2] / "training" / "configs" / "demo" / "phase1.yaml"


def sample_reviews(path: Path, count: int) -> list[str]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["text"] for r in rows if r["source"] == "hu-liu-reviews"][:count]


def test_short_run_gets_past_the_unigram_stage(tmp_path):
    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in sample_reviews(CORPUS, 30)))
    config = load_phase_config(DEMO_PHASE1, {  # the demo's phase 1, on a tiny model and the 30 reviews
        "model": {"overrides": TINY},
        "data": {"sources": [{"name": "reviews", "path": str(data)}], "eval_documents": 0},
        "optimizer": {"warmup_steps": 10},
        "batch": {"micro_batch_size": 8, "global_tokens": 8 * 128, "warmup_tokens": 0},  # 8 rows of 128 a step
        "run": {"max_steps": STEPS, "eval_every": STEPS, "save_every": STEPS, "log_with": []}})
    assert config.model.overrides.get("initializer_range") == 0.1  # the demo recipe's, inherited
    train_phase(config, tmp_path, progress=False)

    from modeling_rexbert import RexBertForMaskedLM
    from modeling_rexbert.tokenization_rexbert import load_tokenizer
    from training.corpus import prepare_sources

    tokenizer = load_tokenizer()
    rows = prepare_sources(config, tokenizer, tmp_path, progress=False)[0].train
    collator = MLMCollator(tokenizer, MaskingConfig(rate=0.3, mask_fraction=1.0, random_fraction=0.0), seed=7,
                           phase=99)  # fresh masks, all [MASK]: the context is all the model gets
    batch = collator([rows[i] for i in range(len(rows))])
    model = RexBertForMaskedLM.from_pretrained(tmp_path / config.name).eval()
    with torch.no_grad():
        loss = model(**batch).loss.item()

    targets = batch["labels"][batch["labels"] != -100].tolist()
    counts = Counter(targets)
    unigram_entropy = -sum(c / len(targets) * math.log(c / len(targets)) for c in counts.values())
    corpus = ShardedCorpus(next((tmp_path / "tokens").iterdir()))
    print("loss", loss, "unigram entropy", unigram_entropy, "targets", len(targets))
    assert len(targets) > 1000 and len(corpus) == 30
    assert loss < unigram_entropy - 0.5, (loss, unigram_entropy)
