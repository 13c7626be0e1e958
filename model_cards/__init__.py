"""Model cards from RexBERT evaluation results, and publishing checkpoints to the Hub."""

from .card import push_model, render_model_card, upload_plan

__all__ = ["push_model", "render_model_card", "upload_plan"]
