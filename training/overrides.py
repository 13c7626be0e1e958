"""`rexbert train --set key=value`: settings given on the command line, merged over the phase files.

A key is a dotted path into a phase config (`optimizer.lr`, `batch.micro_batch_size`); its value is
read as YAML, as in the files (`4e-4` a number where the field is one, `true`, `null`, `[tensorboard]` a list), then the merged config is
validated exactly as a file is, so an unknown key or a bad value is refused naming the key before any
work. With a curriculum folder a key applies to every phase, unless it starts with a phase file's name
(`phase2.optimizer.lr=4e-4`: phase2.yaml only); phase-targeted keys win over the ones for every phase.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, NamedTuple

import yaml

from rexbert.core.config_schema import ConfigError, merge

from .config import PhaseConfig


class Setting(NamedTuple):
    key: str  # dotted: optimizer.lr
    value: Any  # read as YAML
    text: str  # as given: optimizer.lr=4e-4


def parse_setting(text: str) -> Setting:
    """`key=value` -> a `Setting`; for argparse's `type=`, so a malformed one is a usage error."""
    key, equals, raw = text.partition("=")
    key = key.strip()
    if not equals or not key or any(not part for part in key.split(".")):
        raise argparse.ArgumentTypeError(f"expected key=value with a dotted key (optimizer.lr=4e-4), got {text!r}")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise argparse.ArgumentTypeError(f"{key}: the value {raw!r} is not valid YAML ({error})") from None
    return Setting(key, value, text)


def settings_to_overrides(settings: list[Setting]) -> dict:
    """Dotted settings as one nested mapping, in order (a later setting of the same key wins)."""
    nested: dict = {}
    for key, value, _ in settings:
        node = nested
        *parents, last = key.split(".")
        for i, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {'.'.join(parents[:i + 1])} was already set to {child!r}.")
            node = child
        node[last] = value
    return nested


def phase_overrides(overrides: dict | None, phase: str, phases: list[str]) -> dict:
    """The overrides for the phase file named `phase` (its stem) in a curriculum of `phases`: the keys
    for every phase, then those under `phase`; a top-level key that is neither a phase-config field nor
    a phase of this curriculum is refused, naming it."""
    overrides = overrides or {}
    fields = [f.name for f in dataclasses.fields(PhaseConfig) if f.name != "source_file"]
    phases = [p for p in phases if p not in fields]  # a file named like a field (run.yaml) is not targeted
    unknown = sorted(k for k in overrides if k not in fields and k not in phases)
    if unknown:
        raise ConfigError(f"override {unknown[0]!r} is neither a field of a phase config ({', '.join(fields)}) "
                          f"nor a phase of this curriculum ({', '.join(phases)}).")
    common = {k: v for k, v in overrides.items() if k not in phases}
    targeted = overrides.get(phase, {}) if phase in phases else {}
    if not isinstance(targeted, dict):
        raise ConfigError(f"override {phase!r}: expected settings under it ({phase}.optimizer.lr=...), got "
                          f"{targeted!r}.")
    return merge(common, targeted)
