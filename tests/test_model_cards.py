"""Model cards: metadata from results, tables and plots; pushing through an injected fake HfApi."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import tiny_config

import modeling_rexbert
from evaluation.results import EvalResult, write_results
from model_cards import push_model, render_card
from rexbert.cli import main as cli


@pytest.fixture
def model_with_results(tmp_path):
    model_dir = tmp_path / "rexbert-tiny"
    torch.manual_seed(0)
    modeling_rexbert.RexBertForMaskedLM(tiny_config()).save_pretrained(model_dir)
    mlm = [EvalResult(str(model_dir), "masked-token-recovery", "esci", "test", f"top{k}_accuracy", v,
                      settings={"column": "product_title", "block_size": b, "k": k})
           for b in (128, 256) for k, v in ((1, 0.412), (5, 0.655))]
    cosent = [EvalResult(str(model_dir), "esci-cosent", "tasksource/esci", "test", "spearman", 0.4321),
              EvalResult("other/bert-base", "esci-cosent", "tasksource/esci", "test", "spearman", 0.3)]
    files = [write_results(tmp_path / "mlm.json", mlm), write_results(tmp_path / "cosent.json", cosent)]
    return model_dir, files


def test_card_has_model_index_tables_and_plots(model_with_results):
    model_dir, files = model_with_results
    readme = render_card(model_dir, files)
    text = readme.read_text()
    metadata = yaml.safe_load(text.split("---")[1])
    entries = metadata["model-index"][0]["results"]
    values = sorted(m["value"] for e in entries for m in e["metrics"])
    assert values == sorted([0.412, 0.655, 0.412, 0.655, 0.4321])  # ours only, plain floats
    assert all(type(v) is float for v in values)
    assert "product_title 128 k=1" in text
    assert "| 41.2 | 65.5 |" in text  # Table 3 style, percent
    assert "43.2" in text and "bert-base" in text  # other models side by side
    assert (model_dir / "topk_by_block_size.png").stat().st_size > 1000
    assert (model_dir / "esci_spearman_by_model.png").stat().st_size > 1000
    assert "SentenceTransformer" in text and "@misc" in text


def test_push_dry_run_lists_and_fake_api_uploads(model_with_results, capsys):
    model_dir, files = model_with_results
    render_card(model_dir, files)
    assert cli(["card", "push", "--model", str(model_dir), "--repo-id", "me/rexbert-tiny", "--dry-run"]) == 0
    listed = capsys.readouterr().out
    for name in ("model.safetensors", "config.json", "tokenizer.json", "modeling_rexbert.py", "README.md",
                 "topk_by_block_size.png"):
        assert name in listed

    class FakeApi:
        calls = []

        def create_repo(self, repo_id, **kwargs):
            self.calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))

    api = FakeApi()
    uploaded = push_model(model_dir, "me/rexbert-tiny", api=api)
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[1][2]["allow_patterns"] == uploaded and "model.safetensors" in uploaded


def test_push_without_card_is_a_clear_error(tmp_path):
    modeling_rexbert.RexBertForMaskedLM(tiny_config()).save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="README.md"):
        push_model(tmp_path, "me/x", dry_run=True)
