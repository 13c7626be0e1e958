"""`rexbert export onnx`: a serving folder for ONNX Runtime from a published RexBERT (or ModernBERT) folder.

The folder holds what a server needs and nothing it does not: `config.json` (stock ModernBERT keys),
the tokenizer, the sentence-transformers config (pooling, max_seq_length, prompts) and
`onnx/model.onnx` -- the encoder (`input_ids`, `attention_mask` -> `last_hidden_state`, batch size and length
dynamic), exported by torch's dynamo exporter through `modeling_rexbert.export.export_onnx`. With
`quantize="int8"` also `onnx/model_int8.onnx`: ONNX Runtime's dynamic quantization of the MatMul weights
(int8 weights, activations quantized per batch at run time; LayerNorms, GELU, softmax stay float32).

Every export is checked before it is reported: ONNX Runtime against the PyTorch encoder on the bundled ESCI
products (max |difference| of `last_hidden_state` at real tokens), the int8 file's sentence embeddings by
cosine to float32; the numbers are written to `onnx/export_check.json`.

    rexbert export onnx --model rexbert-demo/phase3 --output rexbert-demo/phase3-onnx --quantize int8
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SENTENCE_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling")
CHECK_FILE = "onnx/export_check.json"


@dataclass
class ExportCheck:
    """What the export was checked against: rows, max |ONNX - PyTorch| of the hidden states at real tokens,
    and (int8) the lowest and mean cosine of the int8 sentence embeddings to the float32 ones."""

    rows: int
    max_abs_diff: float
    int8_min_cosine: float | None = None
    int8_mean_cosine: float | None = None

    def lines(self) -> list[str]:
        out = [f"ONNX Runtime vs PyTorch on {self.rows} products: max |difference| {self.max_abs_diff:.2e}"]
        if self.int8_min_cosine is not None:
            out.append(f"int8 vs float32 sentence embeddings: cosine min {self.int8_min_cosine:.4f}, "
                       f"mean {self.int8_mean_cosine:.4f}")
        return out


def sample_texts(limit: int = 16) -> list[str]:
    """Titles and descriptions of the bundled ESCI products (real product text, some longer than 128 tokens)."""
    path = Path(__file__).parent / "corpus" / "eval" / "esci" / "sample-products.jsonl"
    rows = [json.loads(line)["fields"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [f"{row.get('title', '')} {row.get('description', '')}".strip() for row in rows][:limit]


def quantize_int8(source: str | Path, destination: str | Path) -> Path:
    """ONNX Runtime dynamic quantization of the MatMul weights to int8 (the linear layers; the embedding
    table and norms stay float32)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))
    # The exporter's recorded intermediate shapes can disagree with ONNX's own inference (which the quantizer
    # runs and then refuses); the shapes are re-inferred from the graph without them.
    del model.graph.value_info[:]
    quantize_dynamic(model, str(destination), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    return Path(destination)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def check_export(folder: Path, model, tokenizer, pooling: str, texts: list[str]) -> ExportCheck:
    """Compares the exported file(s) with the PyTorch encoder on `texts` (padded batch, one call)."""
    import torch

    from evaluation.embedding import encode
    from evaluation.onnx_encoder import ONNX_FILES, load_onnx_encoder

    encoder, _ = load_onnx_encoder(folder)
    batch = tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.inference_mode():
        expected = model(**batch).last_hidden_state.numpy()
    got = encoder(**batch)[0]
    real = batch["attention_mask"].bool().numpy()
    check = ExportCheck(rows=len(texts), max_abs_diff=float(np.abs(got[real] - expected[real]).max()))
    if (folder / ONNX_FILES["int8"]).is_file():
        quantized, _ = load_onnx_encoder(folder, "int8")
        full = encode(encoder, tokenizer, texts, pooling=pooling)
        cos = _cosines(encode(quantized, tokenizer, texts, pooling=pooling), full)
        check.int8_min_cosine, check.int8_mean_cosine = float(cos.min()), float(cos.mean())
    return check


def _copy_sentence_config(source: str, destination: Path, hidden_size: int, max_length: int) -> None:
    """The source folder's sentence-transformers files (its pooling and prompts), else the default ones."""
    from modeling_rexbert.sentence_transformers_config import write_config

    source_path = Path(source)
    if source_path.is_dir() and (source_path / "modules.json").is_file():
        for name in SENTENCE_FILES:
            item = source_path / name
            if item.is_dir():
                shutil.copytree(item, destination / name)
            elif item.is_file():
                shutil.copy2(item, destination / name)
    else:
        write_config(destination, hidden_size=hidden_size, max_seq_length=max_length)


def export_onnx_folder(model: str | Path, output: str | Path, quantize: str | None = None,
                       check: bool = True) -> ExportCheck | None:
    """Writes the serving folder of `model` (a folder or Hub id, RexBERT or stock ModernBERT format) to
    `output` (new or empty) and returns the check of ONNX Runtime against PyTorch (None if `check=False`)."""
    from evaluation.embedding import load_encoder, read_sentence_settings
    from modeling_rexbert.convert import to_modernbert_config
    from modeling_rexbert.export import export_onnx
    from modeling_rexbert.tokenization_rexbert import save_tokenizer

    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be 'int8' or None, not {quantize!r}")
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise FileExistsError(f"{output} exists and is not empty; choose a new output folder.")
    encoder, tokenizer = load_encoder(str(model), device="cpu")
    output.mkdir(parents=True, exist_ok=True)
    to_modernbert_config(encoder.config, architectures=["ModernBertModel"]).save_pretrained(str(output))
    save_tokenizer(tokenizer, output)
    _copy_sentence_config(str(model), output, encoder.config.hidden_size, encoder.config.max_position_embeddings)
    fp32 = export_onnx(encoder, output / "onnx" / "model.onnx")
    if quantize == "int8":
        quantize_int8(fp32, output / "onnx" / "model_int8.onnx")
    if not check:
        return None
    result = check_export(output, encoder, tokenizer, read_sentence_settings(output).pooling, sample_texts())
    (output / CHECK_FILE).write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    return result


def register(subparsers: argparse._SubParsersAction) -> None:
    from rexbert.cli import add_command

    parser = add_command(subparsers, "export")
    formats = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)
    onnx = formats.add_parser("onnx", help="an ONNX Runtime serving folder (encoder -> last_hidden_state)",
                              description="Export a model folder's encoder to ONNX (torch's dynamo exporter) with its "
                              "tokenizer and sentence-transformers config, checked against PyTorch on real products.")
    onnx.add_argument("--model", required=True, help="model folder or Hub id (RexBERT or stock ModernBERT format)")
    onnx.add_argument("--output", required=True, help="new output folder")
    onnx.add_argument("--quantize", choices=["int8"], help="also write onnx/model_int8.onnx (dynamic int8 MatMuls)")
    onnx.set_defaults(func=run_export_onnx)


def run_export_onnx(args: argparse.Namespace) -> None:
    result = export_onnx_folder(args.model, args.output, quantize=args.quantize)
    print(f"Wrote {args.output}/onnx/model.onnx" + (" and model_int8.onnx" if args.quantize else ""))
    print("\n".join(result.lines()))
