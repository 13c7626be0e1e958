"""RexBertConfig: presets from the paper, stock ModernBERT configs unchanged, clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers import AutoConfig

import modeling_rexbert
from modeling_rexbert import RexBertConfig

# transformers 4.48-era config.json of answerdotai/ModernBERT-base, as published (legacy keys).
MODERNBERT_BASE_LEGACY = {
    "architectures": ["ModernBertForMaskedLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 50281, "classifier_activation": "gelu", "classifier_bias": False, "classifier_dropout": 0.0,
    "classifier_pooling": "mean", "cls_token_id": 50281, "decoder_bias": True, "deterministic_flash_attn": False,
    "embedding_dropout": 0.0, "eos_token_id": 50282, "global_attn_every_n_layers": 3, "global_rope_theta": 160000.0,
    "gradient_checkpointing": False, "hidden_activation": "gelu", "hidden_size": 768, "initializer_cutoff_factor": 2.0,
    "initializer_range": 0.02, "intermediate_size": 1152, "layer_norm_eps": 1e-05, "local_attention": 128,
    "local_rope_theta": 10000.0, "max_position_embeddings": 8192, "mlp_bias": False, "mlp_dropout": 0.0,
    "model_type": "modernbert", "norm_bias": False, "norm_eps": 1e-05, "num_attention_heads": 12,
    "num_hidden_layers": 22, "pad_token_id": 50283, "position_embedding_type": "absolute", "sep_token_id": 50282,
    "tie_word_embeddings": True, "torch_dtype": "float32", "transformers_version": "4.47.0.dev0", "vocab_size": 50368,
}


@pytest.mark.parametrize(
    ("preset", "layers", "hidden", "intermediate", "heads", "millions"),
    [("micro", 7, 256, 384, 4, 16.9), ("mini", 19, 512, 768, 8, 68.5),
     ("base", 22, 768, 1152, 12, 149.7), ("large", 28, 1024, 2624, 16, 395.9)],
)
def test_presets_match_paper_table_2(preset, layers, hidden, intermediate, heads, millions):
    config = RexBertConfig.from_preset(preset)
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size,
            config.num_attention_heads) == (layers, hidden, intermediate, heads)
    assert config.vocab_size == 50368 and config.local_attention == 128
    assert config.layer_types == ["full_attention" if i % 3 == 0 else "sliding_attention" for i in range(layers)]
    with torch.device("meta"):
        model = modeling_rexbert.RexBertForMaskedLM(config)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == millions  # tied decoder counted once


def test_preset_overrides_and_unknown_preset():
    assert RexBertConfig.from_preset("mini", max_position_embeddings=512).max_position_embeddings == 512
    with pytest.raises(ValueError, match="preset='huge'"):
        RexBertConfig.from_preset("huge")


def test_stock_modernbert_legacy_config_loads_unchanged(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(MODERNBERT_BASE_LEGACY))
    config = RexBertConfig.from_pretrained(tmp_path)
    assert config.model_type == "rexbert"
    assert config.rope_parameters["full_attention"]["rope_theta"] == 160000.0
    assert config.rope_parameters["sliding_attention"]["rope_theta"] == 10000.0
    assert config.layer_types[:4] == ["full_attention", "sliding_attention", "sliding_attention", "full_attention"]
    assert config.classifier_pooling == "mean" and config.hidden_size == 768


def test_ettin_style_equal_thetas_and_pattern_come_from_config(tmp_path):
    legacy = {**MODERNBERT_BASE_LEGACY, "local_rope_theta": 160000.0, "global_attn_every_n_layers": 2,
              "num_hidden_layers": 4}
    (tmp_path / "config.json").write_text(json.dumps(legacy))
    config = RexBertConfig.from_pretrained(tmp_path)
    assert config.rope_parameters["sliding_attention"]["rope_theta"] == 160000.0
    assert config.layer_types == ["full_attention", "sliding_attention", "full_attention", "sliding_attention"]
    rotary = modeling_rexbert.RexBertModel(config).rotary_emb
    torch.testing.assert_close(rotary.full_attention_inv_freq, rotary.sliding_attention_inv_freq)


def test_rope_scaling_from_config_changes_frequencies():
    scaled = RexBertConfig.from_preset(
        "micro", rope_parameters={"full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 160000.0},
                                  "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}})
    plain = RexBertConfig.from_preset("micro")
    scaled_freq = modeling_rexbert.RexBertModel(scaled).rotary_emb.full_attention_inv_freq
    plain_freq = modeling_rexbert.RexBertModel(plain).rotary_emb.full_attention_inv_freq
    torch.testing.assert_close(scaled_freq, plain_freq / 4.0)


def test_auto_config_knows_rexbert():
    config = AutoConfig.for_model("rexbert", hidden_size=64, num_attention_heads=4)
    assert isinstance(config, RexBertConfig)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"hidden_size": 250}, "num_attention_heads"), ({"num_hidden_layers": -1}, "num_hidden_layers"),
     ({"vocab_size": 0}, "vocab_size"), ({"intermediate_size": -5}, "intermediate_size"),
     ({"layer_types": ["full_attention", "chunky"]}, "layer_types"),
     ({"num_hidden_layers": 3, "layer_types": ["full_attention"]}, "layer_types"),
     ({"local_attention": 127}, "local_attention"), ({"attention_dropout": 1.5}, "attention_dropout"),
     ({"classifier_pooling": "max"}, "classifier_pooling"),
     ({"attn_implementation": "flex_attention"}, "attn_implementation")],
)
def test_invalid_values_name_the_field(overrides, field):
    # Our checks raise ValueError; type/literal checks of transformers' strict dataclass raise its own error.
    with pytest.raises((ValueError, StrictDataclassFieldValidationError), match=field):
        RexBertConfig(**overrides)


def test_wrong_type_is_rejected():
    with pytest.raises(StrictDataclassFieldValidationError, match="hidden_size"):
        RexBertConfig(hidden_size="large")
