"""GLUE: local files in GLUE's schema, Trainer fine-tuning, clear data errors (metrics: test_eval_metrics.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

import modeling_rexbert
from evaluation.data import EvaluationDataError
from evaluation.glue import finetune_glue, load_glue
from evaluation.results import read_results
from rexbert.cli import main as cli

SST2 = Path(__file__).parents[1] / "data" / "glue_sst2_format"


@pytest.fixture(scope="module")
def tiny_rexbert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("glue-model")
    torch.manual_seed(0)
    modeling_rexbert.RexBertForMaskedLM(tiny_config(num_hidden_layers=2)).save_pretrained(folder)
    return folder


def test_sst2_format_files_finetune_and_report(tiny_rexbert):
    splits = load_glue("sst2", train_file=str(SST2 / "train.jsonl"), validation_file=str(SST2 / "validation.jsonl"))
    results = finetune_glue(str(tiny_rexbert), "sst2", splits, seeds=[1, 2], epochs=1, batch_size=32,
                            dataset_name="sst2-format")
    assert [(r.metric, r.split, r.seed) for r in results] == [("accuracy", "validation", 1),
                                                              ("accuracy", "validation", 2)]
    assert all(0.0 <= r.value <= 1.0 and type(r.value) is float for r in results)
    assert results[0].settings["train_examples"] == 300


def test_stsb_regression_from_files(tiny_rexbert, tmp_path):
    rows = [{"sentence1": f"red shoe size {i}", "sentence2": f"shoe {i} red", "label": float(i % 5)} for i in range(20)]
    for name in ("train", "validation"):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    splits = load_glue("stsb", train_file=str(tmp_path / "train.jsonl"),
                       validation_file=str(tmp_path / "validation.jsonl"))
    results = finetune_glue(str(tiny_rexbert), "stsb", splits, epochs=1, batch_size=8)
    assert [r.metric for r in results] == ["pearson", "spearman"]


def test_bad_glue_input_is_a_clear_error(tmp_path):
    (tmp_path / "t.jsonl").write_text(json.dumps({"text": "no sentence column", "label": 1}) + "\n")
    with pytest.raises(EvaluationDataError, match="column 'sentence' not found"):
        load_glue("sst2", train_file=str(tmp_path / "t.jsonl"), validation_file=str(tmp_path / "t.jsonl"))
    (tmp_path / "u.jsonl").write_text(json.dumps({"sentence": "fine", "label": 7}) + "\n")
    with pytest.raises(EvaluationDataError, match=r"unknown label\(s\) \[7\]"):
        load_glue("sst2", train_file=str(tmp_path / "u.jsonl"), validation_file=str(tmp_path / "u.jsonl"))
    with pytest.raises(EvaluationDataError, match="not a GLUE task"):
        load_glue("squad", train_file=str(tmp_path / "u.jsonl"), validation_file=str(tmp_path / "u.jsonl"))


def test_cli_glue_writes_results(tiny_rexbert, tmp_path):
    out = tmp_path / "glue.json"
    code = cli(["eval", "glue", "--task", "sst2", "--model", str(tiny_rexbert), "--train-file",
                str(SST2 / "train.jsonl"), "--validation-file", str(SST2 / "validation.jsonl"), "--epochs", "1",
                "--output", str(out)])
    assert code == 0
    assert [r.task for r in read_results(out)] == ["glue-sst2"]


def test_save_to_disk_folder_in_glue_schema(tiny_rexbert, tmp_path):
    """The Hub path (`nyu-mll/glue`) yields a DatasetDict; a save_to_disk folder in the same schema goes the same way."""
    from datasets import DatasetDict

    from evaluation.data import load_split

    DatasetDict({"train": load_split(str(SST2 / "train.jsonl")),
                 "validation": load_split(str(SST2 / "validation.jsonl"))}).save_to_disk(tmp_path / "sst2")
    splits = load_glue("sst2", dataset=str(tmp_path / "sst2"))
    assert {name: len(split) for name, split in splits.items()} == {"train": 300, "validation": 100}
    with pytest.raises(EvaluationDataError, match=r"lacks split\(s\) \['validation_matched'"):
        load_glue("mnli", dataset=str(tmp_path / "sst2"))
