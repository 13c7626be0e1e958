"""Does annealing toward e-commerce text, with or without Guided MLM, make a better e-commerce encoder?

The paper's central claim, which its authors did not isolate by ablation (§7), tested at demo scale:
one shared phase-2 checkpoint (the demo curriculum's phases 1 and 2 on the bundled general text),
then phase 3 as

  (a) not run: the phase-2 checkpoint itself;
  (b) continued on general text only (the same steps, LR schedule and 15% masking);
  (c) annealed from general toward e-commerce text, without Guided MLM;
  (d) annealed with Guided MLM on 5% of rows (the paper's phase 3, and the demo's when the study ran);
  (e) e-commerce text only from the first step (no annealing), with Guided MLM;

each with several seeds (the seed draws the data order and the masks; the held-out documents are
fixed by `data.heldout_seed`, so every run is scored on the same text, which no run trained on).
Scored by `rexbert eval mlm`'s top-k masked-word recovery (15% word spans, the same masked words for
every model) on held-out e-commerce documents, short ones (title-like: pros/cons phrases, search
queries; at most 20 words) and long ones (description-like: reviews, product pages; packed into full
blocks) separately, and on held-out general text (forgetting; packed). Guided MLM spans are mined from the training documents only.

    python benchmarks/ablation_annealing.py --output benchmarks/results/ablation_annealing.md

About 45 minutes on 2 CPU cores with the defaults (3 seeds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIGS = REPO / "training" / "configs" / "demo"
TITLE_WORDS = 20  # held-out e-commerce documents up to this many words are "title-like"
HELDOUT = {"data": {"eval_documents": 600}}  # e-commerce documents never trained on (general: at most a tenth, 9)
# The study ran (README) with the recipe's Poisson spans of mean 3 and a phase 3 of 100 steps at 15%
# masking; the demo has since moved to single tokens and 200 steps at 30% (training/configs/demo/).
# Pinned, so that the script reproduces the published table.
SPAN_MASKING = {"masking": {"mean_span": 3.0}}
PHASE3_AS_RUN = {"masking": {**SPAN_MASKING["masking"], "rate": 0.15}, "optimizer": {"decay_steps": 100},
                 "run": {"max_steps": 100, "eval_every": 50, "save_every": 50}, "data": {"anneal_steps": 50}}
VARIANTS = {
    "a": "no phase 3 (phase-2 checkpoint)",
    "b": "phase 3 on general text only",
    "c": "annealed to e-commerce, no Guided MLM",
    "d": "annealed to e-commerce + Guided MLM",
    "e": "e-commerce only (no annealing) + Guided MLM",
}
SPLITS = ("ecommerce-titles", "ecommerce-descriptions", "general")


def phase3_overrides(variant: str, seed: int, shared: Path, spans: Path) -> dict:
    """How variant `variant` changes the demo's phase 3 (which is variant d)."""
    only = {"b": "general", "e": "ecommerce"}.get(variant)
    override: dict = {"model": {"init_from": str(shared / "phase2")}, "run": {**PHASE3_AS_RUN["run"], "seed": seed},
                      "data": {**HELDOUT["data"], **PHASE3_AS_RUN["data"], "spans": str(spans)},
                      "masking": dict(PHASE3_AS_RUN["masking"]), "optimizer": dict(PHASE3_AS_RUN["optimizer"])}
    if only is not None:  # one source from the first step instead of the anneal
        override["data"].update(anneal_to=None, anneal_steps=0,
                                sources=[{"name": only, "path": str(REPO / f"rexbert/corpus/{only}.jsonl")}])
    if variant in ("b", "c"):
        override["masking"]["guided_fraction"] = 0.0
    return override


def prepare(out: Path, progress: bool) -> tuple[Path, Path, dict[str, Path]]:
    """The shared phases 1-2, the spans mined from e-commerce training documents, and the held-out files."""
    from modeling_rexbert.tokenization_rexbert import load_tokenizer
    from training.corpus import source_texts
    from training.curriculum import load_phases, run_curriculum
    from training.spans import mine_spans, save_spans

    shared = out / "shared"
    phase1, phase2, _ = load_phases(DEMO_CONFIGS, overrides=SPAN_MASKING)
    run_curriculum([phase1, phase2], shared, resume=True, progress=progress)  # checked as `rexbert train` checks
    (phase3,) = load_phases(DEMO_CONFIGS / "phase3.yaml", overrides={**HELDOUT, **SPAN_MASKING})
    tokenizer = load_tokenizer()
    ecommerce_train, ecommerce_heldout = source_texts(phase3, tokenizer, shared, "ecommerce")
    _, general_heldout = source_texts(phase3, tokenizer, shared, "general")
    spans = save_spans(mine_spans(ecommerce_train, min_count=2), out / "spans.json")
    short = [t for t in ecommerce_heldout if len(t.split()) <= TITLE_WORDS]
    long = [t for t in ecommerce_heldout if len(t.split()) > TITLE_WORDS]
    files = {}
    for split, texts in zip(SPLITS, (short, long, general_heldout)):
        files[split] = out / "heldout" / f"{split}.jsonl"
        files[split].parent.mkdir(parents=True, exist_ok=True)
        files[split].write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return shared, Path(spans), files


def score(model: Path, files: dict[str, Path], block_size: int) -> dict[str, dict[str, float]]:
    from evaluation.mlm import evaluate_masked_lm

    scores = {}
    for split, file in files.items():
        # long texts packed into full blocks, so that all of them is scored, not only its first block
        results = evaluate_masked_lm([str(model)], str(file), ["text"], [block_size], ks=(1, 5), show_progress=False,
                                     packed=split != "ecommerce-titles")
        scores[split] = {r.metric: r.value for r in results}
        scores[split]["masked_tokens"] = results[0].settings["masked_tokens"]
    return scores


def run_study(out: Path, seeds: list[int], block_size: int, progress: bool) -> dict:
    from training.curriculum import load_phases, run_curriculum

    started = time.perf_counter()
    shared, spans, files = prepare(out, progress)
    runs = {"a": {"-": score(shared / "phase2", files, block_size)}}
    print(f"(a) {VARIANTS['a']}: {json.dumps(runs['a']['-'])}", flush=True)
    for variant in "bcde":
        runs[variant] = {}
        for seed in seeds:
            root = out / "runs" / f"{variant}-seed{seed}"
            phase3 = load_phases(DEMO_CONFIGS / "phase3.yaml", overrides=phase3_overrides(variant, seed, shared, spans))
            (summary,) = run_curriculum(phase3, root, resume=True, progress=progress)
            runs[variant][str(seed)] = {**score(root / "phase3", files, block_size),
                                        "final_heldout_loss": summary.get("eval/loss")}
            print(f"({variant}) seed {seed}: {json.dumps(runs[variant][str(seed)])}", flush=True)
    return {"variants": VARIANTS, "seeds": seeds, "block_size": block_size, "runs": runs,
            "heldout_texts": {split: sum(1 for _ in files[split].open()) for split in SPLITS},
            "seconds": round(time.perf_counter() - started, 1)}


def summarise(study: dict) -> dict[str, dict[str, tuple[float, float, int]]]:
    """variant -> 'split/metric' -> (mean, standard deviation over seeds, seeds) in percent."""
    table = {}
    for variant, runs in study["runs"].items():
        table[variant] = {}
        for split in SPLITS:
            for metric in ("top1_accuracy", "top5_accuracy"):
                values = [100 * run[split][metric] for run in runs.values()]
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                table[variant][f"{split}/{metric}"] = (statistics.fmean(values), spread, len(values))
    return table


def render(study: dict, machine: str) -> str:
    table = summarise(study)
    columns = [f"{split}/{metric}" for split in SPLITS for metric in ("top1_accuracy", "top5_accuracy")]
    heads = [f"{split} top-{metric[3]}" for split in SPLITS for metric in ("top1_accuracy", "top5_accuracy")]
    lines = [f"Phase-3 ablation at demo scale ({machine}; {study['seconds'] / 60:.0f} min in the last invocation, "
             "which reuses runs already in its --output-dir): masked-word recovery "
             f"(%, mean ± standard deviation over seeds {study['seeds']}) on held-out text, block size "
             f"{study['block_size']}; held-out documents: " +
             ", ".join(f"{k} {v}" for k, v in study["heldout_texts"].items()) + ".", "",
             "| phase 3 | seeds | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(heads)]
    for variant, name in study["variants"].items():
        cells = table[variant]
        lines.append(f"| ({variant}) {name} | {next(iter(cells.values()))[2]} | " +
                     " | ".join(f"{cells[c][0]:.2f} ± {cells[c][1]:.2f}" for c in columns) + " |")
    return "\n".join(lines) + "\n"


def plot(study: dict, path: Path) -> None:
    from rexbert.core.plotting import pyplot, save_figure

    plt = pyplot()
    table = summarise(study)
    variants = list(study["variants"])
    fig, axes = plt.subplots(1, len(SPLITS), figsize=(12, 3.8), sharey=False)
    for ax, split in zip(axes, SPLITS):
        means = [table[v][f"{split}/top1_accuracy"][0] for v in variants]
        spreads = [table[v][f"{split}/top1_accuracy"][1] for v in variants]
        ax.bar([f"({v})" for v in variants], means, yerr=spreads, capsize=4,
               color=["#999999", "#6b8fb3", "#e3a857", "#d9622b", "#8c5a9e"])
        ax.set_title(f"{split}: top-1 (%)")
        low = min(m - s for m, s in zip(means, spreads))
        ax.set_ylim(max(0.0, low - 2.0), max(m + s for m, s in zip(means, spreads)) + 1.0)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("; ".join(f"({v}) {n}" for v, n in study["variants"].items()), fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default="runs/ablation-annealing", help="models and held-out files")
    parser.add_argument("--seeds", default="0,1,2", help="phase-3 seeds per variant (default: 0,1,2)")
    parser.add_argument("--block-size", type=int, default=128, help="texts are truncated to this many tokens")
    parser.add_argument("--output", default="benchmarks/results/ablation_annealing.md",
                        help="markdown table; a .json and a .png are written beside it")
    parser.add_argument("--machine", default="2 CPU cores", help="how the table names the machine")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args()
    study = run_study(Path(args.output_dir), [int(s) for s in args.seeds.split(",")], args.block_size,
                      progress=not args.no_progress)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(study, indent=1))
    plot(study, output.with_suffix(".png"))
    output.write_text(render(study, args.machine))
    print(output.read_text())


if __name__ == "__main__":
    main()
