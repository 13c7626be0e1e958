"""How every evaluation task loads a model, and the one place that decides which implementation runs it.

A folder or Hub repository may ship Python (`auto_map` + `configuration_*.py`); transformers runs it
only with `trust_remote_code=True`. Here that is off unless the user passes `--trust-remote-code`.
RexBERT and ModernBERT checkpoints (`model_type` modernbert or rexbert) never need it: they load
through the installed `RexBert*` classes, whatever code the folder carries (identical outputs, unpadded
and faster); any other checkpoint through transformers' Auto classes.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer

from rexbert.core.hub_upload import check_hub_answers
from rexbert.core.paths import check_local_or_hub, hub_failure
from rexbert.core.weights import check_weight_files

from .data import EvaluationDataError

REXBERT_TYPES = ("modernbert", "rexbert")


class RemoteCodeRefused(EvaluationDataError):
    """The model needs its own Python code and `--trust-remote-code` was not given."""


def _refuse(name: str) -> RemoteCodeRefused:
    return RemoteCodeRefused(
        f"model {name!r} ships its own Python code (auto_map in its config), which is not run unless asked; "
        "if you trust its author, add --trust-remote-code (Python: trust_remote_code=True)."
    )


def _guarded(loader, name: str, trust_remote_code: bool, **kwargs):
    """Calls `loader.from_pretrained` with an explicit trust flag (None would prompt on a terminal)."""
    try:
        return loader.from_pretrained(name, trust_remote_code=bool(trust_remote_code), **kwargs)
    except ValueError as error:
        if not trust_remote_code and "trust_remote_code" in str(error):
            raise _refuse(name) from None
        raise


def load_model_config(name: str, trust_remote_code: bool = False):
    """The model's config; every load starts here, so a missing folder or an unreachable Hub id is named here,
    in one line."""
    check_local_or_hub(name, "model")
    check_weight_files(name)  # a truncated model.safetensors is named here, before transformers reads it
    if not Path(name).expanduser().exists():
        check_hub_answers(name, "model")  # a server that never answers ends in an error naming it, not a hang
    try:
        return _guarded(AutoConfig, name, trust_remote_code)
    except RemoteCodeRefused:
        raise
    except (OSError, ValueError) as error:
        if Path(name).expanduser().is_dir():
            if not (Path(name).expanduser() / "config.json").is_file():
                raise FileNotFoundError(f"model folder {name} has no config.json; is it a saved model folder?") \
                    from None
            raise
        raise hub_failure(name, "model", error) from None


def load_tokenizer(name: str, trust_remote_code: bool = False):
    load_model_config(name, trust_remote_code)  # a tokenizer without a config of its own would fail less clearly
    return _guarded(AutoTokenizer, name, trust_remote_code)


@contextlib.contextmanager
def expected_load_report():
    """transformers logs a LOAD REPORT warning for every weight a checkpoint lacks, or holds beyond the class
    loaded. Fine-tuning a masked-LM checkpoint does both on purpose (a new head; the MLM head unused), so the
    report is held back here while the caller checks the keys that matter itself."""
    logs = [logging.getLogger(name) for name in _LOAD_REPORT_LOGGERS]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(logs, levels):
            log.setLevel(level)


_LOAD_REPORT_LOGGERS = (
    "transformers.modeling_utils",
    # transformers >= 5.25 checks a model's tensor-parallel plan only when the logger above is set to WARNING
    # or higher, as it is here, and then warns that every layer of a model without a plan is "not sharded"
    "transformers.distributed.tensor_parallel",
)


def check_encoder_loaded(name: str, missing_keys: list[str], new_head: str | None) -> None:
    """Weights a fine-tuning load had to initialise that are not the new head: the checkpoint lacks them."""
    lacking = [key for key in missing_keys if not (new_head and key.startswith(new_head))]
    if lacking:
        raise EvaluationDataError(f"{name} lacks encoder weights {lacking[:5]}{' ...' if len(lacking) > 5 else ''}; "
                                  "is it a trained checkpoint of this architecture?")


def load_pretrained(name: str, head: str, trust_remote_code: bool = False, implementation: str = "auto",
                    new_head: str | None = None, **kwargs):
    """(model, loading info) of `name` with `head`, named as transformers names its classes ("MaskedLM",
    "SequenceClassification"): a RexBERT-family checkpoint on the installed `RexBertFor<head>` unless
    `implementation="transformers"`, any other on `AutoModelFor<head>`. `new_head`: the prefix of the weights a
    fine-tuning head adds; RexBERT's weight names being known, its load report is then held back and any other
    missing weight is an error (other architectures keep transformers' report)."""
    if implementation == "auto" and is_rexbert_family(load_model_config(name, trust_remote_code)):
        import modeling_rexbert

        model_class = getattr(modeling_rexbert, f"RexBertFor{head}")
        if new_head is None:
            return model_class.from_pretrained(name, output_loading_info=True, **kwargs)
        with expected_load_report():
            model, info = model_class.from_pretrained(name, output_loading_info=True, **kwargs)
        check_encoder_loaded(name, info["missing_keys"], new_head)
        return model, info
    import transformers

    return _guarded(getattr(transformers, f"AutoModelFor{head}"), name, trust_remote_code,
                    output_loading_info=True, **kwargs)


def is_rexbert_family(config) -> bool:
    return getattr(config, "model_type", None) in REXBERT_TYPES


def runs_rexbert_code(model) -> bool:
    """Whether `model` is one of the installed RexBERT classes (whose masked-LM head predicts only masked rows)."""
    from modeling_rexbert import RexBertPreTrainedModel

    return isinstance(model, RexBertPreTrainedModel)


def _checkpoint_keys(name: str) -> set[str] | None:
    """The weight names in a local folder's safetensors files (read from their headers), or None."""
    from safetensors import safe_open

    files = sorted(Path(name).glob("*.safetensors")) if Path(name).is_dir() else []
    if not files:
        return None
    keys = set()
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            keys.update(handle.keys())
    return keys


def load_sentence_transformer(name: str, trust_remote_code: bool = False):
    """A SentenceTransformer; a RexBERT-family encoder inside it (sentence-transformers loads it through
    transformers) is swapped for the installed `RexBertModel` with the same weights."""
    from sentence_transformers import SentenceTransformer

    load_model_config(name, trust_remote_code)  # refuses remote code with our message before ST tries
    with expected_load_report():  # a masked-LM folder: its MLM head is not part of the sentence encoder
        model = SentenceTransformer(name, trust_remote_code=trust_remote_code)
    module = model[0]
    encoder = getattr(module, "model", None)
    saved = _checkpoint_keys(name)
    if saved is not None and encoder is not None:  # what the held-back report would say: weights not in the folder
        prefixes = ("", f"{encoder.base_model_prefix}.")
        check_encoder_loaded(name, [k for k in encoder.state_dict() if not any(p + k in saved for p in prefixes)],
                             new_head=None)
    if encoder is not None and is_rexbert_family(encoder.config) and not runs_rexbert_code(encoder):
        from modeling_rexbert import RexBertConfig, RexBertModel

        rexbert = RexBertModel(RexBertConfig.from_dict(encoder.config.to_dict()))
        rexbert.load_state_dict(encoder.state_dict())
        module.model = rexbert.to(next(encoder.parameters()).device)
    return model
