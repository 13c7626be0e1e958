"""`data.max_passes`: a source of known size is read at most that many times a phase; the share it frees goes
to the others in proportion to theirs; the plan, the tokenization caps and the sampler the loop draws from
all use the same capped mixture; a share nothing can take is refused naming the field."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from rexbert.cli import main
from training import loop, source_shards
from training.capping import phase_mixture
from training.config import ConfigError
from training.curriculum import load_phases, plan_curriculum
from training.plan import format_plan
from training.tokenize_run import tokenize_curriculum

CORPUS = Path(__file__).resolve().parents[2] / "rexbert" / "corpus"
TINY_MODEL = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 2}
STEPS = 200
SLOTS = STEPS * 4096  # token slots over the phase: 200 steps of 32 rows of 128


def hub_phase(tmp_path: Path, sources: list[dict], name: str = "phase1.yaml", **data) -> Path:
    config = {"name": "phase1", "phase": 1, "model": {"preset": "micro"},
              "data": {"sequence_length": 128, "sources": sources, **data},
              "optimizer": {"lr": 1e-3, "weight_decay": 1e-5},
              "batch": {"micro_batch_size": 32, "global_tokens": 4096}, "run": {"max_steps": STEPS, "log_with": []}}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def source(name: str, weight: float, size: int | None = None, **extra) -> dict:
    return {"name": name, "dataset": f"owner/{name}", "weight": weight,
            **({"approx_tokens": size} if size is not None else {}), **extra}


def test_a_capped_source_is_read_at_most_n_times_and_the_rest_get_its_share_in_proportion(tmp_path):
    # asked: papers 50% of 819,200 slots = 409,600 from 20,000 tokens (20 passes); books and web share the rest 3:1
    path = hub_phase(tmp_path, [source("papers", 0.5, 20_000), source("books", 0.375), source("web", 0.125, 10**9)],
                     max_passes=4)
    (plan,) = plan_curriculum(path)["phases"]
    mix, data = plan["mixture"], plan["data"]
    assert mix["capped"] == ["papers"] and data["papers"]["passes_requested"] == pytest.approx(20.48)
    assert mix["tokens"]["papers"] == pytest.approx(4 * 20_000, abs=1) and data["papers"]["passes"] == 4.0
    for point in ("start", "mid", "end"):
        assert sum(mix[point].values()) == pytest.approx(1, abs=1e-3)
    assert sum(mix["tokens"].values()) == pytest.approx(SLOTS, abs=2)
    # the freed 40.2% went to books and web 3:1, as their own shares were
    assert mix["tokens"]["books"] / mix["tokens"]["web"] == pytest.approx(3.0)
    assert mix["requested"]["tokens"]["papers"] == pytest.approx(0.5 * SLOTS, abs=1)
    text = format_plan({"phases": [plan]})
    assert "capped at 4 passes; asked 50.0% -> 50.0% -> 50.0%: 409.6k, 20.48 passes" in text
    assert "not capped: size unknown; asked 37.5%" in text  # books: no size, so never capped, said so
    # without the cap, the plan is what it was: the config's shares
    (uncapped,) = plan_curriculum(hub_phase(tmp_path, [source("papers", 0.5, 20_000), source("books", 0.375),
                                                       source("web", 0.125, 10**9)], "plain.yaml"))["phases"]
    assert uncapped["mixture"]["start"] == {"papers": 0.5, "books": 0.375, "web": 0.125}
    assert "requested" not in uncapped["mixture"] and "asked" not in format_plan({"phases": [uncapped]})


def test_capping_repeats_until_no_source_is_over_and_annealing_keeps_its_shape(tmp_path):
    # capping papers pushes web over its own (per-source) cap; books alone takes what both free
    path = hub_phase(tmp_path, [source("papers", 0.5, 20_000), source("web", 0.3, 60_000, max_passes=6),
                                source("books", 0.2)], max_passes=4,
                     anneal_to={"papers": 0.2, "web": 0.4, "books": 0.4}, anneal_steps=100)
    (phase,) = load_phases(path, default_world_size=1)
    mixture = phase_mixture(phase, None)
    assert mixture.capped == [True, True, False]
    assert mixture.tokens[0] == pytest.approx(4 * 20_000) and mixture.tokens[1] == pytest.approx(6 * 60_000)
    assert mixture.tokens.sum() == pytest.approx(SLOTS)
    for step in (0, 50, 150):
        assert mixture.schedule.probabilities(step).sum() == pytest.approx(1)
    # a capped source keeps the shape of its anneal: start and end shares scaled by one factor
    start, end = mixture.schedule.start_shares(), mixture.schedule.end_shares()
    asked_start, asked_end = mixture.requested.start_shares(), mixture.requested.end_shares()
    assert start[0] / asked_start[0] == pytest.approx(end[0] / asked_end[0])


@pytest.mark.parametrize("own, field", [(False, "data.max_passes"), (True, r"data.sources\[0\].max_passes")])
def test_a_share_no_source_can_take_is_refused_naming_the_field(tmp_path, own, field):
    extra = {"max_passes": 2} if own else {}
    path = hub_phase(tmp_path, [source("papers", 0.5, 20_000, **extra), source("web", 0.5, 30_000)], max_passes=4)
    with pytest.raises(ConfigError, match=rf"phase1: {field}: capping 'papers' .*no other source can take"):
        plan_curriculum(path)
    with pytest.raises(ConfigError, match=r"max_passes must be > 0"):
        plan_curriculum(hub_phase(tmp_path, [source("web", 1.0)], "zero.yaml", max_passes=0))


def catalog_phase(tmp_path: Path, catalog: Path, other: dict, steps: int = 30) -> Path:
    config = {"name": "phase1", "phase": 1, "model": {"preset": "micro", "overrides": TINY_MODEL},
              "data": {"sequence_length": 64, "eval_documents": 2, "eval_rows": 2, "max_passes": 4,
                       "sources": [{"name": "catalog", "path": str(catalog), "weight": 0.8}, other]},
              "optimizer": {"lr": 1e-3, "weight_decay": 1e-5},
              "batch": {"micro_batch_size": 8, "global_tokens": 512},
              "run": {"max_steps": steps, "log_with": [], "save_every": 1000, "eval_every": 1000}}
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def write_catalog(path: Path, lines: int = 20) -> Path:
    path.write_text("".join(json.dumps({"text": f"Navy cotton shirt, size {i}, machine washable."}) + "\n"
                            for i in range(lines)))
    return path


def test_the_sampler_draws_the_plan_s_capped_mixture(tmp_path, monkeypatch):
    path = catalog_phase(tmp_path, write_catalog(tmp_path / "catalog.jsonl"),
                         {"name": "general", "path": str(CORPUS / "general.jsonl"), "weight": 0.2})
    schedules = []
    real = loop.MixtureSampler
    monkeypatch.setattr(loop, "MixtureSampler", lambda rows, schedule, *a: schedules.append(schedule) or
                        real(rows, schedule, *a))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["train", "--config", str(path), "--output-dir", str(tmp_path / "run")]) == 0
    assert "mixture capped by max_passes (asked -> drawn, at the start): catalog 80.0% -> " in out.getvalue()
    (plan,) = plan_curriculum(path, world_size=1, output_dir=tmp_path / "run")["phases"]  # sizes from the shards
    assert plan["mixture"]["capped"] == ["catalog"] and plan["data"]["catalog"]["from"] == "shards"
    assert plan["data"]["catalog"]["passes"] == 4.0 and plan["data"]["catalog"]["passes_requested"] > 20
    (schedule,) = schedules
    drawn = dict(zip(["catalog", "general"], schedule.probabilities(0)))
    assert {k: round(float(v), 4) for k, v in drawn.items()} == plan["mixture"]["start"]
    assert drawn["catalog"] < 0.2  # not the 80% asked
    summary = json.loads((tmp_path / "run" / "phase1-run" / "training_summary.json").read_text())
    rows = {name: s["rows_drawn"] for name, s in summary["sources"].items()}
    assert rows["catalog"] / sum(rows.values()) == pytest.approx(drawn["catalog"], abs=0.05)


def test_tokenization_caps_follow_the_capped_shares(tmp_path, monkeypatch):
    """A large source is tokenized up to its capped share (more than asked, since the catalog is capped), after
    the catalog, whose size moves it, is built whole."""
    big = tmp_path / "big.jsonl"
    big.write_text((CORPUS / "general.jsonl").read_text())
    monkeypatch.setattr(source_shards, "IN_PROCESS_MAX_BYTES", 10_000)  # big.jsonl counts as large
    path = catalog_phase(tmp_path, write_catalog(tmp_path / "catalog.jsonl"),
                         {"name": "big", "path": str(big), "weight": 0.2}, steps=60)
    phases = load_phases(path, default_world_size=1)
    before = source_shards.tokens_needed(phases, tmp_path / "run")  # the catalog's size is not known yet
    asked = next(n for n in before.values() if n.name == "big").tokens
    built = tokenize_curriculum(phases, tmp_path / "run", progress=False)
    assert [need.name for need, _ in built] == ["catalog", "big"]
    need, manifest = built[1]
    (plan,) = plan_curriculum(path, world_size=1, output_dir=tmp_path / "run")["phases"]
    assert need.tokens == pytest.approx(plan["mixture"]["tokens"]["big"], abs=1) and need.tokens > 3 * asked
    assert need.cap_tokens <= manifest["tokens"] and not manifest["exhausted"]
    assert plan["data"]["big"]["from"] == "shards, partial"  # what is tokenized, not the source's size
    np.testing.assert_allclose(sum(plan["mixture"]["tokens"].values()), 60 * 512, atol=2)


def test_the_paper_recipe_caps_the_arxiv_source_the_same_at_8_64_and_512_processes():
    plans = [plan_curriculum(Path(__file__).resolve().parents[2] / "training" / "configs" / "base", world_size=n)
             for n in (8, 64, 512)]
    phase1 = plans[0]["phases"][0]
    assert phase1["mixture"]["capped"] == ["papers"] and phase1["data"]["papers"]["passes"] == 4.0
    assert phase1["data"]["papers"]["passes_requested"] > 9
    for other in plans[1:]:
        assert [p["mixture"] for p in other["phases"]] == [p["mixture"] for p in plans[0]["phases"]]
        assert other["sources"] == plans[0]["sources"]
