"""`rexbert train --set key=value` and `--report-to`: command-line settings validated as the files are,
targeted per phase in a curriculum folder, and metrics reaching the TensorBoard event file."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import yaml

from rexbert.cli import main
from training.config import ConfigError
from training.curriculum import load_phases

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "training" / "configs" / "demo"
CORPUS = ROOT / "rexbert" / "corpus"
TINY_MODEL = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 2}


def plan(capsys, *arguments: str) -> list[dict]:
    assert main(["train", "--config", str(DEMO), "--plan", "--json", *arguments]) == 0
    return json.loads(capsys.readouterr().out)["phases"]


def refusal(capsys, *arguments: str) -> str:
    assert main(["train", "--config", str(DEMO), "--plan", *arguments]) == 2
    return capsys.readouterr().err


def test_set_applies_to_every_phase_and_a_phase_prefix_to_one(capsys):
    shipped = plan(capsys)
    assert {p["lr"]["peak"] for p in shipped} == {0.003}  # demo/base.yaml
    changed = plan(capsys, "--set", "optimizer.lr=4e-4", "--set", "phase2.optimizer.lr=1e-3",
                   "--set", "phase3.run.max_steps=50", "--set", "phase3.optimizer.decay_steps=50",
                   "--set", "phase3.data.anneal_steps=25")
    assert [p["lr"]["peak"] for p in changed] == [4e-4, 1e-3, 4e-4]  # 4e-4 is a number, as in Python or JSON
    assert [p["steps"] for p in changed] == [shipped[0]["steps"], shipped[1]["steps"], 50]


def test_set_values_are_yaml_and_a_later_setting_wins():
    overrides = {"batch": {"micro_batch_size": 4}, "run": {"log_with": [], "seed": 7}}
    phases = load_phases(DEMO, overrides=overrides)
    assert [p.batch.micro_batch_size for p in phases] == [4, 4, 4] and phases[0].run.log_with == []
    from training.overrides import parse_setting, settings_to_overrides

    settings = [parse_setting(s) for s in ("run.seed=3", "run.log_with=[]", "data.spans=null", "run.seed=5")]
    assert settings_to_overrides(settings) == {"run": {"seed": 5, "log_with": []}, "data": {"spans": None}}


@pytest.mark.parametrize("setting, named", [
    ("optimizer.lrr=1e-3", "optimizer: unknown field(s) ['lrr']"),
    ("optimizer.lr=fast", "optimizer.lr: expected a number, got 'fast'"),
    ("batch.micro_batch_size=0", "micro_batch_size must be >= 1, got 0"),
    ("phase4.optimizer.lr=1e-3", "'phase4' is neither a field of a phase config"),
    ("phase2.run.log_with=[tensorbord]", "log_with: 'tensorbord' is not an Accelerate tracker"),
])
def test_bad_settings_are_refused_naming_the_key(capsys, setting, named):
    error = refusal(capsys, "--set", setting)
    assert named in error and f"--set {setting.split('=')[0]}=" in error, error


def test_malformed_setting_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--config", str(DEMO), "--plan", "--set", "optimizer.lr"])
    assert "expected key=value" in capsys.readouterr().err
    assert "cannot go with" in refusal(capsys, "--report-to", "none", "tensorboard")


def test_set_twice_at_two_depths_is_refused():
    from training.overrides import parse_setting, settings_to_overrides

    with pytest.raises(ConfigError, match="optimizer was already set"):
        settings_to_overrides([parse_setting("optimizer=3"), parse_setting("optimizer.lr=1e-3")])


def read_events(folder: Path) -> dict[str, list[float]]:
    """Scalars by tag from TensorBoard event files (TFRecord: length, its CRC, an Event proto, its CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    scalars: dict[str, list[float]] = {}
    for file in folder.rglob("events.out.tfevents.*"):
        data, at = file.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = Event.FromString(data[at + 12:at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append(value.simple_value)
    return scalars


def test_report_to_tensorboard_writes_the_loss(tmp_path, capsys):
    phase = {"name": "phase1", "phase": 1, "model": {"preset": "micro", "overrides": TINY_MODEL},
             "data": {"sequence_length": 64, "sources": [{"name": "general", "path": str(CORPUS / "general.jsonl")}],
                      "eval_documents": 4, "eval_rows": 4},
             "optimizer": {"lr": 3e-3, "weight_decay": 3e-4},
             "batch": {"micro_batch_size": 2, "global_tokens": 256},
             "run": {"max_steps": 50, "log_every": 1, "eval_every": 50, "save_every": 50, "log_with": []}}
    config = tmp_path / "phase1.yaml"
    config.write_text(yaml.safe_dump(phase))
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--output-dir", str(out), "--no-progress", "--report-to",
                 "tensorboard", "--set", "run.max_steps=3", "--set", "run.eval_every=3"]) == 0, capsys.readouterr().err
    scalars = read_events(out / "phase1-run" / "logs")
    metrics = [json.loads(line) for line in (out / "phase1-run" / "metrics.jsonl").read_text().splitlines()]
    losses = [m["train/loss"] for m in metrics if "train/loss" in m]
    assert len(losses) == 3 and scalars["train/loss"] == pytest.approx(losses, rel=1e-6)
    assert "eval/loss" in scalars and "train/lr" in scalars
    assert json.loads((out / "phase1-run" / "phase_config.json").read_text())["run"]["max_steps"] == 3


def test_tokenize_takes_the_same_settings(tmp_path, capsys):
    arguments = ["--output-dir", str(tmp_path), "--set", "data.sequence_lenght=64"]
    assert main(["tokenize", "--config", str(DEMO), *arguments]) == 2
    assert "data: unknown field(s) ['sequence_lenght']" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before any work


def test_a_file_reads_4e_4_as_a_number_too_and_text_stays_text(tmp_path):
    from training.config import load_phase_config

    (tmp_path / "phase1.yaml").write_text(f"extends: {DEMO / 'phase1.yaml'}\noptimizer: {{lr: 4e-4}}\n"
                                          "model: {preset: null, init_from: owner/name, init_from_revision: 1234e56}\n")
    config = load_phase_config(tmp_path / "phase1.yaml")
    assert config.optimizer.lr == 4e-4  # a number field takes it as a number (PyYAML alone reads a string)
    assert config.model.init_from_revision == "1234e56"  # a commit that looks like a number stays a commit
