"""`rexbert card render|push`: thin shells over `model_cards.card`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from rexbert.cli import add_command

    parser = add_command(subparsers, "card", description="Render a model card (README.md with model-index metadata, "
                         "results tables and plots) beside a saved model, and publish the folder to the Hub.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    render = add_command(actions, "render", help="write README.md (+ plots) for a model folder from results files")
    render.add_argument("--model", required=True, help="saved model folder")
    render.add_argument("--results", nargs="+", default=[], help="results JSON files (rexbert eval --output)")
    render.add_argument("--output-dir", help="default: the model folder")
    render.add_argument("--name", help="model name in the card (default: folder name)")
    render.add_argument("--base-model", help="Hub id this model was annealed or fine-tuned from (card metadata)")
    render.add_argument("--datasets", nargs="*", default=[], help="Hub ids of the training datasets (card metadata)")
    render.add_argument("--model-id", help="what the card's usage snippets load: the Hub id once pushed (default: "
                        "the --model folder as given if relative, else its name)")
    render.set_defaults(func=run_render)

    push = add_command(actions, "push", help="upload checkpoint, tokenizer, code and card",
                       description="Upload a model folder's allowlisted files (weights, config, tokenizer, code, "
                       "card, images) to a Hub model repo; never checkpoints, logs or optimizer state.")
    push.add_argument("--model", required=True, help="saved model folder with its card (README.md)")
    push.add_argument("--repo-id", required=True, help="Hub model repo, owner/name (created if missing)")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--dry-run", action="store_true", help="list what would be uploaded, upload nothing")
    push.set_defaults(func=run_push)


def run_render(args: argparse.Namespace) -> None:
    from .card import render_model_card

    readme = render_model_card(args.model, args.results, args.output_dir, args.name, args.base_model,
                               args.datasets, model_id=args.model_id)
    print(f"Wrote {readme}")


def run_push(args: argparse.Namespace) -> None:
    from pathlib import Path

    from modeling_rexbert.sentence_transformers_config import write_config

    from .card import human_size, push_model

    if (Path(args.model) / "config.json").is_file() and write_config(args.model):  # a folder saved before them
        print(f"Added the sentence-transformers config (modules.json, 1_Pooling/) to {args.model}")
    files = push_model(args.model, args.repo_id, dry_run=args.dry_run, private=args.private)
    sizes = {name: (Path(args.model) / name).stat().st_size for name in files}
    verb = "Would upload" if args.dry_run else "Uploaded"
    print(f"{verb} {len(files)} files ({human_size(sum(sizes.values()))}) to {args.repo_id}:")
    for name in files:
        print(f"  {name}  {human_size(sizes[name])}")
