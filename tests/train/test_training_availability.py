"""The plan tells the truth about data: tokens needed vs available per source, passes, repeat warnings,
missing local data refused at plan time; and the recipe fixes read against Ettin's configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from modeling_rexbert.tokenization_rexbert import load_tokenizer
from training.availability import REPEAT_WARNING, built_tokens
from training.config import ConfigError
from training.corpus import cache_folder
from training.curriculum import load_phases, plan_curriculum, train_curriculum
from training.tokenize_job import tokenize_to_shards

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "rexbert" / "corpus"
CONFIGS = ROOT / "training" / "configs"
TINY_MODEL = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 2}


def catalog_phase(tmp_path: Path, catalog: Path, max_tokens: int = 65_536, **source) -> Path:
    config = {
        "name": "catalog", "phase": 4,
        "model": {"preset": "micro", "overrides": TINY_MODEL},
        "data": {"sequence_length": 128, "eval_documents": 2, "eval_rows": 2,
                 "sources": [{"name": "catalog", "path": str(catalog), "weight": 0.8, **source},
                             {"name": "web", "dataset": "HuggingFaceFW/fineweb-edu", "config": "sample-10BT",
                              "weight": 0.2}]},
        "optimizer": {"lr": 1e-4, "weight_decay": 1e-5},
        "batch": {"micro_batch_size": 16, "global_tokens": 4096},
        "run": {"max_tokens": max_tokens, "log_with": []},
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_missing_local_folder_is_refused_at_plan_time_naming_the_field(tmp_path):
    path = catalog_phase(tmp_path, tmp_path / "data" / "catalog")
    with pytest.raises(ConfigError, match=r"catalog: data.sources\[0\].path: source 'catalog': .*does not exist"):
        plan_curriculum(path)
    with pytest.raises(ConfigError, match=r"data.sources\[0\].path"):
        train_curriculum(path, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # refused before any model was built or folder written


def test_sizes_come_from_built_shards_else_the_config_else_unknown(tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("".join(json.dumps({"text": f"Navy cotton shirt, size {i}, machine washable."}) + "\n"
                               for i in range(20)))  # a 20-line catalog, as in the README's recipe
    path = catalog_phase(tmp_path, catalog, approx_tokens=1_000)
    (plan,) = plan_curriculum(path)["phases"]
    assert plan["data"]["catalog"]["from"] == "config" and plan["data"]["catalog"]["available"] == 1_000
    assert plan["data"]["web"] == {"needed": plan["mixture"]["tokens"]["web"], "available": None, "from": "unknown",
                                   "passes": "unknown"}
    needed = plan["data"]["catalog"]["needed"]
    assert plan["data"]["catalog"]["passes"] == pytest.approx(needed / 1_000, rel=1e-3)
    # the shards, once built under the run root, are the truth
    root = tmp_path / "run"
    (phase,) = load_phases(path, default_world_size=1)
    manifest = tokenize_to_shards(catalog, load_tokenizer(), cache_folder(root, phase, phase.data.sources[0]),
                                  progress=False)
    assert built_tokens(cache_folder(root, phase, phase.data.sources[0])) == manifest["tokens"] > 0
    (plan,) = plan_curriculum(path, output_dir=root)["phases"]
    assert plan["data"]["catalog"]["from"] == "shards" and plan["data"]["catalog"]["available"] == manifest["tokens"]
    passes = needed / manifest["tokens"]
    assert passes > REPEAT_WARNING and plan["data"]["catalog"]["passes"] == pytest.approx(passes, rel=1e-3)
    warning = next(w for w in plan["warnings"] if "'catalog' is read" in w)
    assert f"{passes:,.1f} times" in warning and "Muennighoff" in warning


def test_no_warning_under_the_repeat_threshold(tmp_path):
    path = catalog_phase(tmp_path, CORPUS / "ecommerce.jsonl", approx_tokens=10**9)
    (plan,) = plan_curriculum(path)["phases"]
    assert not any("is read" in w for w in plan["warnings"])


def test_curriculum_totals_add_up_over_the_phases_that_read_a_source():
    result = plan_curriculum(CONFIGS / "base", world_size=64)
    web = result["sources"]["web (HuggingFaceFW/fineweb-edu)"]
    assert web["phases"] == ["phase1", "phase2", "phase3"] and web["from"] == "config"
    assert web["needed"] == sum(p["data"]["web"]["needed"] for p in result["phases"])
    assert web["passes"] == pytest.approx(web["needed"] / 1.3e12, rel=1e-3)


def test_recipe_matches_ettins_configs():
    phase1, phase2, phase3 = load_phases(CONFIGS / "base", default_world_size=64)
    # attn_out_dropout_prob 0.1 in Ettin's phase 1 (kept in its later phases, which start from this export)
    assert phase1.model.overrides["attention_dropout"] == 0.1
    assert phase2.optimizer.min_lr_ratio == 0.5 and phase3.optimizer.min_lr_ratio == 0.04
    assert phase3.optimizer.lr == pytest.approx(phase1.optimizer.lr / 2)
    (anneal,) = load_phases(CONFIGS / "base" / "anneal-from-ettin.yaml", default_world_size=64)
    assert anneal.optimizer.lr == pytest.approx(4e-4) and anneal.optimizer.min_lr_ratio == 0.04
