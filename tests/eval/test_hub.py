"""Saving, loading, remote code, Auto classes, sentence-transformers and push_to_hub (faked Hub)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import padded_batch, tiny_config
from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

import modeling_rexbert

CODE_FILES = {"configuration_rexbert.py", "modeling_rexbert.py", "attention_rexbert.py", "unpadding.py",
              "layers_rexbert.py", "outputs_rexbert.py"}


@pytest.fixture
def saved_mlm(tmp_path, mlm_model):
    folder = tmp_path / "rexbert-tiny"
    mlm_model.save_pretrained(folder)
    return folder


def test_saved_folder_is_self_contained(saved_mlm):
    names = {p.name for p in saved_mlm.iterdir()}
    assert CODE_FILES <= names
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"} <= names
    assert not any(n.endswith(".bin") for n in names)  # safetensors only
    config = json.loads((saved_mlm / "config.json").read_text())
    # Stock ModernBERT for every reader without remote code; RexBERT's classes through auto_map.
    assert config["model_type"] == "modernbert"
    assert config["architectures"] == ["ModernBertForMaskedLM"]
    assert config["auto_map"] == {
        "AutoConfig": "configuration_rexbert.RexBertConfig",
        "AutoModel": "modeling_rexbert.RexBertModel",
        "AutoModelForMaskedLM": "modeling_rexbert.RexBertForMaskedLM",
        "AutoModelForSequenceClassification": "modeling_rexbert.RexBertForSequenceClassification",
        "AutoModelForTokenClassification": "modeling_rexbert.RexBertForTokenClassification",
        "AutoModelForQuestionAnswering": "modeling_rexbert.RexBertForQuestionAnswering",
        "AutoModelForMultipleChoice": "modeling_rexbert.RexBertForMultipleChoice",
    }
    tokenizer_config = json.loads((saved_mlm / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"  # a name transformers 4.x knows too
    assert not {"is_local", "local_files_only", "backend"} & set(tokenizer_config)


def test_round_trip_keeps_weights_and_outputs(saved_mlm, mlm_model):
    loaded = modeling_rexbert.RexBertForMaskedLM.from_pretrained(saved_mlm).eval()
    for name, tensor in mlm_model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    assert loaded.decoder.weight is loaded.model.embeddings.tok_embeddings.weight
    ids, mask = padded_batch([50, 20])
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids, attention_mask=mask).logits,
                                   mlm_model(input_ids=ids, attention_mask=mask).logits)


def test_auto_classes_without_remote_code_run_stock_modernbert(saved_mlm, mlm_model):
    """No prompt and no remote code: transformers' own ModernBERT, same logits on real tokens."""
    import transformers

    stock = AutoModelForMaskedLM.from_pretrained(saved_mlm).eval()
    assert type(stock) is transformers.ModernBertForMaskedLM
    ids, mask = padded_batch([150, 20])
    real = mask.bool()
    with torch.no_grad():
        torch.testing.assert_close(stock(input_ids=ids, attention_mask=mask).logits[real],
                                   mlm_model(input_ids=ids, attention_mask=mask).logits[real], atol=1e-4, rtol=0)
    assert type(AutoModel.from_pretrained(saved_mlm)) is transformers.ModernBertModel


def test_rexbert_heads_load_a_masked_lm_folder(saved_mlm):
    classifier = modeling_rexbert.RexBertForSequenceClassification.from_pretrained(saved_mlm, num_labels=3)
    assert classifier.config.num_labels == 3


def test_checkpoint_missing_encoder_weights_is_a_clear_error(saved_mlm):
    from safetensors.torch import load_file, save_file

    weights = load_file(saved_mlm / "model.safetensors")
    del weights["model.layers.2.mlp.Wi.weight"]
    save_file(weights, saved_mlm / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"lacks encoder weights: model\.layers\.2\.mlp\.Wi\.weight"):
        modeling_rexbert.RexBertForMaskedLM.from_pretrained(saved_mlm)


def test_checkpoint_with_extra_encoder_weights_is_a_clear_error(saved_mlm):
    from safetensors.torch import load_file, save_file

    weights = load_file(saved_mlm / "model.safetensors")
    weights["model.layers.9.attn.Wqkv.weight"] = torch.zeros(192, 64)  # a deeper checkpoint than the config
    save_file(weights, saved_mlm / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"unexpected encoder weights: model\.layers\.9\.attn\.Wqkv\.weight"):
        modeling_rexbert.RexBertForMaskedLM.from_pretrained(saved_mlm)


def test_task_checkpoint_loads_into_another_head(tmp_path):
    """Fine-tuning: a classifier checkpoint into a masked LM (head weights missing/extra) is fine."""
    modeling_rexbert.RexBertForSequenceClassification(tiny_config(num_labels=2)).save_pretrained(tmp_path)
    model, info = modeling_rexbert.RexBertForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == {"decoder.bias"}  # the encoder and head.* came from the classifier


def test_remote_code_loads_without_the_package(saved_mlm, mlm_model, tmp_path):
    """A fresh interpreter in which `modeling_rexbert` cannot be imported loads the folder as remote code."""
    ids, mask = padded_batch([40, 90, 5])
    with torch.no_grad():
        expected = mlm_model(input_ids=ids, attention_mask=mask).logits
    torch.save({"ids": ids, "mask": mask, "expected": expected}, tmp_path / "batch.pt")
    script = textwrap.dedent(f"""
        import sys
        sys.modules["modeling_rexbert"] = None  # not installed
        import torch
        from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer
        plain = AutoTokenizer.from_pretrained({str(saved_mlm)!r})  # no remote code, no prompt (stdin is closed)
        assert plain.mask_token_id == 50284, plain
        model = AutoModelForMaskedLM.from_pretrained({str(saved_mlm)!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
        batch = torch.load({str(tmp_path / 'batch.pt')!r})
        with torch.no_grad():
            logits = model(input_ids=batch["ids"], attention_mask=batch["mask"]).logits
        torch.testing.assert_close(logits, batch["expected"])
        tokenizer = AutoTokenizer.from_pretrained({str(saved_mlm)!r}, trust_remote_code=True)
        assert tokenizer.mask_token_id == 50284 and len(tokenizer) == 50368
        encoder = AutoModel.from_pretrained({str(saved_mlm)!r}, trust_remote_code=True)
        assert type(encoder).__name__ == "RexBertModel"
        print("remote-ok")
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)  # a "run the custom code? [y/N]" prompt fails
    assert done.returncode == 0, done.stderr[-3000:]
    assert "remote-ok" in done.stdout


def test_sentence_transformers_gives_mean_pooled_embeddings(saved_mlm, mlm_model):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(saved_mlm), trust_remote_code=True, device="cpu")
    texts = ["Navy blue running shoes, size 10", "USB-C charger 65 W"]
    embeddings = st.encode(texts, convert_to_tensor=True)
    tokenizer = AutoTokenizer.from_pretrained(saved_mlm)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = mlm_model.model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = (hidden * mask).sum(1) / mask.sum(1)
    torch.testing.assert_close(embeddings, expected, atol=1e-5, rtol=1e-5)


def test_push_to_hub_uploads_code_weights_and_tokenizer(mlm_model, monkeypatch):
    """`push_to_hub` is transformers' own; a fake Hub API records what it would upload."""
    import transformers.utils.hub as hub
    from huggingface_hub import ModelCard

    class FakeApi:
        def __init__(self):
            self.uploaded = []

        def create_repo(self, repo_id, **kwargs):
            return type("Repo", (), {"repo_id": repo_id})()

        def create_commit(self, repo_id, operations, **kwargs):
            self.uploaded = sorted(op.path_in_repo for op in operations)
            return type("Commit", (), {"commit_url": f"https://hub.test/{repo_id}", "oid": "0" * 40})()

    api = FakeApi()
    monkeypatch.setattr(hub, "hf_api", lambda: api)
    monkeypatch.setattr(hub, "create_and_tag_model_card", lambda *args, **kwargs: ModelCard("---\n---\n# card"))
    mlm_model.push_to_hub("rexbert/tiny-test")
    assert CODE_FILES | {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= set(api.uploaded)


def test_sequence_classifier_round_trip_through_auto(tmp_path):
    model = modeling_rexbert.RexBertForSequenceClassification(tiny_config(num_labels=2)).eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path, trust_remote_code=True).eval()
    ids, mask = padded_batch([12, 30])
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids, attention_mask=mask).logits,
                                   model(input_ids=ids, attention_mask=mask).logits)
