"""What a new user meets first (issue 19): a quick, documented CLI, errors in their words, honest cards
and charts, loud audit failures, small demo artefacts, exported folders that hold only the model."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import tiny_config

import modeling_rexbert
from curation.config import CurationConfig
from curation.plots import point_at
from evaluation.results import EvalResult, write_results
from model_cards import render_model_card
from model_cards.card import default_model_id
from rexbert.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def _parsers(parser: argparse.ArgumentParser, path: str = "rexbert"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_command_has_a_description_and_every_option_help():
    for path, parser in _parsers(build_parser()):
        assert parser.description, f"{path} has no description"
        for action in parser._actions:
            if action.option_strings and action.help != argparse.SUPPRESS:
                assert action.help, f"{path} {action.option_strings[0]} has no help"
    help_text = next(p for name, p in _parsers(build_parser()) if name == "rexbert eval mlm").format_help()
    assert "(default: 128,256,512)" in " ".join(help_text.split())


def test_help_and_version_import_no_model_code(capsys):
    code = ("import sys\nfrom rexbert.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('heavy:', sorted(m for m in ('torch', 'transformers', 'datasets', 'datatrove') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "heavy: []" in done.stdout and "convert" in done.stdout, done.stdout + done.stderr
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("rexbert ")


def test_quick_demo_duration_is_the_same_in_help_and_readme():
    quick = next(a for a in build_parser(["demo"])._subparsers._group_actions[0].choices["demo"]._actions
                 if "--quick" in a.option_strings)
    assert "about 2 minutes" in quick.help and "about 2 minutes" in (ROOT / "README.md").read_text()


def test_convert_on_a_missing_folder_says_not_found(tmp_path, capsys, monkeypatch):
    (tmp_path / "rexbert-demo").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["convert", "--to", "modernbert", "rexbert-demo/phase3", "out"]) == 2
    err = capsys.readouterr().err
    assert "rexbert-demo/phase3: folder not found" in err and "Repo id" not in err


def test_fasttext_bucket_keeps_a_demo_classifier_small(tmp_path):
    from curation.config import load_curation_config
    from curation.distill import train_domain

    demo = load_curation_config(str(ROOT / "curation" / "configs" / "demo.yaml"))
    rows = [{"text": f"stainless steel bottle {i} keeps drinks cold", "label": 1} for i in range(20)] + \
           [{"text": f"the president spoke of the union {i}", "label": 0} for i in range(20)]
    train_domain("hobby", rows, demo.distill, str(tmp_path))
    assert (tmp_path / "hobby.bin").stat().st_size < 5 * 2**20  # fastText's defaults: 400 MB
    assert json.loads((tmp_path / "hobby.json").read_text())["hyperparameters"]["bucket"] == demo.distill.bucket


def _audited(kappa: float, enforce: bool) -> CurationConfig:
    cfg = CurationConfig(domains=["hobby"])
    cfg.audit.enforce, cfg.audit.min_kappa = enforce, 0.6
    cfg.label.backend, cfg.audit.backend = "provenance", "rules"
    return cfg


def test_audit_below_minimum_stops_or_warns_loudly(capsys):
    from curation.stages import AuditNotStableError, check_audit

    summary = {"stable": False, "kappa": -0.064}
    with pytest.raises(AuditNotStableError, match="kappa -0.064 is below audit.min_kappa 0.6"):
        check_audit(_audited(-0.064, enforce=True), summary)
    check_audit(_audited(-0.064, enforce=False), summary)
    err = capsys.readouterr().err
    assert err.startswith("WARNING: audit kappa -0.064 is below audit.min_kappa 0.6") and "stand-ins" in err
    assert CurationConfig().audit.enforce  # real runs stop by default


def test_dataset_card_names_its_source_license_audit_and_units():
    from curation.dataset_card import audit_note

    note = audit_note({"stable": False, "kappa": -0.064, "min_kappa": 0.6, "n": 200, "accuracy": 0.565,
                       "audit_labeler": "rules-keyword-v1", "primary_labeler": "provenance"})
    assert "**Warning:**" in note and "-0.064" in note
    demo = yaml.safe_load((ROOT / "curation" / "configs" / "demo.yaml").read_text())["card"]
    assert "not FineFineWeb" in demo["source"] and demo["license"] == "other"
    source = (ROOT / "curation" / "dataset_card.py").read_text()
    assert "filtered from FineFineWeb" not in source and 'unit="words"' in source


def test_pr_curve_marks_a_point_of_the_curve():
    from sklearn.metrics import precision_recall_curve

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.clip(labels * 0.3 + rng.random(200) * 0.7, 0, 1)
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    for threshold in thresholds[::17]:
        x, y = point_at(precision, recall, thresholds, float(threshold))
        assert any(np.isclose(x, recall) & np.isclose(y, precision))
        assert y == pytest.approx(labels[scores >= threshold].mean())


@pytest.fixture
def demo_like(tmp_path):
    model_dir = tmp_path / "rexbert-demo" / "phase3"
    torch.manual_seed(0)
    modeling_rexbert.RexBertForMaskedLM(tiny_config()).save_pretrained(model_dir)
    results = [EvalResult(str(model_dir), "esci-cosent", "bundled ESCI sample", "test", "spearman", -0.146,
                          settings={"test_pairs": 16}),
               EvalResult(str(model_dir), "glue-sst2", "bundled pros/cons in SST-2 format", "validation", "accuracy",
                          0.5)]
    return model_dir, [write_results(tmp_path / "results.json", results)]


def test_card_metadata_names_no_look_alike_dataset_and_no_chart_of_one_bar(demo_like):
    model_dir, files = demo_like
    text = render_model_card(model_dir, files, notes=["> **Warning:** trained on its test pairs"]).read_text()
    metadata = yaml.safe_load(text.split("---")[1])
    assert "model-index" not in metadata or not metadata["model-index"][0].get("results")  # no Hub dataset claimed
    assert "nyu-mll/glue" not in text.split("---")[1]
    assert "trained on its test pairs" in text
    assert not (model_dir / "esci_spearman_by_model.png").exists()  # one model: the table says it all


def test_card_snippets_load_the_folder_as_the_user_named_it(demo_like, monkeypatch):
    model_dir, files = demo_like
    monkeypatch.chdir(model_dir.parents[1])
    assert default_model_id(Path("rexbert-demo/phase3/")) == "rexbert-demo/phase3"
    assert default_model_id(model_dir) == "phase3"  # absolute: run from its parent
    text = render_model_card(Path("rexbert-demo/phase3"), files, model_name="RexBERT demo").read_text()
    assert "model=\"rexbert-demo/phase3\"" in text.replace("'", '"')
    assert (model_dir / "README.md").is_file()  # beside the model: `rexbert card push` finds it
    assert main(["card", "push", "--model", "rexbert-demo/phase3", "--repo-id", "me/demo", "--dry-run"]) == 0


def test_cosent_takes_the_users_column_names(tmp_path):
    from datasets import Dataset

    from evaluation.cosent import load_esci

    rows = {"search": ["red shoes", "red shoes"], "title": ["Red running shoe", "Blue mug"], "esci_label": ["E", "I"]}
    for split in ("train", "test"):
        Dataset.from_dict(rows).to_json(str(tmp_path / f"{split}.jsonl"))
    files = {"train_file": str(tmp_path / "train.jsonl"), "test_file": str(tmp_path / "test.jsonl")}
    with pytest.raises(ValueError, match="'product_description' not found.*--product-columns"):
        load_esci(**files, query_column="search", product_columns=["title", "product_description"])
    pairs = load_esci(**files, product_columns=["title"], query_column="search")
    assert pairs["test"]["product"] == ["Red running shoe", "Blue mug"] and pairs["test"]["score"] == [1.0, 0.0]


def test_fine_tuning_loads_print_no_library_noise(tmp_path):
    """A masked-LM folder loaded for fine-tuning: transformers' load report and (from 5.25) its "layers were
    not sharded" warning are noise there; the new head's check is ours."""
    import logging

    from transformers.utils import logging as transformers_logging

    from evaluation.loading import load_pretrained, load_sentence_transformer

    modeling_rexbert.RexBertForMaskedLM(tiny_config()).save_pretrained(tmp_path / "mlm")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    library = logging.getLogger("transformers")
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_warning()  # a user's default (the tests run at "error")
    library.addHandler(handler)
    try:
        load_pretrained(str(tmp_path / "mlm"), "SequenceClassification", new_head="classifier", num_labels=2)
        load_sentence_transformer(str(tmp_path / "mlm"))
    finally:
        library.removeHandler(handler)
        transformers_logging.set_verbosity(verbosity)
    printed = [record.getMessage() for record in records]
    assert not [m for m in printed if "not sharded" in m or "LOAD REPORT" in m], printed
