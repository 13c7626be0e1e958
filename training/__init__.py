"""RexBERT training curriculum: phase configs, the data path, the Accelerate loop and its CLI.

In the order the data flows: `config` (phase YAML -> `PhaseConfig`), `presets` (Table 2's LR and
weight decay), `budget` (token budgets -> steps), `shards` (tokenize once into memory-mapped shards),
`packing` (best-fit packed rows), `corpus` (a phase's training and held-out rows; the held-out
file), `masking`, `spans` and `collator` (span masking with Guided MLM), `mixture` (which source
each sample comes from), `phase_model` (a phase's model config), `optim`, `checkpoints`, `lock`,
`loop` (one phase -> a `save_pretrained` folder), `curriculum` (phases in order), `plan` (what a
run will do, from its configs alone) and `cli` (`rexbert train`, `python -m training`).
"""
