"""RexBERT's foundation: what every stage shares (config schema, document reader, file fingerprints,
safe output writing, Hub upload, plotting, HTML to text, `datasets` file builders, bundled data paths).

Imported by every stage (curation, training, evaluation, model cards) and by the CLI and demo on top;
imports no stage, so the arrows only run downward.
"""
