"""`budgetlm <command>`: parse arguments, build the typed config, call the stage function. Nothing else.

Every command is one row of COMMANDS (function, config class, help, its arguments); a flag that sets a config
field is one entry of its row's `flags` (flag -> section.key). Every user mistake surfaces as one line
`error: ...` and exit code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from budgetlm.config import build_config, describe, preset_names
from budgetlm.errors import UserError
from budgetlm.generate.config import GenerateConfig
from budgetlm.stages.config import SEARCHABLE, FinetuneConfig, PretrainConfig
from budgetlm.stages.defaults import TYPE_PRESETS, finetune_config, pretrain_config, pretrain_defaults
from budgetlm.tasks.config import TASK_TYPES

FINETUNE_DESCRIPTION = """Fine-tune on labelled data. The task type is inferred from the training file and printed:
CoNLL token-per-line rows with blank-line sentences -> token classification (NER); a table with two text
columns (sentence1/sentence2, question/sentence, text_a/text_b, #1 String/#2 String) -> pair classification;
one text column -> sentence classification; a numeric label column with fractions -> regression.
--task-type and the column flags override. Multi-task: a config with a `tasks:` list (presets multitask-*, e.g. --config multitask-mrpc-wikiann-finetune).

Without --config, a run starts from the tuned settings of its task type's built-in preset
  (""" + ", ".join(f"{t}: {p}" for t, p in TYPE_PRESETS.items()) + """)
-- learning rate, warm-up, schedule, batch, length grouping, head, pooling; not its data or budget -- and evaluates
after every pass over the data. It prints which; flags and key=value override them, preset=none gives the bare
defaults listed below. --search lr tries a few learning rates on a slice of the budget and trains the best for the
rest. A run whose loss never left its starting level says so at the end (results.json: "learned": false)."""

PRETRAIN_DESCRIPTION = """Pre-train a model on text within a budget. Without --config, a masked-LM encoder is the budget recipe
of the preset sst2-budget-pretrain (its model and optimizer: d_model 128, RoPE, GeGLU, lr 2e-3, bf16 where the CPU
has it, compiled blocks; not its data or budget): the defaults below. preset=none gives the bare schema defaults
(d_model 256, learned positions: about 4x the cost per step). Decoders and encoder-decoders: see the presets (--config gpt-char-shakespeare, t5-span-pretrain, ...)."""

EVALUATE_DESCRIPTION = """Fine-tune the model on each task (or reuse the finished run in --out/<task>/seed<k>) and write
a GLUE-style table (report.md, report.json) and a bar chart (report.png). Evaluators: see
budgetlm/stages/evaluate.py (EVALUATORS)."""

EPILOG_OVERRIDES = "Config fields (set with section.key=value after the flags, or in --config YAML):\n"


def _run_dir_help(stage: str) -> str:
    return f"run directory (default: runs/{stage}); holds config.json, metrics.jsonl, checkpoints/, model/, results.json"


def _add_common_train(p: argparse.ArgumentParser, stage: str) -> None:
    p.add_argument("--config", metavar="PRESET|FILE",
                   help="a YAML file, or the name of a preset shipped with budgetlm: " + ", ".join(preset_names()))
    p.add_argument("--budget", help="training budget: 90s, 20m, 1h, 3000steps or 2Mtokens (sets train.budget)")
    p.add_argument("--out", default=f"runs/{stage}", help=_run_dir_help(stage))
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last intact checkpoint (none yet: start it from the beginning)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides, e.g. model.d_model=256")


def _add_trust_pickle(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-pickle", action="store_true",
                   help="also read weights stored as a pickle (pytorch_model.bin); unpickling a file can run code "
                        "hidden in it, so pass this only for files you trust (default: safetensors only)")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `error:` line (exit 2) like every other user error."""

    def error(self, message: str):
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)

    def parse_args(self, args=None, namespace=None):
        """Overrides (`key=value`) may also come after flags: `pretrain a.b=1 --budget 5m c.d=2`."""
        parsed, extra = self.parse_known_args(args, namespace)
        strays = [e for e in extra if e.startswith("-") or "=" not in e or not hasattr(parsed, "overrides")]
        if strays:
            self.error(f"unrecognized arguments: {' '.join(strays)}")
        if extra:
            parsed.overrides = list(parsed.overrides) + extra
        return parsed


# ----------------------------------------------------------------------------------------------- arguments

def _tokenizer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=["wordpiece", "bpe", "unigram", "char"], default="wordpiece",
                   help="char = one token per character (vocab = the most frequent --vocab-size characters)")
    p.add_argument("--vocab-size", type=int, default=16384)
    p.add_argument("--out", required=True, help="directory for tokenizer.json")
    p.add_argument("--no-lowercase", action="store_true", help="keep case (default: lowercase)")
    p.add_argument("--no-nfkc", action="store_true", help="skip NFKC unicode normalisation")
    p.add_argument("--strip-accents", action="store_true")
    p.add_argument("--min-frequency", type=int, default=2)
    p.add_argument("--doc-split", choices=["blank", "line", "file"], default="blank",
                   help="documents in .txt files: blank-line blocks, lines, or the whole file")
    p.add_argument("--text-column", default="", help="text column/field in .tsv/.csv/.jsonl files")
    p.add_argument("files", nargs="+", metavar="FILE")


def _pretrain_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tokenizer", help="tokenizer dir or tokenizer.json (default: train WordPiece on --train)")
    p.add_argument("--train", nargs="+", metavar="FILE", help="training text (default: English text in the data root)")
    p.add_argument("--valid", metavar="FILE", help="evaluation text (default: WikiText-2 valid from the data root)")
    _add_common_train(p, "pretrain")


def _finetune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="pre-training run dir, model dir, or exported HF dir")
    p.add_argument("--task", help="built-in task resolved in the data root: sst2, agnews, mrpc, wikiann, wnut17, rusentiment; stsb (sentence embeddings)")
    p.add_argument("--train", metavar="FILE", help="labelled training file (.tsv/.csv with header, .jsonl, CoNLL)")
    p.add_argument("--valid", metavar="FILE", help="labelled validation file")
    p.add_argument("--test", metavar="FILE", help="labelled test file, evaluated once after training")
    p.add_argument("--task-type", choices=list(TASK_TYPES),
                   help="override the inferred task type; embedding (sentence embeddings, never inferred): --train takes STS, "
                        "MRPC, two-column (positive pairs) or one-column/.txt (SimCSE) files, --valid an STS-scored file")
    p.add_argument("--text-column", help="text column, or the first text of a pair (default: inferred; text2text: input if present)")
    p.add_argument("--text-b-column", help="second text column of a pair (default: inferred)")
    p.add_argument("--label-column", help="label column (default: label, Quality, score, ...), or target column for text2text "
                                          "(default: target if present)")
    p.add_argument("--scratch", action="store_true", help="same architecture and tokenizer, random initialisation (baseline)")
    p.add_argument("--method", help="head (encoder + classification head) or text2text (encoder-decoder: generate the target "
                                    "text, e.g. SST-2 as positive/negative; TSVs with input/target columns); "
                                    "prompt (decoder: zero-/few-shot scoring of label words, no training; prompt.template, "
                                    "prompt.verbalisers, prompt.shots); default: from the model")
    p.add_argument("--shots", type=int, help="--method prompt: k demonstrations from the train file (sets prompt.shots)")
    p.add_argument("--search", choices=list(SEARCHABLE),
                   help="lr: train with a few learning rates (search.factors x train.lr) on search.fraction of the budget "
                        "each, score them on the validation data, then train the best for the rest (sets search.param)")
    _add_trust_pickle(p)
    _add_common_train(p, "finetune")


def _pmi_vocab_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="vocabulary file to write")
    p.add_argument("--min-count", type=int, default=5, help="ignore n-grams seen fewer times (default: 5)")
    p.add_argument("--size", type=int, default=0, help="n-grams to keep; 0 = one per 100 words of text (default)")
    p.add_argument("--doc-split", choices=["blank", "line"], default="blank", help="documents in .txt files: blank-line blocks or lines")
    p.add_argument("--text-column", default="", help="text column/field in .tsv/.csv/.jsonl files")
    p.add_argument("files", nargs="+", metavar="FILE", help="text files (.txt, .jsonl, .tsv, .csv, .zip of .txt)")


def _tag_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="fine-tuned NER run dir or model dir")
    p.add_argument("text", help="the text to tag")
    p.add_argument("--head", help="which token head of a multi-task model (default: its only token head)")
    _add_trust_pickle(p)


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="pre-training run dir, model dir, or exported HF dir")
    p.add_argument("--tasks", default="sst2,mrpc,wikiann", help="comma-separated evaluator names: sst2, agnews, mrpc, wikiann, wnut17, stsb, rusentiment; mrpc-probe (frozen embeddings, no fine-tuning) (default: sst2,mrpc,wikiann)")
    p.add_argument("--budget", help="training budget per task and seed, e.g. 2m or 300steps (default: each task's preset)")
    p.add_argument("--budgets", help="per-task budgets overriding --budget, e.g. sst2=3m,wikiann=5m")
    p.add_argument("--seeds", type=int, default=1, help="fine-tune each task with seeds 0..N-1 and report the mean")
    p.add_argument("--scratch", action="store_true", help="evaluate the architecture from random initialisation instead")
    p.add_argument("--out", default="runs/evaluate", help="report directory: report.md, report.json, report.png, one run dir per task")
    _add_trust_pickle(p)
    # after MODEL, argparse cannot take a second positional list: _Parser.parse_args collects the key=value
    # overrides from the arguments it does not know
    p.set_defaults(overrides=[])


def _embed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="run dir, model dir or transformers dir (an embedding model, or any encoder: mean-pooled)")
    p.add_argument("file", help="a .txt file (one text per line) or a .tsv/.csv/.jsonl file (see --text-column)")
    p.add_argument("--out", required=True, help="output .npy: (texts, dim) float32, L2-normalised rows in file order")
    p.add_argument("--text-column", default="", help="text column/field in .tsv/.csv/.jsonl files (default: text, sentence, ...)")
    p.add_argument("--batch-size", type=int, default=64, help="texts per forward pass")
    _add_trust_pickle(p)


def _similar_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="run dir, model dir or transformers dir")
    p.add_argument("query", help="the text to search for")
    p.add_argument("file", help="a .txt file (one text per line) or a .tsv/.csv/.jsonl file (see --text-column)")
    p.add_argument("--top-k", type=int, default=5, help="how many texts to show")
    p.add_argument("--text-column", default="", help="text column/field in .tsv/.csv/.jsonl files")
    p.add_argument("--batch-size", type=int, default=64, help="texts per forward pass")
    _add_trust_pickle(p)


def _probe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="run dir, model dir or transformers dir (an embedding model, or any encoder: mean-pooled)")
    p.add_argument("--task", help="built-in pair task resolved in the data root: mrpc")
    p.add_argument("--train", metavar="FILE", help="labelled pair file (.tsv/.csv with header, .jsonl; columns as in finetune)")
    p.add_argument("--test", metavar="FILE", help="labelled pair file the figures are reported on")
    p.add_argument("--text-column", help="first text of a pair (default: inferred)")
    p.add_argument("--text-b-column", help="second text of a pair (default: inferred)")
    p.add_argument("--label-column", help="label column (default: label, Quality, ...)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds on the training pairs that choose C")
    p.add_argument("--batch-size", type=int, default=64, help="texts per forward pass")
    p.add_argument("--out", help="also write the figures to this .json file")
    _add_trust_pickle(p)


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="run dir, model dir, or a transformers / sentence-transformers dir (re-exported)")
    p.add_argument("--format", choices=["hf"], default="hf")
    p.add_argument("--out", required=True, help="the export directory (replaced only if it is an earlier export)")
    _add_trust_pickle(p)


def _generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="decoder run dir, model dir or exported transformers dir")
    p.add_argument("--prompt", help="text to continue")
    p.add_argument("--prompt-file", metavar="FILE", help="read the prompt from a UTF-8 file (e.g. a few-shot prompt)")
    defaults = GenerateConfig()
    p.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens, help="tokens to generate at most")
    p.add_argument("--temperature", type=float, default=defaults.temperature, help="softmax temperature; 0 = greedy")
    p.add_argument("--top-k", type=int, default=defaults.top_k, help="sample among the k most likely tokens; 0 = all")
    p.add_argument("--top-p", type=float, default=defaults.top_p, help="nucleus sampling mass, in (0, 1]; 1 = off")
    p.add_argument("--repetition-penalty", type=float, default=defaults.repetition_penalty,
                   help="> 1 discourages repeating tokens already in the text; 1 = off")
    p.add_argument("--seed", type=int, default=defaults.seed, help="sampling seed")
    _add_trust_pickle(p)


def _fill_mask_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="run dir, model dir or exported HF dir")
    p.add_argument("text")
    p.add_argument("--top-k", type=int, default=5)
    _add_trust_pickle(p)


# ----------------------------------------------------------------------------------------------- commands
# Each takes the parsed arguments and, for a command with a config class, the config its flags and overrides
# built, and returns what the Python API hands back. The stage modules are imported inside, so `budgetlm --help`
# loads none of them.

def _tokenizer(args, cfg) -> None:
    from budgetlm.stages.tokenize import train_tokenizer_stage
    from budgetlm.tokenizer import TokenizerOptions

    opts = TokenizerOptions(lowercase=not args.no_lowercase, nfkc=not args.no_nfkc, strip_accents=args.strip_accents,
                            min_frequency=args.min_frequency)
    train_tokenizer_stage(args.kind, args.vocab_size, args.files, args.out, opts, args.doc_split, args.text_column)


def _pretrain(args, cfg: PretrainConfig) -> dict:
    from budgetlm.stages.pretrain import pretrain
    from budgetlm.train import distributed

    with distributed.session():  # joins the process group under torchrun; a no-op otherwise
        results = pretrain(cfg, args.out, resume=args.resume)
        if distributed.is_main():
            _print_results("pre-training", results, args.out)
    return results


def _finetune(args, cfg: FinetuneConfig) -> dict:
    from budgetlm.stages.finetune import finetune
    from budgetlm.train import distributed

    with distributed.session():
        results = finetune(cfg, args.model, args.out, resume=args.resume, scratch=args.scratch,
                           trust_pickle=args.trust_pickle)
        if distributed.is_main():
            _print_results("fine-tuning", results, args.out)
    return results


def _pmi_vocab(args, cfg) -> None:
    from budgetlm.objectives.pmi_vocab import build_pmi_vocab

    summary = build_pmi_vocab(args.files, args.out, args.min_count, args.size, args.doc_split, args.text_column)
    print(f"wrote {summary['entries']:,} n-grams {summary['per_length']} from {summary['words']:,} words "
          f"to {args.out} in {summary['seconds']:.1f}s")


def _tag(args, cfg) -> None:
    from budgetlm.stages.tag import tag

    found = tag(args.model, args.text, args.head, trust_pickle=args.trust_pickle)
    for text, kind in found:
        print(f"{kind}\t{text}")
    if not found:
        print("no entities found", file=sys.stderr)


def _evaluate(args, cfg) -> dict:
    from budgetlm.stages.evaluate import evaluate, parse_budgets

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    report = evaluate(args.model, tasks, args.out, budgets=parse_budgets(args.budget, args.budgets, tasks),
                      seeds=args.seeds, scratch=args.scratch, overrides=list(args.overrides),
                      trust_pickle=args.trust_pickle)
    print(report.markdown())
    print(f"\nreport: {args.out}/report.md, {args.out}/report.json, {args.out}/report.png")
    return report.to_dict()


def _check_batch_size(args) -> None:
    if args.batch_size < 1:
        raise UserError("--batch-size must be >= 1")


def _embed(args, cfg) -> None:
    from budgetlm.stages.embed import embed_file

    _check_batch_size(args)
    out, shape = embed_file(args.model, args.file, args.out, args.text_column, args.batch_size,
                            trust_pickle=args.trust_pickle)
    print(f"wrote {shape[0]} x {shape[1]} embeddings to {out}")


def _similar(args, cfg) -> None:
    from budgetlm.stages.embed import similar

    _check_batch_size(args)
    for score, text in similar(args.model, args.query, args.file, args.top_k, args.text_column, args.batch_size,
                               trust_pickle=args.trust_pickle):
        print(f"{score:.3f}  {text}")


def _probe(args, cfg) -> None:
    from budgetlm.stages.probe import probe_pairs
    from budgetlm.tasks.config import TaskDataConfig

    _check_batch_size(args)
    data = TaskDataConfig(task=args.task or "", train=args.train or "", test=args.test or "", valid_every=10,
                          task_type="pair", text_column=args.text_column or "", text_b_column=args.text_b_column or "",
                          label_column=args.label_column or "")
    results = probe_pairs(args.model, data, args.out, args.folds, args.batch_size, args.trust_pickle)
    print(json.dumps(results, indent=2))


def _export(args, cfg) -> Path:
    from budgetlm.exporters.writers import export_hf
    from budgetlm.exporters.hf_families import EXPORT_NOTE

    out = export_hf(args.run_dir, args.out, trust_pickle=args.trust_pickle)
    if json.loads((out / EXPORT_NOTE).read_text())["kind"] == "embedder":
        print(f"exported to {out} (load with sentence_transformers.SentenceTransformer; the encoder alone "
              "with transformers.AutoModel)")
    else:
        print(f"exported to {out} (load with transformers.AutoModel*.from_pretrained)")
    return out


def _generate(args, cfg) -> None:
    from budgetlm.stages.generate import generate_text, read_prompt

    cfg = GenerateConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                         top_p=args.top_p, repetition_penalty=args.repetition_penalty, seed=args.seed)
    cfg.validate()
    generate_text(args.model, read_prompt(args.prompt, args.prompt_file), cfg, trust_pickle=args.trust_pickle)


def _fill_mask(args, cfg) -> None:
    from budgetlm.stages.fill_mask import fill_mask

    if args.top_k < 1:
        raise UserError("--top-k must be >= 1")
    for i, preds in enumerate(fill_mask(args.model, args.text, args.top_k, trust_pickle=args.trust_pickle)):
        print(f"[MASK] #{i + 1}: " + "  ".join(f"{t} ({p:.3f})" for t, p in preds))


@dataclass(frozen=True)
class Command:
    """One `budgetlm <name>`: what runs, the config its flags build (None: it takes plain arguments), its help."""

    run: Callable[[argparse.Namespace, object], object]  # returns what the Python API hands back (or None)
    config: type | None
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    flags: dict[str, str] = field(default_factory=dict)  # argparse dest -> config key it sets (after --config)
    description: str | None = None
    epilog: str | None = None
    raw: bool = False  # keep the description's line breaks
    # (config file, overrides) -> the config; default: the schema's defaults under them (config.build_config)
    build: Callable[[str | None, list[str]], object] | None = None
    defaults: Callable[[], object] | None = None  # the config --help lists the defaults of; default: config()


COMMANDS = {
    "tokenizer": Command(_tokenizer, None, "train a tokenizer", _tokenizer_args, raw=True),
    "pretrain": Command(
        _pretrain, PretrainConfig, "pre-train an encoder (masked LM), a decoder (next token) or an encoder-decoder "
                                   "(span corruption, text infilling)", _pretrain_args, description=PRETRAIN_DESCRIPTION,
        raw=True, flags={"tokenizer": "data.tokenizer", "train": "data.train", "valid": "data.valid", "budget": "train.budget"},
        build=pretrain_config, defaults=pretrain_defaults),
    "finetune": Command(
        _finetune, FinetuneConfig, "fine-tune on labelled data: sentence / pair classification, regression, NER, "
                                   "multi-task; an encoder-decoder text-to-text; or prompt a decoder (--method prompt)",
        _finetune_args, description=FINETUNE_DESCRIPTION, raw=True,
        flags={"task": "data.task", "train": "data.train", "valid": "data.valid", "test": "data.test",
               "task_type": "data.task_type", "text_column": "data.text_column", "text_b_column": "data.text_b_column",
               "label_column": "data.label_column", "budget": "train.budget", "method": "method", "shots": "prompt.shots",
               "search": "search.param"},
        build=finetune_config),
    "pmi-vocab": Command(
        _pmi_vocab, None, "build the n-gram vocabulary for PMI-masking (objective.masking=pmi)", _pmi_vocab_args,
        description="Count word n-grams (n=2..5) in the text, score them by PMI_n (Levine et al. 2021) "
                    "and write the top ones per length (50%% bigrams, 25%% trigrams, 12.5%% 4- and 5-grams) "
                    "as a text file: n-gram<TAB>count<TAB>score."),
    "tag": Command(_tag, None, "print the named entities a token-classification model finds in a text", _tag_args),
    "evaluate": Command(
        _evaluate, None, "fine-tune and evaluate a model on several tasks; GLUE-style table + chart", _evaluate_args,
        description=EVALUATE_DESCRIPTION, raw=True,
        epilog="Fine-tuning config overrides for every task go after the flags as key=value, e.g. train.threads=1."),
    "embed": Command(_embed, None, "embed texts (one per line, or a column) into an .npy matrix", _embed_args),
    "similar": Command(_similar, None, "the texts of a file most similar to a query (cosine of sentence embeddings)",
                       _similar_args),
    "probe": Command(
        _probe, None, "linear probe of frozen sentence embeddings on a pair task (SentEval protocol, e.g. MRPC)",
        _probe_args,
        description="Embed each sentence of a pair classification task with the model (not fine-tuned), "
                    "represent a pair by [|u-v|, u*v, cos], fit logistic regression (C chosen by --folds-fold "
                    "cross-validation on the training pairs) and report test accuracy and F1."),
    "export": Command(
        _export, None, "export a model for transformers (an embedding model: for sentence-transformers)", _export_args,
        description="Write a model as a transformers directory that loads offline with its stock class "
                    "(AutoModelForMaskedLM, ...ForSequenceClassification, ...ForCausalLM, "
                    "...ForSeq2SeqLM). An embedding model becomes a sentence-transformers directory: "
                    "the encoder as its transformers class, then pooling, projection and "
                    "post-processing as sentence-transformers modules. Every export is checked "
                    "against the budgetlm model on a probe batch before it is kept."),
    "generate": Command(
        _generate, None, "continue a prompt with a decoder (streams the continuation)", _generate_args,
        description="Continue a prompt with a decoder, printing tokens as they are sampled (KV cache). "
                    "Stops at end-of-text or --max-new-tokens; a prompt longer than the model's context "
                    "is cut from the left (with a note on stderr)."),
    "fill-mask": Command(_fill_mask, None, "predict the [MASK] tokens in a sentence", _fill_mask_args),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="budgetlm", description="Pre-train, fine-tune and ship Transformer LMs on the compute you have.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        epilog = command.epilog
        if command.config is not None:  # every field of the config, with its help text and the default it runs with
            defaults = command.defaults() if command.defaults else None
            epilog = EPILOG_OVERRIDES + "\n".join(describe(command.config, obj=defaults))
        kw = {"formatter_class": argparse.RawDescriptionHelpFormatter} if command.raw else {}
        p = sub.add_parser(name, help=command.help, description=command.description, epilog=epilog, **kw)
        command.add_arguments(p)
    return parser


def _overrides(values: dict, mapping: dict[str, str]) -> list[str]:
    out = []
    for attr, key in mapping.items():
        value = values.get(attr)
        if value is None:
            continue
        if isinstance(value, list):
            value = json.dumps(value)
        out.append(f"{key}={value}")
    return out + list(values.get("overrides") or [])


def command_config(name: str, values: dict):
    """The typed config `budgetlm <name>` runs with, from its flag values (argparse dests -> values: 'config',
    'budget', 'train', ..., 'overrides'): defaults < --config preset < flags < key=value overrides. The Python API
    (budgetlm/api.py) builds its configs here too, so the two cannot drift apart."""
    command = COMMANDS[name]
    build = command.build or partial(build_config, command.config)  # finetune/pretrain: defaults.py's builders
    return build(values.get("config"), _overrides(values, command.flags))


def execute(name: str, values: dict):
    """Run `budgetlm <name>` with these flag values; returns what the command returns (results, report, export
    directory, or None). User errors are raised as UserError: `main` turns them into one `error:` line."""
    command = COMMANDS[name]
    cfg = command_config(name, values) if command.config is not None else None
    return command.run(argparse.Namespace(**values), cfg)


def run(args) -> int:
    values = dict(vars(args))
    execute(values.pop("command"), values)
    return 0


def _print_results(what: str, results: dict, out: str) -> None:
    model = f", model in {out}/model" if (Path(out) / "model").is_dir() else ""
    print(f"\n{what} finished; results in {out}/results.json{model}")
    for k, v in results.items():
        if isinstance(v, float):
            print(f"  {k:<20} {v:.4f}")
        elif isinstance(v, int):
            print(f"  {k:<20} {v}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # _Parser.parse_args: key=value overrides may come between flags
    return guarded(lambda: run(args))


def guarded(job) -> int:
    """Run `job()`; user errors become one `error:` line and exit 2, Ctrl-C exit 130 (after its checkpoint)."""
    from budgetlm.train.loop import Interrupted

    try:
        return job()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(str(e), file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
