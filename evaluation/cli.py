"""`rexbert eval <task>`: masked-token recovery, CoSENT on ESCI, GLUE, retrieval; thin shells over `evaluation.*`."""

from __future__ import annotations

import argparse

from rexbert.core.arguments import positive_float, positive_int, positive_ints, rate


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _model_options(parser: argparse.ArgumentParser) -> None:
    """--output/--overwrite/--trust-remote-code, shared by every command that loads a model."""
    parser.add_argument("--output", help="write results JSON here (checked before any work)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file (and, for cosent, "
                        "a --save-model folder rexbert did not write)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run Python code shipped with the model (off by default; RexBERT/ModernBERT never need it)")


def _fine_tuning_options(parser: argparse.ArgumentParser, epochs: float, learning_rate: float, max_length: int,
                         batched: str, cut: str) -> None:
    """--model and the training settings of a fine-tuning task; `batched`/`cut` name what a batch holds and what
    --max-length cuts."""
    parser.add_argument("--model", required=True, help="folder or Hub id of the encoder to fine-tune")
    parser.add_argument("--epochs", type=positive_float, default=epochs, help="training epochs")
    parser.add_argument("--learning-rate", type=positive_float, default=learning_rate, help="peak learning rate")
    parser.add_argument("--batch-size", type=positive_int, default=32, help=f"{batched} per training batch")
    parser.add_argument("--max-length", type=positive_int, default=max_length, help=f"tokens per {cut} (longer ones are cut)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar while fine-tuning")


def register(subparsers: argparse._SubParsersAction) -> None:
    from rexbert.cli import add_command

    parser = add_command(subparsers, "eval", description="Evaluate encoders on the paper's benchmarks; every task "
                         "writes the same results schema (--output), which `rexbert card render` reads.")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)

    mlm = add_command(tasks, "mlm", help="top-k masked-token recovery (paper Table 3) for any masked LM",
                      description="Top-k masked-token recovery (paper Table 3): the same words are masked for every "
                      "model (15% as spans of 1 + Poisson(1) words), scored at each block size.")
    mlm.add_argument("--model", action="append", required=True, help="folder or Hub id; repeat to compare models")
    mlm.add_argument("--dataset", required=True, help="Hub id, save_to_disk folder, or csv/jsonl/parquet file")
    mlm.add_argument("--split", default="test", help="dataset split (Hub datasets and save_to_disk folders)")
    mlm.add_argument("--text-columns", default="product_title,product_description",
                     help="comma-separated; nested fields as dotted names (fields.title)")
    mlm.add_argument("--block-sizes", type=positive_ints, default=[128, 256, 512],
                     help="comma-separated token lengths each text is cut (or packed) to")
    mlm.add_argument("--k", type=positive_ints, default=[1, 3, 5], help="comma-separated k of top-k accuracy")
    mlm.add_argument("--mask-rate", type=rate, default=0.15, help="share of words masked")
    mlm.add_argument("--seed", type=int, default=0, help="seed of the word masks (same masks for every model)")
    mlm.add_argument("--batch-size", type=positive_int, default=16, help="blocks per forward pass")
    mlm.add_argument("--max-texts", type=positive_int, help="evaluate the first N rows only")
    mlm.add_argument("--packed", action="store_true", help="concatenate texts into full blocks instead of truncating")
    mlm.add_argument("--implementation", choices=["auto", "transformers"], default="auto",
                     help="auto: ModernBERT-architecture checkpoints run on RexBERT's implementation")
    _model_options(mlm)
    mlm.set_defaults(func=run_mlm)

    glue = add_command(tasks, "glue", help="fine-tune and score on a GLUE task with transformers' Trainer",
                       description="Fine-tune on a GLUE task with transformers' Trainer and score the validation "
                       "split (metrics computed locally with scipy / scikit-learn), once per seed.")
    glue.add_argument("--task", required=True, help="sst2, qnli, qqp, mnli, stsb, mrpc, rte or cola")
    _fine_tuning_options(glue, epochs=3.0, learning_rate=5e-5, max_length=128, batched="examples", cut="example")
    source = glue.add_mutually_exclusive_group()
    source.add_argument("--dataset", help="Hub id (default nyu-mll/glue) or a save_to_disk folder")
    source.add_argument("--train-file", help="csv/jsonl/parquet with GLUE's column names")
    glue.add_argument("--validation-file", help="with --train-file: the file scored (same columns)")
    glue.add_argument("--seeds", type=_ints, default=[1], help="comma-separated seeds; one fine-tuning run each")
    _model_options(glue)
    glue.set_defaults(func=run_glue)

    cosent = add_command(tasks, "cosent", help="CoSENT fine-tuning on ESCI; Spearman/Pearson of cosine vs relevance",
                         description="Fine-tune a SentenceTransformer (mean pooling) with CoSENT loss on ESCI "
                         "query/product pairs, then score Spearman and Pearson of cosine vs relevance on the test "
                         "split.")
    _fine_tuning_options(cosent, epochs=1.0, learning_rate=2e-5, max_length=512, batched="pairs", cut="text")
    cosent_source = cosent.add_mutually_exclusive_group()
    cosent_source.add_argument("--dataset", help="Hub id (default tasksource/esci) or an examples file with a split column")
    cosent_source.add_argument("--train-file", help="csv/jsonl/parquet of training pairs")
    cosent.add_argument("--test-file", help="with --train-file: the pairs scored (same columns)")
    cosent.add_argument("--products-file", help="official layout: products (product_id, product_title, ...) to join")
    cosent.add_argument("--product-columns", default="product_title,product_description",
                        help="comma-separated columns joined into the product text (of the pairs, or of "
                        "--products-file)")
    cosent.add_argument("--query-column", default="query", help="column holding the query")
    cosent.add_argument("--seed", type=int, default=0, help="training seed")
    cosent.add_argument("--save-model", help="write the fine-tuned SentenceTransformer folder here (new, or one rexbert "
                        "wrote; with --overwrite, any)")
    _model_options(cosent)
    cosent.set_defaults(func=run_cosent)

    retrieval = add_command(tasks, "retrieval", help="product search: nDCG@10, MRR@10, Recall@100, MAP per locale",
                            description="Embed queries and a product corpus with the model as it is (mean pooling, "
                            "its sentence-transformers config), rank the corpus by cosine and score it against graded "
                            "ESCI-schema judgements, per locale: nDCG@10 with the ESCI gains (E 1, S 0.1, C 0.01, "
                            "I 0), MRR@10, Recall@100 and MAP@100 with Exact (or any positive grade) as relevant.")
    retrieval.add_argument("--model", action="append", required=True, help="folder or Hub id; repeat to compare")
    retrieval.add_argument("--judgements", required=True, help="csv/jsonl/parquet: query, product_id, esci_label "
                           "or a numeric grade (query_id, product_locale, split where present)")
    retrieval.add_argument("--products", required=True, help="csv/jsonl/parquet of products: product_id and text "
                           "columns (ESCI's Vespa feed with fields.* works as is)")
    retrieval.add_argument("--product-columns", default="product_title,product_description",
                           help="comma-separated columns joined into the product text")
    retrieval.add_argument("--query-column", default="query", help="column holding the query")
    retrieval.add_argument("--split", default="test", help="judgement rows of this split (if there is a split column)")
    retrieval.add_argument("--locales", help="comma-separated locales to score (default: every locale)")
    retrieval.add_argument("--min-relevant-gain", type=float,
                           help="gain at which a product counts as relevant for MRR/Recall/MAP (default: Exact, "
                           "or any positive grade)")
    retrieval.add_argument("--batch-size", type=int, default=32, help="texts per forward pass")
    retrieval.add_argument("--max-length", type=int, help="tokens per text (default: the model's max_seq_length)")
    retrieval.add_argument("--quantize", choices=["int8"], help="also score `rexbert embed --quantize int8`'s model "
                           "(CPU) against float32: its nDCG@10 and the cosine of its vectors (for the model card)")
    _model_options(retrieval)
    retrieval.set_defaults(func=run_retrieval)

    render = add_command(tasks, "render", help="print several results files side by side")
    render.add_argument("files", nargs="+", help="results JSON files (rexbert eval --output)")
    render.set_defaults(func=run_render)


def _report(args: argparse.Namespace, results: list, table: str) -> None:
    """Prints the results table and writes --output (checked before the work began)."""
    from .results import write_results

    print(table)
    if args.output:
        print(f"Wrote {write_results(args.output, results, overwrite=args.overwrite)}")


def run_mlm(args: argparse.Namespace) -> None:
    from .mlm import evaluate_masked_lm
    from .results import check_output, masked_token_table

    check_output(args.output, args.overwrite)
    results = evaluate_masked_lm(
        args.model, args.dataset, args.text_columns.split(","), args.block_sizes, args.k, split=args.split,
        rate=args.mask_rate, seed=args.seed, batch_size=args.batch_size, max_texts=args.max_texts,
        implementation=args.implementation, packed=args.packed, trust_remote_code=args.trust_remote_code,
    )
    _report(args, results, masked_token_table(results))


def run_glue(args: argparse.Namespace) -> None:
    from .glue import HUB_DATASET, finetune_glue, load_glue
    from .results import check_output, render_table

    check_output(args.output, args.overwrite)
    splits = load_glue(args.task, args.dataset, args.train_file, args.validation_file)
    results = finetune_glue(args.model, args.task, splits, seeds=args.seeds, epochs=args.epochs,
                            learning_rate=args.learning_rate, batch_size=args.batch_size, max_length=args.max_length,
                            dataset_name=args.dataset or args.train_file or HUB_DATASET,
                            trust_remote_code=args.trust_remote_code, progress=not args.no_progress)
    _report(args, results, render_table(results, column_key=lambda r: f"{r.task}/{r.split}/{r.metric}/seed{r.seed}"))


def run_cosent(args: argparse.Namespace) -> None:
    from rexbert.core.outputs import claim_output, mark_output

    from .cosent import HUB_DATASET, finetune_cosent, load_esci
    from .results import check_output, render_table

    check_output(args.output, args.overwrite)
    if args.save_model:
        claim_output(args.save_model, overwrite=args.overwrite, option="--save-model")
    pairs = load_esci(args.dataset, args.train_file, args.test_file, args.products_file,
                      [c for c in args.product_columns.split(",") if c], args.query_column)
    results = finetune_cosent(args.model, pairs, output_dir=args.save_model, epochs=args.epochs,
                              learning_rate=args.learning_rate, batch_size=args.batch_size,
                              max_length=args.max_length, seed=args.seed,
                              dataset_name=args.dataset or args.train_file or HUB_DATASET,
                              trust_remote_code=args.trust_remote_code, progress=not args.no_progress)
    if args.save_model:
        mark_output(args.save_model, "rexbert eval cosent")
    _report(args, results, render_table(results))


def run_retrieval(args: argparse.Namespace) -> None:
    from .results import check_output, render_table
    from .retrieval import evaluate_retrieval, load_retrieval_sets

    check_output(args.output, args.overwrite)
    sets = load_retrieval_sets(args.judgements, args.products, [c for c in args.product_columns.split(",") if c],
                               split=args.split, query_column=args.query_column,
                               min_relevant_gain=args.min_relevant_gain,
                               locales=[x for x in (args.locales or "").split(",") if x] or None)
    results = [r for model in args.model
               for r in evaluate_retrieval(model, sets, dataset_name=args.judgements, batch_size=args.batch_size,
                                           max_length=args.max_length, trust_remote_code=args.trust_remote_code,
                                           quantize=args.quantize)]
    _report(args, results, render_table(results, column_key=lambda r: f"{r.task.removeprefix('esci-retrieval')} "
                                        f"{r.settings['locale']} {r.metric}".strip()))


def run_render(args: argparse.Namespace) -> None:
    from .results import MASKED_TOKEN_RECOVERY, masked_token_table, read_results, render_table

    results = [r for path in args.files for r in read_results(path)]
    masked = [r for r in results if r.task == MASKED_TOKEN_RECOVERY]
    other = [r for r in results if r.task != MASKED_TOKEN_RECOVERY]
    if masked:
        print(masked_token_table(masked))
    if other:
        print(render_table(other))
