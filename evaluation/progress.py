"""A progress bar for fine-tuning (GLUE, CoSENT) like the other long commands': steps done, elapsed time and the
ETA, labelled with what runs. transformers' own bar also prints every log dict (the run's timing dict at the
end); this one prints only the bar."""

from __future__ import annotations

from tqdm.auto import tqdm
from transformers import PrinterCallback, ProgressCallback, TrainerCallback


class FineTuningBar(TrainerCallback):
    """One bar per `trainer.train()`: `desc` and `n/total steps [elapsed<ETA, rate]`, on the main process only."""

    def __init__(self, desc: str):
        self.desc, self.bar, self.done = desc, None, 0

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar, self.done = tqdm(total=state.max_steps, desc=self.desc, unit="step", dynamic_ncols=True), 0

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.done)
            self.done = state.global_step

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def show_progress(trainer, desc: str, show: bool = True) -> None:
    """Replaces the trainer's printing callbacks by `FineTuningBar(desc)` (or by nothing when not `show`)."""
    trainer.remove_callback(PrinterCallback)  # it prints the run's timing dict; the results table follows
    trainer.remove_callback(ProgressCallback)
    if show:
        trainer.add_callback(FineTuningBar(desc))
