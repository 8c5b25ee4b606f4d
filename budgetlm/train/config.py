"""Settings of the training loop (`TrainConfig`, the `train:` section) and its typed budget (`Budget`).

A budget is parsed once, when the config is built; the loop reads its `kind` and `amount`. Validation is pure:
what the machine supports (bf16, a C++ compiler) is resolved by budgetlm/runtime.py when a stage starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from budgetlm.errors import UserError
from budgetlm.schema import choice, positive, setting

_BUDGET_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)\s*(s|sec|m|min|h|steps?|tokens?)\s*$")
_SCALE = {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "g": 1e9, "G": 1e9}
_UNITS = {"seconds": "s", "steps": "steps", "tokens": "tokens"}


class Budget(str):
    """How long to train (or how often to checkpoint): `kind` is 'seconds', 'steps' or 'tokens', `amount` how many.

    A `str` holding the text as written ('20m', '3000steps', '2Mtokens'), so `dataclasses.asdict` and config.json
    record exactly what the user gave. Two budgets compare by (kind, amount): 20m == 1200s; against a plain
    string a budget compares as its text.
    """

    kind: str
    amount: float

    def __new__(cls, kind: str, amount: float, text: str | None = None):
        if text is None:  # Budget("steps", 3000.0) -> "3000steps"
            number = f"{amount:f}".rstrip("0").rstrip(".") if kind == "seconds" else str(int(amount))
            text = number + _UNITS[kind]
        self = super().__new__(cls, text)
        self.kind, self.amount = kind, float(amount)
        return self

    @classmethod
    def parse(cls, text, what: str = "budget") -> Budget:
        return parse_budget(text, what)

    def __reduce__(self):  # copy.deepcopy (dataclasses.asdict) and pickle rebuild it from its three parts
        return (Budget, (self.kind, self.amount, str(self)))

    def __eq__(self, other) -> bool:
        if isinstance(other, Budget):
            return (self.kind, self.amount) == (other.kind, other.amount)
        return str.__eq__(self, other)

    def __ne__(self, other) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = str.__hash__


def parse_budget(text, what: str = "budget") -> Budget:
    if isinstance(text, Budget):
        return text
    m = _BUDGET_RE.match(str(text))
    if not m:
        raise UserError(f"{what}: cannot read {text!r}; use e.g. 90s, 20m, 1h, 3000steps or 2Mtokens")
    number, scale, unit = float(m.group(1)), m.group(2), m.group(3)
    if unit in ("s", "sec", "m", "min", "h"):
        if scale:
            raise UserError(f"{what}: {text!r} mixes a multiplier with a time unit")
        kind, amount = "seconds", number * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[unit]
    else:
        kind, amount = ("steps" if unit.startswith("step") else "tokens"), float(int(number * _SCALE[scale]))
    if amount <= 0:
        raise UserError(f"{what} must be positive, got {text!r}")
    return Budget(kind, amount, str(text))


DECAYS = ("linear", "cosine", "constant")
CLOCKS = ("wall", "cpu")
PRECISIONS = ("fp32", "bf16", "auto")


@dataclass
class TrainConfig:
    """The training loop (shared by pre-training and fine-tuning)."""

    SECTION: ClassVar[str] = "train"

    budget: Budget = setting(Budget.parse("1000steps"), "when to stop: '90s', '20m', '1h', '3000steps' or '2Mtokens'; the LR schedule ends exactly there")
    batch_size: int = setting(32, "sequences per micro-batch and rank (global batch = batch_size x grad_accum x ranks)")
    grad_accum: int = setting(1, "micro-batches accumulated per optimizer step")
    lr: float = setting(1e-3, "peak learning rate")
    warmup: float = setting(0.06, "fraction of the budget spent warming up the LR linearly")
    decay: str = setting("linear", f"LR decay after warm-up, one of {DECAYS}")
    min_lr_ratio: float = setting(0.0, "LR at the end of the budget, as a fraction of the peak")
    weight_decay: float = setting(0.01, "AdamW weight decay (not applied to biases, norms, embeddings)")
    beta1: float = setting(0.9, "AdamW beta1")
    beta2: float = setting(0.98, "AdamW beta2")
    eps: float = setting(1e-6, "AdamW epsilon")
    max_grad_norm: float = setting(1.0, "gradient clipping norm; 0 = off")
    max_bad_steps: int = setting(5, "a step with NaN/inf loss or gradients (or a loss spike) is skipped; stop after this many in a row")
    loss_spike_factor: float = setting(0.0, "skip a step whose loss exceeds this multiple of the running mean loss; 0 = off")
    seed: int = setting(0, "seed for initialisation, data order, masking and dropout")
    log_every: int = setting(10, "optimizer steps between log lines")
    eval_every: int = setting(0, "optimizer steps between evaluations; 0 = only at the end")
    eval_per_epoch: bool = setting(False, "also evaluate after every pass over the training data (when train.eval_every is 0); "
                                   "on by default when finetune starts from a task type's tuned preset")
    keep_best: str = setting("", "end with the weights of the evaluation that scored highest on this figure (e.g. "
                             "accuracy, or select_accuracy: see data.select_every; main = the task's main figure) instead "
                             "of the last weights; needs train.eval_every or train.eval_per_epoch")
    checkpoint_every: Budget = setting(Budget.parse("5m"), "how often to checkpoint: '5m' of training time or '500steps'")
    keep_checkpoints: int = setting(2, "how many recent checkpoints to keep")
    threads: int = setting(0, "torch CPU threads; 0 = all cores")
    tune_allocator: bool = setting(True, "keep freed memory in glibc's heap instead of page-faulting it in every step (train/memory.py)")
    clock: str = setting("wall", f"what a time budget counts, one of {CLOCKS}: wall-clock seconds, or this process's CPU seconds "
                         "(reproducible on a shared machine)")
    precision: str = setting("fp32", f"training arithmetic, one of {PRECISIONS}: bf16 runs the forward pass under "
                             "torch.autocast (weights, optimizer and loss stay fp32), faster on CPUs with AVX512-BF16 or "
                             "AMX and refused where the CPU lacks them; auto = bf16 where supported, else fp32")
    compile: bool = setting(False, "torch.compile the transformer blocks and the MLM head's loss (inductor; needs a C++ "
                            "compiler, else it warns and stays off); ~2x the pre-training steps/s with bf16 on a small model, "
                            "costs ~10-15 s at the start")

    def __post_init__(self) -> None:  # TrainConfig(budget="20m") in code: parsed here, as the loader parses config files
        for name in ("budget", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, Budget):
                setattr(self, name, Budget.parse(value, f"train.{name}"))

    def validate(self) -> None:
        positive(self, "batch_size", "grad_accum", "log_every", "keep_checkpoints", "max_bad_steps")
        if self.lr <= 0:
            raise UserError(f"train.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.warmup < 1.0:
            raise UserError(f"train.warmup must be a fraction in [0, 1), got {self.warmup}")
        choice(self, "decay", DECAYS)
        if self.loss_spike_factor != 0 and self.loss_spike_factor <= 1:
            raise UserError(f"train.loss_spike_factor must be > 1 (or 0 = off), got {self.loss_spike_factor}")
        choice(self, "clock", CLOCKS)
        choice(self, "precision", PRECISIONS)
        if self.eval_every < 0 or self.threads < 0 or self.max_grad_norm < 0:
            raise UserError("train.eval_every, train.threads and train.max_grad_norm must be >= 0")
        if self.keep_best and not (self.eval_every or self.eval_per_epoch):
            raise UserError(f"train.keep_best={self.keep_best} picks among periodic evaluations: set train.eval_every "
                            "or train.eval_per_epoch=true")
