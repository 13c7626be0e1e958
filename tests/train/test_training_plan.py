"""`rexbert train --plan`: the shipped paper recipe read against the paper, bad budgets refused
before any work, and a short CPU run doing what its plan says."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import optimi
import pytest
import torch
import yaml

from modeling_rexbert.tokenization_rexbert import load_tokenizer
from rexbert.cli import main
from training.budget import BatchSchedule
from training.collator import MLMCollator
from training.config import ConfigError, load_phase_config
from training.curriculum import plan_curriculum, train_curriculum
from training.masking import MaskingConfig
from training.optim import build_optimizer
from training.presets import PRESET_OPTIMIZER

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "training" / "configs"
CORPUS = ROOT / "rexbert" / "corpus"
TINY_MODEL = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 2}
PAPER_TOKENS = [1.7e12, 250e9, 350e9]


# --- the shipped recipe against the paper ---------------------------------------------------------

@pytest.mark.parametrize("world_size", [1, 8, 64, 256])
@pytest.mark.parametrize("preset", ["micro", "mini", "base", "large"])
def test_paper_curriculum_plan_matches_the_paper(preset, world_size):
    p1, p2, p3 = plan_curriculum(CONFIGS / preset, world_size=world_size)["phases"]
    peak = PRESET_OPTIMIZER[preset]["learning_rate"]
    for phase, tokens, lr in zip((p1, p2, p3), PAPER_TOKENS, (peak, peak, peak / 2)):
        assert phase["world_size"] == world_size
        assert tokens <= phase["tokens"] <= 1.01 * tokens, (phase["name"], phase["tokens"])
        assert phase["weight_decay"] == {**phase["weight_decay"], "decoupled": True,
                                         "value": PRESET_OPTIMIZER[preset]["weight_decay"]}
        assert phase["lr"]["peak"] == pytest.approx(lr)  # phase 3 at half the peak, as Ettin's decay phase
        assert phase["lr"]["warmup_end"] == phase["lr"]["peak"]
    assert [p["sequence_length"] for p in (p1, p2, p3)] == [512, 8192, 8192]
    assert [p1["masking_rate"], p2["masking_rate"]] == [0.30, 0.30] and 0.10 <= p3["masking_rate"] <= 0.15
    assert [p["guided_fraction"] for p in (p1, p2, p3)] == [0.0, 0.0, 0.05]
    # context extension raises theta; phase 3 keeps it, equal for local and global attention
    assert p2["rope_theta"]["full_attention"] > p1["rope_theta"]["full_attention"]
    assert p3["rope_theta"] == p2["rope_theta"] == {"full_attention": 160000.0, "sliding_attention": 160000.0}
    assert p1["lr"]["last_step"] == p1["lr"]["peak"]  # warmup + stable
    # Ettin: phase 2 decays 1-sqrt from the peak to half of it, phase 3 from there to 0.04x
    assert p2["lr"]["mid"] < p2["lr"]["peak"] and p2["lr"]["end"] == pytest.approx(p2["lr"]["peak"] / 2)
    assert p3["lr"]["peak"] == pytest.approx(p2["lr"]["end"])
    assert p3["lr"]["mid"] < p3["lr"]["peak"] and p3["lr"]["end"] == pytest.approx(0.04 * p3["lr"]["peak"])
    assert p3["mixture"]["start"]["ecomniverse"] == 0.0 and p3["mixture"]["end"]["ecomniverse"] == 0.78
    assert any(name.startswith("multilingual") and share > 0 for name, share in p1["mixture"]["start"].items())
    assert sum(p3["mixture"]["tokens"].values()) == pytest.approx(p3["tokens"], rel=1e-9)


@pytest.mark.parametrize("preset, ettin", [("micro", "17m"), ("base", "150m"), ("large", "400m")])
def test_anneal_from_ettin_plan(preset, ettin):
    (phase,) = plan_curriculum(CONFIGS / preset / "anneal-from-ettin.yaml", world_size=16)["phases"]
    assert phase["init_from"] == f"jhu-clsp/ettin-encoder-{ettin}"
    assert phase["sequence_length"] == 8192 and 350e9 <= phase["tokens"] <= 1.01 * 350e9
    assert phase["rope_theta"] == {"full_attention": 160000.0, "sliding_attention": 160000.0}
    assert phase["mixture"]["end"]["ecomniverse"] == 0.78
    assert phase["lr"]["end"] == pytest.approx(0.04 * phase["lr"]["peak"])
    assert phase["init_from_revision"] is None  # Ettin's last ext tag could not be read offline: the plan says so
    assert any("init_from_revision is unset" in w for w in phase["warnings"])


def test_batch_schedule_ramps_accumulation_linearly_in_tokens(tmp_path):
    config = load_phase_config(tiny_phase(tmp_path, batch={"gradient_accumulation_steps": 5, "warmup_tokens": 3000}))
    schedule = BatchSchedule(config, world_size=3)
    tokens = 0
    for step in range(60):
        assert schedule.tokens_before(step) == tokens
        # batch-size warmup of a legacy batch: from 1 micro-batch to all 5, one more per quarter of warmup_tokens
        assert schedule.accumulation(step) == min(5, 1 + 4 * tokens // 3000), step
        tokens += schedule.accumulation(step) * 3 * config.batch.micro_batch_size * config.data.sequence_length
    assert all(schedule.tokens_before(schedule.steps_for(t)) >= t > schedule.tokens_before(schedule.steps_for(t) - 1)
               for t in range(1, tokens, 97))


def test_cli_plan_json(capsys):
    assert main(["train", "--config", str(CONFIGS / "base"), "--plan", "--json", "--world-size", "8"]) == 0
    phases = json.loads(capsys.readouterr().out)["phases"]
    assert [p["name"] for p in phases] == ["phase1", "phase2", "phase3"]
    for key in ("steps", "tokens", "sequence_length", "masking_rate", "guided_fraction", "rope_theta", "lr",
                "weight_decay", "mixture", "init_from"):
        assert key in phases[0]
    # the batch is fixed in tokens (4,194,304 a step): 1.7T tokens take the same ~405k steps on 8 processes as on 64
    assert 1.7e12 / 4_194_304 <= phases[0]["steps"] <= 1.01 * 1.7e12 / 4_194_304 + 40_000  # + the batch warmup


# --- bad input, refused before any work ----------------------------------------------------------

def tiny_phase(tmp_path: Path, name: str = "phase1", **changes) -> Path:
    config = {
        "name": name, "phase": 1,
        "model": {"preset": "micro", "overrides": TINY_MODEL},
        "data": {"sequence_length": 64, "eval_documents": 4, "eval_rows": 4,
                 "sources": [{"name": "general", "path": str(CORPUS / "general.jsonl")},
                             {"name": "ecommerce", "path": str(CORPUS / "ecommerce.jsonl"), "weight": 0.0}],
                 "anneal_to": {"general": 0.25, "ecommerce": 0.75}, "anneal_tokens": 3000},
        "optimizer": {"lr": 3e-3, "weight_decay": 3e-4, "warmup_tokens": 600, "decay_tokens": 4000},
        "batch": {"micro_batch_size": 2, "gradient_accumulation_steps": 2, "warmup_tokens": 300},
        "run": {"max_tokens": 10_112, "save_every": 100, "eval_every": 100, "log_every": 1, "log_with": []},
    }
    for section, values in changes.items():
        config[section] = {**config.get(section, {}), **values} if isinstance(values, dict) else values
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("change, field", [
    ({"run": {"max_tokens": 300}}, "run.max_tokens"),  # less than the steps it takes
    ({"data": {"anneal_to": None, "anneal_tokens": None}}, "sources[1].weight"),  # ecommerce never sampled
    ({"data": {"anneal_to": {"books": 1.0}}}, "anneal_to names unknown sources ['books']"),
    ({"optimizer": {"warmup_tokens": 8000, "decay_tokens": 4000}}, "optimizer: warmup"),
])
def test_bad_budgets_are_refused_naming_the_field(tmp_path, change, field):
    with pytest.raises(ConfigError if "anneal_to" in field or "weight" in field else ValueError) as error:
        plan_curriculum(tiny_phase(tmp_path, **change))
    assert field in str(error.value)


def test_decreasing_theta_and_missing_spans_fail_before_the_first_phase(tmp_path):
    tiny_phase(tmp_path, model={"preset": "micro", "overrides": {**TINY_MODEL, "rope_parameters": {
        "full_attention": {"rope_type": "default", "rope_theta": 160000.0}}}})
    tiny_phase(tmp_path, name="phase2", phase=2, model={"preset": None, "init_from": "phase1", "overrides": {
        "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 10000.0}}}})
    with pytest.raises(ConfigError, match=r"phase2: model.overrides.rope_parameters.full_attention.rope_theta"):
        plan_curriculum(tmp_path)
    tiny_phase(tmp_path, name="phase2", phase=2, model={"preset": None, "init_from": "phase1"},
               masking={"guided_fraction": 0.05}, data={"spans": str(tmp_path / "missing.json")})
    assert "missing.json not found" in plan_curriculum(tmp_path)["phases"][1]["warnings"][0]  # a plan needs no data
    with pytest.raises(FileNotFoundError, match="phase2: data.spans"):
        train_curriculum(tmp_path, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "phase1").exists()  # nothing ran


# --- the loop does what the plan says ------------------------------------------------------------

def test_random_replacement_draws_ordinary_tokens_only():
    tokenizer = load_tokenizer()
    collator = MLMCollator(tokenizer, MaskingConfig(rate=0.5, mask_fraction=0.0, random_fraction=1.0), 0, 1)
    ids = tokenizer("Navy cotton shirt, 64 GB, model X-200. " * 40, add_special_tokens=False)["input_ids"]
    drawn = np.concatenate([collator([{"input_ids": ids, "position_ids": list(range(len(ids))), "index": i}])
                            ["input_ids"][0].numpy() for i in range(20)])
    special = {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    assert {50284, 50285, 50367, 1, 50279} <= special and not special & set(drawn.tolist())
    assert len(set(drawn.tolist())) > 1000  # still the whole ordinary vocabulary


def test_weight_decay_is_fully_decoupled(tmp_path):
    config = load_phase_config(tiny_phase(tmp_path))
    layer = torch.nn.Linear(4, 4, bias=False)
    optimizer = build_optimizer(layer, lr=1e-3, weight_decay=0.01, config=config)
    before = layer.weight.detach().clone()
    layer.weight.grad = torch.zeros_like(layer.weight)
    optimizer.step()
    assert isinstance(optimizer, optimi.StableAdamW)
    assert torch.allclose(layer.weight, before * (1 - 0.01))  # 1 - wd at peak LR, not 1 - lr x wd


def test_short_run_does_what_its_plan_says(tmp_path):
    path = tiny_phase(tmp_path, model={"preset": "micro", "overrides": {**TINY_MODEL, "rope_parameters": {
        "full_attention": {"rope_type": "default", "rope_theta": 40000.0}}}})
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "--config", str(path), "--output-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    (expected,) = plan_curriculum(path, world_size=1)["phases"]
    summary = json.loads((tmp_path / "run" / "phase1-run" / "training_summary.json").read_text())
    assert summary["steps"] == expected["steps"] and expected["steps"] > 30
    lines = [json.loads(x) for x in (tmp_path / "run" / "phase1-run" / "metrics.jsonl").read_text().splitlines()]
    logged = {x["step"]: x for x in lines if "train/lr" in x}
    # train/lr after step s is the LR of the next step; rows follow the batch-size warmup
    warmup, steps = expected["lr"]["warmup_steps"], expected["steps"]
    assert logged[warmup]["train/lr"] == pytest.approx(expected["lr"]["warmup_end"])
    assert logged[steps // 2]["train/lr"] == pytest.approx(expected["lr"]["mid"])
    assert logged[steps - 1]["train/lr"] == pytest.approx(expected["lr"]["last_step"])
    assert [logged[s]["train/rows"] for s in (1, steps)] == [2, expected["global_batch"]["rows"]]
    drawn = {name: source["rows_drawn"] for name, source in summary["sources"].items()}
    rows = sum(drawn.values())
    for name, tokens in expected["mixture"]["tokens"].items():  # sampled rows vs the plan's shares
        assert drawn[name] / rows == pytest.approx(tokens / expected["tokens"], abs=0.08)
    assert expected["mixture"]["end"] == {"general": 0.25, "ecommerce": 0.75}
    exported = json.loads((tmp_path / "run" / "phase1" / "config.json").read_text())
    theta = exported.get("rope_parameters", {}).get("full_attention", {}).get("rope_theta") or \
        exported.get("global_rope_theta")
    assert theta == expected["rope_theta"]["full_attention"] == 40000.0


def test_table_2_defaults_follow_the_preset_not_the_model_sizes(tmp_path):
    """An unset LR comes from the preset a phase names or starts from; custom sizes or an outside start need one."""
    unset = {"lr": None, "weight_decay": None}
    tiny_phase(tmp_path, model={"preset": "micro", "overrides": {}}, optimizer=unset)
    tiny_phase(tmp_path, name="phase2", phase=2, model={"preset": None, "init_from": "phase1", "overrides": {}},
               optimizer=unset)
    peaks = [p["lr"]["peak"] for p in plan_curriculum(tmp_path)["phases"]]
    assert peaks == [PRESET_OPTIMIZER["micro"]["learning_rate"]] * 2
    with pytest.raises(ConfigError, match="phase2: the model starts from 'phase1'.*set optimizer.lr"):
        plan_curriculum(tmp_path / "phase2.yaml")  # alone: phase1 is not in this curriculum
    tiny_phase(tmp_path, model={"preset": "micro", "overrides": TINY_MODEL}, optimizer=unset)
    with pytest.raises(ConfigError, match="phase1: the model changes its preset's sizes"):
        plan_curriculum(tmp_path)
