"""Domains, config validation, sampling, audit agreement, distillation metrics, filters and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from curation.config import ConfigError, config_from_dict, load_curation_config
from curation.domains import DOMAINS, direct_domains, filter_domains

DATA = Path(__file__).parents[1] / "data"
CONFIGS = Path(__file__).parents[2] / "curation" / "configs"


def test_table1_domains():
    assert [d.name for d in DOMAINS if d.needs_filter] == [
        "Hobby", "News", "Health", "Entertainment", "Travel", "Food", "Automotive", "Sports", "Music & Dance"]
    assert direct_domains() == ["fashion", "beauty", "celebrity", "movie", "photo", "painting"]
    assert "music_and_dance" in filter_domains()


@pytest.mark.parametrize("data, field", [
    ({"domains": ["hobby", "groceries"]}, "domains"),
    ({"sample": {"per_domain": "many"}}, "sample.per_domain"),
    ({"label": {"backend": "magic"}}, "label.backend"),
    ({"filter": {"max_bytes": 0}}, "filter.max_bytes"),
    ({"executor": {"slurm": {"partitoin": "cpu"}}}, "partitoin"),
    ({"distill": {"target_precision": 1.5}}, "distill.target_precision"),
])
def test_config_errors_name_the_field(data, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        config_from_dict(data)


def test_shipped_configs_validate():
    for name in ("demo", "local", "slurm", "ray"):
        cfg = load_curation_config(str(CONFIGS / f"{name}.yaml"))
        assert cfg.executor.type == {"demo": "local", "local": "local"}.get(name, name)


def test_slurm_and_ray_executors_are_built_from_config(tmp_path):
    from datatrove.executor import SlurmPipelineExecutor

    from curation.pipeline import build_executors

    cfg = load_curation_config(str(CONFIGS / "slurm.yaml"))
    cfg.output_dir, cfg.filter.input = str(tmp_path), str(tmp_path)
    models = tmp_path / "classifiers"
    models.mkdir()
    for domain in filter_domains():
        (models / f"{domain}.bin").write_bytes(b"")
    executors = build_executors(cfg)
    assert list(executors) == ["1_filter", "2_buckets", "3_cluster", "4_write"]
    assert all(isinstance(e, SlurmPipelineExecutor) for e in executors.values())
    assert executors["2_buckets"].tasks == 14 * 4 and executors["4_write"].depends is executors["3_cluster"]


def _write_domain_files(root: Path) -> None:
    for domain in ("hobby", "news"):
        (root / domain).mkdir(parents=True)
        with open(root / domain / f"{domain}_000000.jsonl", "w") as f:
            for i in range(50):
                f.write(json.dumps({"text": f"{domain} document number {i}", "domain": domain, "url": f"u{i}"}) + "\n")


def test_sampling_is_reproducible_per_domain(tmp_path):
    from curation.config import SampleConfig
    from curation.domains import get_domain
    from curation.sampling import sample_domain, write_samples

    _write_domain_files(tmp_path / "src")
    cfg = SampleConfig(source=str(tmp_path / "src"), per_domain=10, seed=3, shuffle_buffer=100)
    first = sample_domain(cfg, get_domain("hobby"))
    assert len(first) == 10 and all(r["domain"] == "hobby" for r in first)
    assert [r["text"] for r in first] == [r["text"] for r in sample_domain(cfg, get_domain("hobby"))]
    other = sample_domain(SampleConfig(source=cfg.source, per_domain=10, seed=4, shuffle_buffer=100),
                          get_domain("hobby"))
    assert [r["text"] for r in first] != [r["text"] for r in other]
    counts = write_samples(cfg, [get_domain("hobby"), get_domain("news")], str(tmp_path / "out"), progress=False)
    assert counts["per_domain"] == {"hobby": 10, "news": 10} and counts["rejected"] == {}


def test_sampling_from_one_parquet_file_with_a_domain_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curation.config import SampleConfig
    from curation.domains import get_domain
    from curation.sampling import sample_domain

    rows = [{"text": f"text {i}", "domain": "photo" if i % 2 else "news"} for i in range(40)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "mixed.parquet")
    sample = sample_domain(SampleConfig(source=str(tmp_path / "mixed.parquet"), per_domain=5), get_domain("photo"))
    assert len(sample) == 5 and all(int(r["text"].split()[1]) % 2 for r in sample)


def test_audit_agreement_kappa_confusion_and_revision_log(tmp_path):
    from sklearn.metrics import cohen_kappa_score

    from curation.audit import agreement, run_audit

    primary, audit = [1, 1, 0, 0, 1, 0, 1, 0], [1, 0, 0, 0, 1, 1, 1, 0]
    result = agreement(primary, audit)
    assert result["accuracy"] == 0.75 and result["confusion"] == [[3, 1], [1, 3]]
    assert result["kappa"] == pytest.approx(cohen_kappa_score(primary, audit)) == pytest.approx(0.5)

    rows = [{"id": str(i), "domain": "hobby" if i < 6 else "news", "text": t, "label": label, "labeler": "phi-4",
             "prompt_version": "v2"}
            for i, (t, label) in enumerate([("price of the camera with zoom lens and battery", 1),
                                            ("buy this usb charger, great price and quality", 1),
                                            ("the senate debated the bill", 0), ("a poem about the sea", 0),
                                            ("the weather was mild", 1),
                                            ("review: the shoes fit, good price, durable", 0),
                                            ("cheap deal on the laptop bag, free shipping and returns", 1),
                                            ("the mayor opened the bridge", 0)])]
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from curation.labels import RuleLabeler

    report = run_audit(str(labels), RuleLabeler(), str(tmp_path / "audit"), sample_size=100, min_kappa=0.8)
    assert report["n"] == 8 and report["accuracy"] == 0.75 and report["stable"] is False
    assert report["per_domain"]["hobby"]["n_disagreements"] == 2
    assert {d["id"] for d in report["per_domain"]["hobby"]["disagreements"]} == {"4", "5"}
    run_audit(str(labels), RuleLabeler(), str(tmp_path / "audit"), sample_size=100, min_kappa=0.5)
    log = json.loads((tmp_path / "audit" / "revisions.json").read_text())
    assert [entry["stable"] for entry in log] == [False, True] and log[0]["prompt_version"] == "v2"


def test_choose_threshold_reaches_the_target_precision():
    from curation.distill import choose_threshold

    labels = [0, 0, 1, 0, 1, 1, 1, 1]
    scores = [0.1, 0.2, 0.3, 0.45, 0.5, 0.6, 0.8, 0.9]
    threshold, met = choose_threshold(labels, scores, 1.0)
    assert (threshold, met) == (0.5, True)
    threshold, met = choose_threshold(labels, scores, 0.8)
    assert (threshold, met) == (0.3, True)  # 4 of 5 above 0.3 are relevant: the most recall at >= 0.8
    # separable scores: keep no negative that costs no recall to drop, although 0.2 also meets 0.6
    assert choose_threshold([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], 0.6) == (0.3, True)


def test_distill_validates_on_held_out_labels_and_saves_metadata(tmp_path):
    from curation.classifier import load_classifier
    from curation.config import DistillConfig
    from curation.demo_corpus import write_demo_corpus
    from curation.distill import distill

    write_demo_corpus(str(tmp_path / "corpus"), str(DATA))
    rows = [json.loads(line) | {"labeler": "provenance", "prompt_version": None}
            for line in open(tmp_path / "corpus" / "news" / "news_000000.jsonl")]
    (tmp_path / "labels.jsonl").write_text("".join(json.dumps(r | {"label": r["source_label"]}) + "\n" for r in rows))
    meta = distill(str(tmp_path / "labels.jsonl"), str(tmp_path / "models"),
                   DistillConfig(target_precision=0.9, validation_fraction=0.3), ["news"], progress=False)["news"]
    val = meta["validation"]
    assert val["n"] == round(0.3 * len(rows)) or abs(val["n"] - 0.3 * len(rows)) <= 1
    assert val["precision"] >= 0.9 and val["recall"] > 0.5 and val["f1"] > 0.7 and meta["target_met"]
    for suffix in (".bin", ".json", "_pr_curve.png", "_scores.png"):
        assert os.path.getsize(tmp_path / "models" / f"news{suffix}") > 0
    clf = load_classifier(str(tmp_path / "models"), "news")
    assert clf.threshold == meta["threshold"]
    assert clf.score("Great router, easy setup, fast wifi and a fair price.") > clf.score(
        "The Congress must act on the budget and on the housing program this year.")


def test_single_class_labels_are_an_error_that_names_the_domain(tmp_path):
    from curation.config import DistillConfig
    from curation.distill import distill

    (tmp_path / "labels.jsonl").write_text("".join(json.dumps({"id": str(i), "domain": "food", "text": f"t {i}",
                                                               "label": 1}) + "\n" for i in range(10)))
    with pytest.raises(ValueError, match="food"):
        distill(str(tmp_path / "labels.jsonl"), str(tmp_path / "m"), DistillConfig(), ["food"], progress=False)


# --- filters --------------------------------------------------------------------------------------------

SPEC_SHEET = """Anker USB-C Charger 65W
Brand: Anker
Color: Black
Output: 65 W max
Ports: 2 x USB-C, 1 x USB-A
Dimensions: 2.6 x 1.6 x 1.2 in
Weight: 4.2 oz
Compatible with MacBook Pro 13, iPhone 15, Galaxy S24"""


def _doc(text, **meta):
    from datatrove.data import Document

    return Document(text=text, id="t", metadata=meta)


def test_stock_quality_filters_drop_a_spec_sheet_that_the_tuned_ones_keep():
    from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter

    from curation.filters import ProductC4Filter, ProductGopherFilter

    assert GopherQualityFilter().filter(_doc(SPEC_SHEET)) == (False, "gopher_short_doc")
    assert C4QualityFilter().filter(_doc(SPEC_SHEET)) == (False, "too_few_sentences")
    assert ProductGopherFilter().filter(_doc(SPEC_SHEET)) is True
    doc = _doc(SPEC_SHEET)
    assert ProductC4Filter().filter(doc) is True and "Color: Black" in doc.text
    assert ProductGopherFilter().filter(_doc("$$$ ### @@@ !!! %%% ^^^ &&& *** ((( )))")) is not True
    assert ProductC4Filter().filter(_doc("function f() { return 1; }\nmore code here")) == (False, "curly_bracket")


def test_blocklist_filter_uses_shipped_lists_with_word_boundaries():
    from curation.filters import BlocklistFilter

    f = BlocklistFilter()
    assert f.filter(_doc("Unisex hoodie, sizes S-XL, made in Essex.")) is True
    assert f.filter(_doc("One shit review among many: the zipper broke.")) is True  # a single hit is kept
    assert f.filter(_doc("free porn videos, live sex cam, nsfw")) == (False, "adult_or_profane")
    # words with an ordinary product sense are allowed, even repeated ("kinky curly" hair, ball cock valves)
    assert f.filter(_doc("Kinky curly clip-ins. Kinky straight wig. Ball cock valve for toilets.")) is True


def test_language_filter_keeps_english_product_text_and_drops_other_languages():
    from curation.demo_corpus import NON_ENGLISH
    from curation.filters import OfflineLanguageFilter

    f = OfflineLanguageFilter()
    assert f.filter(_doc(SPEC_SHEET)) is True
    assert f.filter(_doc("Color: Navy")) is True  # too short to tell: kept, not guessed away
    for lang, text in NON_ENGLISH:
        assert f.filter(_doc(text)) == (False, f"language_{lang}")


def test_boilerplate_lines_are_removed_and_boilerplate_pages_dropped():
    from curation.filters import BoilerplateFilter

    f = BoilerplateFilter()
    doc = _doc("Leather wallet with 8 card slots.\nWe use cookies to improve your experience. Accept cookies policy.\n"
               "Genuine leather, RFID blocking.")
    assert f.filter(doc) is True and "cookies" not in doc.text and "RFID" in doc.text
    assert f.filter(_doc("Privacy Policy\nTerms of Use\n© 2024 All rights reserved\nBuy now")) == (False, "boilerplate")


# --- CLI ------------------------------------------------------------------------------------------------

def test_cli_reports_a_bad_config_with_exit_code_2(tmp_path, capsys):
    from rexbert.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("filter:\n  max_bytes: lots\n")
    assert main(["curate", "filter", "--config", str(bad)]) == 2
    assert "filter.max_bytes" in capsys.readouterr().err


def test_cli_demo_data_and_publish_dry_run(tmp_path, capsys):
    from rexbert.cli import main

    assert main(["curate", "demo-data", "--data-dir", str(DATA), "--out", str(tmp_path / "corpus")]) == 0
    assert (tmp_path / "corpus" / "photo" / "photo_000000.jsonl").exists()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"output_dir: {tmp_path / 'out'}\n")
    (tmp_path / "out" / "dataset" / "data").mkdir(parents=True)
    assert main(["curate", "publish", "--config", str(cfg), "--dry-run"]) == 2  # no card yet: refused
    (tmp_path / "out" / "dataset" / "README.md").write_text("# card")
    (tmp_path / "out" / "dataset" / "data" / "train-0.parquet").write_bytes(b"PAR1")
    assert main(["curate", "publish", "--config", str(cfg), "--dry-run", "--repo-id", "me/x"]) == 0
    out = capsys.readouterr().out
    assert "would upload 2 file(s) to dataset repo me/x" in out and "data/train-0.parquet" in out


def test_a_diverged_fasttext_run_is_retrained_at_half_the_learning_rate(monkeypatch, capsys):
    from curation import distill
    from curation.config import DistillConfig
    from curation.distill import train_fasttext

    attempts, model = [], object()

    def diverge_twice(train_file, params):  # what fastText raises when its SGD diverges
        attempts.append(params["lr"])
        if len(attempts) <= 2:
            raise RuntimeError("Encountered NaN.")
        return model

    monkeypatch.setattr(distill, "train_supervised_in_fresh_process", diverge_twice)
    assert train_fasttext("train.txt", DistillConfig(lr=0.5), "hobby") == (model, 0.125)
    assert attempts == [0.5, 0.25, 0.125]
    assert "diverged at lr 0.25; retraining at 0.125" in capsys.readouterr().out
    monkeypatch.setattr(distill, "train_supervised_in_fresh_process",
                        lambda *a: (_ for _ in ()).throw(RuntimeError("Encountered NaN.")))
    with pytest.raises(RuntimeError, match="domain 'hobby': fastText training diverged at lr 0.0625"):
        train_fasttext("train.txt", DistillConfig(lr=0.5), "hobby")


def test_fasttext_trains_after_a_tokenizer_was_loaded(tmp_path):
    """fastText reads memory it never initialised: trained in a process whose heap holds the freed bytes
    of a loaded tokenizer, it stopped with "Encountered NaN" at every learning rate."""
    from curation.config import DistillConfig
    from curation.distill import train_domain
    from modeling_rexbert.tokenization_rexbert import load_tokenizer

    load_tokenizer()
    rows = [{"text": f"stainless steel bottle {i} keeps drinks cold", "label": 1} for i in range(20)] + \
           [{"text": f"the president spoke of the union {i}", "label": 0} for i in range(20)]
    metadata = train_domain("hobby", rows, DistillConfig(lr=0.5, bucket=20_000), str(tmp_path))
    assert metadata["hyperparameters"]["lr"] == 0.5  # trained at the configured rate, no retry
    assert metadata["validation"]["f1"] == 1.0


def test_dataset_card_prose_is_a_shipped_template(tmp_path, monkeypatch):
    """The dataset card's words are `curation/templates/*.md`: an edited template changes the card, and the
    wheel's package data ships every template (model cards' too)."""
    import shutil
    import tomllib
    from fnmatch import fnmatch

    from curation import dataset_card

    assert dataset_card.audit_note(None) == "The labels were not audited."
    audit = {"stable": True, "kappa": 0.81234, "min_kappa": 0.6, "n": 1200, "accuracy": 0.9,
             "audit_labeler": "big-llm", "primary_labeler": "small-llm"}
    assert dataset_card.audit_note(audit) == ("A second labeler (`big-llm`) relabelled 1,200 documents labelled by "
                                              "`small-llm`: agreement 90.0%, Cohen's kappa 0.812 (configured minimum "
                                              "0.6).")
    edited = tmp_path / "templates"
    shutil.copytree(dataset_card.TEMPLATES, edited)
    note = edited / "audit_note.md"
    note.write_text(note.read_text().replace("A second labeler", "An independent labeler"))
    monkeypatch.setattr(dataset_card, "TEMPLATES", edited)
    assert dataset_card.audit_note(audit).startswith("An independent labeler (`big-llm`)")

    root = CONFIGS.parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package in ("curation", "model_cards"):
        shipped = [p.relative_to(root / package).as_posix() for p in (root / package / "templates").iterdir()]
        assert shipped and all(any(fnmatch(f, p) for p in patterns[package]) for f in shipped), package


def test_a_new_stage_is_one_entry_in_the_table(tmp_path, monkeypatch, capsys):
    """A stage added to `STAGES` is a `rexbert curate` subcommand, runs last in `run`, and is fingerprinted:
    the next run finds it up to date, and a change of the config it reads reruns it."""
    import yaml

    from curation import stages
    from curation.layout import Layout
    from rexbert.cli import main as cli

    runs = []

    def stage_count(cfg, progress=True, verbose=False):
        runs.append(list(cfg.domains))
        Path(Layout(cfg.output_dir).root, "count.txt").write_text(str(len(cfg.domains)))
        return {"domains": len(cfg.domains)}

    count = stages.Stage("count", "count the configured domains", stage_count,
                         lambda cfg, layout: ({"domains": cfg.domains}, []))
    monkeypatch.setattr(stages, "STAGES", {**stages.STAGES, "count": count})
    config = tmp_path / "curate.yaml"
    config.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "out"), "domains": ["hobby"]}))

    with pytest.raises(SystemExit):
        cli(["curate", "--help"])
    assert "count the configured domains" in capsys.readouterr().out
    assert cli(["curate", "count", "--config", str(config), "--no-progress"]) == 0
    assert "[count]\n  domains: 1" in capsys.readouterr().out
    skip = ",".join(name for name in stages.STAGES if name != "count")
    assert cli(["curate", "run", "--config", str(config), "--no-progress", "--skip", skip]) == 0
    assert "curate count: up to date" in capsys.readouterr().out and runs == [["hobby"]]
    config.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "out"), "domains": ["hobby", "news"]}))
    assert cli(["curate", "run", "--config", str(config), "--no-progress", "--skip", skip]) == 0
    assert "curate count: rerunning, config changed (domains" in capsys.readouterr().out
    assert runs[-1] == ["hobby", "news"] and (tmp_path / "out" / "count.txt").read_text() == "2"
