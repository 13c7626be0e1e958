"""The demo's learning checks: a stuck or diverged phase, a context-blind model and an old demo folder are named."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoTokenizer

from modeling_rexbert import RexBertConfig, RexBertForMaskedLM
from rexbert.cli import main
from rexbert.learning_checks import fill_mask, mean_cosine, phase_problems

pytestmark = pytest.mark.slow  # trains until the model learns

TINY = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 2}


def write_metrics(folder, losses):
    folder.mkdir(parents=True)
    lines = [json.dumps({"step": 10 * i, "eval/loss": loss}) for i, loss in enumerate(losses)]
    (folder / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 99, "eval/lo')  # a torn last line


def test_phase_problems_name_diverged_and_stuck_phases(tmp_path):
    write_metrics(tmp_path / "good", [10.8, 7.1, 5.9])
    write_metrics(tmp_path / "stuck", [6.4, 6.9, 7.0])
    write_metrics(tmp_path / "nan", [10.8, float("nan")])
    assert phase_problems(tmp_path / "good") == []
    assert "did not improve (6.400 at its start, 7.000 at step 20)" in phase_problems(tmp_path / "stuck")[0]
    assert "not finite at step(s) [10]" in phase_problems(tmp_path / "nan")[0]
    assert "no held-out loss" in phase_problems(tmp_path / "missing")[0]


def test_fill_mask_and_embedding_spread_tell_a_context_blind_model(tmp_path):
    from modeling_rexbert.tokenization_rexbert import SHIPPED_TOKENIZER_DIR

    tokenizer = AutoTokenizer.from_pretrained(SHIPPED_TOKENIZER_DIR)
    torch.manual_seed(0)
    model = RexBertForMaskedLM(RexBertConfig(**TINY)).eval()
    answers = fill_mask(model, tokenizer, top_k=3)
    assert len(answers) == 3 and all(len(a) == 3 for a in answers.values())
    assert mean_cosine(model.model, tokenizer) < 0.95  # an untrained model is not collapsed
    with torch.no_grad():  # a model that ignores its input: the same answers and embeddings for every text
        model.head.dense.weight.zero_()  # logits = the decoder bias, whatever the context
        embeddings = model.model.embeddings.tok_embeddings.weight
        embeddings.copy_(embeddings[0].clone().expand_as(embeddings))  # every token looks alike
    assert len({tuple(a) for a in fill_mask(model, tokenizer).values()}) == 1
    assert mean_cosine(model.model, tokenizer) > 0.99


def test_demo_refuses_to_resume_a_folder_from_an_older_recipe(tmp_path, capsys):
    old = tmp_path / "old-demo"
    (old / "phase1").mkdir(parents=True)
    (old / "demo_summary.json").write_text("{}")  # written before the demo had a format marker
    assert main(["demo", "--quick", "--output-dir", str(old), "--resume", "--no-progress"]) == 2
    assert "older rexbert demo (format 1" in capsys.readouterr().err
