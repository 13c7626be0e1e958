"""What the encoder hands back: the stream for the heads, and the hidden states and attention maps a
caller asked for, in stock ModernBERT's shapes and on the gradient path.

This file travels to the Hub as remote code: it may import only torch.
"""

from __future__ import annotations

import torch


def exporting() -> bool:
    """Whether the model is being captured with fixed-rank shapes (`torch.export`, the ONNX exporter, which
    runs `torch.export`, or `torch.jit.trace`): then the batch stays padded (`unpadding.StaticBatch`)."""
    return torch.compiler.is_exporting() or torch.jit.is_tracing()


def hidden_state_selection(output_hidden_states, count: int) -> set[int] | None:
    """The indices of the `count` hidden states (embeddings, then each layer) to return, or None for none.

    As transformers 5: `True` selects all, an int or a list of ints selects those (negative ones count
    from the end, out-of-range ones select nothing), and the unselected entries are returned as None.
    """
    if output_hidden_states is None or output_hidden_states is False:
        return None
    if output_hidden_states is True:
        return set(range(count))
    indices = [output_hidden_states] if isinstance(output_hidden_states, int) else list(output_hidden_states)
    return {i % count for i in indices if -count <= i < count}


class EncoderState:
    """The encoder's output on the token stream (for heads that pool or predict before padding back),
    plus the requested hidden states `(batch, seq, hidden)` and attention maps `(batch, heads, seq, seq)`.

    A recorded hidden state is the padded tensor itself, and the stream the next layer reads is unpadded
    from it, so `retain_grad()` and hooks on a returned state see the gradient of everything after it.
    """

    def __init__(self, batch, selected: set[int] | None, output_attentions: bool):
        self.batch = batch
        self.selected = selected
        self.hidden_states: list[torch.Tensor | None] | None = [] if selected is not None else None
        self.attentions: list[torch.Tensor] | None = [] if output_attentions else None
        self.last_hidden_state: torch.Tensor | None = None  # (num_tokens, hidden), set by `finish`
        self._padded_last: torch.Tensor | None = None
        # Whether anything beyond the last hidden state was asked for (else the encoder skips `record`).
        self.collects = self.hidden_states is not None or self.attentions is not None

    def record(self, hidden: torch.Tensor) -> torch.Tensor:
        """Keeps `hidden` (stream) as the next hidden state if selected; returns the stream to continue with."""
        if self.hidden_states is None:
            return hidden
        if len(self.hidden_states) not in self.selected:
            self.hidden_states.append(None)
            return hidden
        padded = self.batch.pad(hidden)
        self.hidden_states.append(padded)
        return self.batch.unpad(padded)

    def add_attention(self, probs: torch.Tensor | None) -> None:
        if self.attentions is not None:
            self.attentions.append(probs)

    def finish(self, normed: torch.Tensor) -> EncoderState:
        """Records the final-normed output as the last hidden state (as stock does) and keeps its stream."""
        self.last_hidden_state = self.record(normed)
        if self.hidden_states is not None and self.hidden_states[-1] is not None:
            self._padded_last = self.hidden_states[-1]
        return self

    def padded_last_hidden_state(self) -> torch.Tensor:
        """`(batch, seq, hidden)`, zeros at padding; the same tensor as the last hidden state when returned."""
        return self._padded_last if self._padded_last is not None else self.batch.pad(self.last_hidden_state)

    def outputs(self) -> dict:
        """`hidden_states` and `attentions` for a transformers `ModelOutput` (None when not asked for)."""
        return {
            "hidden_states": tuple(self.hidden_states) if self.hidden_states is not None else None,
            "attentions": tuple(self.attentions) if self.attentions is not None else None,
        }
