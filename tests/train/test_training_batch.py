"""The global batch fixed in tokens: the same recipe on any number of processes, refused where it cannot be held."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from phases import CORPUS, TINY_MODEL, phase_file
from safetensors.torch import load_file

from training.budget import BatchSchedule, micro_batches
from training.config import ConfigError, load_phase_config
from training.curriculum import plan_curriculum
from training.loop import train_phase

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "training" / "configs"


def token_batch_phase(tmp_path: Path, **changes) -> Path:
    """4 rows of 64 tokens a step (2 rows per micro-batch), after a batch-size warmup from 2 rows."""
    config = {
        "name": "phase1", "phase": 1,
        "model": {"preset": "micro", "overrides": TINY_MODEL},
        "data": {"sequence_length": 64, "sources": [{"name": "general", "path": str(CORPUS / "general.jsonl")}],
                 "eval_documents": 4, "eval_rows": 4},
        "optimizer": {"lr": 3e-3, "weight_decay": 3e-4, "warmup_steps": 2, "decay_steps": 2},
        "batch": {"micro_batch_size": 2, "global_tokens": 256, "warmup_tokens": 300, "warmup_start_tokens": 128},
        "run": {"max_steps": 6, "save_every": 6, "eval_every": 6, "log_every": 1, "log_with": []},
    }
    return phase_file(tmp_path, config, **changes)


def metrics(run: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run / "phase1-run" / "metrics.jsonl").read_text().splitlines()]
    return [x for x in lines if "train/loss" in x]


@pytest.mark.slow  # two processes
def test_one_process_accumulating_2_equals_two_processes_accumulating_1(tmp_path):
    path = token_batch_phase(tmp_path)
    one, two = (plan_curriculum(path, world_size=w)["phases"][0] for w in (1, 2))
    assert one["global_batch"]["accumulation"] == 2 and two["global_batch"]["accumulation"] == 1
    for plan in (one, two):  # the rest of the plan is the same
        del plan["world_size"], plan["global_batch"]["accumulation"], plan["global_batch"]["rows_per_process"]
    assert one == two
    train_phase(load_phase_config(path), tmp_path / "one", progress=False)
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "training", "--config", str(path), "--output-dir", str(tmp_path / "two"),
                          "--no-progress"], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    a, b = (load_file(tmp_path / name / "phase1" / "model.safetensors") for name in ("one", "two"))
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    print(f"largest parameter difference, 1 process x 2 vs 2 processes x 1: {worst:.3g}")
    assert worst <= 1e-6, worst
    steps_one, steps_two = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    rows = [x["train/rows"] for x in steps_one]
    assert rows == [x["train/rows"] for x in steps_two] == [2, 2, 2, 4, 4, 4]  # batch warmup: 300 tokens
    assert [x["train/lr"] for x in steps_one] == [x["train/lr"] for x in steps_two]
    assert [x["train/tokens_seen"] for x in steps_one] == [x["train/tokens_seen"] for x in steps_two]


def test_the_paper_recipe_at_8_64_and_512_processes_differs_in_accumulation_only():
    plans = {w: plan_curriculum(CONFIGS / "base", world_size=w)["phases"] for w in (8, 64, 512)}
    for phases in zip(*plans.values()):
        same = [{k: v for k, v in p.items() if k not in ("world_size", "global_batch", "warnings")} for p in phases]
        assert same[0] == same[1] == same[2], phases[0]["name"]  # steps, tokens, LR along the phase, weight decay
        batches = [p["global_batch"] for p in phases]
        assert len({b["tokens"] for b in batches}) == 1 and batches[0]["tokens"] == 4_194_304
        assert len({b["warmup_steps"] for b in batches}) == 1
    assert [plans[w][0]["global_batch"]["accumulation"] for w in (8, 64, 512)] == [32, 4, 1]
    assert [plans[w][1]["global_batch"]["accumulation"] for w in (8, 64, 512)] == [16, 2, 1]


@pytest.mark.parametrize("world_size, field", [(1000, "batch.global_tokens"), (48, "batch.global_tokens")])
def test_a_world_size_that_cannot_hold_the_batch_is_refused_naming_the_field(world_size, field):
    with pytest.raises(ValueError, match=field) as error:
        plan_curriculum(CONFIGS / "base", world_size=world_size)
    assert f"{world_size} process(es)" in str(error.value)


def test_a_warmup_stage_below_one_row_per_process_is_refused(tmp_path):
    with pytest.raises(ValueError, match="phase1: batch.warmup_start_tokens"):
        plan_curriculum(token_batch_phase(tmp_path), world_size=4)  # 4 processes x 1 row of 64 is the whole batch


@pytest.mark.parametrize("batch, field", [
    ({"gradient_accumulation_steps": 2}, "not both"),
    ({"warmup_start_tokens": None}, "batch: warmup_start_tokens"),
    ({"warmup_start_tokens": 100}, "batch: warmup_start_tokens (100) must divide global_tokens"),
    ({"global_tokens": 0}, "batch: global_tokens must be >= 1"),
])
def test_bad_batch_fields_are_refused_naming_them(tmp_path, batch, field):
    with pytest.raises(ConfigError) as error:
        load_phase_config(token_batch_phase(tmp_path, batch=batch))
    assert field in str(error.value)


def test_rows_split_into_even_micro_batches(tmp_path):
    assert micro_batches(17, 16) == [9, 8] and micro_batches(32, 16) == [16, 16] and micro_batches(2, 16) == [2]
    schedule = BatchSchedule(load_phase_config(token_batch_phase(tmp_path)), world_size=1)
    assert [schedule.micro_batches(s) for s in range(5)] == [[2], [2], [2], [2, 2], [2, 2]]
    assert [schedule.tokens_before(s) for s in range(5)] == [0, 128, 256, 384, 640]


def test_a_launch_that_cannot_hold_the_batch_is_refused_before_any_work(tmp_path, monkeypatch):
    from training.curriculum import train_curriculum

    monkeypatch.setenv("WORLD_SIZE", "3")  # as torchrun / accelerate launch set it: 4 rows cannot split 3 ways
    with pytest.raises(ValueError, match=r"phase1: batch.global_tokens: 256 tokens per step cannot be reached by 3 "):
        train_curriculum(token_batch_phase(tmp_path), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
