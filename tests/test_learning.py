"""The training recipe learns from context, not only token frequencies (the "unigram stage").

No predictor that ignores the context can score a masked-token loss below the entropy of the masked
tokens' own frequency distribution (the best context-free guess is that distribution). A short
training run on a small real sample must go below it on that sample: a regression that stops
learning (a masking or label bug, attention that sees nothing, an LR that blows the model up into
predicting frequencies) fails here in a minute instead of in a 10-minute demo.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import torch

from training.collator import MLMCollator
from training.config import parse_config
from training.loop import train_phase
from training.masking import MaskingConfig
from training.shards import ShardedCorpus

CORPUS = Path(__file__).parents[1] / "rexbert" / "corpus" / "ecommerce.jsonl"
TINY = {"num_hidden_layers": 2, "hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 2}


def sample_reviews(path: Path, count: int) -> list[str]:
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    return [r["text"] for r in rows if r["source"] == "hu-liu-reviews"][:count]


def test_short_run_beats_every_context_free_predictor(tmp_path):
    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in sample_reviews(CORPUS, 30)))
    config = parse_config({
        "name": "learn", "phase": 1, "model": {"preset": "micro", "overrides": TINY},
        "data": {"sources": [{"name": "reviews", "path": str(data)}], "sequence_length": 128, "eval_documents": 0},
        "masking": {"rate": 0.3}, "optimizer": {"lr": 3e-3, "weight_decay": 1e-4, "warmup_steps": 10},
        "batch": {"micro_batch_size": 8}, "run": {"max_steps": 150, "eval_every": 150, "save_every": 150,
                                                   "log_with": []}})
    train_phase(config, tmp_path, progress=False)

    from modeling_rexbert import RexBertForMaskedLM
    from modeling_rexbert.tokenization_rexbert import load_tokenizer
    from training.corpus import prepare_sources

    tokenizer = load_tokenizer()
    rows = prepare_sources(config, tokenizer, tmp_path, progress=False)[0].train
    collator = MLMCollator(tokenizer, MaskingConfig(rate=0.3, mask_fraction=1.0, random_fraction=0.0), seed=7,
                           phase=99)  # fresh masks, all [MASK]: the context is all the model gets
    batch = collator([rows[i] for i in range(len(rows))])
    model = RexBertForMaskedLM.from_pretrained(tmp_path / "learn").eval()
    with torch.no_grad():
        loss = model(**batch).loss.item()

    targets = batch["labels"][batch["labels"] != -100].tolist()
    counts = Counter(targets)
    unigram_entropy = -sum(c / len(targets) * math.log(c / len(targets)) for c in counts.values())
    corpus = ShardedCorpus(next((tmp_path / "tokens").iterdir()))
    print("loss", loss, "unigram entropy", unigram_entropy, "targets", len(targets))
    assert len(targets) > 1000 and len(corpus) == 30
    assert loss < unigram_entropy - 0.5, (loss, unigram_entropy)
