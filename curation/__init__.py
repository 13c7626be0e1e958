"""Ecom-niverse curation (paper §3) on datatrove.

domain selection -> per-domain sampling -> LLM relevance labels -> audit -> per-domain fastText
classifiers -> filtering pipeline (English ID, boilerplate/quality, profanity, score threshold,
MinHash near-dedup) -> Parquet shards + dataset card -> Hub. Each stage is a function here and a
`rexbert curate <stage>` subcommand.
"""
