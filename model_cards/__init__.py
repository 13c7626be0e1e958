"""RexBERT model_cards (see the project README; this package's issue has not landed yet)."""
