"""Model cards from evaluation results: model-index metadata, tables like the paper's, plots, usage.

    rexbert card render --model DIR --results mlm.json cosent.json glue.json
    rexbert card push --model DIR --repo-id you/rexbert-mini [--dry-run]
"""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

from huggingface_hub import EvalResult as HubEvalResult
from huggingface_hub import HfApi, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from evaluation.results import (ESCI_COSENT, ESCI_RETRIEVAL, ESCI_RETRIEVAL_INT8, MASKED_TOKEN_RECOVERY, EvalResult,
                                masked_token_table, read_results, render_table)
from rexbert.core.model_publish import publish_model_folder, upload_plan  # noqa: F401 -- upload_plan: public here too
from rexbert.core.outputs import claim_output, mark_output
from rexbert.core.plotting import pyplot, save_figure

from .run_record import RUN_SUFFIX, recorded_run

# The card's prose, a Jinja template rendered by `ModelCard.from_template` (shipped as package data); the code
# here assembles what it shows: metadata, tables, plots, numbers.
TEMPLATE = Path(__file__).with_name("templates") / "model_card.md"
# results task -> (model-index task type, human task name)
TASK_TYPES = {MASKED_TOKEN_RECOVERY: ("fill-mask", "Masked-token recovery"),
              ESCI_COSENT: ("sentence-similarity", "Semantic similarity (ESCI)"),
              ESCI_RETRIEVAL: ("sentence-similarity", "Product search retrieval (ESCI)")}
# the paper's three-phase recipe, for a caller (`recipe=`) whose model really followed it
RECIPE = """| | phase 1 general | phase 2 context extension | phase 3 annealing |
|---|---|---|---|
| data | web, books, code, papers mix | same mix, long documents | mixture annealed toward Ecom-niverse |
| sequence length | 512 | 8,192 | 8,192 |
| masking | 30%, Poisson spans | 30% | 10-15%, Guided MLM on ~5% of sequences |
| learning rate | warmup, then stable | stable | 1-sqrt decay |"""


CARD_FILES = ("README.md", "topk_by_block_size.png", "esci_spearman_by_model.png")  # what render writes


def _model_facts(model_dir: Path) -> dict:
    config = json.loads((model_dir / "config.json").read_text())
    return {k: config.get(k) for k in ("model_type", "num_hidden_layers", "hidden_size", "intermediate_size",
                                        "num_attention_heads", "max_position_embeddings", "vocab_size")}


# Tasks on a Hub dataset with configs: results task -> (dataset id, config). GLUE tasks are named glue-<config>.
def _hub_dataset(r: EvalResult) -> tuple[str, str | None] | None:
    """The real Hub dataset (and config) of a result, or None for local files, which model-index cannot name."""
    if r.task.startswith("glue-") and r.dataset in ("nyu-mll/glue", "glue"):  # the Hub's GLUE, not look-alikes
        return "nyu-mll/glue", r.task.removeprefix("glue-")
    if Path(r.dataset).expanduser().exists() or r.dataset.startswith(("/", ".", "~")) or r.dataset.count("/") != 1:
        return None
    try:  # a phrase such as "bundled pros/cons in SST-2 format" is not a repo id
        validate_repo_id(r.dataset)
    except HFValidationError:
        return None
    return r.dataset, None


def _aggregate(results: list[EvalResult]) -> list[tuple[EvalResult, list[float]]]:
    """One entry per (model, task, dataset, split, metric, settings): the mean over seeds, with every seed's value."""
    groups: dict[tuple, list[EvalResult]] = defaultdict(list)
    for r in results:
        groups[(r.model, r.task, r.dataset, r.split, r.metric, json.dumps(r.settings, sort_keys=True))].append(r)
    aggregated = []
    for members in groups.values():
        values = [m.value for m in members]
        first = members[0]
        aggregated.append((EvalResult(first.model, first.task, first.dataset, first.split, first.metric,
                                      statistics.fmean(values), settings=first.settings, date=first.date,
                                      versions=first.versions), values))
    return aggregated


def _hub_results(results: list[EvalResult]) -> list[HubEvalResult]:
    """model-index entries (plain floats, the mean over seeds) on real Hub datasets only;
    masked-token recovery keeps its column/block/k in the metric name."""
    entries = []
    for r, values in _aggregate(results):
        dataset = _hub_dataset(r)
        if dataset is None:
            continue
        task_type, task_name = TASK_TYPES.get(r.task, ("text-classification", r.task))
        name = r.metric
        if r.task == MASKED_TOKEN_RECOVERY:
            name = f"{r.settings['column']} block {r.settings['block_size']} {r.metric}"
        if len(values) > 1:
            name = f"{name} (mean of {len(values)} seeds)"
        entries.append(HubEvalResult(task_type=task_type, task_name=task_name, dataset_type=dataset[0],
                                     dataset_name=dataset[0], dataset_config=dataset[1], dataset_split=r.split,
                                     metric_type=r.metric, metric_name=name, metric_value=float(r.value)))
    return entries


def _seed_spread(results: list[EvalResult]) -> str | None:
    """A markdown table of tasks that ran with several seeds: mean, standard deviation, every value."""
    rows = [(r, values) for r, values in _aggregate(results) if len(values) > 1]
    if not rows:
        return None
    lines = ["| task | split | metric | mean | std | seeds |", "|---|---|---|---|---|---|"]
    for r, values in rows:
        lines.append(f"| {r.task} | {r.split} | {r.metric} | {r.value * 100:.1f} | {statistics.stdev(values) * 100:.1f} "
                     f"| {', '.join(f'{v * 100:.1f}' for v in values)} |")
    return "\n".join(lines)


def _plot_topk(results: list[EvalResult], path: Path) -> bool:
    """One panel per k; each model (and text column) a line of its own colour, marker and dash, hollow markers
    of decreasing size so equal values stay visible; the legend below the panels, off the data."""
    series = defaultdict(list)
    for r in results:
        if r.task == MASKED_TOKEN_RECOVERY:
            series[(r.settings["k"], f"{Path(r.model).name} {r.settings['column']}")].append(
                (r.settings["block_size"], r.value * 100))
    if not series:
        return False
    plt = pyplot()
    ks = sorted({k for k, _ in series})
    lines = sorted({line for _, line in series})
    fig, axes = plt.subplots(1, len(ks), figsize=(3.2 * len(ks) + 0.8, 3.6), sharey=True, squeeze=False)
    for ax, k in zip(axes[0], ks):
        for i, line in enumerate(lines):
            points = sorted(series.get((k, line), []))
            ax.plot([p[0] for p in points], [p[1] for p in points], color=f"C{i % 10}", marker="osD^v<>"[i % 7],
                    markersize=9 - 1.5 * (i % 4), markerfacecolor="none", linestyle=("-", "--", ":", "-.")[i % 4],
                    label=line)
        ax.set(title=f"top-{k}", xlabel="block size (tokens)")
        ax.set_xticks(sorted({p[0] for (kk, _), pts in series.items() if kk == k for p in pts}))
    axes[0][0].set_ylabel("masked tokens recovered (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(lines), 3), fontsize=8, frameon=False)
    fig.suptitle("Masked-token recovery")
    fig.tight_layout(rect=(0, 0.08 + 0.05 * ((len(lines) - 1) // 3), 1, 1))
    save_figure(fig, path, dpi=120)
    return True


def _plot_spearman(results: list[EvalResult], path: Path) -> bool:
    """Spearman per model, with the number of test pairs; no chart for a single model (the table says it all)."""
    scored = [r for r in results if r.task == ESCI_COSENT and r.metric == "spearman"]
    bars = {Path(r.model).name: r.value for r in scored}
    if len(bars) < 2:
        return False
    pairs = sorted({r.settings.get("test_pairs") for r in scored if r.settings.get("test_pairs")})
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(list(bars), list(bars.values()))
    ax.axhline(0, color="black", linewidth=0.8)
    counted = f", {'/'.join(f'{n:,}' for n in pairs)} test pairs" if pairs else ""
    ax.set(ylabel="Spearman", title=f"ESCI semantic similarity (CoSENT{counted})")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    return True


def _retrieval_facts(results: list[EvalResult]) -> dict:
    """What the retrieval table measured (the template words it): corpus and query counts per locale, the ESCI
    gain from which a product counts as relevant, and the table."""
    sizes = sorted({(r.settings.get("locale", ""), r.settings.get("queries"), r.settings.get("corpus"))
                    for r in results})
    floors = {r.settings.get("min_relevant_gain") for r in results}
    return {"sizes": [{"locale": loc, "queries": f"{q:,}", "corpus": f"{c:,}"} for loc, q, c in sizes if q and c],
            "exact_only": floors == {1.0}, "gains": [str(g) for g in sorted(floors)],
            "table": render_table(results, column_key=lambda r: f"{r.settings.get('locale', '')} {r.metric}".strip())}


def _evaluation(results: list[EvalResult], output_dir: Path) -> dict:
    """The Evaluation section's tables and plots (written to `output_dir`), for the template; None where absent."""
    masked = [r for r in results if r.task == MASKED_TOKEN_RECOVERY]
    retrieval = [r for r in results if r.task == ESCI_RETRIEVAL]
    int8 = [r for r in results if r.task == ESCI_RETRIEVAL_INT8]
    other = [r for r in results if r.task not in (MASKED_TOKEN_RECOVERY, ESCI_RETRIEVAL, ESCI_RETRIEVAL_INT8)]
    return {"has_results": bool(results), "masked_table": masked_token_table(masked) if masked else None,
            "fine_tuned_table": render_table([r for r, _ in _aggregate(other)],
                                             column_key=lambda r: f"{r.task} {r.split} {r.metric}") if other else None,
            "seed_spread": _seed_spread(other), "retrieval": _retrieval_facts(retrieval) if retrieval else None,
            "int8_table": _int8_table(int8) if int8 else None,
            "topk_plot": _plot_topk(results, output_dir / "topk_by_block_size.png"),
            "spearman_plot": _plot_spearman(results, output_dir / "esci_spearman_by_model.png")}


def _int8_table(results: list[EvalResult]) -> str:
    """What int8 costs in quality, from `rexbert eval retrieval --quantize int8`: per model and locale, the cosine
    of the int8 vectors to float32's and nDCG@10 of both (x100)."""
    table: dict[tuple[str, str], dict] = {}
    for r in results:
        entry = table.setdefault((r.model, r.settings.get("locale", "")), {"settings": r.settings})
        entry[r.metric] = r.value
    lines = ["| model | locale | queries | texts | cosine to float32 (min / mean) | nDCG@10 float32 | nDCG@10 int8 |",
             "|---|---|---|---|---|---|---|"]
    for (model, locale), m in sorted(table.items()):
        st = m["settings"]
        lines.append(f"| {model} | {locale} | {st.get('queries', '')} | {st.get('texts', '')} | "
                     f"{m.get('cosine_min', float('nan')):.4f} / {m.get('cosine_mean', float('nan')):.4f} | "
                     f"{m.get('ndcg@10_float32', float('nan')) * 100:.2f} | {m.get('ndcg@10', float('nan')) * 100:.2f} |")
    return "\n".join(lines)


def usage_snippets(name: str) -> list[str]:
    """The card's code, as printed: stock transformers first (any version from 4.48, no remote code), then
    RexBERT's own classes on transformers 5, then sentence-transformers. Tests run each against the folder."""
    model = repr(name)
    return [
        f"from transformers import pipeline\n\nfill = pipeline(\"fill-mask\", model={model})\n"
        "print(fill(\"Apple iPhone 13, 128 [MASK], Midnight\")[0][\"token_str\"])",
        f"import torch\nfrom transformers import AutoModel, AutoTokenizer\n\n"
        f"tokenizer = AutoTokenizer.from_pretrained({model})\n"
        f"model = AutoModel.from_pretrained({model}, trust_remote_code=True)  # RexBERT's unpadded code, transformers>=5.23\n"
        "batch = tokenizer([\"red running shoes\", \"Nike Air Zoom Pegasus 40\"], padding=True, return_tensors=\"pt\")\n"
        "with torch.no_grad():\n    hidden = model(**batch).last_hidden_state\n"
        "mask = batch[\"attention_mask\"].unsqueeze(-1)\nembeddings = (hidden * mask).sum(1) / mask.sum(1)\n"
        "print(embeddings.shape)",
        f"from sentence_transformers import SentenceTransformer\n\n"
        f"encoder = SentenceTransformer({model})  # mean pooling\n"
        "print(encoder.encode([\"red running shoes\", \"Nike Air Zoom Pegasus 40\"]).shape)",
    ]


def _public_name(model: str) -> str:
    return Path(model).name if model.startswith(("/", ".", "~")) or Path(model).expanduser().exists() else model


def default_model_id(model_dir: str | Path) -> str:
    """What the card's snippets load when no Hub id is given: the folder as the user named it if relative
    (`rexbert-demo/phase3`, run from where they ran the command), else its name (run from its parent)."""
    path = Path(model_dir)
    return path.name if path.is_absolute() or ".." in path.parts else path.as_posix().rstrip("/")


def render_model_card(model_dir: str | Path, result_files: list[str | Path], output_dir: str | Path | None = None,
                model_name: str | None = None, base_model: str | None = None, datasets: list[str] | None = None,
                model_id: str | None = None, tldr: str | None = None, recipe: str | None = None,
                notes: list[str] | None = None, limitations: str | None = None, overwrite: bool = False) -> Path:
    """Writes README.md (and plots) for `model_dir` from results files; returns the README path.
    `base_model`: the Hub id this model was annealed or fine-tuned from; `datasets`: Hub ids it was trained on;
    `model_id`: what the usage snippets load (a Hub id once published; default `default_model_id`);
    `tldr`, `recipe` (markdown), `notes` (under Evaluation), `limitations`: replace the defaults written for a
    RexBERT model trained with the paper's recipe. A README.md or plot there that this function did not write (a
    hand-written card), or that was edited since, is refused unless `overwrite`."""
    model_dir = Path(model_dir)
    model_id = model_id or default_model_id(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} has no config.json; is it a saved model folder?")
    output_dir = Path(output_dir) if output_dir else model_dir
    for written in CARD_FILES:
        claim_output(output_dir / written, overwrite=overwrite, option="--output-dir", folder=False)
    output_dir.mkdir(parents=True, exist_ok=True)
    results = [r for path in result_files for r in read_results(path)]
    facts = _model_facts(model_dir)
    name = model_name or model_dir.name
    ours = [r for r in results if Path(r.model).name == model_dir.name or r.model == str(model_dir)]
    # a model evaluated from a local folder appears under the folder's name: a card carries no local paths
    results = [dataclasses.replace(r, model=_public_name(r.model)) for r in results]
    ours = [dataclasses.replace(r, model=_public_name(r.model)) for r in ours]
    for hub_id in [base_model, *(datasets or [])]:
        if hub_id is not None and (Path(hub_id).expanduser().exists() or hub_id.count("/") != 1):
            raise ValueError(f"{hub_id!r} is not a Hub id (owner/name); card metadata must not carry local paths.")
    evaluated_on = sorted({d[0] for r in ours if (d := _hub_dataset(r)) is not None})
    data = ModelCardData(model_name=name, language=["en"], license="apache-2.0", library_name="transformers",
                         pipeline_tag="fill-mask", base_model=base_model,
                         datasets=sorted(set(datasets or [])) or None,
                         tags=["rexbert", "modernbert", "e-commerce", "fill-mask", "sentence-transformers"],
                         eval_results=_hub_results([r for r in ours if r.task != ESCI_RETRIEVAL_INT8]) or None)
    if evaluated_on:  # the Hub links evaluation datasets from the metadata too
        data.datasets = sorted(set(data.datasets or []) | set(evaluated_on))
    card = ModelCard.from_template(
        data, template_path=str(TEMPLATE), name=name, tldr=tldr, recipe=recipe, limitations=limitations,
        notes=notes or [], folder=model_dir.name, run_suffix=RUN_SUFFIX,
        run=recorded_run(model_dir),  # the run's own configs, never the paper's recipe by default
        facts={"layers": facts["num_hidden_layers"], "hidden": facts["hidden_size"],
               "positions": f"{facts['max_position_embeddings'] or 0:,}"},
        snippets=usage_snippets(model_id), **_evaluation(results, output_dir))
    readme = output_dir / "README.md"
    card.save(readme)
    mark_output(output_dir, "rexbert card render", files=CARD_FILES)
    return readme


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024


_SNIPPET_LOADS = re.compile(r"(?:from_pretrained|SentenceTransformer|model=)\(?\s*[\'\"]([^\'\"]+)[\'\"]")


def push_warnings(model_dir: str | Path, repo_id: str) -> list[str]:
    """What a push of `model_dir` to `repo_id` would get wrong: a repo id the Hub refuses, and usage snippets in
    README.md that load something else than `repo_id` (a local folder, or the folder as it was named here)."""
    model_dir, warnings = Path(model_dir), []
    try:
        validate_repo_id(repo_id)
        if repo_id.count("/") != 1:
            raise HFValidationError("a model repo id is owner/name")
    except HFValidationError as error:
        warnings.append(f"--repo-id {repo_id!r} is not a valid Hub repo id (owner/name: letters, digits, '-', '_', "
                        f"'.'): {str(error).splitlines()[0]}")
    readme = model_dir / "README.md"
    loaded = sorted(set(_SNIPPET_LOADS.findall(readme.read_text(encoding="utf-8")))) if readme.is_file() else []
    for name in loaded:
        if name != repo_id:
            local = Path(name).expanduser().exists() or name.startswith(("/", ".", "~")) or name.count("/") != 1
            warnings.append(f"{readme}: the usage snippets load {name!r}" + (" (a local path)" if local else "") +
                            f", not {repo_id!r}; render the card again with `rexbert card render --model {model_dir} "
                            f"--model-id {repo_id}` before pushing.")
    return warnings


def push_model(model_dir: str | Path, repo_id: str, dry_run: bool = False, private: bool = False,
               api: HfApi | None = None) -> list[str]:
    """Uploads checkpoint, tokenizer, code and card to `repo_id`; with `dry_run`, only lists them. An invalid
    `repo_id` is refused before anything is sent (a dry run only lists it among `push_warnings`)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model folder {model_dir} not found.")
    if not dry_run:
        invalid = [w for w in push_warnings(model_dir, repo_id) if w.startswith("--repo-id")]
        if invalid:
            raise ValueError(invalid[0])
    return publish_model_folder(model_dir, repo_id, required=("config.json", "README.md"), private=private,
                                dry_run=dry_run, api=api,
                                commit_message="Upload RexBERT checkpoint, tokenizer, code and card")
