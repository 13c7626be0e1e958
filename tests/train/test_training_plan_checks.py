"""Plan validation: each refusal names its field; a Hub start is compared with its cached config, or "unknown"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modeling_rexbert import RexBertConfig
from training.config import ConfigError
from training.curriculum import plan_curriculum

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "rexbert" / "corpus"
TINY_MODEL = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 2}


def phase_file(tmp_path: Path, name: str = "phase1", **changes) -> Path:
    config = {
        "name": name, "phase": 1,
        "model": {"preset": "micro", "overrides": dict(TINY_MODEL)},
        "data": {"sequence_length": 64, "eval_documents": 4, "eval_rows": 4,
                 "sources": [{"name": "general", "path": str(CORPUS / "general.jsonl")},
                             {"name": "ecommerce", "path": str(CORPUS / "ecommerce.jsonl"), "weight": 0.0}],
                 "anneal_to": {"general": 0.25, "ecommerce": 0.75}, "anneal_tokens": 3000},
        "optimizer": {"lr": 3e-3, "weight_decay": 3e-4, "warmup_tokens": 600, "decay_tokens": 4000},
        "batch": {"micro_batch_size": 2, "global_tokens": 256},
        "run": {"max_tokens": 10_240, "log_with": []},
    }
    for section, values in changes.items():
        config[section] = {**config.get(section, {}), **values} if isinstance(values, dict) else values
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


THETA_ZERO = {**TINY_MODEL, "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 0.0}}}


@pytest.mark.parametrize("change, field", [
    ({"data": {"anneal_tokens": 20_000}}, "data.anneal_tokens (20,000) is longer than the phase"),
    ({"data": {"anneal_tokens": None, "anneal_steps": 50}, "run": {"max_tokens": None, "max_steps": 40},
      "optimizer": {"warmup_tokens": None, "decay_tokens": None}}, "data.anneal_steps (50) is longer than the phase"),
    ({"model": {"preset": "micro", "overrides": THETA_ZERO}},
     "model: overrides.rope_parameters.full_attention.rope_theta must be a number > 0"),
    ({"data": {"anneal_to": {"general": 0.25, "ecommerce": 0.5}}}, "anneal_to: the target shares must sum to 1"),
    ({"data": {"sequence_length": 2048}, "batch": {"global_tokens": 4096}, "run": {"max_tokens": 16384},
      "model": {"preset": "micro", "overrides": {
        **TINY_MODEL, "max_position_embeddings": 1024}}}, "data.sequence_length (2,048) is longer than the model's "
                                                          "max_position_embeddings (1,024)"),
    ({"model": {"preset": "micro", "init_from_revision": "v1"}}, "init_from_revision 'v1' picks a version of a Hub"),
])
def test_each_refusal_names_its_field(tmp_path, change, field):
    with pytest.raises(ConfigError if "anneal_tokens" not in field else ValueError) as error:
        plan_curriculum(phase_file(tmp_path, **change))
    assert field in str(error.value)


def test_anneal_tokens_longer_than_a_step_counted_phase_are_refused(tmp_path):
    path = phase_file(tmp_path, run={"max_tokens": None, "max_steps": 10}, optimizer={"decay_tokens": 1000})
    with pytest.raises(ValueError, match=r"phase1: data.anneal_tokens \(3,000\) is longer than the phase's 2,560"):
        plan_curriculum(path)


def test_a_revision_must_name_something(tmp_path):
    path = phase_file(tmp_path, model={"preset": None, "init_from": "org/model", "init_from_revision": "two words"})
    with pytest.raises(ConfigError, match="init_from_revision: 'two words' is not a branch, tag or commit"):
        plan_curriculum(path)


def _plan_offline(config: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(cache.parent / "home")}
    return subprocess.run([sys.executable, "-m", "rexbert.cli", "train", "--config", str(config), "--plan", "--json"],
                          env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)


def _cache_hub_config(cache: Path, repo: str, revision: str, **fields) -> None:
    """A Hub model's config.json in the layout huggingface_hub's cache uses (refs/<revision> -> snapshot)."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    RexBertConfig.from_preset("micro", **fields).save_pretrained(folder / "snapshots" / commit)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / revision).write_text(commit)


def test_a_hub_start_is_compared_with_its_cached_config_else_unknown(tmp_path):
    path = phase_file(tmp_path, model={"preset": None, "init_from": "someone/encoder", "init_from_revision": "ext-8k",
                                       "overrides": {"rope_parameters": {
                                           "full_attention": {"rope_type": "default", "rope_theta": 10000.0}}}})
    offline = _plan_offline(path, tmp_path / "empty-cache")
    assert offline.returncode == 0, offline.stderr[-2000:]
    (phase,) = json.loads(offline.stdout)["phases"]
    assert phase["hub_start"] == {"hub_id": "someone/encoder", "revision": "ext-8k", "rope_theta": "unknown",
                                  "max_position_embeddings": "unknown"}
    cache = tmp_path / "cache"
    _cache_hub_config(cache, "someone/encoder", "ext-8k", rope_parameters={
        "full_attention": {"rope_type": "default", "rope_theta": 160000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 160000.0}})
    lowered = _plan_offline(path, cache)  # the phase would lower the start's 160k to 10k
    assert lowered.returncode != 0
    assert "phase1: model.overrides.rope_parameters.full_attention.rope_theta: 10000 is below its start's " \
           "(someone/encoder, from the local cache) 160000" in lowered.stderr
    path = phase_file(tmp_path, model={"preset": None, "init_from": "someone/encoder", "init_from_revision": "ext-8k",
                                       "overrides": {}})
    known = _plan_offline(path, cache)
    assert known.returncode == 0, known.stderr[-2000:]
    (phase,) = json.loads(known.stdout)["phases"]
    assert phase["hub_start"]["rope_theta"] == {"full_attention": 160000.0, "sliding_attention": 160000.0}


def test_a_folder_start_is_compared_with_its_config_in_the_plan_and_in_the_run(tmp_path):
    from training.config import load_phase_config
    from training.loop import model_config

    start = tmp_path / "start"
    RexBertConfig.from_preset("micro", rope_parameters={
        "full_attention": {"rope_type": "default", "rope_theta": 160000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 160000.0}}).save_pretrained(start)
    path = phase_file(tmp_path, model={"preset": None, "init_from": str(start), "overrides": {"rope_parameters": {
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}}})
    message = "phase1: model.overrides.rope_parameters.sliding_attention.rope_theta: 10000 is below its start's"
    with pytest.raises(ConfigError, match=message):
        plan_curriculum(path)
    with pytest.raises(ConfigError, match=message):  # the run checks it again once it has read the start's config
        model_config(load_phase_config(path), tmp_path / "run")


def test_an_unpinned_hub_start_prints_the_command_that_lists_its_revisions():
    from training.curriculum import plan_curriculum

    (phase,) = plan_curriculum(ROOT / "training" / "configs" / "base" /
                               "anneal-from-ettin.yaml")["phases"]
    warning = next(w for w in phase["warnings"] if "init_from_revision is unset" in w)
    command = warning.split("list them with: ")[1].rstrip(")")
    assert command.startswith('python -c "') and "list_repo_refs('jhu-clsp/ettin-encoder-150m')" in command
    compile(command.removeprefix('python -c "').removesuffix('"'), "<plan>", "exec")  # a valid one-liner
