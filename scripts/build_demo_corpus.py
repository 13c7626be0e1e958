"""Builds the bundled demo corpus (`rexbert/corpus/*.jsonl`) from the shared real-data folder.

Records: {"id", "text", "source", "kind"} where kind is "ecommerce" or "general". Product reviews
become one document per review, product pages one per product; speeches and chapters one per
document. Run once by maintainers: `python scripts/build_demo_corpus.py /path/to/shared/data`.
"""

from __future__ import annotations

import csv
import json
import random
import re
import sys
from pathlib import Path

from rexbert.core.html_text import html_to_text

SPACE = re.compile(r"\s+")


def reviews(folder: Path):
    """Hu & Liu reviews: `[t]` starts a review; `aspect[+2]##sentence` lines hold its sentences."""
    for path in sorted(folder.glob("*.txt")):
        if path.name == "README.txt":
            continue
        review: list[str] = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("*"):
                continue
            if line.startswith("[t]"):
                if review:
                    yield path.stem, " ".join(review)
                review = [line[3:].strip()]
            elif "##" in line:
                review.append(line.split("##", 1)[1].strip())
        if review:
            yield path.stem, " ".join(review)


def pros_cons(folder: Path, per_file: int, rng: random.Random):
    for name in ("IntegratedPros.txt", "IntegratedCons.txt"):
        lines = [html_to_text(line, one_line=True)
                 for line in (folder / name).read_text(encoding="utf-8").splitlines() if line.strip()]
        lines = [line for line in lines if len(line) > 20]
        for line in rng.sample(lines, per_file):
            yield name.removesuffix(".txt"), line


def products(path: Path):
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = json.loads(line)["fields"]
        bullets = fields.get("bullets") or []
        parts = [fields.get("title", ""), *(bullets if isinstance(bullets, list) else [bullets]),
                 fields.get("description", "")]
        yield fields["id"], html_to_text(" ".join(p for p in parts if p), one_line=True)


def speeches(folder: Path, limit: int | None = None):
    files = sorted(p for p in folder.iterdir() if p.suffix == ".txt")
    for path in files[-limit:] if limit else files:
        text = path.read_text(encoding="utf-8", errors="replace")
        yield path.stem, " ".join(SPACE.sub(" ", block).strip() for block in text.split("\n\n") if block.strip())


def chapters(path: Path):
    text = path.read_text(encoding="utf-8")
    for number, chapter in enumerate(re.split(r"\nCHAPTER [IVX]+\.?\n", text)[1:], start=1):
        yield f"chapter-{number}", " ".join(SPACE.sub(" ", p).strip() for p in chapter.split("\n\n") if p.strip())


def main(shared: Path, out: Path) -> None:
    rng = random.Random(0)
    out.mkdir(parents=True, exist_ok=True)
    ecommerce = [("hu-liu-reviews", f"{stem}-{i}", text) for folder in ("product_reviews_1", "product_reviews_2")
                 for i, (stem, text) in enumerate(reviews(shared / "ecommerce" / folder))]
    ecommerce += [("epinions-pros-cons", f"{kind}-{i}", text)
                  for i, (kind, text) in enumerate(pros_cons(shared / "ecommerce" / "pros_cons", 2500, rng))]
    ecommerce += [("amazon-esci", pid, text)
                  for pid, text in products(shared / "ecommerce" / "esci_sample" / "sample-products.jsonl")]
    with (shared / "ecommerce" / "wands_queries" / "query.csv").open() as handle:
        ecommerce += [("wayfair-wands-queries", row["query_id"], row["query"])
                      for row in csv.DictReader(handle, delimiter="\t")]
    general = [("inaugural", stem, text) for stem, text in speeches(shared / "general" / "inaugural")]
    general += [("state-of-the-union", stem, text) for stem, text in speeches(shared / "general" / "state_union", 20)]
    general += [("botchan", stem, text) for stem, text in chapters(shared / "general" / "botchan" / "botchan.txt")]
    for kind, documents in (("ecommerce", ecommerce), ("general", general)):
        with (out / f"{kind}.jsonl").open("w") as handle:
            for source, doc_id, text in documents:
                if text.strip():
                    handle.write(json.dumps({"id": f"{source}/{doc_id}", "text": text, "source": source,
                                             "kind": kind}) + "\n")
        print(kind, len(documents), "documents", (out / f"{kind}.jsonl").stat().st_size // 1024, "KB")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parents[1] / "rexbert" / "corpus")
