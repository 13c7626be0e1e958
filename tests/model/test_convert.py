"""`rexbert convert`: RexBERT <-> stock ModernBERT, both ways, weights untouched."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from conftest import padded_batch, stock_twin, tiny_config
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

import modeling_rexbert
from modeling_rexbert.convert import convert_checkpoint
from rexbert.cli import main as cli


def logits_of(model, ids, mask):
    with torch.no_grad():
        return model.eval()(input_ids=ids, attention_mask=mask).logits


def test_to_modernbert_loads_in_stock_transformers(tmp_path, mlm_model):
    mlm_model.save_pretrained(tmp_path / "ours")
    convert_checkpoint(tmp_path / "ours", tmp_path / "stock", to="modernbert")
    config = json.loads((tmp_path / "stock" / "config.json").read_text())
    assert config["model_type"] == "modernbert" and "auto_map" not in config
    assert not list((tmp_path / "stock").glob("*.py"))  # no remote code travels
    stock = AutoModelForMaskedLM.from_pretrained(tmp_path / "stock")
    assert type(stock) is transformers.ModernBertForMaskedLM
    ids, mask = padded_batch([200, 33])
    real = mask.bool()
    torch.testing.assert_close(logits_of(stock, ids, mask)[real], logits_of(mlm_model, ids, mask)[real],
                               atol=1e-4, rtol=0)
    assert (tmp_path / "stock" / "tokenizer.json").is_file()


def test_from_modernbert_and_round_trip(tmp_path, mlm_model):
    stock = stock_twin(mlm_model)
    stock.save_pretrained(tmp_path / "stock")
    convert_checkpoint(tmp_path / "stock", tmp_path / "ours", to="rexbert")
    ours = AutoModelForMaskedLM.from_pretrained(tmp_path / "ours", trust_remote_code=True)
    assert type(ours).__name__ == "RexBertForMaskedLM"  # the folder's own copy of the code
    assert type(ours).__module__.startswith("transformers_modules.")
    convert_checkpoint(tmp_path / "ours", tmp_path / "stock-again", to="modernbert")
    again = AutoModelForMaskedLM.from_pretrained(tmp_path / "stock-again")
    for name, tensor in stock.state_dict().items():
        assert torch.equal(tensor, ours.state_dict()[name]), name
        assert torch.equal(tensor, again.state_dict()[name]), name


def test_stock_modernbert_folder_loads_directly(tmp_path, mlm_model):
    stock_twin(mlm_model).save_pretrained(tmp_path)
    ours = modeling_rexbert.RexBertForMaskedLM.from_pretrained(tmp_path)
    assert ours.config.model_type == "rexbert"
    ids, mask = padded_batch([150, 9])
    real = mask.bool()
    torch.testing.assert_close(logits_of(ours, ids, mask)[real], logits_of(mlm_model, ids, mask)[real])


def test_sequence_classifier_converts(tmp_path):
    model = modeling_rexbert.RexBertForSequenceClassification(tiny_config(num_labels=3))
    model.save_pretrained(tmp_path / "ours")
    convert_checkpoint(tmp_path / "ours", tmp_path / "stock", to="modernbert")
    stock = AutoModelForSequenceClassification.from_pretrained(tmp_path / "stock")
    assert type(stock) is transformers.ModernBertForSequenceClassification
    ids, mask = padded_batch([20, 60])
    torch.testing.assert_close(logits_of(stock, ids, mask), logits_of(model, ids, mask), atol=1e-4, rtol=0)


def test_cli_convert_and_errors(tmp_path, mlm_model, capsys):
    mlm_model.save_pretrained(tmp_path / "ours")
    assert cli(["convert", "--to", "modernbert", str(tmp_path / "ours"), str(tmp_path / "stock")]) == 0
    assert "Wrote a modernbert checkpoint" in capsys.readouterr().out
    # a folder rexbert wrote may be replaced; one holding a file of the user's is refused (rexbert.core.outputs)
    assert cli(["convert", "--to", "modernbert", str(tmp_path / "ours"), str(tmp_path / "stock")]) == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert cli(["convert", "--to", "modernbert", str(tmp_path / "ours"), str(tmp_path / "mine")]) == 2
    assert "did not write (notes.txt)" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert cli(["convert", "--to", "rexbert", str(tmp_path / "empty"), str(tmp_path / "out")]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_unsupported_head_and_target_are_clear_errors(tmp_path, mlm_model):
    mlm_model.save_pretrained(tmp_path / "ours")
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    config["architectures"] = ["ModernBertForCausalLM"]  # (question answering and multiple choice convert)
    (tmp_path / "ours" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="ModernBertForCausalLM"):
        convert_checkpoint(tmp_path / "ours", tmp_path / "out", to="modernbert")
    with pytest.raises(ValueError, match="to='bert'"):
        convert_checkpoint(tmp_path / "ours", tmp_path / "out", to="bert")
