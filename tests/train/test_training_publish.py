"""Training's `run.push_to_hub` publishes through `rexbert card push`'s path (rexbert/core/model_publish.py):
the same allowlist, the same refusal of local paths, and a repo id checked before the phase trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.config import ConfigError, load_phase_config
from training.loop import PushFailed, train_phase

CORPUS = Path(__file__).resolve().parents[2] / "rexbert" / "corpus"
TINY_MODEL = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 2}


def tiny_phase(tmp_path: Path, push_to_hub: str):
    config = {"name": "phase1", "phase": 1, "model": {"preset": "micro", "overrides": TINY_MODEL},
              "data": {"sequence_length": 64, "sources": [{"name": "general", "path": str(CORPUS / "general.jsonl")}],
                       "eval_documents": 4, "eval_rows": 4},
              "optimizer": {"lr": 3e-3, "weight_decay": 3e-4}, "batch": {"micro_batch_size": 2, "global_tokens": 256},
              "run": {"max_steps": 2, "eval_every": 2, "save_every": 2, "log_with": [], "push_to_hub": push_to_hub}}
    (tmp_path / "phase1.yaml").write_text(yaml.safe_dump(config))
    return load_phase_config(tmp_path / "phase1.yaml")


@pytest.fixture
def hub(monkeypatch):
    """A Hub that records what it is sent (no network)."""
    sent = []

    class FakeHfApi:
        def create_repo(self, repo_id, **kwargs):
            sent.append(("create_repo", repo_id))

        def upload_folder(self, folder_path, repo_id, allow_patterns=None, **kwargs):
            sent.append(("upload_folder", repo_id, allow_patterns))

    monkeypatch.setattr("huggingface_hub.HfApi", FakeHfApi)
    return sent


def export_also_writes(monkeypatch, files: dict[str, str]) -> None:
    """Files that land in the exported folder beside the model (as a hand-made note or a stray pickle would)."""
    import training.loop

    original = training.loop.save_tokenizer

    def save_and_add(tokenizer, folder):
        original(tokenizer, folder)
        for name, text in files.items():
            (Path(folder) / name).write_text(text.replace("{folder}", str(Path(folder).resolve())))

    monkeypatch.setattr(training.loop, "save_tokenizer", save_and_add)


def test_push_sends_only_the_allowlist(tmp_path, monkeypatch, hub):
    export_also_writes(monkeypatch, {"optimizer.pt": "state", "notes.json": "{}"})
    train_phase(tiny_phase(tmp_path, "you/tiny"), tmp_path / "run", progress=False)
    assert [call[:2] for call in hub] == [("create_repo", "you/tiny"), ("upload_folder", "you/tiny")]
    sent = hub[1][2]
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(sent)
    assert "optimizer.pt" not in sent and "notes.json" not in sent  # in the folder, never uploaded
    assert (tmp_path / "run" / "phase1" / "optimizer.pt").is_file()


def test_push_refuses_a_local_path_and_keeps_the_trained_phase(tmp_path, monkeypatch, hub):
    export_also_writes(monkeypatch, {"README.md": "Trained in {folder}."})
    with pytest.raises(PushFailed, match=r"contains the local path .*rexbert card push --model"):
        train_phase(tiny_phase(tmp_path, "you/tiny"), tmp_path / "run", progress=False)
    assert hub == []  # nothing was sent
    assert (tmp_path / "run" / "phase1" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "phase1-run" / "training_summary.json").is_file()  # the phase is done


@pytest.mark.parametrize("repo_id", ["tiny", "you/tiny/extra", "you/ti ny"])
def test_push_to_hub_repo_id_is_checked_when_the_config_is_read(tmp_path, repo_id):
    with pytest.raises(ConfigError, match="run: push_to_hub: .* is not a Hub model repo id"):
        tiny_phase(tmp_path, repo_id)
