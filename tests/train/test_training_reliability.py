"""Checkpoints that verify before use, a torn metrics line, one run per folder, no pickled trainer state."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
from phases import assert_identical, tiny_phase, weights
from safetensors.torch import load_file, save_file

from rexbert.cli import main as cli
from training.checkpoints import list_checkpoints, newest_intact, verify_checkpoint, write_manifest
from training.config import ConfigError, load_phase_config
from training.lock import FolderInUseError, folder_lock
from training.loop import train_phase


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    root = tmp_path_factory.mktemp("straight")
    config = load_phase_config(tiny_phase(root))
    train_phase(config, root / "run", progress=False)
    return root / "run" / "phase1"


def _stopped_at_4(tmp_path):
    config = load_phase_config(tiny_phase(tmp_path))
    train_phase(config, tmp_path / "run", stop_after=4, progress=False)
    return config, tmp_path / "run" / "phase1-run" / "checkpoints"


@pytest.mark.parametrize("damage", ["truncate", "zeros"])
def test_a_damaged_latest_checkpoint_is_skipped_by_name_and_resume_falls_back(tmp_path, straight, capsys, damage):
    config, checkpoints = _stopped_at_4(tmp_path)
    latest = checkpoints / "step-00000004"
    assert verify_checkpoint(latest) is None
    model = latest / "model.safetensors"
    data = bytearray(model.read_bytes())
    if damage == "truncate":
        model.write_bytes(data[: len(data) // 2])
    else:  # same size, a run of zeros inside the weights: only the hash can tell
        data[len(data) // 2: len(data) // 2 + 4096] = bytes(4096)
        model.write_bytes(bytes(data))
    capsys.readouterr()
    train_phase(config, tmp_path / "run", resume=True, progress=False)
    out = capsys.readouterr().out
    assert f"skipping damaged checkpoint {latest}" in out and "model.safetensors" in out
    # resumed from step 3, the intact one: still the uninterrupted run's weights
    assert_identical(weights(straight), weights(tmp_path / "run" / "phase1"))


def test_no_intact_checkpoint_is_an_error_naming_the_folder(tmp_path):
    config, checkpoints = _stopped_at_4(tmp_path)
    for checkpoint in list_checkpoints(checkpoints):
        (checkpoint / "model.safetensors").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=f"no intact checkpoint in {checkpoints}"):
        train_phase(config, tmp_path / "run", resume=True, progress=False)


def test_newest_verified_checkpoint_skips_non_finite_weights(tmp_path):
    """What the NaN stop names: a checkpoint whose weights overflowed is not 'good' even if its files are whole."""
    _, checkpoints = _stopped_at_4(tmp_path)
    latest = checkpoints / "step-00000004"
    tensors = load_file(latest / "model.safetensors")
    first = sorted(tensors)[0]
    tensors[first] = torch.full_like(tensors[first], float("inf"))
    save_file(tensors, latest / "model.safetensors")
    write_manifest(latest)  # files whole and consistent, weights not
    reported = []
    assert newest_intact(checkpoints, reported.append, finite_weights=True) == checkpoints / "step-00000003"
    assert reported == [f"skipping damaged checkpoint {latest}: model.safetensors holds non-finite weights ({first})"]
    assert newest_intact(checkpoints, reported.append) == latest


def test_our_trainer_state_is_json_and_nothing_of_ours_is_pickled(tmp_path):
    _, checkpoints = _stopped_at_4(tmp_path)
    latest = checkpoints / "step-00000004"
    state = json.loads((latest / "trainer_state.json").read_text())
    assert state["progress"]["step"] == 4 and "next_sample" in state["sampler"]
    assert not list(latest.glob("custom_checkpoint_*"))
    assert "trainer_state.json" in json.loads((latest / "manifest.json").read_text())["files"]


def test_a_torn_last_metrics_line_does_not_block_resume(tmp_path, straight, capsys):
    config, _ = _stopped_at_4(tmp_path)
    metrics = tmp_path / "run" / "phase1-run" / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join(lines) + '\n{"step": 5, "train/lo')  # a crash mid-write
    train_phase(config, tmp_path / "run", resume=True, progress=False)
    assert f"{metrics}:{len(lines) + 1}: dropping an unreadable metrics line" in capsys.readouterr().out
    steps = [json.loads(x)["step"] for x in metrics.read_text().splitlines() if "train/loss" in x]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_a_second_run_on_the_same_folder_is_refused_naming_the_holder(tmp_path):
    config = load_phase_config(tiny_phase(tmp_path))
    with folder_lock(tmp_path / "run" / "phase1-run"):
        with pytest.raises(FolderInUseError, match=f"pid {os.getpid()} on host {socket.gethostname()}"):
            train_phase(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "phase1-run" / "checkpoints").exists()  # refused before any work
    train_phase(config, tmp_path / "run", stop_after=1, progress=False)  # released: the folder is usable again


def test_non_positive_step_counts_are_refused(tmp_path, capsys):
    phase = str(tiny_phase(tmp_path))
    for flag, value in (("--stop-after", "-1"), ("--stop-after", "0"), ("--max-steps", "0")):
        with pytest.raises(SystemExit) as exit_:
            cli(["train", "--config", phase, "--output-dir", str(tmp_path / "run"), flag, value])
        assert exit_.value.code == 2 and f"{flag}: expected a positive integer" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--stop-after must be a positive"):
        train_phase(load_phase_config(phase), tmp_path / "run", stop_after=0, progress=False)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_numbers_are_refused_naming_the_field(tmp_path, value):
    path = tiny_phase(tmp_path)
    path.write_text(path.read_text().replace("lr: 0.003", f"lr: {value}"))
    with pytest.raises(ConfigError, match=r"optimizer.lr: expected a finite number"):
        load_phase_config(path)


def test_an_extends_cycle_is_refused_naming_the_files(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nphase: 1\n")
    with pytest.raises(ConfigError, match=r"extends: forms a cycle \(.*a.yaml -> .*b.yaml -> .*a.yaml\)"):
        load_phase_config(tmp_path / "a.yaml")
    (tmp_path / "self.yaml").write_text("extends: self.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_phase_config(tmp_path / "self.yaml")


class _RunsCode:
    """A pickle that, when unpickled with weights_only=False, creates a file: what a hostile checkpoint does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("target", ["random_states_0.pkl", "optimizer.bin"])
def test_resume_never_runs_code_from_a_checkpoint_pickle(tmp_path, capsys, target):
    """The manifest detects damage, not tampering: a rewritten pickle with a matching manifest must still
    not run, and must not be passed over in silence (Accelerate ignores an RNG file it cannot load)."""
    config, checkpoints = _stopped_at_4(tmp_path)
    marker = tmp_path / "pwned"
    for checkpoint in list_checkpoints(checkpoints):
        torch.save({"payload": _RunsCode(marker)}, checkpoint / target)
        write_manifest(checkpoint)
    capsys.readouterr()
    with pytest.raises(Exception) as raised:
        train_phase(config, tmp_path / "run", resume=True, progress=False)
    assert not marker.exists()
    message = str(raised.value) + capsys.readouterr().out
    if target == "random_states_0.pkl":  # every checkpoint is passed over by name, then there is none to use
        assert f"skipping damaged checkpoint {checkpoints / 'step-00000004'}: random_states_0.pkl cannot be loaded " \
               "without running code from it" in message
        assert "no intact checkpoint" in message
    else:
        assert f"refusing to resume from {checkpoints / 'step-00000004'}: a state file holds objects" in message
