"""End to end on the bundled real mix: demo corpus + bad records -> labels -> classifiers -> datatrove
pipeline -> Parquet that `datasets` loads; rejects, language ID, dedup, idempotent rerun, card, publish."""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path

import pytest

from conftest import curation_test_config
from curation.config import config_from_dict
from curation.demo_corpus import NON_ENGLISH
from curation.layout import Layout
from curation.stages import run_all

BIG = 10 * 2**20


def _write_bad_records(folder: Path) -> dict[str, int]:
    """A jsonl file with one bad record of every kind among good ones; returns reason -> line."""
    good = {"text": "Stainless steel water bottle, 750 ml. Keeps drinks cold for 24 hours and hot for 12 hours. "
                    "Leak-proof lid, fits car cup holders, dishwasher safe. Color: Navy.", "domain": "photo",
            "source_label": 1}  # what the demo's provenance labeler reads when the sample stage picks it
    lines: list[bytes] = [json.dumps({**good, "id": "ok-1"}).encode()]
    expected = {}
    for reason, raw in [
        ("malformed_json", b'{"text": "Great lens, sharp at f/1.8", "domain": "photo"'),
        ("undecodable", b'{"text": "caf\xe9 \xff\xfe mug", "domain": "photo"}'),
        ("empty_text", json.dumps({"text": "   ", "domain": "photo"}).encode()),
        ("missing_text", json.dumps({"title": "Canon G3", "domain": "photo"}).encode()),
        ("oversized", json.dumps({"text": "camera " * (BIG // 7), "domain": "photo"}).encode()),
        ("not_an_object", b'["a", "list"]'),
    ]:
        lines.append(raw)
        expected[reason] = ("photo/photo_bad.jsonl", len(lines))
    other = ("Compact mirrorless camera with a 24 MP sensor, 4K video and a flip screen for vlogging. "
             "Kit includes a 15-45 mm zoom lens, battery, USB-C charger and strap. Weight: 390 g.")
    lines.append(json.dumps({"id": "ok-2", "text": other, "domain": "photo", "source_label": 1}).encode())
    (folder / "photo").mkdir(parents=True, exist_ok=True)
    (folder / "photo" / "photo_bad.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    # outside any domain folder and without a domain field: nothing says which domain it belongs to
    (folder / "unsorted.jsonl").write_text(json.dumps({"text": "A sturdy tripod with a ball head."}) + "\n")
    expected["missing_domain"] = ("unsorted.jsonl", 1)
    return expected


@pytest.fixture(scope="module")
def demo_run(curation_corpus):
    corpus = curation_corpus
    bad = _write_bad_records(corpus)
    cfg = curation_test_config(
        corpus.parent / "out", corpus, sample={"source": str(corpus), "per_domain": 1000},
        label={"backend": "provenance"},
        audit={"backend": "rules", "sample_size": 100, "enforce": False},  # stand-ins: they disagree by design
        distill={"validation_fraction": 0.25})
    # the sample stage reads photo_bad.jsonl with the filter's reader: its bad lines are set aside, not fatal
    summaries = run_all(cfg, progress=False)
    return cfg, Layout(cfg.output_dir), summaries, bad, corpus


def _output(layout: Layout):
    from datasets import load_dataset

    return load_dataset("parquet", data_files=os.path.join(layout.dataset, "data", "*.parquet"), split="train")


def _corpus_records(corpus: Path) -> dict[str, dict]:
    records = {}
    for path in glob.glob(str(corpus / "*" / "*_000000.jsonl")):
        for line in open(path, encoding="utf-8"):
            row = json.loads(line)
            records[row["id"]] = row
    return records


def test_output_is_a_loadable_dataset_with_the_promised_columns(demo_run):
    cfg, layout, summaries, _, corpus = demo_run
    ds = _output(layout)
    assert set(ds.column_names) == {"text", "domain", "score", "source_id", "provenance"}
    assert 50 < len(ds) < 243
    assert set(ds["domain"]) == {"hobby", "news", "photo"}
    prov = json.loads(ds[0]["provenance"])
    assert prov["language"] == "en" and "DomainScoreFilter" in prov["stages"]
    # filtered domains carry a score at or above their threshold; general text is mostly gone
    thresholds = {d: json.load(open(os.path.join(layout.models, f"{d}.json")))["threshold"] for d in ("hobby", "news")}
    for row in ds:
        if row["domain"] in thresholds:
            assert row["score"] >= thresholds[row["domain"]]
    source = _corpus_records(corpus)
    kept = [source[s] for s in ds["source_id"] if s in source]
    general_kept = sum(1 for r in kept if r["source_label"] == 0)
    general_total = sum(1 for r in source.values() if r["source_label"] == 0)
    assert general_kept <= 0.2 * general_total


def test_non_english_documents_are_dropped(demo_run):
    _, layout, _, _, _ = demo_run
    ds = _output(layout)
    for _, text in NON_ENGLISH:
        assert text not in ds["text"]
    stats = json.load(open(os.path.join(layout.logs("1_filter"), "stats.json")))
    lang = next(s for s in stats if "Language" in s["name"])["stats"]
    assert {lang.get(f"dropped_language_{code}", 0) for code in ("de", "fr", "es")} == {2}


def test_planted_near_duplicates_are_removed(demo_run):
    _, layout, _, _, corpus = demo_run
    ds = _output(layout)
    texts = set(ds["text"])
    source = _corpus_records(corpus)
    mirrors = [r for r in source.values() if r["url"].startswith("https://example.com/mirror/")]
    assert len(mirrors) == 6
    for mirror in mirrors:
        original = mirror["text"].removeprefix("Honestly, ").removesuffix("\nPosted again by another user.")
        # exactly one of each near-duplicate pair survives (none if the classifier dropped both)
        assert not (original in texts and mirror["text"] in texts)
    stats = json.load(open(os.path.join(layout.logs("4_write"), "stats.json")))
    assert next(s for s in stats if "MinHash" in s["name"])["stats"]["dropped"] >= 6


def test_every_bad_record_is_in_the_rejects_file_and_the_run_continues(demo_run):
    _, layout, _, bad, _ = demo_run
    rejects = [json.loads(line) for path in glob.glob(os.path.join(layout.rejects, "*.jsonl")) for line in open(path)]
    found = {r["reason"]: r for r in rejects}
    assert set(found) == set(bad)
    for reason, (file, line) in bad.items():
        assert found[reason]["line"] == line and found[reason]["file"].endswith(file)
    ds = _output(layout)
    assert {"ok-1", "ok-2"} <= set(ds["source_id"])  # the good records around them made it through
    reader = json.load(open(os.path.join(layout.logs("1_filter"), "stats.json")))[0]["stats"]
    assert reader["rejected"] == len(bad)


def test_rerun_skips_completed_tasks_and_rewrites_nothing(demo_run):
    cfg, layout, _, _, _ = demo_run
    watched = sorted(glob.glob(os.path.join(layout.work, "**", "*"), recursive=True)
                     + glob.glob(os.path.join(layout.dataset, "data", "*")))
    watched = [p for p in watched if os.path.isfile(p) and "/logs/" not in p]
    before = {p: os.stat(p).st_mtime_ns for p in watched}
    completions = sorted(os.listdir(os.path.join(layout.logs("1_filter"), "completions")))
    assert completions == ["00000", "00001"]
    run_all(cfg, progress=False, skip=("sample", "label", "audit", "distill", "card"))
    after = {p: os.stat(p).st_mtime_ns for p in watched}
    assert before == after
    assert sorted(os.listdir(os.path.join(layout.logs("1_filter"), "completions"))) == completions


def test_the_layout_maps_what_the_chain_wrote(demo_run):
    """Every path of `Layout` that the chain writes exists after it, and nothing lies outside the map."""
    from curation.layout import JOBS
    from curation.stages import STAGES

    _, layout, _, _, _ = demo_run
    written = [layout.samples, layout.labels_file, layout.label_failures, layout.audit_report, layout.models,
               layout.kept, layout.minhash, layout.decont_index, layout.rejects, layout.dataset_data, layout.card,
               layout.chart, *(layout.logs(job) for job in JOBS), *(layout.fingerprint(stage) for stage in STAGES)]
    assert [path for path in written if not os.path.exists(path)] == []
    folders = {layout.samples, layout.labels, layout.audit, layout.models, layout.work, layout.dataset,
               os.path.dirname(layout.fingerprint("x"))}
    assert {os.path.join(layout.root, entry) for entry in os.listdir(layout.root)} <= folders


def test_card_reports_stage_counts_and_the_domain_chart(demo_run):
    _, layout, summaries, bad, _ = demo_run
    card = open(os.path.join(layout.dataset, "README.md"), encoding="utf-8").read()
    assert os.path.getsize(os.path.join(layout.dataset, "domain_distribution.png")) > 1000
    ds = _output(layout)
    assert f"**{len(ds):,} documents" in card
    assert "below_threshold" in card and "near_duplicate" in card and "language_de: 2" in card
    # the demo corpus holds the 16 ESCI products the demo evaluates on: decontamination removes them
    assert "## Decontamination" in card and re.search(r"\| esci_products \| sample-products.jsonl \| .* \| [1-9]\d* \|", card)
    assert "oversized: 1" in card
    assert "path: data/*.parquet" in card
    assert summaries["distill"]["hobby"]["f1"] > 0.8


def test_publish_dry_run_and_injected_api(demo_run):
    from curation.publish import publish

    _, layout, _, _, _ = demo_run
    files = [name for name, _ in publish(layout.dataset, "me/ecom", dry_run=True)]
    assert "README.md" in files and "domain_distribution.png" in files
    assert any(f.startswith("data/") and f.endswith(".parquet") for f in files)

    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs["repo_id"], kwargs))

    publish(layout.dataset, "me/ecom", private=True, api=FakeApi())
    assert [c[0] for c in calls] == ["create_repo", "upload_folder"]
    assert calls[0][2]["repo_type"] == "dataset" and calls[0][2]["private"] is True
    assert calls[1][2]["folder_path"] == layout.dataset


def test_sample_stage_sets_aside_the_bad_records_with_file_and_line(demo_run):
    _, layout, summaries, bad, _ = demo_run
    sample = summaries["sample"]
    in_domain_folder = {reason for reason, (file, _) in bad.items() if file.startswith("photo/")}
    assert set(sample["rejected"]) == in_domain_folder
    rejects = {r["reason"]: r for r in map(json.loads, open(sample["rejects_file"]))}
    for reason in in_domain_folder:
        file, line = bad[reason]
        assert rejects[reason]["file"].endswith(file) and rejects[reason]["line"] == line


def test_a_stage_reruns_when_its_config_or_classifiers_change_and_says_why(demo_run, tmp_path, capsys):
    import shutil

    cfg, layout, _, _, _ = demo_run
    shutil.copytree(layout.root, tmp_path / "out")
    moved = config_from_dict({**json.loads(json.dumps(_as_dict(cfg))), "output_dir": str(tmp_path / "out")})
    copy = Layout(moved.output_dir)
    before = len(_output(copy))
    capsys.readouterr()
    run_all(moved, progress=False)  # nothing changed: every stage is up to date, the output is the same
    assert capsys.readouterr().out.count("up to date") == 6 and len(_output(copy)) == before

    moved.filter.max_bytes = 300  # most documents are now oversized
    run_all(moved, progress=False, skip=("sample", "label", "audit", "distill"))
    out = capsys.readouterr().out
    assert "curate filter: rerunning, config changed (filter.max_bytes: 1000000 -> 300)" in out
    assert "curate card: rerunning, input changed" in out
    assert len(_output(copy)) < before / 2

    moved.filter.max_bytes = 1_000_000
    run_all(moved, progress=False, skip=("sample", "label", "audit", "distill"))
    assert len(_output(copy)) == before
    model = next(p for p in Path(copy.models).iterdir() if p.is_file())
    os.utime(model, ns=(model.stat().st_atime_ns, model.stat().st_mtime_ns + 10**9))  # a retrained classifier
    capsys.readouterr()
    run_all(moved, progress=False, skip=("sample", "label", "audit", "distill"))
    assert "curate filter: rerunning, input changed (<output_dir>/classifiers)" in capsys.readouterr().out


def _as_dict(cfg):
    import dataclasses

    return dataclasses.asdict(cfg)
