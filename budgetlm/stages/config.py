"""The config of each command that trains: `PretrainConfig`, `FinetuneConfig`. Each is the sections of its stage
plus the checks across them; `preset` names the tuned settings a run starts from (stages/defaults.py), and
`SearchConfig` is `finetune --search` (stages/search.py). (Sampling's `GenerateConfig` lives beside the sampler, in
generate/config.py.)"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import ClassVar

from budgetlm.data.config import DataConfig
from budgetlm.errors import UserError
from budgetlm.models.config import HeadConfig, ModelConfig
from budgetlm.objectives.config import DEFAULT_OBJECTIVES, OBJECTIVE_FAMILIES, ObjectiveConfig
from budgetlm.schema import choice, setting
from budgetlm.tasks.config import EmbeddingConfig, MultitaskConfig, PromptConfig, TaskDataConfig
from budgetlm.train.config import TrainConfig


def check_preset(value: str) -> None:
    if value not in ("auto", "none") and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise UserError(f"preset={value!r}: give auto, none, or the name of a preset in configs/ (e.g. sst2-finetune)")


@dataclass
class PretrainConfig:
    """`budgetlm pretrain`: the model, its objective, the text and the loop."""

    preset: str = setting("auto", "the tuned settings the run starts from, under --config and overrides: auto = without "
                          "--config, a masked-LM encoder gets the budget recipe's model and optimizer "
                          "(configs/sst2-budget-pretrain.yaml: the defaults listed here); none = the schemas' bare "
                          "defaults (model.d_model=256, learned positions, lr 1e-3, fp32); or a preset name")
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        check_preset(self.preset)
        for section in (self.model, self.objective, self.data, self.train):
            section.validate()
        if not self.objective.name:  # resolved here, so config.json records the objective that ran
            self.objective.name = DEFAULT_OBJECTIVES[self.model.family]
        family = OBJECTIVE_FAMILIES[self.objective.name]
        if self.model.family != family:
            raise UserError(f"objective.name={self.objective.name} trains model.family={family}, "
                            f"not {self.model.family}; set model.family={family}")
        if self.objective.name == "span_corruption":  # T5 draws round(noise / mean_span_length) spans per sequence
            spans = max(1, round(round(self.model.max_seq_len * self.objective.noise_density) / self.objective.mean_span_length))
            if spans > self.objective.sentinels:
                raise UserError(f"objective.sentinels={self.objective.sentinels} is too few for the {spans} spans a "
                                f"{self.model.max_seq_len}-token block gets; raise it")
        if self.objective.sentence_task != "none" and self.objective.name != "mlm":
            raise UserError("objective.sentence_task (nsp/sop) is a second head of masked-LM pre-training; use objective.name=mlm")
        if self.objective.sentence_task != "none" and self.model.max_seq_len < 5:
            raise UserError("objective.sentence_task needs model.max_seq_len >= 5 ([CLS] A [SEP] B [SEP])")
        if self.objective.sentence_task == "nsp" and self.train.batch_size < 2:
            raise UserError("objective.sentence_task=nsp draws random segments from the batch: train.batch_size must be >= 2")


FINETUNE_METHODS = ("head", "text2text", "prompt")
SEARCHABLE = ("lr",)


@dataclass
class SearchConfig:
    """`finetune --search lr`: try a few values on a slice of the budget each, score them on the validation data,
    then train with the best for the rest of the budget (stages/search.py)."""

    SECTION: ClassVar[str] = "search"

    param: str = setting("", f"what to search, one of {SEARCHABLE} (--search); empty = no search")
    factors: list[float] = setting([0.3333, 1.0, 3.0], "the values tried, as multiples of train.lr")
    fraction: float = setting(0.1, "the share of train.budget each trial trains for; the best value then trains "
                              "afresh for what is left")

    def validate(self) -> None:
        if self.param:
            choice(self, "param", SEARCHABLE)
        if len(self.factors) < 2 or any(f <= 0 for f in self.factors):
            raise UserError(f"search.factors must hold at least two positive multiples, got {self.factors}")
        if not 0 < self.fraction or self.fraction * len(self.factors) > 0.9:
            raise UserError(f"search.fraction={self.fraction} x {len(self.factors)} trials must leave at least a "
                            "tenth of the budget for the final run")


@dataclass
class FinetuneConfig:
    """`budgetlm finetune`: the task data, the head / embedding / prompt settings and the loop."""

    preset: str = setting("auto", "the tuned settings the run starts from, under --config and overrides: auto = "
                          "without --config, the training settings of the task type's built-in preset (TYPE_PRESETS in "
                          "stages/defaults.py) and evaluation every epoch; none = the bare defaults listed here; or a "
                          "preset name (e.g. wikiann-finetune)")
    method: str = setting("", f"one of {FINETUNE_METHODS}: train a classification head; train an encoder-decoder to write the target text; or score label words with a decoder (prompt, no training); empty = from the model (text2text for an encoder_decoder, else head)")
    max_target_len: int = setting(16, "text2text: longest target in tokens (longer ones are cut); evaluation generates at most this many")
    data: TaskDataConfig = field(default_factory=TaskDataConfig)
    tasks: list[TaskDataConfig] = setting([], "multi-task: several task sections (as `data`), one head each, one shared encoder")
    multitask: MultitaskConfig = field(default_factory=MultitaskConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=1e-4, warmup=0.1, checkpoint_every="5m"))
    dropout: float = setting(-1.0, "override the backbone's dropout while fine-tuning; -1 = keep the pre-training value")
    attention_dropout: float = setting(-1.0, "override the backbone's model.attention_dropout while fine-tuning; -1 = keep "
                                       "it (by default it follows dropout); 0 = the fused attention kernel")

    def validate(self) -> None:
        check_preset(self.preset)
        for section in (self.data, self.head, self.prompt, self.embedding, self.search, self.train, self.multitask,
                        *self.tasks):
            section.validate()
        if self.search.param and (self.tasks or self.method == "prompt"):
            raise UserError("--search trains one task several times: it takes neither a `tasks:` list nor --method prompt")
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            if value != -1.0 and not 0.0 <= value < 1.0:
                raise UserError(f"{name} must be in [0, 1) (or -1 to keep the backbone's)")
        if self.method and self.method not in FINETUNE_METHODS:
            raise UserError(f"method={self.method!r} is not one of: {', '.join(FINETUNE_METHODS)}")
        if self.max_target_len <= 0:
            raise UserError(f"max_target_len must be > 0, got {self.max_target_len}")
        if self.tasks and (self.data.task or self.data.train):
            raise UserError("give either one task (data / --task / --train) or a `tasks:` list, not both")
        names = [t.name or t.task for t in self.tasks]
        dupes = sorted({n for n in names if n and names.count(n) > 1})
        if dupes:
            raise UserError(f"tasks: duplicate task names {', '.join(dupes)}; give each a distinct `name`")

    def backbone(self, pretrained: ModelConfig) -> ModelConfig:
        """A copy of the pre-trained model's config with this run's dropout overrides."""
        out = dataclasses.replace(pretrained)
        if self.dropout >= 0:
            out.dropout = self.dropout
        if self.attention_dropout >= 0:
            out.attention_dropout = self.attention_dropout
        return out
