"""Loads published RexBERT folders the way users do, in an environment without this project.

Run by `scripts/compat_check.py` under each transformers version it checks (4.57.6 in a venv of its
own, and the project's transformers 5 with the project's packages blocked). Depends on torch,
transformers and sentence-transformers only. Prints one JSON line per check and exits 1 if any failed.

    python compat_load.py REFERENCE.pt FOLDER [FOLDER ...]
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

# The project must not help: every name it installs is made unimportable.
for _name in ("modeling_rexbert", "rexbert", "training", "evaluation", "model_cards", "curation"):
    sys.modules[_name] = None

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer, pipeline  # noqa: E402

TOLERANCE = 1e-4
IS_V4 = int(transformers.__version__.split(".")[0]) < 5


def read_thetas(config) -> dict:
    """The RoPE layout as this transformers version's ModernBERT reads it."""
    if IS_V4:
        return {"global": float(config.global_rope_theta), "local": float(config.local_rope_theta),
                "every_n": int(config.global_attn_every_n_layers)}
    layer_types = list(config.layer_types)
    every_n = next(n for n in range(1, len(layer_types) + 1)
                   if layer_types == ["full_attention" if i % n == 0 else "sliding_attention" for i in range(len(layer_types))])
    return {"global": float(config.rope_parameters["full_attention"]["rope_theta"]),
            "local": float(config.rope_parameters["sliding_attention"]["rope_theta"]), "every_n": every_n}


def max_diff(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return (actual.float() - expected.float()).abs().max().item()


def check_tokenizer(folder, ref):
    tokenizer = AutoTokenizer.from_pretrained(folder)
    batch = tokenizer(ref["texts"], padding=True, return_tensors="pt")
    assert torch.equal(batch["input_ids"], ref["input_ids"]), "input ids differ from the original tokenizer's"
    return f"{type(tokenizer).__name__}, ids equal"


def check_config(folder, ref):
    read = read_thetas(AutoConfig.from_pretrained(folder))
    assert read == ref["thetas"], f"read {read}, wrote {ref['thetas']}"
    return f"global {read['global']:g} / local {read['local']:g} / every {read['every_n']}"


def check_masked_lm(folder, ref, trust_remote_code=False):
    model = AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=trust_remote_code).eval()
    with torch.no_grad():
        logits = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"]).logits
    real = ref["attention_mask"].bool()
    diff = max_diff(logits[real], ref["logits"][real])
    assert diff <= TOLERANCE, f"{type(model).__name__}: max |logit diff| {diff:.2e} > {TOLERANCE}"
    return f"{type(model).__name__}, max |diff| {diff:.1e}"


def check_remote_code(folder, ref):
    if not IS_V4:
        result = check_masked_lm(folder, ref, trust_remote_code=True)
        assert result.startswith("RexBertForMaskedLM"), result
        return result
    try:
        AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True)
    except ImportError as error:  # the promised behaviour on 4.x: stop at once, naming the version
        assert "transformers>=5" in str(error), str(error)
        return "refused at once: " + str(error).split(";")[0]
    raise AssertionError("remote code half-loaded on transformers 4.x instead of stopping")


def check_fill_mask(folder, ref):
    fill = pipeline("fill-mask", model=folder)
    text = ref["texts"][0]
    top = fill(text)[0]
    expected = int(ref["logits"][0, ref["mask_position"]].argmax())
    assert top["token"] == expected, f"top token {top['token']}, the original model's {expected}"
    return f"top token {top['token']} as the original"


def check_feature_extraction(folder, ref):
    extract = pipeline("feature-extraction", model=folder)
    hidden = extract(ref["texts"][1], return_tensors=True)[0]
    length = int(ref["attention_mask"][1].sum())
    diff = max_diff(hidden, ref["hidden"][1, :length])
    assert diff <= TOLERANCE, f"max |hidden diff| {diff:.2e}"
    return f"max |diff| {diff:.1e}"


def check_sentence_transformers(folder, ref):
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(folder, device="cpu")
    embeddings = encoder.encode(ref["texts"], convert_to_tensor=True)
    diff = max_diff(embeddings, ref["mean_pooled"])
    assert diff <= TOLERANCE, f"max |embedding diff| {diff:.2e}"
    return f"mean pooling, max |diff| {diff:.1e}"


CHECKS = {
    "AutoTokenizer": check_tokenizer,
    "AutoConfig RoPE": check_config,
    "AutoModelForMaskedLM": check_masked_lm,
    "fill-mask": check_fill_mask,
    "feature-extraction": check_feature_extraction,
    "SentenceTransformer": check_sentence_transformers,
    "trust_remote_code=True": check_remote_code,
}


def main(argv: list[str]) -> int:
    reference, folders = argv[0], argv[1:]
    ref = torch.load(reference)
    failed = 0
    for folder in folders:
        has_code = (Path(folder) / "modeling_rexbert.py").is_file()
        for name, check in CHECKS.items():
            if name == "trust_remote_code=True" and not has_code:
                continue
            try:
                row = {"ok": True, "detail": check(folder, ref)}
            except Exception as error:  # every failure is reported, then the run fails
                failed += 1
                row = {"ok": False, "detail": f"{type(error).__name__}: {error}"[:400]}
                traceback.print_exc(file=sys.stderr)
            print(json.dumps({"transformers": transformers.__version__, "folder": folder, "check": name, **row}),
                  flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
