"""Evaluation runs no code it was not asked to, checks its output before working, and writes strict JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

import modeling_rexbert
from evaluation.cosent import to_pairs
from evaluation.data import EvaluationDataError
from evaluation.glue import load_glue
from evaluation.loading import RemoteCodeRefused, load_sentence_transformer
from evaluation.mlm import load_masked_lm
from evaluation.results import EvalResult, write_results
from rexbert.cli import main as cli

PRODUCTS = Path(__file__).parents[1] / "data" / "esci_sample" / "sample-products.jsonl"
SST2 = Path(__file__).parents[1] / "data" / "glue_sst2_format"


@pytest.fixture
def hostile_folder(tmp_path):
    """A folder whose config names an unknown model_type and ships code that leaves a marker when run."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "hostilebert",
        "auto_map": {"AutoConfig": "configuration_hostile.HostileConfig",
                     "AutoModelForMaskedLM": "configuration_hostile.HostileConfig"}}))
    (folder / "configuration_hostile.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(tmp_path / 'RAN')!r}).write_text('code ran')\n"  # the code runs from a copy elsewhere
        "from transformers import PretrainedConfig\n"
        "class HostileConfig(PretrainedConfig):\n    model_type = 'hostilebert'\n")
    return folder


def test_eval_never_runs_shipped_code_without_the_flag(hostile_folder, tmp_path, capsys):
    for command in (["eval", "mlm", "--model", str(hostile_folder), "--dataset", str(PRODUCTS),
                     "--text-columns", "fields.title", "--block-sizes", "32"],
                    ["eval", "glue", "--task", "sst2", "--model", str(hostile_folder),
                     "--train-file", str(SST2 / "train.jsonl"), "--validation-file", str(SST2 / "validation.jsonl")]):
        assert cli(command) == 2
        assert "--trust-remote-code" in capsys.readouterr().err
    with pytest.raises(RemoteCodeRefused, match="--trust-remote-code"):
        load_sentence_transformer(str(hostile_folder))
    assert not (tmp_path / "RAN").exists()


def test_the_flag_is_what_runs_it(hostile_folder, tmp_path):
    with pytest.raises(Exception):  # the hostile "model" is not a real one; what matters is that its code ran
        load_masked_lm(str(hostile_folder), trust_remote_code=True)
    assert (tmp_path / "RAN").read_text() == "code ran"


def test_rexbert_folders_load_without_the_flag_on_installed_classes(tmp_path):
    torch.manual_seed(0)
    modeling_rexbert.RexBertForMaskedLM(tiny_config(num_hidden_layers=2)).save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model_type"] == "modernbert" and "auto_map" in config  # the published format ships code
    model, _ = load_masked_lm(str(tmp_path / "m"))
    assert type(model) is modeling_rexbert.RexBertForMaskedLM  # the installed class, not the folder's copy
    encoder = load_sentence_transformer(str(tmp_path / "m"))
    assert type(encoder[0].model) is modeling_rexbert.RexBertModel
    assert encoder.encode(["red shoes"]).shape == (1, 64)


def test_existing_output_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "r.json"
    out.write_text("{}")
    # the model does not exist: had the command started working, the error would be about it
    assert cli(["eval", "mlm", "--model", str(tmp_path / "missing"), "--dataset", str(PRODUCTS),
                "--output", str(out)]) == 2
    assert f"{out} exists; choose another --output" in capsys.readouterr().err and out.read_text() == "{}"


def test_non_finite_labels_and_values_are_refused(tmp_path):
    rows = [{"sentence1": "a", "sentence2": "b", "label": 1.0}, {"sentence1": "c", "sentence2": "d", "label": float("nan")}]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))  # json.dumps writes NaN
    with pytest.raises(EvaluationDataError, match="row 1 has label nan"):
        load_glue("stsb", train_file=str(tmp_path / "t.jsonl"), validation_file=str(tmp_path / "t.jsonl"))
    from datasets import Dataset

    with pytest.raises(EvaluationDataError, match="row 1 has nan"):
        to_pairs(Dataset.from_dict({"query": ["a", "b"], "product_title": ["x", "y"], "product_description": ["", ""],
                                    "score": [0.5, float("nan")]}))
    result = EvalResult("m", "glue-stsb", "d", "validation", "pearson", float("nan"))
    with pytest.raises(ValueError, match="non-finite metric value for m glue-stsb/validation/pearson"):
        write_results(tmp_path / "r.json", [result])
    assert not (tmp_path / "r.json").exists()
    fine = write_results(tmp_path / "ok.json", [EvalResult("m", "t", "d", "s", "acc", 0.5)])
    json.loads(fine.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
