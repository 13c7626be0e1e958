"""The RexBERT tokenizer: OLMo's byte-level BPE plus ModernBERT's special tokens.

OLMo ids 0..50279 are kept; `[UNK]`=50280, `[CLS]`=50281, `[SEP]`=50282, `[PAD]`=50283,
`[MASK]`=50284 (it absorbs the space before it) and `[unused0..82]`=50285..50367 follow, for a
vocabulary of 50,368 (a multiple of 64). Template `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]`, no
token type ids. These ids equal ModernBERT's, so ModernBERT, Ettin and RexBERT weights line up.

The built files ship in `modeling_rexbert/tokenizer/`; `build_tokenizer()` regenerates them from
OLMo's tokenizer JSON (`python -m modeling_rexbert.tokenization_rexbert OLMO_JSON OUT_DIR`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tokenizers import AddedToken, Tokenizer
from tokenizers.processors import TemplateProcessing
from transformers import PreTrainedTokenizerFast

SHIPPED_TOKENIZER_DIR = Path(__file__).parent / "tokenizer"
OLMO_VOCAB_SIZE = 50280
MODEL_MAX_LENGTH = 8192
NUM_UNUSED = 83
SPECIAL_TOKENS = {"unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                  "mask_token": "[MASK]"}
SPECIAL_IDS = {"[UNK]": 50280, "[CLS]": 50281, "[SEP]": 50282, "[PAD]": 50283, "[MASK]": 50284}
# The class name both transformers 4.x and 5.x resolve without remote code (5.x's own name,
# "TokenizersBackend", does not exist in 4.x); it is what ModernBERT's published tokenizer says too.
PORTABLE_TOKENIZER_CLASS = "PreTrainedTokenizerFast"
# Keys transformers 5 writes from the loading call, not from the tokenizer: never published.
LOADING_KEYS = ("is_local", "local_files_only", "backend", "name_or_path", "trust_remote_code")


def build_tokenizer(olmo_tokenizer_json: str | Path) -> PreTrainedTokenizerFast:
    """Derives the RexBERT tokenizer from OLMo's `tokenizer.json` (ids 0..50279)."""
    tokenizer = Tokenizer.from_file(str(olmo_tokenizer_json))
    if tokenizer.get_vocab_size(with_added_tokens=True) != OLMO_VOCAB_SIZE:
        raise ValueError(
            f"{olmo_tokenizer_json} has {tokenizer.get_vocab_size(with_added_tokens=True)} tokens; "
            f"OLMo's tokenizer has {OLMO_VOCAB_SIZE}. Is this the right file?"
        )
    specials = [AddedToken(token, special=True, normalized=False, lstrip=token == "[MASK]")
                for token in SPECIAL_IDS]
    specials += [AddedToken(f"[unused{i}]", special=True, normalized=False) for i in range(NUM_UNUSED)]
    tokenizer.add_special_tokens(specials)
    for token, expected in SPECIAL_IDS.items():
        if tokenizer.token_to_id(token) != expected:
            raise ValueError(f"{token} got id {tokenizer.token_to_id(token)}, expected {expected}.")
    cls_id, sep_id = SPECIAL_IDS["[CLS]"], SPECIAL_IDS["[SEP]"]
    tokenizer.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        model_max_length=MODEL_MAX_LENGTH,
        model_input_names=["input_ids", "attention_mask"],
        clean_up_tokenization_spaces=False,  # a WordPiece-era cleanup that corrupts BPE output
        **SPECIAL_TOKENS,
    )


def load_tokenizer(path: str | Path | None = None) -> PreTrainedTokenizerFast:
    """The shipped RexBERT tokenizer (offline), or the one saved in `path`."""
    folder = Path(path) if path is not None else SHIPPED_TOKENIZER_DIR
    if not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(f"No tokenizer.json in {folder}.")
    return PreTrainedTokenizerFast.from_pretrained(str(folder))


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, folder: str | Path) -> Path:
    """`save_pretrained`, with a `tokenizer_config.json` that transformers 4.x and 5.x both load without
    remote code or prompts: a class name both know and none of the keys that describe how it was loaded."""
    folder = Path(folder)
    tokenizer.save_pretrained(str(folder))
    config_file = folder / "tokenizer_config.json"
    config = {k: v for k, v in json.loads(config_file.read_text()).items() if k not in LOADING_KEYS}
    config["tokenizer_class"] = PORTABLE_TOKENIZER_CLASS
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return folder


def check_vocab_matches(tokenizer: PreTrainedTokenizerFast, vocab_size: int) -> None:
    """Raises if the tokenizer can produce ids the embedding matrix does not have."""
    if len(tokenizer) > vocab_size:
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} tokens but the model's vocab_size is {vocab_size}: "
            "ids beyond the embedding matrix would fail. Use the tokenizer the checkpoint was trained with."
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Regenerate the RexBERT tokenizer files from OLMo's tokenizer JSON.")
    parser.add_argument("olmo_json", type=Path)
    parser.add_argument("output_dir", type=Path, nargs="?", default=SHIPPED_TOKENIZER_DIR)
    args = parser.parse_args(argv)
    save_tokenizer(build_tokenizer(args.olmo_json), args.output_dir)
    print(f"Wrote the RexBERT tokenizer to {args.output_dir}")


if __name__ == "__main__":
    main()
