"""The demo corpus: real e-commerce and general text laid out like FineFineWeb
(`<domain>/<domain>_000000.jsonl`, records `id`, `text`, `domain`, `url`), with `source_label`
(1 = e-commerce origin, 0 = general) for the provenance labeler, plus a few non-English product texts
and planted near-duplicates so every filter has work to do. Its text comes from the bundled corpus
(`rexbert/corpus/`, what `rexbert demo` uses) or, smaller, from the test samples in `tests/data/`."""

from __future__ import annotations

import json
import os
import re

from rexbert.core.html_text import html_to_text
from rexbert.core.paths import BUNDLED_CORPUS

_ASPECT = re.compile(r"^[^#]*##")  # Hu & Liu aspect annotations: "camera[+3],size[+2]##I'm ..."
CAMERAS = ("Canon", "Nikon")  # reviews of these go to `photo`, a domain taken whole
PROS_CONS = "epinions-pros-cons"  # short phrases, grouped ten to a document

# Written for this project: product texts in German, French and Spanish (language-ID must drop them).
NON_ENGLISH = [
    ("de", "Diese Edelstahl-Trinkflasche hält Getränke 24 Stunden lang kalt und 12 Stunden lang heiß. "
           "Der Deckel ist auslaufsicher, die Flasche passt in jeden Getränkehalter und ist spülmaschinenfest. "
           "Farbe: Mitternachtsblau. Fassungsvermögen: 750 ml. Lieferung innerhalb von zwei Werktagen."),
    ("de", "Ich habe die Kamera vor drei Monaten gekauft und bin sehr zufrieden. Die Bildqualität ist auch "
           "bei wenig Licht hervorragend, der Akku hält einen ganzen Tag und das Gehäuse wirkt robust."),
    ("fr", "Ce sac à dos imperméable en nylon recyclé possède un compartiment rembourré pour ordinateur "
           "portable de 15 pouces, deux poches latérales et des bretelles réglables. Livraison gratuite dès "
           "50 euros d'achat et retour sous trente jours."),
    ("fr", "J'ai commandé ces écouteurs sans fil pour courir. Ils tiennent bien dans les oreilles, le son est "
           "clair et la batterie dure environ huit heures. Je les recommande pour ce prix."),
    ("es", "Esta chaqueta impermeable para mujer está hecha de poliéster reciclado y tiene capucha ajustable, "
           "bolsillos con cremallera y costuras selladas. Disponible en las tallas S, M, L y XL. Envío gratis "
           "en pedidos superiores a 40 euros."),
    ("es", "Compré esta licuadora hace un mes y funciona muy bien. Tiene seis velocidades, el vaso de vidrio "
           "es fácil de limpiar y el motor de 1000 vatios tritura hielo sin problemas."),
]


def _reviews(path: str) -> list[str]:
    """One document per review ("[t]" starts a review); annotation prefixes removed."""
    with open(path, encoding="utf-8", errors="replace") as f:
        body = f.read()
    reviews = []
    for chunk in body.split("[t]")[1:]:
        lines = [_ASPECT.sub("", line).strip() for line in chunk.splitlines()[1:]]
        text = " ".join(line for line in lines if line)
        if len(text.split()) >= 20:
            reviews.append(text)
    return reviews


def _paragraph_docs(path: str, words: int = 120) -> list[str]:
    """Consecutive paragraphs merged into documents of about `words` words."""
    with open(path, encoding="utf-8", errors="replace") as f:
        # these sources put one paragraph on each line
        paragraphs = [" ".join(p.split()) for p in f.read().splitlines() if p.strip()]
    docs, current = [], []
    for p in paragraphs:
        current.append(p)
        if sum(len(x.split()) for x in current) >= words:
            docs.append("\n".join(current))
            current = []
    if current:
        docs.append("\n".join(current))
    return [d for d in docs if len(d.split()) >= 30]


def _esci_products(path: str) -> list[str]:
    docs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = json.loads(line)["fields"]
            parts = [fields.get("title", "")]
            if fields.get("brand"):
                parts.append(f"Brand: {fields['brand']}")
            if fields.get("color"):
                parts.append(f"Color: {fields['color']}")
            bullets = fields.get("bullets") or fields.get("bullet_points") or ""
            for markup in (fields.get("description") or "", bullets):
                parts += [ln.strip() for ln in html_to_text(markup).splitlines() if ln.strip()]
            docs.append("\n".join(p for p in parts if p))
    return docs


def _records(source: str, texts: list[str], name: str | None = None) -> list[dict]:
    return [{"id": f"{source}/{name or source}-{i}", "text": text, "source": source} for i, text in enumerate(texts)]


def _test_sample_records(data_dir: str) -> tuple[list[dict], list[str]]:
    """(e-commerce records, general texts) from the test samples in `data_dir` (tests/data), in the
    bundled corpus's record shape (`id`, `text`, `source`)."""
    cur = os.path.join(data_dir, "curation")
    reviews = {name: _reviews(os.path.join(folder, f"{name}.txt")) for folder, name in
               ((cur, "Diaper_Champ"), (cur, "Hitachi_router"), (os.path.join(data_dir, "text"), "Canon_G3-reviews"))}
    with open(os.path.join(data_dir, "glue_sst2_format", "train.jsonl"), encoding="utf-8") as f:
        phrases = [json.loads(line)["sentence"] for line in f if line.strip()]
    ecommerce = [record for name, texts in reviews.items() for record in _records("reviews", texts, name)]
    ecommerce += _records("esci", _esci_products(os.path.join(data_dir, "esci_sample", "sample-products.jsonl")))
    ecommerce += _records(PROS_CONS, phrases)
    general = [doc for path in (os.path.join(cur, "1947-Truman.txt"), os.path.join(cur, "1950-Truman.txt"),
                                os.path.join(data_dir, "text", "1861-Lincoln.txt")) for doc in _paragraph_docs(path)]
    return ecommerce, general


def _bundled_records() -> tuple[list[dict], list[str]]:
    """(e-commerce records, general texts) of the bundled corpus (`rexbert/corpus/{ecommerce,general}.jsonl`)."""
    def records(name: str) -> list[dict]:
        with open(BUNDLED_CORPUS / name, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    return records("ecommerce.jsonl"), [record["text"] for record in records("general.jsonl")]


def write_demo_corpus(out_dir: str, test_samples: str | None = None, near_duplicates: int = 6) -> dict[str, int]:
    """Writes the demo corpus into `out_dir` from the bundled corpus, or from the test samples in
    `test_samples` (tests/data) when given; returns documents per domain. Camera reviews go to photo,
    other e-commerce text and the general text are spread over hobby and news, pros/cons phrases are
    grouped ten to a document."""
    ecommerce, general = _test_sample_records(test_samples) if test_samples else _bundled_records()
    commerce: dict[str, list[str]] = {}
    photo: list[str] = []
    phrases: list[str] = []
    for record in ecommerce:
        if record["source"] == PROS_CONS:
            phrases.append(record["text"])
        elif record["id"].split("/", 1)[-1].startswith(CAMERAS):
            photo.append(record["text"])
        else:
            commerce.setdefault(record["source"], []).append(record["text"])
    commerce["pros_cons"] = ["\n".join(phrases[i:i + 10]) for i in range(0, len(phrases) - 9, 10)]
    return _write_layout(commerce, general, photo, out_dir, near_duplicates)


def _write_layout(commerce: dict[str, list[str]], general: list[str], photo: list[str], out_dir: str,
                      near_duplicates: int = 6) -> dict[str, int]:
    """Domains: `hobby` and `news` need filtering (both hold e-commerce and general text), `photo` is
    taken whole; adds the non-English texts and `near_duplicates` planted near-duplicates."""
    records: dict[str, list[dict]] = {"hobby": [], "news": [], "photo": []}

    def add(domain: str, text: str, label: int, origin: str) -> None:
        n = len(records[domain])
        records[domain].append({"id": f"{domain}-{n:05d}", "text": text, "domain": domain,
                                "url": f"https://example.com/{origin}/{n}", "source_label": label})

    # alternate e-commerce sources between the two filtered domains so both get both classes
    shop = [(text, f"shop-{origin}") for origin, texts in commerce.items() for text in texts]
    for i, (text, origin) in enumerate(shop):
        add("hobby" if i % 2 == 0 else "news", text, 1, origin)
    for i, text in enumerate(general):
        add("news" if i % 3 else "hobby", text, 0, "speech")
    for text in photo:
        add("photo", text, 1, "camera-reviews")
    for lang, text in NON_ENGLISH:
        add("hobby", text, 1, f"foreign-{lang}")
    # planted near-duplicates: a copy of an existing review with a changed first word and an appended line
    for i in range(near_duplicates):
        original = records["hobby"][i]["text"]
        add("hobby", "Honestly, " + original + "\nPosted again by another user.", 1, "mirror")
    counts = {}
    for domain, rows in records.items():
        os.makedirs(os.path.join(out_dir, domain), exist_ok=True)
        with open(os.path.join(out_dir, domain, f"{domain}_000000.jsonl"), "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        counts[domain] = len(rows)
    return counts
