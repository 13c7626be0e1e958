"""Issue 25, classes 3-5 (docs/reliability.md lists each promise with its test): errors name what and where,
`--resume` and Ctrl-C say what happened, fine-tuning shows its progress, and a card tells the truth about its run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_config
from phases import tiny_phase

import modeling_rexbert
from rexbert.cli import main as cli
from training.config import load_phase_config
from training.loop import train_phase

DATA = Path(__file__).parents[1] / "data"
SST2 = DATA / "glue_sst2_format"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model") / "tiny"
    torch.manual_seed(0)
    modeling_rexbert.RexBertForMaskedLM(tiny_config(num_hidden_layers=2)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Path:
    """A user's own short run: 3 steps at 96 tokens, finished; returns the run root (phase1/ and phase1-run/)."""
    root = tmp_path_factory.mktemp("short-run")
    config = tiny_phase(root, data={"sequence_length": 96}, run={"max_steps": 3, "save_every": 2, "eval_every": 3})
    train_phase(load_phase_config(config), root / "run", progress=False)
    return root / "run"


def _error(argv: list[str], capsys) -> str:
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


# --- 3. errors name what and where -------------------------------------------------------------------------

def _missing_path_cases(tmp_path: Path, model: Path) -> dict[str, tuple[list[str], str]]:
    sst2 = ["--train-file", str(SST2 / "train.jsonl"), "--validation-file", str(SST2 / "validation.jsonl")]
    curation = tmp_path / "conf" / "curation.yaml"
    curation.parent.mkdir()
    curation.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "out"), "domains": ["photo"],
                                        "sample": {"source": "./no-such-corpus"}}))
    return {
        "eval mlm --model": (["eval", "mlm", "--model", "./no-such-folder", "--dataset", str(SST2 / "train.jsonl"),
                              "--text-columns", "sentence"], "model './no-such-folder': no such file or folder"),
        "eval mlm --dataset": (["eval", "mlm", "--model", str(model), "--dataset", "nope.jsonl"],
                               "dataset 'nope.jsonl': no such file or folder"),
        "eval glue --model": (["eval", "glue", "--task", "sst2", "--model", "./nope", *sst2],
                              "model './nope': no such file or folder"),
        "eval glue --train-file": (["eval", "glue", "--task", "sst2", "--model", str(model), "--train-file",
                                    "missing/train.csv", "--validation-file", "missing/validation.csv"],
                                   "dataset 'missing/train.csv': no such file or folder"),
        "eval cosent --train-file": (["eval", "cosent", "--model", str(model), "--train-file", "pairs.parquet",
                                      "--test-file", "pairs.parquet"], "dataset 'pairs.parquet': no such file"),
        # relative to the config file (tmp/conf/), not to where the command runs
        "curate sample.source": (["curate", "sample", "--no-progress", "--config", str(curation)],
                                 f"sample.source '{tmp_path / 'conf' / 'no-such-corpus'}': no such file or folder"),
    }


@pytest.mark.parametrize("case", ["eval mlm --model", "eval mlm --dataset", "eval glue --model",
                                  "eval glue --train-file", "eval cosent --train-file", "curate sample.source"])
def test_a_missing_local_path_is_named_as_a_missing_path(case, tmp_path, tiny_model, capsys):
    argv, expected = _missing_path_cases(tmp_path, tiny_model)[case]
    line = _error(argv, capsys)
    assert expected in line, line
    assert "Hub" not in line and "Repo id" not in line


def test_an_unreachable_hub_id_names_the_id_and_the_field(tmp_path, tiny_model, capsys):
    from training.loop import model_config, resolve_init

    line = _error(["eval", "mlm", "--model", "someone/not-cached", "--dataset", str(SST2 / "train.jsonl"),
                   "--text-columns", "sentence"], capsys)
    assert "model 'someone/not-cached' is not a local folder" in line and "HF_HUB_OFFLINE" in line
    config = load_phase_config(tiny_phase(tmp_path, model={"preset": None, "init_from": "someone/not-cached"}))
    with pytest.raises(OSError, match=r"phase1: model.init_from 'someone/not-cached' is not a local folder"):
        model_config(config, tmp_path / "run")
    missing = load_phase_config(tiny_phase(tmp_path, model={"preset": None, "init_from": "./models/phase1"}))
    with pytest.raises(FileNotFoundError, match=r"model.init_from './models/phase1' is neither a phase"):
        resolve_init(missing, tmp_path / "run")


def test_curation_input_paths_resolve_against_the_config_file(tmp_path, monkeypatch):
    from curation.config import load_curation_config as load_curation

    folder = tmp_path / "project" / "configs"
    (folder / "corpus").mkdir(parents=True)
    (folder / "words.txt").write_text("spam\n")
    (folder / "c.yaml").write_text(yaml.safe_dump({
        "output_dir": "out", "sample": {"source": "corpus"},
        "filter": {"input": "corpus", "tokenizer_file": "../tok.json", "blocklist": {"word_files": ["words.txt"]}}}))
    monkeypatch.chdir(tmp_path)  # elsewhere: the paths must not depend on it
    cfg = load_curation(str(Path("project/configs/c.yaml")))
    assert cfg.sample.source == cfg.filter.input == str(folder / "corpus")
    assert cfg.filter.tokenizer_file == str(tmp_path / "project" / "tok.json")
    assert cfg.filter.blocklist.word_files == [str(folder / "words.txt")]
    assert cfg.output_dir == "out"  # like `rexbert train --output-dir`: where the command runs
    assert load_curation(str(Path(__file__).parents[2] / "curation" / "configs" / "local.yaml")).sample.source == \
        "m-a-p/FineFineWeb"  # a Hub id stays one


@pytest.fixture
def truncated_model(tmp_path, tiny_model) -> Path:
    import shutil

    folder = tmp_path / "truncated"
    shutil.copytree(tiny_model, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a copy cut short
    return folder


def test_a_truncated_safetensors_is_named_in_eval_convert_and_train(truncated_model, tmp_path, capsys):
    from training.loop import resolve_init

    named = f"{truncated_model / 'model.safetensors'}"
    for argv in (["eval", "mlm", "--model", str(truncated_model), "--dataset", str(SST2 / "train.jsonl"),
                  "--text-columns", "sentence"],
                 ["eval", "glue", "--task", "sst2", "--model", str(truncated_model), "--train-file",
                  str(SST2 / "train.jsonl"), "--validation-file", str(SST2 / "validation.jsonl")],
                 ["convert", "--to", "modernbert", str(truncated_model), str(tmp_path / "converted")]):
        line = _error(argv, capsys)
        assert line.endswith(f"{named} ({(truncated_model / 'model.safetensors').stat().st_size:,} bytes) is not a "
                             "readable safetensors file (Error while deserializing header: incomplete metadata, file "
                             "not fully covered); it may be truncated or corrupt: copy or export it again."), line
    assert not (tmp_path / "converted").exists()
    config = load_phase_config(tiny_phase(tmp_path, model={"preset": None, "init_from": str(truncated_model)}))
    with pytest.raises(ValueError, match=re.escape(named)):
        resolve_init(config, tmp_path / "run")


@pytest.mark.parametrize("content, where", [
    ('{"sentence": "fine", "label": 1}\n{"sentence": "cut short\n{"sentence": "x", "label": 0}\n', "train.jsonl:2: "
     "not valid JSON"),
    ('{"sentence": "fine", "label": 1}\n[1, 2]\n', "train.jsonl:2: a JSON list, not an object"),
])
def test_a_malformed_jsonl_line_is_named_by_file_and_line(content, where, tmp_path, tiny_model, capsys):
    (tmp_path / "train.jsonl").write_text(content)
    line = _error(["eval", "glue", "--task", "sst2", "--model", str(tiny_model), "--train-file",
                   str(tmp_path / "train.jsonl"), "--validation-file", str(SST2 / "validation.jsonl")], capsys)
    assert f"{tmp_path / where}" in line, line


def test_a_malformed_csv_row_is_named_by_file_and_line(tmp_path, tiny_model, capsys):
    (tmp_path / "train.csv").write_text('sentence,label\n"fine",1\n"a, b",0,extra\n')
    line = _error(["eval", "glue", "--task", "sst2", "--model", str(tiny_model), "--train-file",
                   str(tmp_path / "train.csv"), "--validation-file", str(SST2 / "validation.jsonl")], capsys)
    assert f"{tmp_path / 'train.csv'}:3: 3 fields where the header has 2" in line, line


@pytest.mark.parametrize("label", ["NaN", "null"])
def test_a_nan_or_missing_label_names_its_row(label, tmp_path, tiny_model, capsys):
    rows = ['{"sentence": "good", "label": 1}', f'{{"sentence": "odd", "label": {label}}}',
            '{"sentence": "bad", "label": 0}']
    (tmp_path / "train.jsonl").write_text("\n".join(rows) + "\n")
    line = _error(["eval", "glue", "--task", "sst2", "--model", str(tiny_model), "--train-file",
                   str(tmp_path / "train.jsonl"), "--validation-file", str(SST2 / "validation.jsonl")], capsys)
    assert f"({tmp_path / 'train.jsonl'})" in line and "row 1 (counted from 0)" in line, line
    from datasets import Dataset

    from evaluation.cosent import to_pairs

    with pytest.raises(ValueError, match=r"score must be in \[0, 1\]; row 1 has (nan|None)"):
        to_pairs(Dataset.from_dict({"query": ["q"] * 3, "product_title": ["a", "b", "c"],
                                    "score": [1.0, float("nan") if label == "NaN" else None, 0.0]}),
                 fields=["product_title"])


# --- 4. say what happened: --resume, Ctrl-C, progress ------------------------------------------------------

def test_resume_with_nothing_to_resume_is_refused(tmp_path, capsys):
    phase = str(tiny_phase(tmp_path))
    line = _error(["train", "--config", phase, "--output-dir", str(tmp_path / "typo"), "--resume", "--no-progress"],
                  capsys)
    assert f"nothing to resume in {tmp_path / 'typo'}" in line and "without --resume" in line
    assert not (tmp_path / "typo" / "phase1").exists()  # nothing trained from step 0


def test_resume_names_the_checkpoint_it_continues_from(tmp_path, capsys):
    config = load_phase_config(tiny_phase(tmp_path, run={"max_steps": 3, "save_every": 1, "eval_every": 3}))
    train_phase(config, tmp_path / "run", stop_after=1, progress=False)
    capsys.readouterr()
    train_phase(config, tmp_path / "run", resume=True, progress=False)
    out = capsys.readouterr().out
    assert f"phase1: resuming from {tmp_path / 'run' / 'phase1-run' / 'checkpoints'}/" in out
    train_phase(config, tmp_path / "run", resume=True, progress=False)
    assert "phase1: finished earlier" in capsys.readouterr().out


def test_ctrl_c_in_training_is_one_line_saying_how_to_resume(tmp_path, capsys, monkeypatch):
    checkpoint = tmp_path / "run" / "phase1-run" / "checkpoints" / "step-00000002"
    checkpoint.mkdir(parents=True)
    (checkpoint / "phase_config.json").write_text("{}")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("training.curriculum.train_curriculum", interrupted)
    phase = str(tiny_phase(tmp_path))
    assert cli(["train", "--config", phase, "--output-dir", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert err == (f"rexbert train: interrupted; the newest checkpoint is {checkpoint}: continue with `rexbert train "
                   f"--config {phase} --output-dir {tmp_path / 'run'} --resume`")


def test_glue_fine_tuning_shows_a_progress_bar_with_an_eta(tiny_model, tmp_path, capfd):
    (tmp_path / "train.jsonl").write_text("".join(
        json.dumps({"sentence": f"{word} product number {i}", "label": i % 2}) + "\n"
        for i, word in enumerate(["good", "bad"] * 8)))
    assert cli(["eval", "glue", "--task", "sst2", "--model", str(tiny_model), "--train-file",
                str(tmp_path / "train.jsonl"), "--validation-file", str(tmp_path / "train.jsonl"), "--epochs", "1",
                "--batch-size", "4", "--max-length", "16"]) == 0
    err = capfd.readouterr().err
    assert re.search(r"glue sst2 seed 1: 100%.*\| 4/4 \[\d\d:\d\d<\d\d:\d\d", err), err[-500:]
    assert "train_runtime" not in err  # the bar only, not transformers' log dicts


# --- 5. cards tell the truth about the run -----------------------------------------------------------------

def test_the_card_of_a_short_custom_run_shows_its_own_recipe(short_run):
    from model_cards.card import render_model_card

    text = render_model_card(short_run / "phase1", []).read_text()
    recipe = text.split("## Training recipe")[1].split("## Evaluation")[0]
    assert "| sequence length | 96 |" in recipe and "| steps (tokens) | 3 (" in recipe
    assert "| masking | 30% |" in recipe and "| data | general |" in recipe
    assert "8,192" not in recipe and "phase 2 context extension" not in recipe  # not the paper's recipe
    tldr = text.split("**TL;DR**")[1].split("\n")[0]
    assert "1 phase(s), 3 steps" in tldr and "sequences of up to 96 tokens" in tldr
    assert json.loads((short_run / "phase1-run" / "phase_config.json").read_text())["data"]["sequence_length"] == 96


def test_a_card_without_a_recorded_run_says_unknown(tiny_model, tmp_path):
    import shutil

    from model_cards.card import render_model_card

    shutil.copytree(tiny_model, tmp_path / "downloaded")
    text = render_model_card(tmp_path / "downloaded", []).read_text()
    assert "Unknown: no record of the training run" in text and "(unknown)" in text
    assert "phase 2 context extension" not in text


def test_card_push_dry_run_warns_about_local_snippets_and_a_bad_repo_id(short_run, capsys):
    from model_cards.card import render_model_card

    model = short_run / "phase1"
    render_model_card(model, [], model_id="./run/phase1", overwrite=True)  # snippets that load a local folder
    assert cli(["card", "push", "--model", str(model), "--repo-id", "me/tiny", "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {model / 'README.md'}: the usage snippets load './run/phase1' (a local path), not 'me/tiny'" in err
    assert cli(["card", "push", "--model", str(model), "--repo-id", "not a repo//id", "--dry-run"]) == 0
    assert "warning: --repo-id 'not a repo//id' is not a valid Hub repo id" in capsys.readouterr().err
    line = _error(["card", "push", "--model", str(model), "--repo-id", "not a repo//id"], capsys)
    assert "is not a valid Hub repo id" in line  # refused before anything is sent
