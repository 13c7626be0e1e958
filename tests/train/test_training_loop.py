"""The training loop: configs, schedule, mixture, exact resume (1 and 2 processes), NaN stop, curriculum."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from phases import CORPUS, TINY_MODEL, assert_identical, tiny_phase, weights
from transformers import AutoModelForMaskedLM

from training.budget import BatchSchedule
from training.checkpoints import list_checkpoints
from training.config import ConfigError, load_phase_config
from training.curriculum import load_phases, train_curriculum
from training.loop import TrainingDivergedError, train_phase
from training.mixture import MixtureSampler, MixtureSchedule
from training.optim import build_scheduler

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "training" / "configs" / "demo"


# --- configs -------------------------------------------------------------------------------------

def test_shipped_configs_validate():
    for preset in ("micro", "mini", "base", "large"):
        phases = load_phases(ROOT / "training" / "configs" / preset)
        assert [p.name for p in phases] == ["phase1", "phase2", "phase3"]
        assert [p.masking.rate for p in phases[:2]] == [0.30, 0.30]
        assert 0.10 <= phases[2].masking.rate <= 0.15 and phases[2].masking.guided_fraction == 0.05
        assert phases[0].data.sequence_length == 512 and phases[1].data.sequence_length == 8192
        assert phases[2].optimizer.decay_steps > 0 and phases[2].data.anneal_to is not None
    assert [p.name for p in load_phases(DEMO)] == ["phase1", "phase2", "phase3"]


@pytest.mark.parametrize("change, message", [
    ({"optimizer": {"lr": "fast"}}, "phase1.yaml: optimizer.lr: expected a number, got 'fast'"),
    ({"batch": {"micro_batch_sise": 2}}, "phase1.yaml: batch: unknown field(s) ['micro_batch_sise']"),
    ({"masking": {"rate": 1.5}}, "phase1.yaml: masking: masking rate must be in (0, 1)"),
    ({"optimizer": {"warmup_steps": 5, "decay_steps": 5}}, "warmup_steps + decay_steps (5 + 5) exceed run.max_steps"),
    ({"data": {"anneal_to": {"books": 1.0}}}, "anneal_to names unknown sources ['books']"),
    ({"model": {"preset": "huge"}}, "model: preset 'huge' is unknown"),
])
def test_config_errors_name_the_field(tmp_path, change, message):
    with pytest.raises(ConfigError) as error:
        load_phase_config(tiny_phase(tmp_path, **change))
    assert message in str(error.value)


def test_extends_merges_and_relative_paths(tmp_path):
    base = tiny_phase(tmp_path)
    child = tmp_path / "sub" / "phase2.yaml"
    child.parent.mkdir()
    child.write_text(yaml.safe_dump({"extends": "../phase1.yaml", "name": "phase2", "phase": 2,
                                     "optimizer": {"warmup_steps": 1}}))
    config = load_phase_config(child)
    assert config.name == "phase2" and config.optimizer.warmup_steps == 1
    assert config.optimizer.lr == 3e-3 and config.batch.micro_batch_size == 2  # from the parent
    assert config.source_path(config.data.sources[0]) == str(CORPUS / "general.jsonl")
    assert load_phase_config(base).phase == 1


def test_unknown_model_override_fails_before_training(tmp_path):
    path = tiny_phase(tmp_path, model={"preset": "micro", "overrides": {"hiden_size": 64}})
    with pytest.raises(ConfigError, match="hiden_size"):
        train_phase(load_phase_config(path), tmp_path / "run", progress=False)


# --- schedule and batch-size warmup --------------------------------------------------------------

def test_wsd_schedule_shape(tmp_path):
    config = load_phase_config(tiny_phase(tmp_path, optimizer={"warmup_steps": 10, "decay_steps": 40},
                                    run={"max_steps": 100}))
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, config)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(0.5)  # linear warmup
    assert all(lr == 1.0 for lr in lrs[10:60])  # stable
    assert lrs[80] == pytest.approx(1 - math.sqrt(20 / 40), abs=1e-6)  # 1 - sqrt decay
    assert lrs[99] < 0.2 and all(a >= b for a, b in zip(lrs[60:], lrs[61:]))


def test_batch_size_warmup_ramps_accumulation(tmp_path):
    """A legacy batch of 4 micro-batches (2 rows of 64 tokens each): 1 a step, one more each time another third
    of warmup_tokens (1,000 tokens) has been seen, 4 from 3,000 tokens on."""
    config = load_phase_config(tiny_phase(tmp_path, batch={"gradient_accumulation_steps": 4, "warmup_tokens": 3000}))
    schedule = BatchSchedule(config, world_size=1)
    assert [schedule.accumulation(step) for step in range(20)] == [1] * 8 + [2] * 4 + [3] * 3 + [4] * 5
    assert [schedule.tokens_before(step) for step in (7, 8, 11, 12, 14, 15)] == [896, 1024, 1792, 2048, 2816, 3200]


# --- mixture -------------------------------------------------------------------------------------

def test_mixture_temperature_and_annealing():
    schedule = MixtureSchedule([3.0, 1.0], temperature=2.0, anneal_to=[0.0, 1.0], anneal_steps=10)
    p0 = schedule.probabilities(0)
    assert p0 == pytest.approx(np.array([3 ** 0.5, 1]) / (3 ** 0.5 + 1))  # flattened by the temperature
    assert schedule.probabilities(10) == pytest.approx([0.0, 1.0])
    assert schedule.probabilities(5)[1] > p0[1]


def test_mixture_uses_every_row_once_per_epoch_and_resumes():
    sampler = MixtureSampler([7, 5], MixtureSchedule([1.0, 1.0]), seed=3, phase=1)
    draws = sampler.draw(0, 40)
    for source, rows in enumerate([7, 5]):
        seen = [d.row for d in draws if d.source == source]
        full_epochs = len(seen) // rows
        for epoch in range(full_epochs):
            assert sorted(seen[epoch * rows:(epoch + 1) * rows]) == list(range(rows))
    again = MixtureSampler([7, 5], MixtureSchedule([1.0, 1.0]), seed=3, phase=1)
    first = again.draw(0, 25)
    state = again.state_dict()
    resumed = MixtureSampler([7, 5], MixtureSchedule([1.0, 1.0]), seed=3, phase=1)
    resumed.load_state_dict(state)
    assert first + resumed.draw(0, 15) == draws


# --- the loop ------------------------------------------------------------------------------------

def test_resume_is_bit_identical_in_one_process(tmp_path):
    config = load_phase_config(tiny_phase(tmp_path))
    straight = train_phase(config, tmp_path / "straight", progress=False)
    stopped = train_phase(config, tmp_path / "resumed", stop_after=4, progress=False)
    assert stopped == {"stopped_at": 4}
    assert [p.name for p in list_checkpoints(tmp_path / "resumed" / "phase1-run" / "checkpoints")] == \
        ["step-00000003", "step-00000004"]
    resumed = train_phase(config, tmp_path / "resumed", resume=True, progress=False)
    assert_identical(weights(tmp_path / "straight" / "phase1"), weights(tmp_path / "resumed" / "phase1"))
    assert resumed["eval/loss"] == straight["eval/loss"] and resumed["tokens"] == straight["tokens"]
    lines = [json.loads(x) for x in (tmp_path / "resumed" / "phase1-run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "train/loss" in x] == [1, 2, 3, 4, 5, 6]  # no duplicated steps


def _torchrun(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "training", *args, "--no-progress"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.mark.slow  # two processes
def test_resume_is_bit_identical_with_two_processes(tmp_path):
    config = str(tiny_phase(tmp_path))
    straight = _torchrun(["--config", config, "--output-dir", str(tmp_path / "straight")])
    assert straight.returncode == 0, straight.stderr[-3000:]
    stopped = _torchrun(["--config", config, "--output-dir", str(tmp_path / "resumed"), "--stop-after", "4"])
    assert stopped.returncode == 0 and "stopped at step 4" in stopped.stdout, stopped.stderr[-3000:]
    resumed = _torchrun(["--config", config, "--output-dir", str(tmp_path / "resumed"), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((tmp_path / "straight" / "phase1-run" / "training_summary.json").read_text())
    assert summary["tokens"] > 0
    rows = [json.loads(x)["train/rows"] for x in (tmp_path / "straight" / "phase1-run" / "metrics.jsonl")
            .read_text().splitlines() if "train/rows" in x]
    assert rows[0] == 4 and rows[-1] == 8  # 2 processes x 2 rows, then batch-size warmup doubles it
    assert_identical(weights(tmp_path / "straight" / "phase1"), weights(tmp_path / "resumed" / "phase1"))


def test_resume_with_a_different_config_fails_before_training(tmp_path):
    train_phase(load_phase_config(tiny_phase(tmp_path)), tmp_path / "run", stop_after=3, progress=False)
    changed = load_phase_config(tiny_phase(tmp_path, masking={"rate": 0.2}))
    with pytest.raises(ConfigError, match=r"masking.rate: checkpoint 0.3, config 0.2"):
        train_phase(changed, tmp_path / "run", resume=True, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train_phase(load_phase_config(tiny_phase(tmp_path)), tmp_path / "run", progress=False)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    # a learning rate that overflows the weights after the first checkpoint
    config = load_phase_config(tiny_phase(tmp_path, optimizer={"lr": 1e38, "warmup_steps": 0},
                                    run={"max_steps": 20, "save_every": 1, "keep_last": 3}))
    with pytest.raises(TrainingDivergedError, match="the loss is (nan|inf)") as error:
        train_phase(config, tmp_path / "run", progress=False)
    kept = list_checkpoints(tmp_path / "run" / "phase1-run" / "checkpoints")
    assert kept and str(kept[-1]) in str(error.value)
    assert all(torch.isfinite(t).all() for t in weights(kept[-1]).values())  # never saved past the NaN
    assert not (tmp_path / "run" / "phase1-run" / "training_summary.json").exists()


def test_export_writes_the_heldout_file_and_pushes_the_exported_folder_once(tmp_path, monkeypatch):
    from modeling_rexbert.tokenization_rexbert import load_tokenizer
    from training.corpus import source_texts

    calls = []

    class FakeHfApi:  # the export pushes through rexbert.core.hub_upload (with its timeouts)
        def create_repo(self, repo_id, exist_ok=False, **kwargs):
            calls.append(("create_repo", repo_id))

        def upload_folder(self, folder_path, repo_id, allow_patterns=None, **kwargs):  # what `rexbert card push` sends
            calls.append(("upload_folder", repo_id, allow_patterns))

    monkeypatch.setattr("huggingface_hub.HfApi", FakeHfApi)
    config = load_phase_config(tiny_phase(tmp_path, run={"max_steps": 2, "push_to_hub": "you/tiny"}))
    train_phase(config, tmp_path / "run", progress=False)
    assert [c[:2] for c in calls] == [("create_repo", "you/tiny"), ("upload_folder", "you/tiny")]
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "modules.json",
            "sentence_bert_config.json", "1_Pooling/config.json"} <= set(calls[1][2])  # sentence-transformers too
    lines = (tmp_path / "run" / "phase1-run" / "heldout" / "general.jsonl").read_text().splitlines()
    _, heldout = source_texts(config, load_tokenizer(), tmp_path / "run", "general")
    assert len(lines) == 4 and [json.loads(line)["text"] for line in lines] == heldout


@pytest.mark.slow  # three phases on real text
def test_three_phase_curriculum_on_real_text(tmp_path):
    """The demo curriculum, shrunk: phase 1 general, phase 2 longer rows, phase 3 annealed toward
    e-commerce with Guided MLM; held-out MLM loss falls, and each phase loads with Auto classes."""
    for name in ("phase1", "phase2", "phase3"):
        data = {"extends": str(DEMO / f"{name}.yaml")}
        if name == "phase1":
            data["model"] = {"overrides": TINY_MODEL}
        data["data"] = {"sequence_length": 64 if name == "phase1" else 128}
        data["optimizer"] = {"lr": 3e-3, "weight_decay": 3e-4}  # not a preset size: no Table 2 default
        data["batch"] = {"micro_batch_size": 4}
        data["run"] = {"log_with": []}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data))
    phases = load_phases(tmp_path, max_steps=12)
    assert phases[2].data.anneal_steps == round(60 * 12 / 120)  # annealing scaled with the phase
    summaries = train_curriculum(tmp_path, tmp_path / "run", max_steps=12, progress=False)
    assert [s["phase"] for s in summaries] == ["phase1", "phase2", "phase3"]
    evals = [json.loads(x)["eval/loss"] for x in (tmp_path / "run" / "phase1-run" / "metrics.jsonl").read_text()
             .splitlines() if "eval/loss" in x]
    assert evals[0] > 10.0 and evals[-1] < evals[0] - 1.0, evals  # from ~ln(50368) = 10.8 before step 1
    assert summaries[2]["sources"]["ecommerce"]["train_rows"] > 0
    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "run" / "phase3", trust_remote_code=True)
    phase2_theta = model.config.rope_parameters["full_attention"]["rope_theta"]
    assert phase2_theta == 160000.0 and model.config.num_hidden_layers == 2
    # resuming a finished curriculum does nothing and returns the same summaries
    assert train_curriculum(tmp_path, tmp_path / "run", max_steps=12, resume=True, progress=False) == summaries
