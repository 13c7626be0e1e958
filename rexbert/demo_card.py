"""The demo model's card text: what the model is, the recipe it really trained with, and what its
numbers can and cannot say. `rexbert demo` passes these to `model_cards.card.render_model_card`."""

from __future__ import annotations

TLDR = ("{name} is a smoke test of the RexBERT pipeline, not a usable encoder: a {layers}-layer ModernBERT-architecture "
        "model (hidden size {hidden}) trained for {steps} steps on {tokens} tokens of a {size} bundled sample. "
        "It proves that curation, the three-phase curriculum, evaluation and publishing fit together; do not use it "
        "for product search or any other task.")

GENERAL_TEXT = ("US presidential inaugural addresses and State of the Union addresses and the novel *Botchan* "
                "(public domain)")
COMMERCE_TEXT = ("Amazon product reviews and Epinions pros/cons (CC BY 4.0), Amazon ESCI product pages (Apache-2.0) "
                 "and Wayfair WANDS queries (MIT), curated by the demo's `rexbert curate` run")

LIMITATIONS = ("A demo model: a few minutes of CPU training on about 3 MB of text. Its \"general\" text is "
               f"{GENERAL_TEXT}, not web text; its e-commerce text is {COMMERCE_TEXT}. Its scores show that the "
               "evaluation runs, not what RexBERT achieves; English only.")

ESCI_NOTE = ("> **Warning:** the ESCI row is trained and scored on the same {pairs} query-product pairs (the one "
             "ESCI query bundled with the demo), so it measures neither generalisation nor ranking quality; "
             "a correlation over so few pairs, positive or negative, is noise. Real runs use ESCI's own splits "
             "(`rexbert eval cosent --dataset tasksource/esci`).")


def recipe_table(phases: list, trained: list[dict]) -> str:
    """The three phases as configured and as run (`model_cards.run_record.recipe_table`): data, row length, masking,
    learning rate, steps and tokens."""
    from model_cards.run_record import recipe_table as table

    return ("As trained by `rexbert demo` (the paper's recipe is 512 / 8,192 / 8,192 tokens over about 2.3T "
            "tokens):\n\n" + table([{"config": p.to_dict(), "summary": t} for p, t in zip(phases, trained)]))


def card_text(name: str, model_config: dict, phases: list, trained: list[dict], esci_pairs: int,
              corpus_mb: float) -> dict:
    """render_model_card keyword arguments for the demo model."""
    tldr = TLDR.format(name=name, layers=model_config["num_hidden_layers"], hidden=model_config["hidden_size"],
                       steps=sum(t["steps"] for t in trained), tokens=f"{sum(t['tokens'] for t in trained):,}",
                       size=f"{corpus_mb:.0f} MB")
    return {"tldr": tldr, "recipe": recipe_table(phases, trained), "limitations": LIMITATIONS,
            "notes": [ESCI_NOTE.format(pairs=esci_pairs)]}
