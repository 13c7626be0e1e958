"""A tiny training phase on the bundled text, and weight comparisons, for tests of training and of the commands
that run it."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

CORPUS = Path(__file__).resolve().parents[1] / "rexbert" / "corpus"
TINY_MODEL = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 2}


def tiny_phase(tmp_path: Path, **changes) -> Path:
    """A phase file for a 2-layer model on the bundled general text; `changes` merge into it."""
    config = {
        "name": "phase1", "phase": 1,
        "model": {"preset": "micro", "overrides": TINY_MODEL},
        "data": {"sequence_length": 64, "sources": [{"name": "general", "path": str(CORPUS / "general.jsonl")}],
                 "eval_documents": 4, "eval_rows": 4},
        "optimizer": {"lr": 3e-3, "weight_decay": 3e-4, "warmup_steps": 2},
        "batch": {"micro_batch_size": 2, "gradient_accumulation_steps": 2, "warmup_tokens": 300},
        "run": {"max_steps": 6, "save_every": 3, "eval_every": 3, "log_every": 1, "log_with": []},
    }
    return phase_file(tmp_path, config, **changes)


def phase_file(tmp_path: Path, config: dict, **changes) -> Path:
    """`config` with `changes` merged into its sections, written as `tmp_path/phase1.yaml`."""
    for section, values in changes.items():
        config[section] = {**config.get(section, {}), **values} if isinstance(values, dict) else values
    path = tmp_path / "phase1.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
