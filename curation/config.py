"""YAML -> typed dataclasses, validated before any work starts; errors name the field."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rexbert.core.config_schema import ConfigError, build
from rexbert.core.documents import DEFAULT_MAX_BYTES
from rexbert.core.paths import looks_local

from .domains import resolve


@dataclass
class SampleConfig:
    source: str = "m-a-p/FineFineWeb"  # Hub id, a local folder in FineFineWeb's layout, or a file with a domain column
    per_domain: int = 1000
    seed: int = 0
    text_key: str = "text"
    domain_key: str = "domain"
    shuffle_buffer: int = 10_000
    max_bytes: int = DEFAULT_MAX_BYTES  # a longer document is set aside as `oversized`, never read whole


# labelers that stand in for the LLMs in demos and tests, no server: their disagreement says nothing about real labels
STAND_IN_LABELERS = ("provenance", "rules")
LABELER_BACKENDS = ("openai", *STAND_IN_LABELERS)


@dataclass
class LabelerConfig:
    """One labeler: the primary (`label:`) or the auditor (`audit:`) take the same fields."""
    backend: str = "openai"  # openai (any OpenAI-compatible server) | rules | provenance (demo/test labelers)
    base_url: str = "http://localhost:8000/v1"
    model: str = "microsoft/phi-4"
    prompt_version: str = "v2"
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this environment variable, never from YAML
    workers: int = 8
    timeout_s: float = 60.0  # the whole request, not each read
    max_retries: int = 4
    backoff_s: float = 1.0
    max_chars: int = 4000
    max_failure_rate: float = 0.05  # a run where more items than this share got no label fails


@dataclass
class LabelConfig(LabelerConfig):
    pass


@dataclass
class AuditConfig(LabelerConfig):
    base_url: str = "http://localhost:8001/v1"
    model: str = "meta-llama/Meta-Llama-3-70B-Instruct"
    sample_size: int = 500
    min_kappa: float = 0.8  # stop criterion: labels are stable once agreement reaches this
    seed: int = 0
    examples_per_domain: int = 5
    enforce: bool = True  # `curate run` stops before distilling when the audit is not stable (false: a warning)


@dataclass
class DistillConfig:
    target_precision: float = 0.9
    validation_fraction: float = 0.2
    seed: int = 0
    epoch: int = 25
    lr: float = 0.5
    word_ngrams: int = 2
    dim: int = 50
    min_count: int = 1
    # hash buckets for word n-grams; the model file is about (vocabulary + bucket) x dim x 4 bytes, so fastText's
    # default of 2M buckets at dim 50 makes a 400 MB file: right for billions of words, not for a sample
    bucket: int = 2_000_000


@dataclass
class BlocklistConfig:
    """Extra lists on top of the shipped ones (datatrove's, plus `curation/data/`); one entry a line."""
    word_files: list[str] = field(default_factory=list)  # words/phrases in text (profanity, adult)
    allow_word_files: list[str] = field(default_factory=list)  # words with a product sense, never counted
    url_files: list[str] = field(default_factory=list)  # hosts (a host blocks its subdomains)
    url_word_files: list[str] = field(default_factory=list)  # whole words in a URL
    url_phrase_files: list[str] = field(default_factory=list)  # phrases, matched inside the normalized URL
    min_hits: int = 2
    soft_url_words: int = 2  # datatrove's soft-banned URL words needed to drop a page


@dataclass
class DecontConfig:
    """n-gram decontamination against the evaluation sets the project reports on."""
    enabled: bool = True
    n_grams: int = 13  # GPT-3's contamination n-gram length; eval texts shorter than this cannot match
    # name -> file or list of files (jsonl/parquet); empty = the bundled ESCI products and GLUE-format validation
    eval_sets: dict = field(default_factory=dict)


@dataclass
class DedupConfig:
    n_grams: int = 5
    num_buckets: int = 14
    hashes_per_bucket: int = 8
    seed: int = 1


@dataclass
class FilterConfig:
    input: str = ""  # folder of jsonl/parquet (FineFineWeb layout: one folder per domain)
    glob_pattern: str | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    tokenizer_file: str | None = None  # tokens in stats; whitespace words when unset
    default_domain: str | None = None
    languages: list[str] = field(default_factory=lambda: ["en"])
    min_language_score: float = 0.1
    boilerplate_max_ratio: float = 0.5
    advertisement_max_ratio: float = 0.5
    gopher: dict = field(default_factory=dict)  # overrides of curation.filters.quality.PRODUCT_GOPHER
    c4: dict = field(default_factory=dict)  # overrides of PRODUCT_C4
    blocklist: BlocklistConfig = field(default_factory=BlocklistConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    decontaminate: DecontConfig = field(default_factory=DecontConfig)
    shard_rows: int = 100_000


@dataclass
class SlurmConfig:
    partition: str = "cpu"
    time: str = "24:00:00"
    cpus_per_task: int = 1
    mem_per_cpu_gb: int = 2
    qos: str | None = None
    sbatch_args: dict = field(default_factory=dict)


@dataclass
class RayConfig:
    # "auto": the cluster this machine belongs to (`ray start --head` / `ray start --address ...`, or
    # RAY_ADDRESS); "host:6379" or "ray://host:10001": that cluster; "local": start one on this machine.
    address: str = "auto"
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2.0


@dataclass
class ExecutorConfig:
    type: str = "local"  # local | slurm | ray
    tasks: int = 1
    workers: int = 1
    dedup_tasks: int = 1  # tasks of the MinHash bucket stage
    slurm: SlurmConfig = field(default_factory=SlurmConfig)
    ray: RayConfig = field(default_factory=RayConfig)


@dataclass
class CardConfig:
    repo_id: str = "your-name/ecom-niverse"
    pretty_name: str = "Ecom-niverse"
    license: str = "odc-by"  # FineFineWeb's license
    # where the documents come from, as the card says it (markdown; no local paths)
    source: str = "FineFineWeb (`m-a-p/FineFineWeb`)"


@dataclass
class CurationConfig:
    output_dir: str = "rexbert-output/curation"
    domains: list[str] = field(default_factory=list)  # FineFineWeb ids from Table 1; empty = all 15
    sample: SampleConfig = field(default_factory=SampleConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    card: CardConfig = field(default_factory=CardConfig)

    def validate(self) -> CurationConfig:
        try:
            resolve(self.domains)
        except ValueError as error:
            raise ConfigError(f"config field 'domains': {error}") from None
        checks = [
            ("executor.type", self.executor.type in ("local", "slurm", "ray"), "local, slurm or ray"),
            ("sample.per_domain", self.sample.per_domain > 0, "a positive integer"),
            ("distill.target_precision", 0 < self.distill.target_precision <= 1, "in (0, 1]"),
            ("distill.validation_fraction", 0 < self.distill.validation_fraction < 1, "in (0, 1)"),
            ("audit.min_kappa", -1 <= self.audit.min_kappa <= 1, "in [-1, 1]"),
            ("distill.dim", self.distill.dim > 0, "a positive integer"),
            ("distill.bucket", self.distill.bucket > 0, "a positive integer"),
            ("sample.max_bytes", self.sample.max_bytes > 0, "a positive integer"),
            ("filter.max_bytes", self.filter.max_bytes > 0, "a positive integer"),
            ("executor.tasks", self.executor.tasks > 0, "a positive integer"),
            ("filter.decontaminate.n_grams", self.filter.decontaminate.n_grams >= 5, "an integer >= 5"),
        ]
        for section in ("label", "audit"):
            labeler = getattr(self, section)
            checks += [
                (f"{section}.backend", labeler.backend in LABELER_BACKENDS, f"one of {', '.join(LABELER_BACKENDS)}"),
                (f"{section}.workers", labeler.workers > 0, "a positive integer"),
                (f"{section}.timeout_s", labeler.timeout_s > 0, "a positive number of seconds"),
                (f"{section}.max_retries", labeler.max_retries >= 0, "a non-negative integer"),
                (f"{section}.max_failure_rate", 0 <= labeler.max_failure_rate <= 1, "in [0, 1]"),
            ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"config field {name!r}: expected {expected}")
        return self


def config_from_dict(data: dict) -> CurationConfig:
    return build(CurationConfig, data or {}).validate()


def _relative_to(folder: Path, value, hub_allowed: bool = False):
    """`value` (a path, or a list of paths) made absolute against `folder` when relative; with `hub_allowed`, a
    value that can be a Hub id stays as it is unless it names something in `folder`."""
    if isinstance(value, list):
        return [_relative_to(folder, v) for v in value]
    if not isinstance(value, str) or not value or "://" in value or Path(value).expanduser().is_absolute():
        return value
    if hub_allowed and not looks_local(value) and not (folder / value).exists():
        return value
    return str((folder / value).resolve())


def resolve_paths(data: dict, folder: Path) -> dict:
    """The config's input paths (sample.source when not a Hub id, filter.input, filter.tokenizer_file, the
    blocklist files, the decontamination sets) relative to `folder`, the config file's, as training's are.
    output_dir, like `rexbert train --output-dir`, stays relative to where the command runs."""
    sample, filters = data.get("sample"), data.get("filter")
    if isinstance(sample, dict) and "source" in sample:
        sample["source"] = _relative_to(folder, sample["source"], hub_allowed=True)
    if isinstance(filters, dict):
        for key in ("input", "tokenizer_file"):
            if key in filters:
                filters[key] = _relative_to(folder, filters[key])
        lists = filters.get("blocklist")
        if isinstance(lists, dict):
            for key in [k for k in lists if k.endswith("_files")]:
                lists[key] = _relative_to(folder, lists[key])
        sets = (filters.get("decontaminate") or {}).get("eval_sets") if isinstance(filters.get("decontaminate"),
                                                                                 dict) else None
        if isinstance(sets, dict):
            for name in sets:
                sets[name] = _relative_to(folder, sets[name])
    return data


def load_curation_config(path: str) -> CurationConfig:
    """A curation YAML, its relative input paths resolved against the file (`resolve_paths`), validated."""
    import yaml

    if not Path(path).is_file():
        raise ConfigError(f"config file {path} not found.")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config fields, got a {type(data).__name__}.")
    return config_from_dict(resolve_paths(data or {}, Path(path).resolve().parent))
