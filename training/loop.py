"""One training phase with Accelerate: one CPU, one GPU, DDP/FSDP and multi-node from the same code.

Each optimizer step draws its samples from the mixture (the same draw on every process), gives each
process its share of micro-batches, and scales each micro-batch's mean loss so that the step's
gradient is the mean over every masked token of the global batch, whatever the accumulation or
world size. A non-finite loss stops the run before the optimizer step, so the last checkpoint stays
good. The phase ends with a `save_pretrained` export in `<output root>/<phase name>/`, which holds the model
only; checkpoints, logs, metrics, the summary and the held-out documents (`heldout/<source>.jsonl`) live
beside it in `<output root>/<phase name>-run/`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from tqdm.auto import tqdm

from modeling_rexbert import RexBertConfig, RexBertForMaskedLM
from modeling_rexbert.tokenization_rexbert import check_vocab_matches, load_tokenizer, save_tokenizer
from rexbert.core.hub_upload import check_hub_answers
from rexbert.core.model_publish import publish_model_folder
from rexbert.core.outputs import claim_output, mark_output, writing
from rexbert.core.paths import hub_failure, looks_local
from rexbert.core.weights import check_weight_files

from .checkpoints import (
    CONFIG_FILE,
    STATE_FILE,
    check_resumable,
    list_checkpoints,
    load_accelerator_state,
    newest_intact,
    save_checkpoint,
)
from .collator import MLMCollator
from .budget import BatchSchedule, launch_world_size, resolve
from .config import ConfigError, PhaseConfig
from .capping import capped_summary, phase_mixture
from .corpus import HELDOUT_FOLDER, SourceRows, prepare_sources, write_heldout
from .lock import folder_lock
from .masking import MaskingConfig
from .mixture import MixtureSampler
from .optim import build_optimizer, build_scheduler
from .phase_model import phase_model_config, rope_thetas
from .presets import fill_optimizer_defaults
from .spans import SpanLexicon

EVAL_PHASE = 0  # the held-out masks' rng stream; phases are numbered from 1
SUMMARY_FILE = "training_summary.json"
METRICS_FILE = "metrics.jsonl"
RUN_SUFFIX = "-run"
# dense bf16 peak FLOP/s, for MFU; other GPUs report no MFU rather than a wrong one
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "L4": 121e12}


def run_dir(root: str | Path, phase: str) -> Path:
    """A phase's run state (checkpoints/, logs/, metrics.jsonl, training_summary.json, heldout/, the lock), kept
    out of the exported model folder so that the folder is exactly what gets published."""
    return Path(root) / f"{phase}{RUN_SUFFIX}"


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last checkpoint (written before it) is intact."""


@dataclass
class Progress:
    """The loop's position, saved in every checkpoint next to the model and optimizer."""

    step: int = 0
    tokens: int = 0

    def state_dict(self) -> dict:
        return {"step": self.step, "tokens": self.tokens}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.tokens = int(state["step"]), int(state["tokens"])


# --- setup -----------------------------------------------------------------------------------------

def resolve_init(config: PhaseConfig, root: Path) -> str:
    """The folder (or Hub id) a phase starts from: a previous phase under `root`, or a path."""
    name = config.model.init_from
    if (root / name / "config.json").is_file():
        check_weight_files(root / name)
        return str(root / name)
    if (root / name).exists():
        raise FileNotFoundError(f"{config.name} starts from {root / name}, which has no exported model yet: "
                                f"run that phase to the end first.")
    if Path(name).expanduser().exists():
        check_weight_files(Path(name).expanduser())
        return str(Path(name).expanduser())
    if "/" not in name or looks_local(name):
        raise FileNotFoundError(f"{config.name}: model.init_from {name!r} is neither a phase under {root} "
                                f"nor a folder ({Path(name).expanduser().absolute()} does not exist); run that phase "
                                "first, or fix the path.")
    check_hub_answers(name, f"{config.name}: model.init_from")  # a server that never answers: one line, not a hang
    return name


def model_config(config: PhaseConfig, root: Path) -> tuple[RexBertConfig, str | None]:
    """The phase's model config (preset or previous phase, with `model.overrides`) and the folder to
    load weights from, if any."""
    folder = resolve_init(config, root) if config.model.init_from is not None else None
    base = None
    if folder is not None:
        try:
            base = RexBertConfig.from_pretrained(folder, **_revision(config, folder))
        except OSError as error:
            if Path(folder).exists():
                raise
            raise hub_failure(folder, f"{config.name}: model.init_from", error) from None
    result = phase_model_config(config, base)
    if base is not None:  # the plan may not have seen a Hub start's config (offline): check it now, before the weights
        for kind, theta in rope_thetas(result).items():
            before = rope_thetas(base).get(kind)
            if before is not None and theta < before:
                raise ConfigError(f"{config.name}: model.overrides.rope_parameters.{kind}.rope_theta: {theta:g} is "
                                  f"below its start's ({folder}) {before:g}; RoPE theta never decreases between "
                                  "phases.")
    return result, folder


def _revision(config: PhaseConfig, folder: str | None) -> dict:
    """`revision=` for a Hub start pinned by `model.init_from_revision` (config.py allows it on Hub ids only)."""
    pinned = config.model.init_from_revision is not None and folder == config.model.init_from
    return {"revision": config.model.init_from_revision} if pinned else {}


def build_model(config: PhaseConfig, root: Path) -> RexBertForMaskedLM:
    """The phase's model: from scratch, or with the weights it starts from."""
    attn = config.model.attn_implementation
    model_cfg, folder = model_config(config, root)
    if folder is None:
        return RexBertForMaskedLM._from_config(model_cfg, attn_implementation=attn)
    return RexBertForMaskedLM.from_pretrained(folder, config=model_cfg, attn_implementation=attn,
                                              **_revision(config, folder))


def phase_tokenizer(config: PhaseConfig, root: Path):
    if config.model.init_from is not None:
        folder = Path(resolve_init(config, root))
        if (folder / "tokenizer.json").is_file():
            return load_tokenizer(folder)
    return load_tokenizer()


def flops_per_token(model_config: RexBertConfig, parameters: int, sequence_length: int, mask_rate: float) -> float:
    """Training FLOPs per token: 6 x non-embedding parameters, attention (global layers see the
    whole row, local ones their window) and the vocabulary projection on the masked share only."""
    hidden, vocab = model_config.hidden_size, model_config.vocab_size
    dense = parameters - vocab * hidden
    spans = [sequence_length if t == "full_attention" else min(sequence_length, model_config.local_attention)
             for t in model_config.layer_types]
    return 6 * dense + 12 * hidden * sum(spans) + 6 * mask_rate * vocab * hidden


def peak_flops() -> float | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((flops for key, flops in PEAK_FLOPS.items() if key in name), None)


def _flat(config: dict, prefix: str = "") -> dict:
    """Scalar hyper-parameters for the trackers (TensorBoard's hparams take no nested values)."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, f"{name}."))
        elif isinstance(value, (int, float, str, bool)):
            flat[name] = value
        elif value is not None:
            flat[name] = json.dumps(value)
    return flat


# --- the loop --------------------------------------------------------------------------------------

class PhaseRun:
    def __init__(self, config: PhaseConfig, root: Path, accelerator: Accelerator, progress: bool):
        self.config, self.root, self.accelerator = config, root, accelerator
        self.folder = root / config.name
        self.state_dir = run_dir(root, config.name)
        self.checkpoints = self.state_dir / "checkpoints"
        self.show = progress and accelerator.is_main_process
        self.tokenizer = phase_tokenizer(config, root)
        model = build_model(config, root)
        check_vocab_matches(self.tokenizer, model.config.vocab_size)
        with accelerator.main_process_first():  # tokenize once, then every process reads the cache
            self.sources: list[SourceRows] = prepare_sources(config, self.tokenizer, root, progress=self.show,
                                                              announce=accelerator.is_main_process)
        if accelerator.is_main_process:  # the file contract for evaluations outside the loop
            write_heldout(self.sources, self.tokenizer, self.state_dir / HELDOUT_FOLDER)
        self.batches = BatchSchedule(config, accelerator.num_processes)
        # the plan's mixture, capped (data.max_passes) against the sizes of the shards just opened
        mixture = phase_mixture(config, root, accelerator.num_processes)
        if self.show and any(mixture.capped):
            print(capped_summary(config, mixture), flush=True)
        self.sampler = MixtureSampler([len(s.train) for s in self.sources], mixture.schedule, config.run.seed,
                                      config.phase)
        config.check_files()
        lexicon = SpanLexicon.from_file(config.data.spans, self.tokenizer) if config.masking.guided_fraction > 0 \
            else None
        self.collator = MLMCollator(self.tokenizer, config.masking, config.run.seed, config.phase, lexicon)
        eval_masking = MaskingConfig(rate=config.masking.rate, mean_span=config.masking.mean_span)
        self.eval_collator = MLMCollator(self.tokenizer, eval_masking, config.heldout_seed, EVAL_PHASE)
        self.parameters = sum(p.numel() for p in model.parameters())
        self.flops_per_token = flops_per_token(model.config, self.parameters, config.data.sequence_length,
                                               config.masking.rate)
        optimizer = build_optimizer(model, config.optimizer.lr, config.optimizer.weight_decay, config)
        self.scheduler = build_scheduler(optimizer, config)
        # the scheduler is stepped by hand once per optimizer step, so it is registered, not prepared
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        self.state = Progress()

    # -- our resumable state: JSON in the checkpoint, so resuming unpickles none of it --

    def trainer_state(self) -> dict:
        return {"scheduler": self.scheduler.state_dict(), "sampler": self.sampler.state_dict(),
                "progress": self.state.state_dict()}

    def load_trainer_state(self, checkpoint: Path) -> None:
        state = json.loads((checkpoint / STATE_FILE).read_text())
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        self.state.load_state_dict(state["progress"])

    def save(self, step: int) -> None:
        save_checkpoint(self.accelerator, self.checkpoints, step, self.config, self.config.run.keep_last,
                        self.trainer_state())

    # -- data --

    def step_batches(self) -> list[dict[str, torch.Tensor]]:
        """This process's micro-batches for the next optimizer step. The step's rows are laid out micro-batch
        by micro-batch, each split across the processes, so that 1 process with accumulation 2 and 2 with
        accumulation 1 train on the same rows with the same masks (a sample's masks follow its index)."""
        acc = self.accelerator
        sizes = self.batches.micro_batches(self.state.step)
        draws = self.sampler.draw(self.state.step, acc.num_processes * sum(sizes))
        batches, offset = [], 0
        for size in sizes:
            start = offset + acc.process_index * size
            rows = [{**self.sources[d.source].train[d.row], "index": d.sample} for d in draws[start:start + size]]
            batches.append({k: v.to(acc.device) for k, v in self.collator(rows).items()})
            offset += acc.num_processes * size
        return batches

    def global_sum(self, value: float | int) -> float:
        return self.accelerator.reduce(torch.tensor(float(value), device=self.accelerator.device, dtype=torch.float64),
                                       reduction="sum").item()

    # -- one step --

    def train_step(self) -> dict:
        acc = self.accelerator
        self.model.train()
        batches = self.step_batches()
        masked = [int((b["labels"] != -100).sum()) for b in batches]
        global_masked = self.global_sum(sum(masked))
        loss_sum = 0.0
        for i, (batch, count) in enumerate(zip(batches, masked)):
            last = i == len(batches) - 1
            context = acc.no_sync(self.model) if not last else contextlib.nullcontext()
            with context, acc.autocast():
                loss = self.model(**batch, sparse_prediction=True).loss if count else None  # masked rows only
                if loss is not None:
                    # mean over this micro-batch -> its share of the global token mean (DDP averages over processes)
                    scaled = loss * (count * acc.num_processes / global_masked)
                else:
                    # no masked token: a zero loss on every parameter, so DDP's gradient all-reduce runs here too
                    # (a process that skipped backward would leave the others waiting in it forever)
                    scaled = sum(p.sum() * 0.0 for p in self.model.parameters())
                acc.backward(scaled)
            loss_sum += loss.detach().float().item() * count if loss is not None else 0.0
        step_loss = self.global_sum(loss_sum) / max(global_masked, 1.0)
        if not math.isfinite(step_loss):
            good = newest_intact(self.checkpoints, finite_weights=True)
            raise TrainingDivergedError(
                f"{self.config.name}: the loss is {step_loss} at step {self.state.step + 1}; nothing was saved after "
                f"it. The newest verified checkpoint (manifest intact, finite weights) is "
                f"{good if good else 'none'}. Lower the learning rate or check the data, then rerun with --resume"
                + (f" after deleting the checkpoints newer than {good.name}." if good else "."))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        tokens = self.global_sum(sum(int(b["attention_mask"].sum()) for b in batches))
        self.state.step += 1
        self.state.tokens += int(tokens)
        return {"loss": step_loss, "tokens": tokens, "rows": sum(len(b["input_ids"]) for b in batches) *
                acc.num_processes, "lr": self.scheduler.get_last_lr()[0]}

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Held-out MLM loss and top-1 accuracy per source (same rows and masks at every evaluation)."""
        self.model.eval()
        results, total = {}, [0.0, 0.0, 0.0]
        micro = self.config.batch.micro_batch_size
        for source in self.sources:
            count = min(len(source.heldout), self.config.data.eval_rows)
            loss_sum = correct = masked = 0.0
            for start in range(0, count, micro):
                rows = [{**source.heldout[i], "index": i} for i in range(start, min(start + micro, count))]
                batch = {k: v.to(self.accelerator.device) for k, v in self.eval_collator(rows).items()}
                with self.accelerator.autocast():
                    out = self.model(**batch, sparse_prediction=True)  # logits of the masked rows
                target = batch["labels"][batch["labels"] != -100]
                loss_sum += out.loss.float().item() * target.numel()
                correct += (out.logits.argmax(-1) == target).sum().item()
                masked += target.numel()
            if masked:
                results[f"eval/{source.name}/loss"] = loss_sum / masked
                results[f"eval/{source.name}/accuracy"] = correct / masked
                total = [total[0] + loss_sum, total[1] + correct, total[2] + masked]
        if total[2]:
            results["eval/loss"], results["eval/accuracy"] = total[0] / total[2], total[1] / total[2]
        return results

    # -- bookkeeping --

    def log(self, values: dict) -> None:
        self.accelerator.log(values, step=self.state.step)
        if self.accelerator.is_main_process:
            metrics = self.state_dir / METRICS_FILE
            with writing(metrics, exact=True), metrics.open("a") as handle:
                handle.write(json.dumps({"step": self.state.step, **values}) + "\n")

    def push(self, repo_id: str) -> None:
        """The exported folder to `repo_id` through `rexbert card push`'s path; the phase stays done if it fails."""
        try:
            publish_model_folder(self.folder, repo_id, commit_message=f"Upload {self.config.name}")
        except (OSError, ValueError) as error:  # HubUnreachable is an OSError
            raise PushFailed(f"{self.config.name} is trained and exported to {self.folder}, but run.push_to_hub "
                              f"failed: {error} Fix it and publish with `rexbert card push --model {self.folder} "
                              f"--repo-id {repo_id}` (after `rexbert card render`).") from None

    def export(self, summary: dict) -> None:
        acc = self.accelerator
        acc.wait_for_everyone()
        state_dict = acc.get_state_dict(self.model)
        with writing(self.folder, native_writers=True):  # the checkpoints stay whatever happens here
            if acc.is_main_process:  # the phase's tokenizer, once: the model's save_pretrained then bundles none
                save_tokenizer(self.tokenizer, self.folder)
            acc.unwrap_model(self.model).save_pretrained(self.folder, is_main_process=acc.is_main_process,
                                                         save_function=acc.save, state_dict=state_dict)
            if acc.is_main_process:  # the config the phase ran with, for its model card (model_cards.run_record)
                (self.state_dir / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=1))
                (self.state_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))  # marks the phase as done
                if self.config.run.push_to_hub:  # as `rexbert card push` does: the allowlist, no local paths
                    self.push(self.config.run.push_to_hub)
        acc.wait_for_everyone()


class PushFailed(OSError):
    """`run.push_to_hub` refused or failed after the phase was trained and exported (nothing is lost)."""


def mixed_precision(config: PhaseConfig) -> str:
    if config.run.mixed_precision == "auto":
        return "bf16" if torch.cuda.is_available() else "no"
    return config.run.mixed_precision


def train_phase(config: PhaseConfig, output_root: str | Path, resume: bool = False, stop_after: int | None = None,
                progress: bool = True, overwrite: bool = False) -> dict:
    """Trains one phase into `<output_root>/<config.name>/` (run state in `run_dir`) and returns its summary.

    `resume` continues from the newest intact checkpoint (bit-identically); `stop_after` ends this
    session after that many steps with a checkpoint, for time-limited jobs that a later `resume`
    continues. The phase's run folder is locked for the run: a second run on it is refused. A fresh phase writes
    only into folders that are new, empty or this project's (`rexbert.core.outputs`), unless `overwrite`.
    """
    if stop_after is not None and stop_after <= 0:
        raise ConfigError(f"--stop-after must be a positive number of steps, got {stop_after}.")
    # token budgets -> steps for this launch's processes, and Table 2's LR and weight decay where unset; always,
    # so that the checkpoint records the same config whether the phase came from the CLI or from Python
    (config,) = fill_optimizer_defaults([resolve(config, launch_world_size())])
    old = Path(output_root) / config.name / "checkpoints"
    if old.is_dir():  # written before run state moved out of the export
        raise FileExistsError(f"{old} is where older versions kept checkpoints; move it to "
                              f"{run_dir(output_root, config.name) / 'checkpoints'} (with metrics.jsonl, logs/ and "
                              "training_summary.json beside it) to resume.")
    state = run_dir(output_root, config.name)
    if not (state / SUMMARY_FILE).is_file() and not list_checkpoints(state / "checkpoints"):  # a fresh phase
        for folder in (Path(output_root) / config.name, state):
            claim_output(folder, overwrite=overwrite, option="--output-dir")
    if int(os.environ.get("RANK", "0")) != 0:  # the launch's first process holds the lock for all
        return _train_phase(config, Path(output_root), resume, stop_after, progress)
    with folder_lock(run_dir(output_root, config.name)):
        return _train_phase(config, Path(output_root), resume, stop_after, progress)


def read_metrics(path: Path, up_to_step: int) -> list[str]:
    """The lines of `metrics.jsonl` up to `up_to_step`; a torn line (a crash mid-write) is dropped, naming it."""
    kept = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            step = json.loads(line)["step"]
        except (ValueError, KeyError, TypeError):
            print(f"{path}:{number}: dropping an unreadable metrics line (a write cut short)")
            continue
        if step <= up_to_step:
            kept.append(line)
    return kept


def _train_phase(config: PhaseConfig, root: Path, resume: bool, stop_after: int | None, progress: bool) -> dict:
    folder, state = root / config.name, run_dir(root, config.name)
    summary_file = state / SUMMARY_FILE
    main = int(os.environ.get("RANK", "0")) == 0
    if summary_file.is_file():
        if resume:
            if main:
                print(f"{config.name}: finished earlier ({summary_file}); nothing to resume there", flush=True)
            return json.loads(summary_file.read_text())
        raise FileExistsError(f"{folder} already holds a finished {config.name}; choose another --output-dir.")
    existing = list_checkpoints(state / "checkpoints")
    if existing and not resume:
        raise FileExistsError(f"{state} has checkpoints up to {existing[-1].name}; pass --resume to continue "
                              "or choose another --output-dir.")
    start_from = newest_intact(state / "checkpoints") if existing else None
    if existing and start_from is None:
        raise FileNotFoundError(f"no intact checkpoint in {state / 'checkpoints'} (all {len(existing)} are damaged); "
                                "delete them to start over.")
    if start_from is not None:
        check_resumable(start_from, config)  # before any model is built or data read
        if main:
            print(f"{config.name}: resuming from {start_from}", flush=True)
    elif resume and main:
        print(f"{config.name}: no checkpoint in {state / 'checkpoints'} yet; starting it from step 0", flush=True)
    for written in (folder, state):
        written.mkdir(parents=True, exist_ok=True)
        if main:
            mark_output(written, "rexbert train")  # ours: a later run may write here again
    accelerator = Accelerator(mixed_precision=mixed_precision(config), log_with=config.run.log_with or None,
                              project_config=ProjectConfiguration(project_dir=str(state),
                                                                  logging_dir=str(state / "logs")))
    set_seed(config.run.seed)  # the initial weights; the data path seeds itself per sample
    run = PhaseRun(config, root, accelerator, progress)
    if start_from is not None:
        load_accelerator_state(accelerator, start_from)
        run.load_trainer_state(start_from)
        if accelerator.is_main_process and (state / METRICS_FILE).exists():  # drop lines past the checkpoint
            kept = read_metrics(state / METRICS_FILE, run.state.step)
            (state / METRICS_FILE).write_text("".join(line + "\n" for line in kept))
    accelerator.init_trackers(config.name, config=_flat(config.to_dict()))
    total = config.run.max_steps
    bar = tqdm(total=total, initial=run.state.step, desc=config.name, unit="step", disable=not run.show)
    peak = peak_flops()
    started, window_tokens, window_start = run.state.step, 0.0, time.perf_counter()
    wall_start = time.perf_counter()
    metrics: dict = {}
    if run.state.step == 0:  # the baseline that the held-out loss should fall from
        run.log(run.evaluate())
    while run.state.step < total:
        if stop_after is not None and run.state.step - started >= stop_after:
            run.save(run.state.step)
            bar.close()
            accelerator.end_training()
            return {"stopped_at": run.state.step}
        result = run.train_step()
        window_tokens += result["tokens"]
        bar.update(1)
        bar.set_postfix(loss=f"{result['loss']:.3f}")
        step = run.state.step
        if step % config.run.log_every == 0 or step == total:
            elapsed = time.perf_counter() - window_start
            logged = {"train/loss": result["loss"], "train/lr": result["lr"], "train/rows": result["rows"],
                      "train/tokens_seen": run.state.tokens, "train/tokens_per_s": window_tokens / elapsed}
            if peak is not None:
                logged["train/mfu"] = window_tokens / elapsed * run.flops_per_token / (peak * accelerator.num_processes)
            run.log(logged)
            window_tokens, window_start = 0.0, time.perf_counter()
        if step % config.run.eval_every == 0 or step == total:
            metrics = run.evaluate()
            run.log(metrics)
        if step % config.run.save_every == 0 and step < total:
            run.save(step)
    bar.close()
    summary = {"phase": config.name, "steps": run.state.step, "tokens": run.state.tokens,
               "parameters": run.parameters, "seconds_this_session": round(time.perf_counter() - wall_start, 2),
               "sources": {s.name: {"train_rows": len(s.train), "heldout_rows": len(s.heldout),
                                    "rows_drawn": drawn, "set_aside": s.skipped}
                           for s, drawn in zip(run.sources, run.sampler.drawn)},
               **metrics}
    run.save(run.state.step)
    run.export(summary)
    accelerator.end_training()
    return summary
