"""The published folder format: stock ModernBERT config keys for every transformers version, RexBERT's code via auto_map.

The same folders are loaded under transformers 4.57.6 (without this project) by `scripts/compat_check.py`,
which `.ci/run` runs; these tests cover the writer and RexBERT's own reader on the project's transformers 5.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from conftest import padded_batch, tiny_config

import modeling_rexbert
from modeling_rexbert import RexBertConfig, RexBertConfigError
from modeling_rexbert.convert import convert_checkpoint

RAISED = {"full_attention": {"rope_type": "default", "rope_theta": 640_000.0},
          "sliding_attention": {"rope_type": "default", "rope_theta": 20_000.0}}


@pytest.fixture
def raised_model():
    torch.manual_seed(0)
    model = modeling_rexbert.RexBertForMaskedLM(tiny_config(rope_parameters=RAISED)).eval()
    with torch.no_grad():  # sharper attention than at init, so that positions (and thetas) visibly matter
        for layer in model.model.layers:
            layer.attn.Wqkv.weight.mul_(20)
    return model


def logits_of(model, ids, mask):
    with torch.no_grad():
        return model.eval()(input_ids=ids, attention_mask=mask).logits


@pytest.mark.parametrize("to", ["rexbert", "modernbert"])
def test_raised_theta_is_written_for_transformers_4_and_5(tmp_path, raised_model, to):
    raised_model.save_pretrained(tmp_path / "saved")
    folder = tmp_path / "saved" if to == "rexbert" else convert_checkpoint(tmp_path / "saved", tmp_path / to, to=to)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "modernbert"
    assert config["rope_parameters"]["full_attention"]["rope_theta"] == 640_000.0  # transformers 5
    assert (config["global_rope_theta"], config["local_rope_theta"], config["global_attn_every_n_layers"]) == (
        640_000.0, 20_000.0, 3)  # transformers 4.x
    stock = transformers.AutoConfig.from_pretrained(folder)
    assert type(stock) is transformers.ModernBertConfig
    assert stock.rope_parameters == RexBertConfig.from_pretrained(folder).rope_parameters
    assert stock.layer_types == raised_model.config.layer_types


def test_raised_theta_changes_stock_logits_and_survives(tmp_path, raised_model):
    """The stock reader uses the raised thetas: same logits; with ModernBERT's default thetas they differ."""
    raised_model.save_pretrained(tmp_path)
    ids, mask = padded_batch([200, 60])
    real = mask.bool()
    expected = logits_of(raised_model, ids, mask)[real]
    stock = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path)
    torch.testing.assert_close(logits_of(stock, ids, mask)[real], expected, atol=1e-4, rtol=0)
    config = json.loads((tmp_path / "config.json").read_text())
    for key in ("rope_parameters", "global_rope_theta", "local_rope_theta"):
        config.pop(key)
    (tmp_path / "config.json").write_text(json.dumps(config))
    defaulted = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert (logits_of(defaulted, ids, mask)[real] - expected).abs().max() > 1e-3


def test_folders_written_before_the_portable_format_still_load(tmp_path, raised_model):
    """What main wrote: model_type rexbert, RexBert architectures, transformers 5 RoPE keys only."""
    raised_model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for key in ("global_rope_theta", "local_rope_theta", "global_attn_every_n_layers"):
        config.pop(key)
    config.update(model_type="rexbert", architectures=["RexBertForMaskedLM"])
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = modeling_rexbert.RexBertForMaskedLM.from_pretrained(tmp_path)
    assert loaded.config.rope_parameters == raised_model.config.rope_parameters
    ids, mask = padded_batch([90])
    torch.testing.assert_close(logits_of(loaded, ids, mask), logits_of(raised_model, ids, mask))


@pytest.mark.parametrize(("legacy", "field"), [
    ({"global_rope_theta": 160_000.0}, "global_rope_theta"),
    ({"local_rope_theta": 10_000.0}, "local_rope_theta"),
    ({"global_attn_every_n_layers": 2}, "global_attn_every_n_layers"),
])
def test_disagreeing_rope_fields_are_an_error_naming_them(tmp_path, raised_model, legacy, field):
    raised_model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, **legacy}))
    with pytest.raises(RexBertConfigError, match=field):
        modeling_rexbert.RexBertForMaskedLM.from_pretrained(tmp_path)


def test_legacy_only_config_is_read_from_its_keys():
    config = RexBertConfig(**{**tiny_config().to_dict(), "rope_parameters": None, "layer_types": None,
                              "num_hidden_layers": 4, "global_rope_theta": 320_000.0, "local_rope_theta": 5_000.0,
                              "global_attn_every_n_layers": 2})
    assert config.rope_parameters["full_attention"]["rope_theta"] == 320_000.0
    assert config.rope_parameters["sliding_attention"]["rope_theta"] == 5_000.0
    assert config.layer_types == ["full_attention", "sliding_attention"] * 2


def test_unknown_architecture_is_an_error_naming_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 64}))
    with pytest.raises(RexBertConfigError, match="model_type='bert'"):
        RexBertConfig.from_pretrained(tmp_path)


def test_rope_scaling_4x_cannot_express_stays_remote_code_only(tmp_path):
    """transformers 4.x has no per-layer-type YaRN: publishing it as modernbert would misload there silently."""
    yarn = {**RAISED, "full_attention": {"rope_type": "yarn", "rope_theta": 160_000.0, "factor": 4.0,
                                         "original_max_position_embeddings": 2048}}
    model = modeling_rexbert.RexBertForMaskedLM(tiny_config(rope_parameters=yarn))
    model.save_pretrained(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["model_type"] == "rexbert" and "global_rope_theta" not in config
    assert modeling_rexbert.RexBertForMaskedLM.from_pretrained(tmp_path / "saved").config.rope_parameters == \
        model.config.rope_parameters
    with pytest.raises(RexBertConfigError, match="no transformers 4.x equivalent"):
        convert_checkpoint(tmp_path / "saved", tmp_path / "stock", to="modernbert")


def test_remote_code_gate_names_the_version(monkeypatch):
    """On transformers 4.x the remote config module stops at import with the version it needs."""
    import importlib.util

    monkeypatch.setattr(transformers, "__version__", "4.57.6")
    spec = importlib.util.spec_from_file_location("gate_check", modeling_rexbert.configuration_rexbert.__file__)
    with pytest.raises(ImportError, match=r"needs transformers>=5\.23; this is transformers 4\.57\.6"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
