"""`rexbert demo`: the whole pipeline, end to end, on the bundled real corpus (`rexbert/corpus/`).

1. curation: the bundled mix laid out like FineFineWeb, through the real `rexbert curate` chain
   (labels from the serverless `provenance` labeler) -> `DIR/dataset/` with its card;
2. training: the demo curriculum (`training/configs/demo/`): phase 1 on general text, phase 2 with
   longer rows and a raised RoPE theta, phase 3 annealed toward the curated dataset with Guided MLM
   (spans mined from it) -> `DIR/phase1/`, `DIR/phase2/`, `DIR/phase3/`;
3. evaluation: masked-token recovery on held-out e-commerce documents for phases 2 and 3 side by
   side, CoSENT on the ESCI-schema sample, GLUE SST-2 format on a pros/cons sample, zero-shot retrieval
   (nDCG@10) on the ESCI sample for phases 2 and 3 -> `DIR/results/`;
4. a model card with the results and plots, beside the model (`DIR/phase3/README.md`), and load checks:
   remote code, stock transformers after `rexbert convert --to modernbert`, sentence-transformers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from rexbert.core.paths import BUNDLED_CORPUS, BUNDLED_EVAL_DATA

DEMO_FORMAT = 4  # bumped when the recipe or layout changes, so that --resume never mixes two of them
FORMAT_FILE = "demo.json"
TINY_MODEL = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 2}


@dataclass
class DemoSize:
    """How much work each stage does; `quick` is the reduced demo that CI runs."""

    max_steps: int | None = None  # per phase; None: the demo configs' own
    tiny_model: bool = False  # a 2-layer model instead of the demo model (7 x 128, smaller than micro)
    block_sizes: list[int] = field(default_factory=lambda: [128, 256])
    glue_epochs: float = 3.0
    cosent_epochs: float = 1.0

    @classmethod
    def quick(cls) -> DemoSize:
        return cls(max_steps=4, tiny_model=True, block_sizes=[64], glue_epochs=0.5, cosent_epochs=0.5)


class Demo:
    def __init__(self, output_dir: str | Path, size: DemoSize, resume: bool = False, progress: bool = True,
                 verbose: bool = False):
        import training

        self.out = Path(output_dir)
        self.size, self.resume, self.progress, self.verbose = size, resume, progress, verbose
        self.results = self.out / "results"
        self.configs = Path(training.__file__).parent / "configs" / "demo"  # the curriculum it runs
        self.timings: dict[str, float] = {}

    def _stage(self, name: str, function):
        print(f"\n=== rexbert demo: {name} ===", flush=True)
        start = time.perf_counter()
        value = function()
        self.timings[name] = time.perf_counter() - start
        return value

    # 1. curation
    def curate(self) -> dict:
        import curation
        from curation.config import load_curation_config
        from curation.demo_corpus import write_demo_corpus
        from curation.stages import run_all
        from modeling_rexbert.tokenization_rexbert import SHIPPED_TOKENIZER_DIR

        raw = self.out / "raw"
        counts = write_demo_corpus(str(raw))
        cfg = load_curation_config(str(Path(curation.__file__).parent / "configs" / "demo.yaml"))
        cfg.output_dir = str(self.out)
        cfg.sample.source = cfg.filter.input = str(raw)
        cfg.filter.tokenizer_file = str(SHIPPED_TOKENIZER_DIR / "tokenizer.json")  # RexBERT tokens in the card
        summary = run_all(cfg, self.progress, verbose=self.verbose)
        return {"raw_documents": counts, "stages": summary}

    # 2. training
    def phases(self) -> list:
        """The demo curriculum (`self.configs`), with the curated dataset and its mined spans in phase 3."""
        from training.curriculum import load_phases

        general = {"name": "general", "path": str(BUNDLED_CORPUS / "general.jsonl")}
        ecommerce = {"name": "ecommerce", "path": str(self.out / "dataset"), "weight": 0.0}
        overrides: dict = {"phase3": {"data": {"sources": [general, ecommerce], "spans": str(self.out / "spans.json")}}}
        if self.size.tiny_model:
            overrides["phase1"] = {"model": {"overrides": TINY_MODEL}, "data": {"sequence_length": 64},
                                   "batch": {"global_tokens": 2048, "warmup_start_tokens": 1024}}  # 32 rows of 64
            overrides["optimizer"] = {"lr": 3e-3, "weight_decay": 3e-4}  # a custom size has no Table 2 defaults
            overrides["run"] = {"log_with": []}
        return load_phases(self.configs, self.size.max_steps, overrides)

    def train(self) -> list[dict]:
        from modeling_rexbert.tokenization_rexbert import load_tokenizer
        from training.corpus import source_texts
        from training.curriculum import run_curriculum
        from training.loop import run_dir
        from training.spans import mine_spans, save_spans

        phases = self.phases()
        # Guided MLM spans from the documents phase 3 trains on, never from its held-out ones
        training_texts, _ = source_texts(phases[2], load_tokenizer(), self.out, "ecommerce")
        spans = mine_spans(training_texts, min_count=2)
        save_spans(spans, self.out / "spans.json")
        print(f"mined spans for Guided MLM: {({k: len(v) for k, v in spans.items()})}")

        def drop_checkpoints(phase, summary) -> None:
            # A finished phase resumes from its summary, not a checkpoint: dropping its optimizer state
            # keeps the demo folder small (a `rexbert train` run keeps them, to train on from there).
            shutil.rmtree(run_dir(self.out, phase.name) / "checkpoints", ignore_errors=True)

        return run_curriculum(phases, self.out, resume=self.resume, progress=self.progress,
                              config_file=self.configs, after_phase=drop_checkpoints)

    # 3. evaluation
    def heldout_ecommerce(self) -> Path:
        """The phase-3 e-commerce documents that training held out (the file it wrote), beside the results."""
        from training.corpus import HELDOUT_FOLDER
        from training.loop import run_dir

        path = self.results / "heldout_ecommerce.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir(self.out, "phase3") / HELDOUT_FOLDER / "ecommerce.jsonl", path)
        return path

    def evaluate(self) -> dict[str, Path]:
        from evaluation.cosent import finetune_cosent, load_esci
        from evaluation.glue import finetune_glue, load_glue
        from evaluation.mlm import evaluate_masked_lm
        from evaluation.results import masked_token_table, render_table, write_results

        files = {}
        mlm = evaluate_masked_lm([str(self.out / "phase2"), str(self.out / "phase3")], str(self.heldout_ecommerce()),
                                 ["text"], self.size.block_sizes, show_progress=self.progress)
        print(masked_token_table(mlm))
        files["mlm"] = write_results(self.results / "mlm.json", mlm, overwrite=True)
        esci = BUNDLED_EVAL_DATA / "esci"
        # the bundled ESCI sample has one query: train and test on it (a real run uses ESCI's splits)
        pairs = load_esci(train_file=str(esci / "test-sample.parquet"), test_file=str(esci / "test-sample.parquet"),
                          products_file=str(esci / "sample-products.jsonl"))
        cosent = finetune_cosent(str(self.out / "phase3"), pairs, output_dir=self.out / "sentence-transformer",
                                 epochs=self.size.cosent_epochs, batch_size=8, max_length=128,
                                 dataset_name="bundled ESCI sample", progress=self.progress)
        print(render_table(cosent))
        files["cosent"] = write_results(self.results / "cosent.json", cosent, overwrite=True)
        glue_dir = BUNDLED_EVAL_DATA / "glue_sst2_format"
        splits = load_glue("sst2", train_file=str(glue_dir / "train.jsonl"),
                           validation_file=str(glue_dir / "validation.jsonl"))
        glue = finetune_glue(str(self.out / "phase3"), "sst2", splits, epochs=self.size.glue_epochs, batch_size=16,
                             max_length=64, learning_rate=5e-4, dataset_name="bundled pros/cons in SST-2 format",
                             progress=self.progress)
        print(render_table(glue))
        files["glue"] = write_results(self.results / "glue.json", glue, overwrite=True)
        files["retrieval"] = self.retrieval()
        return files

    def retrieval(self) -> Path:
        """Zero-shot product search on the bundled ESCI sample (its query against its 16 products), phase 2 vs
        phase 3, with the embeddings the exported folders give (mean pooling, as their sentence-transformers
        config says)."""
        from evaluation.results import render_table, write_results
        from evaluation.retrieval import evaluate_retrieval, load_retrieval_sets

        esci = BUNDLED_EVAL_DATA / "esci"
        sets = load_retrieval_sets(str(esci / "test-sample.parquet"), str(esci / "sample-products.jsonl"))
        results = [r for phase in ("phase2", "phase3")
                   for r in evaluate_retrieval(str(self.out / phase), sets, dataset_name="bundled ESCI sample")]
        print(render_table(results, column_key=lambda r: f"{r.settings['locale']} {r.metric}"))
        return write_results(self.results / "retrieval.json", results, overwrite=True)

    # 4. card and load checks
    def card(self, files: dict[str, Path], trained: list[dict]) -> Path:
        """The card beside the model it describes, so `rexbert card push --model DIR/phase3` publishes both."""
        from evaluation.results import read_results
        from model_cards.card import render_model_card

        from .demo_card import card_text

        folder = self.out / "phase3"
        name = "RexBERT demo (tiny)" if self.size.tiny_model else "RexBERT demo (smaller than micro)"
        pairs = next(r.settings["test_pairs"] for r in read_results(files["cosent"]))
        corpus_mb = sum(f.stat().st_size for f in BUNDLED_CORPUS.glob("*.jsonl")) / 2**20
        text = card_text(name, json.loads((folder / "config.json").read_text()), self.phases(), trained, pairs,
                         corpus_mb)
        return render_model_card(folder, list(files.values()), model_name=name, **text)

    def load_checks(self) -> dict:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        from modeling_rexbert.convert import convert_checkpoint

        folder = self.out / "phase3"
        tokenizer = AutoTokenizer.from_pretrained(folder)
        batch = tokenizer(["Stainless steel water bottle, 750 ml, keeps drinks cold for 24 hours."],
                          return_tensors="pt")
        remote = AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True).eval()
        stock_folder = convert_checkpoint(folder, self.out / "phase3-modernbert", to="modernbert")
        stock = AutoModelForMaskedLM.from_pretrained(stock_folder).eval()
        with torch.no_grad():
            difference = (remote(**batch).logits - stock(**batch).logits).abs().max().item()
        sentence = SentenceTransformer(str(self.out / "sentence-transformer"), device="cpu", trust_remote_code=True)
        embedding = sentence.encode(["waterproof hiking boots"])
        return {"remote_code": type(remote).__name__, "stock_transformers": type(stock).__name__,
                "max_logit_difference": difference, "sentence_embedding_dim": int(embedding.shape[1])}

    def learning(self, mlm_file: Path, retrieval_file: Path | None = None) -> dict:
        """Whether the curriculum visibly learned: each phase's held-out loss, phase 3 vs phase 2 on
        held-out e-commerce words, fill-mask answers and embedding spread of the final model."""
        from evaluation.results import read_results

        from .learning_checks import model_checks, phase_problems

        from training.loop import run_dir

        problems = [p for phase in ("phase1", "phase2", "phase3") for p in phase_problems(run_dir(self.out, phase))]
        top1 = {}
        for result in read_results(mlm_file):
            if result.metric == "top1_accuracy":
                key = Path(result.model).name
                top1.setdefault(key, {})[result.settings["block_size"]] = result.value
        gains = {size: top1["phase3"][size] - top1["phase2"][size] for size in top1["phase3"]}
        if any(gain <= 0 for gain in gains.values()):
            problems.append("phase3 recovers no more held-out e-commerce words than phase2 "
                            f"(top-1 gain by block size: { {k: round(100 * v, 2) for k, v in gains.items()} } points)")
        retrieval = {Path(r.model).name: r.value for r in read_results(retrieval_file) if r.metric == "ndcg@10"} \
            if retrieval_file else {}
        final = model_checks(self.out / "phase3")
        problems += final.pop("problems")
        return {"top1_ecommerce": top1, "retrieval_ndcg10": retrieval, **final, "problems": problems}

    def check_folder(self) -> None:
        """Refuses to mix runs: a non-empty folder needs --resume, and --resume needs a folder of this format."""
        if not (self.out.exists() and any(self.out.iterdir())):
            return
        if not self.resume:
            raise FileExistsError(f"{self.out} is not empty; choose another --output-dir or pass --resume.")
        marker = self.out / FORMAT_FILE
        found = json.loads(marker.read_text()).get("format") if marker.is_file() else None
        if found != DEMO_FORMAT:
            raise FileExistsError(f"{self.out} was written by an older rexbert demo (format {found or 1}, this one is "
                                  f"{DEMO_FORMAT}); its models come from another recipe, so --resume cannot continue "
                                  "it. Choose a new --output-dir.")

    def run(self) -> dict:
        self.check_folder()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / FORMAT_FILE).write_text(json.dumps({"format": DEMO_FORMAT, "quick": self.size.tiny_model}))
        curated = self._stage("1/4 curation (datatrove, serverless provenance labels)", self.curate)
        trained = self._stage("2/4 training (three phases)", self.train)
        files = self._stage("3/4 evaluation", self.evaluate)
        learning = self.learning(files["mlm"], files.get("retrieval"))
        card = self._stage("4/4 model card and load checks", lambda: self.card(files, trained))
        checks = self.load_checks()
        summary = {"format": DEMO_FORMAT, "curation": curated["raw_documents"], "training": trained,
                   "learning": learning, "results": {k: str(v) for k, v in files.items()}, "model_card": str(card),
                   "load_checks": checks, "seconds": {k: round(v, 1) for k, v in self.timings.items()}}
        (self.out / "demo_summary.json").write_text(json.dumps(summary, indent=1, default=str))
        return summary


def print_summary(out: Path, summary: dict) -> None:
    print("\n=== rexbert demo: done ===")
    rows = [("dataset/", "curated Ecom-niverse sample (Parquet) + dataset card + domain chart"),
            ("phase1/, phase2/", "the first two phases' exported models"),
            ("phase3/", "the final model with its card (README.md) and plots"),
            ("phase1-run/ ...", "each phase's logs, metrics, held-out documents and summary (what --resume reads)"),
            ("results/", "mlm.json, cosent.json, glue.json, retrieval.json (+ the held-out e-commerce texts)"),
            ("phase3-modernbert/", "phase 3 converted for stock transformers"),
            ("sentence-transformer/", "phase 3 fine-tuned with CoSENT on the ESCI sample"),
            ("pipeline/logs/", "datatrove's logs and stats of the curation run")]
    for path, what in rows:
        print(f"  {str(out / path):<55} {what}")
    for phase in summary["training"]:
        print(f"  {phase['phase']}: {phase['steps']} steps, {phase['tokens']:,} tokens, held-out MLM loss "
              f"{phase.get('eval/loss', float('nan')):.3f}")
    learning = summary["learning"]
    for phase, by_size in learning["top1_ecommerce"].items():
        print(f"  {phase} top-1 masked-word recovery on held-out e-commerce text: " +
              ", ".join(f"{100 * v:.1f}% at {k} tokens" for k, v in sorted(by_size.items())))
    for prompt, answers in learning["fill_mask"].items():
        print(f"  fill-mask {prompt!r}: {answers}")
    if learning.get("retrieval_ndcg10"):
        print("  retrieval nDCG@10 on the bundled ESCI sample (1 query, 16 products, no fine-tuning): " +
              ", ".join(f"{phase} {100 * v:.1f}" for phase, v in learning["retrieval_ndcg10"].items()))
    print(f"  mean cosine between unrelated texts' embeddings: {learning['unrelated_texts_mean_cosine']:.3f}")
    checks = summary["load_checks"]
    print(f"  loads: {checks['remote_code']} (remote code), {checks['stock_transformers']} (stock, max logit "
          f"difference {checks['max_logit_difference']:.1e}), SentenceTransformer (dim "
          f"{checks['sentence_embedding_dim']})")
    print("  seconds per stage: " + ", ".join(f"{k.split()[0]} {v}" for k, v in summary["seconds"].items()))
    for problem in learning["problems"]:
        print(f"  WARNING: {problem}")
    print(f"next: rexbert card push --model {out / 'phase3'} --repo-id you/rexbert-demo --dry-run   "
          "(what would be published)")


def register(subparsers: argparse._SubParsersAction) -> None:
    from .cli import add_command

    parser = add_command(subparsers, "demo", description="Run the whole pipeline, end to end, on the real corpus "
                         "bundled in rexbert/corpus/: curation (datatrove), three training phases, evaluation, a "
                         "model card and load checks. About 9 minutes on 2 CPU cores; --quick in about 2 minutes.")
    parser.add_argument("--output-dir", default="rexbert-demo", help="where everything is written (must be new, "
                        "or an interrupted demo with --resume)")
    parser.add_argument("--quick", action="store_true", help="a reduced run (2-layer model, 4 steps a phase) in about "
                        "2 minutes on 2 CPU cores; what the tests run")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted demo in --output-dir")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars; one line per step")
    parser.add_argument("--verbose", action="store_true", help="also show the libraries' logs, stats and progress "
                        "bars (datatrove, transformers, datasets)")
    parser.set_defaults(func=run_demo)


def quiet_libraries() -> None:
    """Progress bars of short library steps (loading a few MB of weights, splitting a 16-row file) off; the
    demo's own bars and messages stay."""
    import datasets
    from transformers.utils import logging as transformers_logging

    datasets.disable_progress_bars()
    transformers_logging.disable_progress_bar()


def run_demo(args: argparse.Namespace) -> None:
    if not args.verbose:
        quiet_libraries()
    size = DemoSize.quick() if args.quick else DemoSize()
    summary = Demo(args.output_dir, size, resume=args.resume, progress=not args.no_progress,
                   verbose=args.verbose).run()
    print_summary(Path(args.output_dir), summary)
