"""RexBERT for transformers: config, models, tokenizer and ModernBERT conversion.

Importing this package registers the RexBERT classes with transformers' Auto classes:

```python
>>> import modeling_rexbert
>>> from transformers import AutoConfig, AutoModelForMaskedLM
>>> config = modeling_rexbert.RexBertConfig.from_preset("micro")
>>> model = AutoModelForMaskedLM.from_config(config)
>>> type(model).__name__
'RexBertForMaskedLM'
```

Saved folders carry the code (`auto_map`), so they load elsewhere with `trust_remote_code=True`.
"""

import transformers

from .configuration_rexbert import PRESETS, RexBertConfig, RexBertConfigError
from .modeling_rexbert import (
    AUTO_MAP,
    RexBertForMaskedLM,
    RexBertForMultipleChoice,
    RexBertForQuestionAnswering,
    RexBertForSequenceClassification,
    RexBertForTokenClassification,
    RexBertModel,
    RexBertPreTrainedModel,
)
from .tokenization_rexbert import build_tokenizer, check_vocab_matches, load_tokenizer, save_tokenizer

transformers.AutoConfig.register(RexBertConfig.model_type, RexBertConfig, exist_ok=True)
RexBertConfig.register_for_auto_class()
for _auto_name, _class_name in AUTO_MAP.items():
    _model_class = globals()[_class_name]
    getattr(transformers, _auto_name).register(RexBertConfig, _model_class, exist_ok=True)
    _model_class.register_for_auto_class(_auto_name)  # save_pretrained then copies the code

__all__ = [
    "PRESETS",
    "RexBertConfig",
    "RexBertConfigError",
    "RexBertPreTrainedModel",
    "RexBertModel",
    "RexBertForMaskedLM",
    "RexBertForSequenceClassification",
    "RexBertForTokenClassification",
    "RexBertForQuestionAnswering",
    "RexBertForMultipleChoice",
    "build_tokenizer",
    "check_vocab_matches",
    "load_tokenizer",
    "save_tokenizer",
]
