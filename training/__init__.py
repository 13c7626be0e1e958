"""RexBERT training curriculum (in progress): the data path is here (span masking with Guided MLM,
best-fit packing, commerce span mining); the Accelerate loop, configs and CLI are not yet."""
