"""RexBERT quickstart, offline: build a model, save it with its code, and use it the ways users do.

    python examples/quickstart.py [--preset micro] [--output-dir rexbert-output/quickstart] [--overwrite]

An existing --output-dir is replaced only if this script wrote it (or with --overwrite): a folder of yours
is never deleted.

1. a freshly initialised RexBERT (`--preset`, sizes from the paper) with the bundled OLMo-derived
   tokenizer, saved as a self-contained folder (weights, tokenizer, code, `auto_map`);
2. that folder loaded back with `trust_remote_code=True` for a transformers fill-mask pipeline;
3. product embeddings with sentence-transformers (mean pooling) and their cosine similarities;
4. `rexbert convert --to modernbert`, loaded by stock transformers, logits checked against ours.

The weights are random until you train them or load a trained checkpoint (any ModernBERT-format
folder or Hub id: `RexBertForMaskedLM.from_pretrained(path_or_repo_id)`), so the predictions printed
here are not meaningful: the point is that every path runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

import modeling_rexbert
from modeling_rexbert.convert import convert_checkpoint
from rexbert.core.outputs import OutputExistsError, mark_output, replace_folder

PRODUCTS = [
    "Apple iPhone 13, 128 GB, Midnight - Unlocked (Renewed)",
    "Samsung Galaxy S21 5G, 128GB, Phantom Gray",
    "Hydro Flask Wide Mouth Water Bottle, 32 oz, Pacific",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="micro", choices=sorted(modeling_rexbert.PRESETS))
    parser.add_argument("--output-dir", type=Path, default=Path("rexbert-output/quickstart"))
    parser.add_argument("--overwrite", action="store_true", help="replace --output-dir even if this script did not "
                        "write it (deletes what it holds)")
    args = parser.parse_args()
    try:
        replace_folder(args.output_dir, overwrite=args.overwrite)
    except OutputExistsError as error:
        parser.exit(2, f"quickstart: error: {error}\n")
    mark_output(args.output_dir, "examples/quickstart.py")
    rexbert_dir, stock_dir = args.output_dir / f"rexbert-{args.preset}", args.output_dir / "modernbert-format"

    torch.manual_seed(0)
    config = modeling_rexbert.RexBertConfig.from_preset(args.preset)
    model = modeling_rexbert.RexBertForMaskedLM(config)
    model.save_pretrained(rexbert_dir)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"1. RexBERT-{args.preset} ({params:.1f}M parameters, untrained) saved with its code to {rexbert_dir}")
    print(f"   files: {', '.join(sorted(p.name for p in rexbert_dir.iterdir()))}")

    remote = AutoModelForMaskedLM.from_pretrained(rexbert_dir, trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(rexbert_dir)
    fill_mask = pipeline("fill-mask", model=remote, tokenizer=tokenizer, device="cpu")
    text = "Apple iPhone 13, 128 [MASK], Midnight"
    guesses = ", ".join(repr(g["token_str"]) for g in fill_mask(text, top_k=3))
    print(f"2. fill-mask via remote code ({type(remote).__name__}): {text!r} -> {guesses}")

    encoder = SentenceTransformer(str(rexbert_dir), trust_remote_code=True, device="cpu")
    embeddings = encoder.encode(PRODUCTS, convert_to_tensor=True, normalize_embeddings=True)
    similarity = embeddings @ embeddings.T
    print(f"3. sentence-transformers embeddings {tuple(embeddings.shape)}; cosine(phone, phone) = "
          f"{similarity[0, 1]:.3f}, cosine(phone, bottle) = {similarity[0, 2]:.3f}")

    convert_checkpoint(rexbert_dir, stock_dir, to="modernbert")
    stock = AutoModelForMaskedLM.from_pretrained(stock_dir).eval()
    batch = tokenizer(PRODUCTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours, theirs = remote.eval()(**batch).logits, stock(**batch).logits
    real = batch["attention_mask"].bool()
    gap = (ours[real] - theirs[real]).abs().max().item()
    print(f"4. converted to {stock_dir} and loaded by stock {type(stock).__name__}: max |logit difference| = {gap:.2e}")
    mark_output(args.output_dir, "examples/quickstart.py", entries=True)  # a rerun replaces exactly this


if __name__ == "__main__":
    main()
