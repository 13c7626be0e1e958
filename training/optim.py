"""StableAdamW and the Warmup-Stable-Decay schedule for one phase (batch-size warmup: `budget.BatchSchedule`)."""

from __future__ import annotations

import optimi
import torch
from transformers import get_wsd_schedule

from .config import PhaseConfig


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, config: PhaseConfig) -> optimi.StableAdamW:
    """StableAdamW (update clipping, so no separate gradient clipping); norms and biases get no weight decay.

    Weight decay is fully decoupled, as in ModernBERT and Ettin (Composer's `decoupled_stableadamw`),
    whose values Table 2 reports: a step multiplies the weights by `1 - weight_decay * lr_t / lr`.
    optimi's default (`decouple_lr=False`) would multiply by `1 - lr_t * weight_decay`, hundreds to
    thousands of times weaker at these learning rates."""
    groups = optimi.param_groups_weight_decay(model, weight_decay)
    return optimi.StableAdamW(groups, lr=lr, betas=config.optimizer.betas, eps=config.optimizer.eps,
                              weight_decay=weight_decay, decouple_lr=True, max_lr=lr)


def build_scheduler(optimizer: torch.optim.Optimizer, config: PhaseConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Warmup, stable, then 1-sqrt decay over the last `decay_steps` (phase 1: warmup + stable; phase 3: decay)."""
    opt = config.optimizer
    return get_wsd_schedule(optimizer, num_warmup_steps=opt.warmup_steps, num_decay_steps=opt.decay_steps,
                            num_training_steps=config.run.max_steps, decay_type="1-sqrt",
                            min_lr_ratio=opt.min_lr_ratio)

