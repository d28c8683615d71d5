"""The validated, frozen form of a study file.

`hpo.study.load()` is the only producer; every other module consumes these objects and can
trust them: types are right, names are known, paths exist. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hpo.attrs import is_model_param

# The values a study file may name; the validator checks against these, the parts that act
# on them (backends, models, data) dispatch on the same tuples.
BACKENDS = ("optuna", "ray")
TASKS = (
    "causal-lm",
    "sequence-classification",
    "regression",
    "token-classification",
    "masked-lm",
    "seq2seq-lm",
)
# The Transformers auto class each task builds (looked up by name: this module imports nothing).
TASK_MODEL_CLASSES = {
    "causal-lm": "AutoModelForCausalLM",
    "sequence-classification": "AutoModelForSequenceClassification",
    "regression": "AutoModelForSequenceClassification",  # num_labels 1, problem_type regression
    "token-classification": "AutoModelForTokenClassification",
    "masked-lm": "AutoModelForMaskedLM",
    "seq2seq-lm": "AutoModelForSeq2SeqLM",
}
# Tasks whose rows are labelled from a set of names (num_labels, id2label on the model config).
LABELLED_TASKS = ("sequence-classification", "token-classification")
# Plain-text tasks: documents cut into blocks of block_size tokens (.txt files, the corpus).
TEXT_TASKS = ("causal-lm", "masked-lm")
# Tasks that need a tokenizer with special tokens (pad, mask, eos, word ids): not `bytes`.
SPECIAL_TOKEN_TASKS = ("token-classification", "masked-lm", "seq2seq-lm")
DIRECTIONS = ("minimize", "maximize")
BYTES_TOKENIZER = "bytes"
TRAINED_TOKENIZER_KINDS = ("wordpiece", "bpe")  # `data.tokenizer: {train: wordpiece, ...}`
BUILTIN_CORPORA = ("pydoc-topics",)
DATA_FILE_SUFFIXES = (".txt", ".jsonl", ".csv")


@dataclass(frozen=True)
class ObjectiveSpec:
    metrics: tuple[str, ...]  # e.g. ("eval_loss",); several for multi-objective
    directions: tuple[str, ...]  # "minimize" | "maximize", one per metric

    @property
    def is_multi(self) -> bool:
        return len(self.metrics) > 1


@dataclass(frozen=True)
class BudgetSpec:
    n_trials: int | None = None  # finished trials over the whole study, all workers and reruns
    timeout_s: float | None = None  # wall-clock seconds for one `hpo run`
    max_failed_trials: int | None = None


@dataclass(frozen=True)
class ComponentSpec:
    """A sampler, pruner or scheduler: its registry name plus options passed through."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ParamSpec:
    """One search-space dimension. `name` is a TrainingArguments field or `model.<key>`."""

    name: str
    type: str  # "float" | "int" | "categorical"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()
    # The param exists only in trials where every (parent, values) holds: the parent was
    # suggested and took one of `values` (`when:` in the study file). Empty: always.
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    @property
    def is_model_param(self) -> bool:
        return is_model_param(self.name)

    @property
    def is_conditional(self) -> bool:
        return bool(self.when)


@dataclass(frozen=True)
class ModelSpec:
    task: str = "causal-lm"  # one of TASKS
    config: dict[str, Any] | None = None  # AutoConfig.for_model(**config)
    pretrained: str | None = None  # local path or hub id
    factory: str | None = None  # "package.module:function"
    num_labels: int | None = None  # sequence-classification, token-classification
    trust_remote_code: bool = False  # run the pretrained folder's own Python code


@dataclass(frozen=True)
class TrainedTokenizerSpec:
    """A tokenizer trained at study time on the train rows (`tokenizers`), cached with the data."""

    kind: str = "wordpiece"  # one of TRAINED_TOKENIZER_KINDS
    vocab_size: int = 1000
    min_frequency: int = 1


@dataclass(frozen=True)
class DataSpec:
    files: tuple[str, ...] = ()  # .txt / .jsonl / .csv
    eval_files: tuple[str, ...] = ()
    corpus: str | None = None  # built-in offline corpus, e.g. "pydoc-topics"
    hub: str | None = None  # a `datasets` hub id
    factory: str | None = None  # "package.module:function" -> (train, eval)
    # "bytes", an AutoTokenizer path / hub id, or one trained on the spot
    tokenizer: str | TrainedTokenizerSpec = "bytes"
    block_size: int = 128
    eval_fraction: float = 0.1  # held out when there are no eval_files
    max_eval_samples: int | None = None  # a fixed eval subset keeps evaluation cheap
    text_column: str = "text"
    label_column: str = "label"  # sequence-classification, regression
    tokens_column: str = "tokens"  # token-classification: the words of a row
    tags_column: str = "tags"  # token-classification: one tag per word
    label_all_tokens: bool = False  # token-classification: label every sub-token, not the first
    source_column: str = "source"  # seq2seq-lm
    target_column: str = "target"  # seq2seq-lm
    mlm_probability: float = 0.15  # masked-lm: searchable as data.mlm_probability


@dataclass(frozen=True)
class MetricsSpec:
    """What each evaluation computes besides the loss (hpo.data.metrics)."""

    names: tuple[str, ...] = ()  # built-in metrics, e.g. ("accuracy", "f1")
    compute_metrics: str | None = None  # "package.module:function", Transformers' signature
    preprocess_logits_for_metrics: str | None = None  # "package.module:function"


@dataclass(frozen=True)
class PlacementSpec:
    """Where trials run (`hpo.backends.placement` turns this into workers on devices)."""

    auto: bool = False  # `workers: auto` (or `devices:` without `workers`): one per GPU
    devices: tuple[int, ...] | None = None  # indices of visible GPUs; () = CPU only
    trials_per_device: int = 1
    trial_processes: int = 1  # ranks of one trial (torch.distributed), one device each


@dataclass(frozen=True)
class WarmStartSpec:
    """An earlier study whose COMPLETE trials that fit the space seed the sampler."""

    study: str
    storage: str  # SQLAlchemy URL (SQLite paths made absolute); may hold a password


@dataclass(frozen=True)
class StudySpec:
    name: str
    storage: str  # SQLAlchemy URL (already resolved: file, --storage or HPO_STORAGE)
    backend: str  # "optuna" | "ray"
    objective: ObjectiveSpec
    budget: BudgetSpec
    workers: int
    sampler: ComponentSpec
    pruner: ComponentSpec  # name "none" when pruning is off
    scheduler: ComponentSpec | None  # ray backend only
    ray: dict[str, Any]
    model: ModelSpec
    data: DataSpec
    training: dict[str, Any]  # TrainingArguments fields shared by every trial
    space: tuple[ParamSpec, ...]  # () when `space_function` defines the space
    # "package.module:function" called with the optuna.Trial (define-by-run, like
    # hyperparameter_search's hp_space); it returns the trial's {TrainingArguments field or
    # model.<key>: value}.
    space_function: str | None = None
    keep: str = "best"  # "best" | "all": checkpoint retention across trials
    placement: PlacementSpec = field(default_factory=PlacementSpec)
    metrics: MetricsSpec = field(default_factory=MetricsSpec)
    source_path: str | None = None  # the study file this came from
    push_best_to_hub: str | None = None  # a Hub repo id: the best model goes there after `hpo run`
    # Configurations trained first, in order, each once over every run (checked against space).
    enqueue: tuple[dict[str, Any], ...] = ()
    warm_start: WarmStartSpec | None = None
    # Messages the run prints before starting (e.g. "pruning switched off for multi-objective").
    warnings: tuple[str, ...] = ()

    @property
    def is_define_by_run(self) -> bool:
        """Whether a trial's params depend on each other (a Python space or `when:`), so the
        space cannot be declared up front as fixed distributions."""
        return self.space_function is not None or any(p.is_conditional for p in self.space)

    @property
    def output_dir(self) -> str:
        return str(self.training.get("output_dir", f"runs/{self.name}"))
