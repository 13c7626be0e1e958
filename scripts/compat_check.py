"""Publish once, load everywhere: writes RexBERT folders with this project, then loads them where it is absent.

1. Here (the project's transformers 5): a micro model with raised RoPE thetas (global 640k, local 20k:
   a reader that falls back to ModernBERT's 160k / 10k gives other logits), saved with
   `save_pretrained` and converted with `rexbert convert --to modernbert`, plus its reference outputs.
2. `scripts/compat_load.py` loads both folders with AutoTokenizer, AutoConfig, AutoModelForMaskedLM,
   pipeline("fill-mask"), pipeline("feature-extraction"), SentenceTransformer and remote code:
   - in a venv with transformers 4.57.6 and sentence-transformers 5 and without this project
     (built once, cached under ~/.cache/rexbert-ci/ keyed by the pins);
   - with this interpreter's transformers 5, the project's packages blocked.

    python scripts/compat_check.py [--work DIR]      # exits 1 if any check fails
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
PINS = ["torch==2.13.0", "transformers==4.57.6", "sentence-transformers==5.7.0"]  # torch first: the CPU build
THETAS = {"global": 640_000.0, "local": 20_000.0, "every_n": 3}
# The second text is longer than the local window (128), so sliding layers and far positions are exercised.
TEXTS = ["Apple iPhone 13, 128 GB, [MASK], unlocked",
         " ".join(["Navy blue running shoes for men, size 10, breathable mesh upper, cushioned foam sole,"
                   " free returns within 30 days."] * 9)]


def write_folders(work: Path) -> list[Path]:
    sys.path.insert(0, str(REPO))
    from modeling_rexbert import RexBertConfig, RexBertForMaskedLM, load_tokenizer
    from modeling_rexbert.convert import convert_checkpoint

    torch.manual_seed(0)
    config = RexBertConfig.from_preset("micro", num_hidden_layers=4, rope_parameters={
        "full_attention": {"rope_type": "default", "rope_theta": THETAS["global"]},
        "sliding_attention": {"rope_type": "default", "rope_theta": THETAS["local"]}})
    model = RexBertForMaskedLM(config).eval()
    with torch.no_grad():  # sharper attention than at init, so that positions (and thetas) visibly matter
        for layer in model.model.layers:
            layer.attn.Wqkv.weight.mul_(20)
    published = work / "rexbert-format"
    model.save_pretrained(published)
    plain = convert_checkpoint(published, work / "modernbert-format", to="modernbert")

    tokenizer = load_tokenizer()
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
        hidden = model.model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    torch.save({"texts": TEXTS, "input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
                "logits": logits, "hidden": hidden, "mean_pooled": (hidden * mask).sum(1) / mask.sum(1),
                "mask_position": int((batch["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]),
                "thetas": THETAS}, work / "reference.pt")
    return [published, plain]


def legacy_python() -> Path:
    """A venv with transformers 4.57.6 (and nothing of this project), built once per set of pins."""
    cache = Path(os.environ.get("REXBERT_CI_CACHE", Path.home() / ".cache" / "rexbert-ci"))
    venv = cache / ("compat-" + hashlib.sha256(" ".join(PINS).encode()).hexdigest()[:12])
    python = venv / "bin" / "python"
    if (venv / "ready").is_file():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    for pin in PINS:  # one at a time, in order, so that torch's CPU build is in place first
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", pin], check=True)
    (venv / "ready").write_text("\n".join(PINS) + "\n")
    return python


def run_loader(python: Path | str, work: Path, folders: list[Path]) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(work / f"modules-{Path(python).parent.parent.name}"),
               OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"), TOKENIZERS_PARALLELISM="false")
    done = subprocess.run([str(python), str(REPO / "scripts" / "compat_load.py"), str(work / "reference.pt"),
                           *map(str, folders)], cwd=work, env=env, stdin=subprocess.DEVNULL,  # a prompt fails
                          capture_output=True, text=True)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode and not any(not r["ok"] for r in rows):
        sys.stderr.write(done.stderr[-4000:])
        rows.append({"transformers": str(python), "folder": "-", "check": "loader", "ok": False,
                     "detail": f"exited {done.returncode}"})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="folder for the written checkpoints (default: a temporary one)")
    args = parser.parse_args(argv)
    start = time.time()
    work = args.work or Path(tempfile.mkdtemp(prefix="rexbert-compat-"))
    work.mkdir(parents=True, exist_ok=True)
    folders = write_folders(work)
    rows = run_loader(legacy_python(), work, folders) + run_loader(sys.executable, work, folders)
    for r in rows:
        print(f"{'ok  ' if r['ok'] else 'FAIL'} transformers {r['transformers']:<8} {Path(r['folder']).name:<18} "
              f"{r['check']:<24} {r['detail']}")
    failed = sum(not r["ok"] for r in rows)
    print(f"compat check: {len(rows) - failed} passed, {failed} failed in {time.time() - start:.0f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
