"""Model cards: metadata from results, tables and plots; pushing through an injected fake HfApi."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_config

import modeling_rexbert
from evaluation.results import EvalResult, write_results
from model_cards import push_model, render_model_card
from rexbert.cli import main as cli

ROOT = Path(__file__).parents[2]


@pytest.fixture
def model_with_results(tmp_path):
    model_dir = tmp_path / "rexbert-tiny"
    torch.manual_seed(0)
    modeling_rexbert.RexBertForMaskedLM(tiny_config()).save_pretrained(model_dir)
    mlm = [EvalResult(str(model_dir), "masked-token-recovery", "tasksource/esci", "test", f"top{k}_accuracy", v,
                      settings={"column": "product_title", "block_size": b, "k": k})
           for b in (128, 256) for k, v in ((1, 0.412), (5, 0.655))]
    cosent = [EvalResult(str(model_dir), "esci-cosent", "tasksource/esci", "test", "spearman", 0.4321),
              EvalResult("other/bert-base", "esci-cosent", "tasksource/esci", "test", "spearman", 0.3)]
    files = [write_results(tmp_path / "mlm.json", mlm), write_results(tmp_path / "cosent.json", cosent)]
    return model_dir, files


def test_card_has_model_index_tables_and_plots(model_with_results):
    model_dir, files = model_with_results
    readme = render_model_card(model_dir, files)
    text = readme.read_text()
    metadata = yaml.safe_load(text.split("---")[1])
    entries = metadata["model-index"][0]["results"]
    values = sorted(m["value"] for e in entries for m in e["metrics"])
    assert values == sorted([0.412, 0.655, 0.412, 0.655, 0.4321])  # ours only, plain floats
    assert all(type(v) is float for v in values)
    assert "product_title 128 k=1" in text
    assert "| 41.2 | 65.5 |" in text  # Table 3 style, percent
    assert "43.2" in text and "bert-base" in text  # other models side by side
    assert (model_dir / "topk_by_block_size.png").stat().st_size > 1000
    assert (model_dir / "esci_spearman_by_model.png").stat().st_size > 1000
    assert "SentenceTransformer" in text and "@misc" in text


def test_rendering_a_card_imports_no_torch():
    """A card is rendered from results files; its tables must not pull in torch (nor load a model)."""
    code = 'import sys\nimport model_cards.card\nassert "torch" not in sys.modules, "model_cards.card imports torch"'
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]


def test_push_dry_run_lists_and_fake_api_uploads(model_with_results, capsys):
    model_dir, files = model_with_results
    render_model_card(model_dir, files)
    assert cli(["card", "push", "--model", str(model_dir), "--repo-id", "me/rexbert-tiny", "--dry-run"]) == 0
    listed = capsys.readouterr().out
    for name in ("model.safetensors", "config.json", "tokenizer.json", "modeling_rexbert.py", "README.md",
                 "topk_by_block_size.png"):
        assert name in listed

    class FakeApi:
        calls = []

        def create_repo(self, repo_id, **kwargs):
            self.calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))

    api = FakeApi()
    uploaded = push_model(model_dir, "me/rexbert-tiny", api=api)
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[1][2]["allow_patterns"] == uploaded and "model.safetensors" in uploaded


def test_push_without_card_is_a_clear_error(tmp_path):
    modeling_rexbert.RexBertForMaskedLM(tiny_config()).save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="README.md"):
        push_model(tmp_path, "me/x", dry_run=True)


def test_card_metadata_hub_ready_and_seeds_aggregated(tmp_path, model_with_results):
    model_dir, files = model_with_results
    glue = [EvalResult(str(model_dir), "glue-sst2", "nyu-mll/glue", "validation", "accuracy", v, seed=s)
            for s, v in ((1, 0.90), (2, 0.92), (3, 0.94))]
    glue.append(EvalResult(str(model_dir), "masked-token-recovery", str(tmp_path / "products.parquet"), "test",
                           "top1_accuracy", 0.5, settings={"column": "product_title", "block_size": 512, "k": 1}))
    files.append(write_results(tmp_path / "glue.json", glue))
    text = render_model_card(model_dir, files, base_model="thebajajra/RexBERT-mini",
                             datasets=["thebajajra/Ecom-niverse"]).read_text()
    metadata = yaml.safe_load(text.split("---")[1])
    assert metadata["language"] == ["en"] and metadata["license"] == "apache-2.0"
    assert metadata["library_name"] == "transformers" and metadata["pipeline_tag"] == "fill-mask"
    assert metadata["base_model"] == "thebajajra/RexBERT-mini" and "e-commerce" in metadata["tags"]
    assert {"thebajajra/Ecom-niverse", "nyu-mll/glue", "tasksource/esci"} <= set(metadata["datasets"])
    entries = metadata["model-index"][0]["results"]
    sst2 = [e for e in entries if e["dataset"]["type"] == "nyu-mll/glue"]
    assert len(sst2) == 1 and sst2[0]["dataset"]["config"] == "sst2"
    assert sst2[0]["metrics"][0]["value"] == pytest.approx(0.92)  # one value: the mean of three seeds
    assert str(tmp_path) not in text.split("---")[1]  # no local paths in the metadata
    assert not any(m["value"] == 0.5 for e in entries for m in e["metrics"])  # local data: body only
    assert "| 50.0 |" in text
    assert "| glue-sst2 | validation | accuracy | 92.0 | 2.0 | 90.0, 92.0, 94.0 |" in text
    with pytest.raises(ValueError, match="not a Hub id"):
        render_model_card(model_dir, files, base_model=str(tmp_path))


def test_every_card_snippet_runs_as_printed(model_with_results, tmp_path):
    """Each ```python block of the rendered card, run from the folder's parent (where the card's model name
    resolves to the folder) in an interpreter that cannot import this project."""
    model_dir, files = model_with_results
    text = render_model_card(model_dir, files).read_text()
    snippets = [block.split("```")[0] for block in text.split("```python\n")[1:]]
    assert len(snippets) == 3 and "trust_remote_code" not in snippets[0]
    blocker = "import sys\nfor name in ('modeling_rexbert', 'rexbert', 'evaluation', 'model_cards', 'training'):\n" \
              "    sys.modules[name] = None\n"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    for snippet in snippets:
        done = subprocess.run([sys.executable, "-c", blocker + snippet], cwd=model_dir.parent, env=env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, snippet + "\n" + done.stderr[-2000:]
        assert done.stdout.strip(), snippet


def test_push_refuses_a_folder_in_the_old_format(model_with_results):
    import json

    model_dir, files = model_with_results
    render_model_card(model_dir, files)
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "model_type": "rexbert"}))
    with pytest.raises(ValueError, match="rexbert convert --to rexbert"):
        push_model(model_dir, "me/x", dry_run=True)


def test_push_uploads_an_allowlist_never_checkpoints_logs_or_local_paths(model_with_results, capsys):
    """A `rexbert train` export: the model next to checkpoints, TensorBoard logs, metrics and its config."""
    model_dir, files = model_with_results
    render_model_card(model_dir, files)
    step = model_dir / "checkpoints" / "step-00000004"
    step.mkdir(parents=True)
    for name in ("model.safetensors", "optimizer.bin", "random_states_0.pkl", "scheduler.bin"):
        (step / name).write_bytes(b"x" * 10)
    (model_dir / "logs" / "phase1").mkdir(parents=True)
    (model_dir / "logs" / "phase1" / "events.out.tfevents.1.myhost").write_bytes(b"x")
    (model_dir / "phase_config.json").write_text(json.dumps({"source_file": "/home/me/configs/phase1.yaml"}))
    (model_dir / "metrics.jsonl").write_text("{}\n")
    (model_dir / "training_args.bin").write_bytes(b"pickle")
    (model_dir / "1_Pooling").mkdir(exist_ok=True)  # save_pretrained writes it
    (model_dir / "1_Pooling" / "config.json").write_text("{}")
    plan = push_model(model_dir, "me/x", dry_run=True)
    assert "model.safetensors" in plan and "README.md" in plan and "1_Pooling/config.json" in plan
    assert not [f for f in plan if f.startswith(("checkpoints", "logs")) or f.endswith((".bin", ".pkl", ".jsonl"))
                or f == "phase_config.json"]
    assert cli(["card", "push", "--model", str(model_dir), "--repo-id", "me/x", "--dry-run"]) == 0
    out = capsys.readouterr().out
    total = sum((model_dir / f).stat().st_size for f in plan)
    assert f"Would upload {len(plan)} files (" in out and "optimizer" not in out
    assert f"{total / 1024:.1f} KB" in out or f"{total / 1024 ** 2:.1f} MB" in out
    # an allowlisted file that carries this machine's paths is refused, naming it
    (model_dir / "tokenizer_config.json").write_text(json.dumps({"name_or_path": str(model_dir.resolve())}))
    with pytest.raises(ValueError, match="tokenizer_config.json contains the local path"):
        push_model(model_dir, "me/x", dry_run=True)


def test_card_prose_comes_from_the_shipped_template(model_with_results, tmp_path, monkeypatch):
    """The card's words are `model_cards/templates/model_card.md` (ModelCard.from_template); the code fills in a
    recorded run, retrieval counts and tables. Editing the template changes the card, and the wheel ships it."""
    import tomllib
    from fnmatch import fnmatch

    import model_cards.card as card

    model_dir, files = model_with_results
    run = model_dir.parent / f"{model_dir.name}-run"
    run.mkdir()
    (run / "phase_config.json").write_text(json.dumps({"name": "phase1", "data": {"sequence_length": 128},
                                                       "masking": {"rate": 0.3}, "optimizer": {"lr": 1e-3}}))
    (run / "training_summary.json").write_text(json.dumps({"steps": 20, "tokens": 4096}))
    retrieval = [EvalResult(str(model_dir), "esci-retrieval", "tasksource/esci", "test", "ndcg@10", 0.51,
                            settings={"locale": "us", "queries": 1500, "corpus": 9000, "min_relevant_gain": 1.0})]
    files.append(write_results(tmp_path / "retrieval.json", retrieval))
    text = render_model_card(model_dir, files, output_dir=tmp_path / "card").read_text()
    assert ("positions up to 8,192 tokens) trained by `rexbert train` in 1 phase(s), 20 steps on 4,096 tokens, on "
            "sequences of up to 128 tokens.") in text
    assert "| steps (tokens) | 20 (4,096) |" in text and "| masking | 30% |" in text
    assert "MRR/Recall/MAP with Exact products as relevant (us: 1,500 queries, 9,000 products)." in text
    assert "| rexbert-tiny | 51.0 |" in text and "| rexbert-tiny | 41.2 | 65.5 |" in text
    for heading in ("## Usage", "## Training recipe", "## Evaluation", "## Limitations", "## Citation"):
        assert text.count(f"\n{heading}\n") == 1, heading

    edited = tmp_path / "model_card.md"
    edited.write_text(card.TEMPLATE.read_text().replace("## Limitations", "## Known limits"))
    monkeypatch.setattr(card, "TEMPLATE", edited)
    text = render_model_card(model_dir, files, output_dir=tmp_path / "edited").read_text()
    assert "## Known limits" in text and "## Limitations" not in text

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = [p.relative_to(ROOT / "model_cards").as_posix() for p in (ROOT / "model_cards" / "templates").iterdir()]
    assert shipped and all(any(fnmatch(f, p) for p in patterns["model_cards"]) for f in shipped)
