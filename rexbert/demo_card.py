"""The demo model's card text: what the model is, the recipe it really trained with, and what its numbers can and
cannot say. The words are macros of `model_cards/templates/demo_card.md`; this fills in the numbers, and
`rexbert demo` passes the result to `model_cards.card.render_model_card`."""

from __future__ import annotations

from pathlib import Path


def _macros():
    import jinja2

    import model_cards

    template = Path(model_cards.__file__).with_name("templates") / "demo_card.md"
    return jinja2.Template(template.read_text(encoding="utf-8")).module


def recipe_table(phases: list, trained: list[dict]) -> str:
    """The three phases as configured and as run (`model_cards.run_record.recipe_table`): data, row length, masking,
    learning rate, steps and tokens."""
    from model_cards.run_record import recipe_table as table

    return str(_macros().recipe(table([{"config": p.to_dict(), "summary": t} for p, t in zip(phases, trained)])))


def card_text(name: str, model_config: dict, phases: list, trained: list[dict], esci_pairs: int,
              corpus_mb: float) -> dict:
    """render_model_card keyword arguments for the demo model."""
    macros = _macros()
    tldr = macros.tldr(name=name, layers=model_config["num_hidden_layers"], hidden=model_config["hidden_size"],
                       steps=sum(t["steps"] for t in trained), tokens=f"{sum(t['tokens'] for t in trained):,}",
                       size=f"{corpus_mb:.0f} MB")
    return {"tldr": str(tldr), "recipe": recipe_table(phases, trained), "limitations": str(macros.limitations()),
            "notes": [str(macros.esci_note(pairs=esci_pairs))]}
