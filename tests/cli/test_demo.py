"""`rexbert demo --quick`: every stage on the bundled corpus, the layout the README promises."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from datasets import load_dataset

from evaluation.results import read_results
from rexbert.cli import main

pytestmark = pytest.mark.slow  # the whole quick demo


def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    # the console script in a fresh process, as users run it: state left by earlier tests in this process
    # (fastText has diverged on every learning rate after the in-process Ray tests) cannot leak in
    run = subprocess.run([shutil.which("rexbert") or "rexbert", "demo", "--quick", "--output-dir", str(out),
                          "--no-progress"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    printed = run.stdout
    assert "=== rexbert demo: done ===" in printed

    dataset = load_dataset(str(out / "dataset"), split="train")
    assert {"text", "domain"} <= set(dataset.column_names) and 100 < len(dataset)
    assert (out / "dataset" / "README.md").is_file() and (out / "dataset" / "domain_distribution.png").is_file()

    summary = json.loads((out / "demo_summary.json").read_text())
    assert [p["phase"] for p in summary["training"]] == ["phase1", "phase2", "phase3"]
    assert summary["training"][2]["sources"]["ecommerce"]["train_rows"] > 0  # phase 3 read the curated data
    for phase in ("phase1", "phase2", "phase3"):
        assert (out / phase / "model.safetensors").is_file() and (out / phase / "tokenizer.json").is_file()

    mlm = read_results(out / "results" / "mlm.json")
    assert {r.model for r in mlm} == {str(out / "phase2"), str(out / "phase3")}  # side by side
    assert all(0.0 <= r.value <= 1.0 for r in mlm)
    assert [r.metric for r in read_results(out / "results" / "cosent.json")] == ["spearman", "pearson"]
    assert [r.metric for r in read_results(out / "results" / "glue.json")] == ["accuracy"]
    retrieval = [r for r in read_results(out / "results" / "retrieval.json") if r.metric == "ndcg@10"]
    assert sorted(r.model for r in retrieval) == [str(out / "phase2"), str(out / "phase3")]  # phase 3 vs phase 2
    assert all(0.0 < r.value <= 1.0 for r in retrieval)
    assert "retrieval nDCG@10 on the bundled ESCI sample" in printed
    heldout = (out / "results" / "heldout_ecommerce.jsonl").read_text().splitlines()
    assert heldout and all(json.loads(line)["text"] for line in heldout)

    card = (out / "phase3" / "README.md").read_text()  # the card lives beside the model
    # its results come from bundled look-alikes of ESCI and GLUE: reported in the body, never as Hub model-index claims
    assert "esci" in card.lower() and "model-index" not in card.split("---")[1]
    assert "Product search retrieval (x100)" in card and "ndcg@10" in card
    checks = summary["load_checks"]
    assert checks["stock_transformers"] == "ModernBertForMaskedLM" and checks["max_logit_difference"] < 1e-4
    assert checks["sentence_embedding_dim"] == 64

    # a second run into the same folder refuses rather than mixing outputs
    assert main(["demo", "--quick", "--output-dir", str(out), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_demo_curriculum_goes_through_the_cross_phase_checks(tmp_path):
    """The demo trains through `run_curriculum`, as `rexbert train` does: a demo curriculum whose phase 3
    lowers RoPE theta is refused by `check_curriculum` before any phase trains."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import pytest
    import yaml

    from rexbert.demo import Demo, DemoSize
    from rexbert.core.paths import BUNDLED_CORPUS
    from training.config import ConfigError

    configs = tmp_path / "configs"
    configs.mkdir()
    for i in (1, 2, 3):
        phase = {"extends": str(Path(Demo(tmp_path, DemoSize()).configs / f"phase{i}.yaml"))}
        if i == 3:  # below phase 2's 160k
            phase["model"] = {"overrides": {"rope_parameters": {"full_attention": {"rope_type": "default",
                                                                                   "rope_theta": 1000.0}}}}
        (configs / f"phase{i}.yaml").write_text(yaml.safe_dump(phase))
    out = tmp_path / "demo"
    texts = [json.loads(line)["text"] for line in (BUNDLED_CORPUS / "ecommerce.jsonl").read_text().splitlines()[:60]]
    (out / "dataset").mkdir(parents=True)  # what the curation stage would have written
    pq.write_table(pa.table({"text": texts}), out / "dataset" / "part-0.parquet")
    demo = Demo(out, DemoSize.quick(), progress=False)
    demo.configs = configs
    with pytest.raises(ConfigError, match="phase3: model.overrides.rope_parameters.full_attention.rope_theta: 1000 "
                                          "is below the previous phase's 160000"):
        demo.train()
    assert not (out / "phase1").exists()  # refused before the first phase
