"""Bulk CPU embedding, side by side in one run: `rexbert embed` vs `SentenceTransformer.encode` on the stock
ModernBERT path vs ONNX Runtime on an export of the same weights, fp32 and int8.

Input: real product text -- the 16 bundled ESCI products (title + description) and the 639 Hu & Liu Amazon
reviews of `rexbert/corpus/ecommerce.jsonl`, shuffled once (seed 0: that order is the "arrival order"),
cut to 512 tokens by every engine alike. Models: each preset with random weights, saved as a published
RexBERT folder, converted with `rexbert convert --to modernbert` (stock path) and `rexbert export onnx
--quantize int8` (ONNX). Batch 32, all cores (--threads), fp32 unless int8.

Cases, each in its own subprocess (peak memory = its max RSS, imports included, plus the peak private memory of
the CPU worker processes it forks, sampled once a second):
  job        the whole job: read the jsonl, tokenize, encode (length-sorted batches), write Parquet
             rexbert      `rexbert.embed_command.embed` (the `rexbert embed` core: unpadded RexBERT classes)
             stock-st     `SentenceTransformer(stock folder).encode` (sorts by length itself) + Parquet write
             ort          ONNX Runtime fed the same length-sorted batches by the shared `encode`
             ort-int8     the same on `onnx/model_int8.onnx` (ONNX Runtime dynamic int8 MatMuls)
             torch-int8   `rexbert embed --quantize int8` (torch dynamic int8 Linear layers, quantized once)
  arrival    the encoder alone on pre-tokenized batches in arrival order (padding included)
  sorted     the encoder alone on length-sorted batches
  workers    RexBERT fp32 and torch int8 only: the encoder as `rexbert embed` runs it by default, the same
             length-sorted batches through `encode_ids` on one forked worker process per core (`--cpu-workers`)

GFLOP/s = 2 x non-embedding parameters x real tokens / seconds, against a timed 2048^3 fp32 torch.matmul.
int8 quality: cosine of the int8 embeddings to the same engine's fp32 ones, and nDCG@10 of
`evaluation.retrieval` on the bundled ESCI sample (one query, 16 judged products) for each engine; then
`rexbert eval retrieval --quantize int8` on that sample and on the 474 bundled WANDS queries (with a class)
ranked against their 188 query classes, for random weights, the same at unit gain, and a trained model
(`--trained`).

    python benchmarks/bench_embed.py --output benchmarks/results/embed_cpu.md
    python benchmarks/bench_embed.py --quick      # a smoke run: micro only, few rows
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "rexbert" / "corpus"
MAX_LENGTH, BATCH = 512, 32
JOBS = ("rexbert", "stock-st", "ort", "ort-int8", "torch-int8")
ENCODERS = ("rexbert", "stock", "ort")
INT8_JUDGEMENTS = {"esci": "ESCI sample", "wands": "WANDS queries -> query classes"}


# ---------------------------------------------------------------- setup (parent)
def write_catalog(path: Path, rows: int) -> int:
    """The benchmark input (jsonl: id, text), shuffled with seed 0; returns the number of rows written."""
    from rexbert.core.html_text import product_text

    # every engine reads the same text: what `rexbert embed` makes of it (`product_text`, HTML dropped)
    products = [json.loads(line)["fields"] for line in (CORPUS / "eval" / "esci" / "sample-products.jsonl").open()]
    texts = [(p["id"], product_text((p["title"], p.get("description")))) for p in products]
    for line in (CORPUS / "ecommerce.jsonl").open():
        doc = json.loads(line)
        if doc["source"] == "hu-liu-reviews":
            texts.append((doc["id"], product_text((doc["text"],))))
    random.Random(0).shuffle(texts)
    texts = texts[:rows]
    with path.open("w") as out:
        for row_id, text in texts:
            out.write(json.dumps({"id": str(row_id), "text": text}) + "\n")
    return len(texts)


def write_models(preset: str, work: Path) -> dict[str, str]:
    """The published folder (random weights), its stock conversion and its ONNX export (fp32 + int8)."""
    import modeling_rexbert
    from modeling_rexbert.convert import convert_checkpoint
    from rexbert.onnx_export import export_onnx_folder

    folders = {"rexbert": work / preset, "stock": work / f"{preset}-modernbert", "ort": work / f"{preset}-onnx"}
    if not (folders["ort"] / "onnx" / "model_int8.onnx").is_file():
        torch.manual_seed(0)
        modeling_rexbert.RexBertForMaskedLM(modeling_rexbert.RexBertConfig.from_preset(preset)).save_pretrained(
            folders["rexbert"])
        convert_checkpoint(folders["rexbert"], folders["stock"], to="modernbert")
        export_onnx_folder(folders["rexbert"], folders["ort"], quantize="int8", check=False)
    return {k: str(v) for k, v in folders.items()}


def matmul_peak(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of a size^3 torch.matmul on `threads` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    best = min(_timed(lambda: torch.matmul(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------- cases (child)
def _load(engine: str, models: dict, threads: int):
    """(encoder for `encode`, tokenizer): only the engine's own model is loaded, so peak memory is its own."""
    if engine in ("ort", "ort-int8"):
        from evaluation.onnx_encoder import load_onnx_encoder

        return load_onnx_encoder(models["ort"], "int8" if engine == "ort-int8" else "float32", threads)
    from evaluation.embedding import load_encoder

    if engine == "stock":
        from transformers import AutoModel

        from evaluation.loading import load_tokenizer

        model = AutoModel.from_pretrained(models["stock"], attn_implementation="sdpa").eval()
        tokenizer = load_tokenizer(models["stock"])
    else:
        model, tokenizer = load_encoder(models["rexbert"], device="cpu",
                                        quantize="int8" if engine == "torch-int8" else None)
    torch.set_num_threads(threads)
    return model, tokenizer


def _read_catalog(path: str) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in open(path)]
    return [r["id"] for r in rows], [r["text"] for r in rows]


def _write_parquet(path: str, ids, vectors: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ids, "embedding": list(vectors.astype(np.float32))}), path)


def run_job(engine: str, models: dict, catalog: str, out: str, threads: int) -> dict:
    """The whole job, from the jsonl to a Parquet file; loading the model counts too."""
    from evaluation.embedding import encode

    start = time.perf_counter()
    if engine in ("rexbert", "torch-int8"):  # `rexbert embed` [--quantize int8]
        from rexbert.embed_command import embed

        embed(models["rexbert"], catalog, out, text_columns=("text",), batch_size=BATCH, max_length=MAX_LENGTH,
              device="cpu", progress=False, quantize="int8" if engine == "torch-int8" else None)
        torch.set_num_threads(threads)
    elif engine == "stock-st":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(models["stock"], device="cpu")
        torch.set_num_threads(threads)
        model.max_seq_length = MAX_LENGTH
        ids, texts = _read_catalog(catalog)
        _write_parquet(out, ids, model.encode(texts, batch_size=BATCH, convert_to_numpy=True))
    else:
        model, tokenizer = _load(engine, models, threads)
        ids, texts = _read_catalog(catalog)
        _write_parquet(out, ids, encode(model, tokenizer, texts, BATCH, max_length=MAX_LENGTH))
    return {"seconds": time.perf_counter() - start}


def run_encoder(engine: str, models: dict, catalog: str, order: str, threads: int) -> dict:
    """The encoder alone (`model(input_ids, attention_mask)`, padded batches of 32) after one warm-up batch."""
    from evaluation.embedding import encode_ids, length_sorted_batches, tokenize

    model, tokenizer = _load(engine, models, threads)
    rows, _ = tokenize(tokenizer, _read_catalog(catalog)[1], MAX_LENGTH)
    if order == "workers":
        encode_ids(model, rows[-BATCH:], BATCH)  # warm-up, as below
        start = time.perf_counter()
        encode_ids(model, rows, BATCH, workers=threads)
        return {"seconds": time.perf_counter() - start}
    if order == "arrival":
        batches = [list(range(i, min(i + BATCH, len(rows)))) for i in range(0, len(rows), BATCH)]
    else:
        batches = [list(b) for b in length_sorted_batches([len(r) for r in rows], BATCH)]
    padded = []
    for batch in batches:
        width = max(len(rows[i]) for i in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, i in enumerate(batch):
            ids[j, : len(rows[i])], mask[j, : len(rows[i])] = torch.tensor(rows[i]), 1
        padded.append((ids, mask))
    with torch.inference_mode():
        model(input_ids=padded[-1][0], attention_mask=padded[-1][1])
        start = time.perf_counter()
        for ids, mask in padded:
            model(input_ids=ids, attention_mask=mask)
    return {"seconds": time.perf_counter() - start}


def write_wands_classes(work: Path) -> tuple[str, str]:
    """A judgement set with many real queries, in the ESCI schema: each of the 474 bundled WANDS queries with a
    class against the 188 Wayfair query classes as the catalog, its own class relevant (grade 1). Any reordering
    int8 causes shows in its nDCG@10, which one query against 16 products cannot show."""
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    with (CORPUS / "eval" / "wands" / "query.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t") if r["query_class"].strip()]
    classes = sorted({r["query_class"] for r in rows})
    judgements, products = work / "wands-judgements.parquet", work / "wands-classes.jsonl"
    pq.write_table(pa.table({"query_id": [r["query_id"] for r in rows], "query": [r["query"] for r in rows],
                             "product_id": [r["query_class"] for r in rows], "grade": [1.0] * len(rows)}),
                   judgements)
    products.write_text("".join(json.dumps({"product_id": c, "title": c}) + "\n" for c in classes))
    return str(judgements), str(products)


def run_int8_quality(folder: str, judgement_set: str, work: str) -> dict:
    """`rexbert eval retrieval --quantize int8` on a judgement set (`esci`: the bundled ESCI sample; `wands`:
    `write_wands_classes`): cosine of the int8 vectors to float32 and nDCG@10 of both."""
    from evaluation.retrieval import evaluate_retrieval, load_retrieval_sets

    if judgement_set == "wands":
        judgements, products = write_wands_classes(Path(work))
        sets = load_retrieval_sets(judgements, products, product_columns=("title",))
    else:
        esci = CORPUS / "eval" / "esci"
        sets = load_retrieval_sets(str(esci / "test-sample.parquet"), str(esci / "sample-products.jsonl"))
    results = evaluate_retrieval(folder, sets, judgement_set, max_length=MAX_LENGTH, quantize="int8")
    out = {r.metric: r.value for r in results if r.task == "esci-retrieval-int8"}
    out["queries"] = len(sets[0].queries)
    out["products"] = len(sets[0].corpus)
    return out


def scaled_layers_folder(folder: str, work: Path) -> str:
    """The folder with each attention and MLP weight matrix rescaled to std 1/sqrt(fan_in) (unit gain, about the
    scale of trained layers): random weights at init (std 0.02) add little to the embedding lookup, so any
    quantizer looks harmless there; at unit gain the layers shape the output."""
    import modeling_rexbert

    target = work / (Path(folder).name + "-unit-gain")
    if not (target / "config.json").is_file():
        model = modeling_rexbert.RexBertForMaskedLM.from_pretrained(folder)
        with torch.no_grad():
            for layer in model.model.layers:
                for linear in (layer.attn.Wqkv, layer.attn.Wo, layer.mlp.Wi, layer.mlp.Wo):
                    linear.weight.mul_(linear.in_features ** -0.5 / linear.weight.std())
        model.save_pretrained(target)
    return str(target)


def run_quality(engine: str, models: dict, threads: int) -> dict:
    """nDCG@10 on the bundled ESCI sample (evaluation.retrieval's loading and metrics) with this engine."""
    from evaluation.embedding import encode
    from evaluation.retrieval import load_retrieval_sets, retrieval_metrics

    model, tokenizer = _load(engine, models, threads)
    esci = CORPUS / "eval" / "esci"
    subset = load_retrieval_sets(str(esci / "test-sample.parquet"), str(esci / "sample-products.jsonl"))[0]
    q_ids, c_ids = list(subset.queries), list(subset.corpus)
    queries = encode(model, tokenizer, [subset.queries[q] for q in q_ids], normalize=True, max_length=MAX_LENGTH)
    corpus = encode(model, tokenizer, [subset.corpus[c] for c in c_ids], normalize=True, max_length=MAX_LENGTH)
    metrics = retrieval_metrics(queries @ corpus.T, q_ids, c_ids, subset.gains, subset.min_relevant_gain)
    return {"ndcg@10": metrics["ndcg@10"]}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries the parent's high-water mark
    across fork and exec, so every child would report at least the parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: an upper bound


class WorkerMemory(threading.Thread):
    """The peak, sampled once a second, of the memory this process's children hold on their own (the Private_*
    lines of /proc/PID/smaps_rollup, summed over children): what `--cpu-workers` adds to the parent's VmHWM,
    the weights they share copy-on-write not counted twice. Once a second because a read costs about 16 ms of
    CPU (it walks the page tables): every 20 ms, it took a core from the workers it measured. Workers keep
    their freed memory (`keep_freed_memory`), so what they held at a batch's peak is still there to be sampled,
    except blocks over 32 MiB."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_mb, self.done = 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.peak_mb = max(self.peak_mb, sum(map(private_mb, child_pids())))


def child_pids() -> list[str]:
    try:
        return [pid for path in Path("/proc/self/task").glob("*/children") for pid in path.read_text().split()]
    except OSError:
        return []


def private_mb(pid: str) -> float:
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:  # gone already
        return 0.0
    return sum(int(line.split()[1]) for line in lines if line.startswith("Private_")) / 1024


def child(spec: dict) -> None:
    kind = spec["kind"]
    # imports are not part of any timed job (sentence-transformers' would count against it otherwise)
    import onnxruntime  # noqa: F401
    import sentence_transformers  # noqa: F401

    import evaluation.onnx_encoder  # noqa: F401
    import rexbert.embed_command  # noqa: F401
    workers = WorkerMemory()
    workers.start()
    if kind == "job":
        result = run_job(spec["engine"], spec["models"], spec["catalog"], spec["out"], spec["threads"])
    elif kind == "quality":
        result = run_quality(spec["engine"], spec["models"], spec["threads"])
    elif kind == "int8-quality":
        result = run_int8_quality(spec["folder"], spec["judgements"], spec["work"])
    else:
        result = run_encoder(spec["engine"], spec["models"], spec["catalog"], kind, spec["threads"])
    workers.done.set()
    result["max_rss_mb"] = peak_rss_mb() + workers.peak_mb
    print("RESULT " + json.dumps(result), flush=True)


def in_subprocess(spec: dict) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                          env=env, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"case {spec['kind']}/{spec['engine']} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


# ---------------------------------------------------------------- report
def cosines(a_path: Path, b_path: Path) -> tuple[float, float]:
    import pyarrow.parquet as pq

    def vectors(path):
        table = pq.read_table(path).to_pydict()
        order = np.argsort(table["id"])
        return np.asarray(table["embedding"], dtype=np.float64)[order]

    a, b = vectors(a_path), vectors(b_path)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(cos.min()), float(cos.mean())


def bench_preset(preset: str, rows: int, work: Path, threads: int, peak: float, trained: str | None = None,
                 repeat: int = 1) -> list[str]:
    from evaluation.embedding import tokenize
    from modeling_rexbert import RexBertConfig, load_tokenizer

    catalog = work / f"catalog-{preset}.jsonl"
    rows = write_catalog(catalog, rows)
    tokens = sum(map(len, tokenize(load_tokenizer(), _read_catalog(str(catalog))[1], MAX_LENGTH)[0]))
    models = write_models(preset, work)
    config = RexBertConfig.from_preset(preset)
    params = sum(p.numel() for p in __import__("modeling_rexbert").RexBertModel(config).parameters()) \
        - config.vocab_size * config.hidden_size
    base = {"models": models, "catalog": str(catalog), "threads": threads}
    cases = [("job", e) for e in JOBS] + [(order, e) for order in ("arrival", "sorted")
                                          for e in ENCODERS + ("ort-int8", "torch-int8")
                                          if not (order == "arrival" and e.endswith("int8"))] + [
        ("workers", e) for e in ("rexbert", "torch-int8")]
    runs: dict[tuple[str, str], list[dict]] = {case: [] for case in cases}
    for _ in range(repeat):  # round robin: a slow spell of the machine falls on every case alike
        for kind, engine in cases:
            spec = {**base, "kind": kind, "engine": engine}
            if kind == "job":
                out = work / f"{preset}-{engine}.parquet"
                out.unlink(missing_ok=True)
                shutil.rmtree(work / f"{preset}-{engine}.parquet.parts", ignore_errors=True)
                spec["out"] = str(out)
            runs[(kind, engine)].append(in_subprocess(spec))
            print(f"  {preset} {kind} {engine}: {runs[(kind, engine)][-1]}", flush=True)
    # each case's median run (its seconds and peak memory), and the range of its rates
    results = {case: sorted(r, key=lambda run: run["seconds"])[len(r) // 2] for case, r in runs.items()}
    spread = {case: (tokens / max(run["seconds"] for run in r), tokens / min(run["seconds"] for run in r))
              for case, r in runs.items()}
    quality = {e: in_subprocess({**base, "kind": "quality", "engine": e})["ndcg@10"]
               for e in ("rexbert", "ort", "ort-int8", "torch-int8")}
    weights = [("random weights", models["rexbert"]),
               ("layer weights at unit gain", scaled_layers_folder(models["rexbert"], work))]
    if trained:
        weights.append((f"trained ({trained})", trained))
    int8_eval = {(name, judgements): in_subprocess({**base, "kind": "int8-quality", "engine": "torch-int8",
                                                    "folder": folder, "judgements": judgements, "work": str(work)})
                 for name, folder in weights for judgements in INT8_JUDGEMENTS}

    def row(label, key, ref_key, extra=""):
        r = results[key]
        rate = tokens / r["seconds"]
        ratio = results[ref_key]["seconds"] / r["seconds"]
        low, high = spread[key]
        rates = f"{rate:,.0f}" if repeat == 1 else f"{rate:,.0f} [{low:,.0f}-{high:,.0f}]"
        return (f"| {preset} | {label} | {rows / r['seconds']:,.1f} | {rates} | {ratio:.2f}x | "
                f"{2 * params * rate / 1e9:,.1f} ({2 * params * rate / 1e9 / peak:.0%}) | {r['max_rss_mb']:,.0f} |"
                f"{extra}")

    lines = [f"### {preset}: {rows} rows, {tokens:,} real tokens (cut to {MAX_LENGTH}), "
             f"{params / 1e6:.1f}M non-embedding parameters", "",
             f"| preset | case | rows/s | real tokens/s{' (median [range])' if repeat > 1 else ''} | vs stock | "
             "GFLOP/s (of peak) | peak RSS MB (imports and CPU workers included) |",
             "|---|---|---|---|---|---|---|"]
    names = {"rexbert": "RexBERT (`rexbert embed`)", "stock-st": "stock: SentenceTransformer.encode",
             "ort": "ONNX Runtime, same sorted batches", "ort-int8": "ONNX Runtime int8",
             "torch-int8": "RexBERT + torch dynamic int8"}
    for engine in JOBS:
        lines.append(row(f"whole job: {names[engine]}", ("job", engine), ("job", "stock-st")))
    for order in ("arrival", "sorted", "workers"):
        for engine in ENCODERS + ("ort-int8", "torch-int8"):
            if (order, engine) in results:
                label = {"rexbert": "RexBERT classes", "stock": "stock ModernBERT", "ort": "ONNX Runtime"}.get(
                    engine, names.get(engine))
                if order == "workers":
                    lines.append(row(f"encoder, sorted order, one worker process per core: {label}",
                                     (order, engine), ("sorted", "stock")))
                else:
                    lines.append(row(f"encoder, {order} order: {label}", (order, engine), (order, "stock")))
    job = {e: results[("job", e)]["seconds"] for e in JOBS}
    arr = {e: results[("arrival", e)]["seconds"] for e in ENCODERS}
    srt = {e: results[("sorted", e)]["seconds"] for e in ("rexbert", "ort-int8", "torch-int8")}
    wrk = {e: results[("workers", e)]["seconds"] for e in ("rexbert", "torch-int8")}
    int8_cos = {e: cosines(work / f"{preset}-{e}.parquet", work / f"{preset}-{ref}.parquet")
                for e, ref in (("ort-int8", "ort"), ("torch-int8", "rexbert"))}
    lines += ["", f"Targets ({preset}): encoder in arrival order {arr['stock'] / arr['rexbert']:.2f}x stock, "
              f"{arr['ort'] / arr['rexbert']:.2f}x ONNX Runtime (target >= 2x both); whole job "
              f"{job['stock-st'] / job['rexbert']:.2f}x SentenceTransformer.encode, {job['ort'] / job['rexbert']:.2f}x "
              f"ONNX Runtime (target >= 1.0x both); int8 vs our fp32 length-sorted speed (target >= 1.6x): "
              f"encoder on length-sorted batches as `rexbert embed` runs it (one worker process per core) torch "
              f"int8 {wrk['rexbert'] / wrk['torch-int8']:.2f}x, in one process on all cores torch int8 "
              f"{srt['rexbert'] / srt['torch-int8']:.2f}x, ONNX Runtime "
              f"int8 {srt['rexbert'] / srt['ort-int8']:.2f}x; whole job torch int8 "
              f"{job['rexbert'] / job['torch-int8']:.2f}x, ONNX Runtime int8 {job['rexbert'] / job['ort-int8']:.2f}x.",
              "",
              "int8 quality: cosine to fp32 (min / mean over the rows) -- ONNX Runtime int8 vs ONNX fp32 "
              f"{int8_cos['ort-int8'][0]:.4f} / {int8_cos['ort-int8'][1]:.4f}, torch int8 vs RexBERT fp32 "
              f"{int8_cos['torch-int8'][0]:.4f} / {int8_cos['torch-int8'][1]:.4f}; nDCG@10 on the ESCI sample: "
              + ", ".join(f"{e} {v * 100:.2f}" for e, v in quality.items()) + ".", "",
              "`rexbert eval retrieval --quantize int8` (torch int8 = `rexbert embed --quantize int8`; cosine over "
              "the query and product vectors):", "",
              "| weights | judgements | queries | products | cosine min / mean | nDCG@10 float32 | nDCG@10 int8 |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {INT8_JUDGEMENTS[judgements]} | {r['queries']} | {r['products']} | {r['cosine_min']:.4f} / "
              f"{r['cosine_mean']:.4f} | {r['ndcg@10_float32'] * 100:.2f} | {r['ndcg@10'] * 100:.2f} |"
              for (name, judgements), r in int8_eval.items()]
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--presets", default="micro,base")
    parser.add_argument("--rows", default="micro=655,base=96", help="catalog rows per preset")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="cores (default: all)")
    parser.add_argument("--work", type=Path, help="keep models and outputs here (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="smoke run: micro, 48 rows")
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each case, round robin (median reported)")
    parser.add_argument("--trained", default="", help="PRESET=FOLDER,...: a trained model of that preset for the "
                        "int8 quality check too (e.g. micro=rexbert-demo/phase3 from `rexbert demo`)")
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))
    presets = ["micro"] if args.quick else args.presets.split(",")
    rows = dict(item.split("=") for item in args.rows.split(","))
    args.trained = dict(item.split("=", 1) for item in args.trained.split(",") if item)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-embed-"))
    work.mkdir(parents=True, exist_ok=True)
    if not args.work:  # a folder of its own goes when the run ends (models, exports, catalogs: GBs at base)
        atexit.register(shutil.rmtree, work, ignore_errors=True)
    peak = matmul_peak(args.threads)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    header = ["## Bulk CPU embedding (`benchmarks/bench_embed.py`)", "",
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.threads} threads, torch "
              f"{torch.__version__}, batch {BATCH}, fp32 unless int8; fp32 matmul peak {peak:,.0f} GFLOP/s "
              "(2048^3 torch.matmul, best of 5).",
              f"Load at start: `{uptime}`; os.getloadavg() = {tuple(round(x, 2) for x in os.getloadavg())}. "
              "Runs beside other work are noisy: read the numbers with these load averages.", ""]
    body = []
    for preset in presets:  # the report is rewritten after each preset, so a cut-short run keeps what it measured
        body += bench_preset(preset, 48 if args.quick else int(rows.get(preset, 96)), work, args.threads, peak,
                             trained=args.trained.get(preset), repeat=args.repeat)
        load_now = tuple(round(x, 2) for x in os.getloadavg())
        text = "\n".join(header + body + [f"Load after {preset}: os.getloadavg() = {load_now}."])
        if args.output:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
