"""Disk-full and permission errors while writing outputs: one line naming the path, nothing already written lost.

A full disk is real here: the temporary file a writer uses is made a link to /dev/full, whose writes fail
with ENOSPC; where the writer's files are not known in advance the failure is injected where it happens."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from phases import tiny_phase

from evaluation.results import EvalResult, write_results
from rexbert.cli import main as cli
from rexbert.core.outputs import OutputError, mark_output
from training.checkpoints import list_checkpoints, verify_checkpoint
from training.config import load_phase_config
from training.loop import train_phase

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")


def _result(value: float) -> EvalResult:
    return EvalResult(model="m", task="sst2", dataset="nyu-mll/glue", split="validation", metric="accuracy", value=value)


@needs_dev_full
def test_a_full_disk_while_writing_results_names_the_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "results.json"
    write_results(path, [_result(0.5)])
    before = path.read_bytes()
    os.symlink("/dev/full", tmp_path / "results.json.tmp")
    with pytest.raises(OutputError, match=f"^cannot write {path}: no space left on device$"):
        write_results(path, [_result(0.9)], overwrite=True)
    assert path.read_bytes() == before and not (tmp_path / "results.json.tmp").exists()


@needs_dev_full
def test_a_full_disk_in_the_sample_stage_is_one_line_naming_the_file(tmp_path, capsys):
    source = tmp_path / "src" / "photo"
    source.mkdir(parents=True)
    (source / "a.jsonl").write_text(json.dumps({"text": "A camera bag", "domain": "photo"}) + "\n")
    out = tmp_path / "out"
    (out / "samples").mkdir(parents=True)
    (out / "samples" / "photo.jsonl").write_text("earlier sample\n")
    mark_output(out, "rexbert curate")  # an earlier run's output (one that rexbert did not write is refused)
    os.symlink("/dev/full", out / "samples" / "photo.jsonl.tmp")
    config = tmp_path / "curation.yaml"
    config.write_text(f"output_dir: {out}\ndomains: [photo]\nsample: {{source: {tmp_path / 'src'}}}\n")
    assert cli(["curate", "sample", "--config", str(config), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == \
        f"rexbert curate: error: cannot write {out / 'samples' / 'photo.jsonl'}: no space left on device"
    assert (out / "samples" / "photo.jsonl").read_text() == "earlier sample\n"


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"),
                                     OSError(errno.EACCES, "Permission denied"),
                                     RuntimeError("basic_ios::clear: iostream error")])
def test_a_failed_checkpoint_save_names_it_and_keeps_the_earlier_ones(tmp_path, monkeypatch, capsys, failure):
    from accelerate import Accelerator

    phase = tiny_phase(tmp_path)
    train_phase(load_phase_config(phase), tmp_path / "run", stop_after=2, progress=False)
    checkpoints = tmp_path / "run" / "phase1-run" / "checkpoints"
    kept = list_checkpoints(checkpoints)

    def fail(self, output_dir, *args, **kwargs):  # what torch/safetensors raise when the disk fills mid-save
        Path(output_dir, "model.safetensors").write_bytes(b"half")
        raise failure

    monkeypatch.setattr(Accelerator, "save_state", fail)
    code = cli(["train", "--config", str(phase), "--output-dir", str(tmp_path / "run"), "--resume",
                "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"rexbert train: error: cannot write {checkpoints / 'step-0000000'}")
    if isinstance(failure, OSError):
        reason = {errno.ENOSPC: "no space left on device", errno.EACCES: "permission denied"}[failure.errno]
        assert err.splitlines()[-1].endswith(reason)
    else:
        assert "basic_ios::clear: iostream error" in err and "bytes free there" in err
    assert list_checkpoints(checkpoints) == kept and all(verify_checkpoint(c) is None for c in kept)
    assert not list(checkpoints.glob(".*partial"))  # the half-written save is gone, its space given back
