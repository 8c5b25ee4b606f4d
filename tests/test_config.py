"""Typed configs: unknown keys, wrong types and bad values are UserErrors with a helpful message;
dotted overrides merge onto YAML presets; every preset shipped in budgetlm/presets/ validates and is found by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from budgetlm.config import apply_overrides, build_config, config_path, describe, preset_names, preset_path, presets_dir
from budgetlm.errors import UserError
from budgetlm.models.config import ModelConfig
from budgetlm.stages.config import FinetuneConfig, PretrainConfig
from budgetlm.train.config import Budget, TrainConfig, parse_budget

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------ budgets

@pytest.mark.parametrize("text, kind, amount", [
    ("90s", "seconds", 90),
    ("20m", "seconds", 1200),
    ("20min", "seconds", 1200),
    ("1h", "seconds", 3600),
    ("1.5h", "seconds", 5400),
    ("3000steps", "steps", 3000),
    ("1step", "steps", 1),
    ("2ksteps", "steps", 2000),
    ("2Mtokens", "tokens", 2_000_000),
    ("500ktokens", "tokens", 500_000),
    (" 12 steps ", "steps", 12),
])
def test_parse_budget_accepts_documented_forms(text, kind, amount):
    assert parse_budget(text) == Budget(kind, float(amount))


@pytest.mark.parametrize("text, fragment", [
    ("0s", "must be positive"),
    ("0steps", "must be positive"),
    ("0.4steps", "must be positive"),  # rounds down to zero steps
    ("abc", "cannot read 'abc'"),
    ("", "cannot read"),
    ("-5s", "cannot read"),
    ("20", "cannot read"),
    ("5Ms", "mixes a multiplier with a time unit"),
    ("3kh", "mixes a multiplier with a time unit"),
    ("10 parsecs", "cannot read"),
])
def test_parse_budget_rejects_bad_forms_with_a_hint(text, fragment):
    with pytest.raises(UserError) as e:
        parse_budget(text, "train.budget")
    msg = str(e.value)
    assert fragment in msg
    assert msg.startswith("train.budget")  # names the field
    if "cannot read" in fragment:
        assert "3000steps" in msg  # and shows valid examples


def test_bad_budget_in_a_config_is_reported_against_its_field():
    with pytest.raises(UserError, match=r"train\.checkpoint_every: cannot read 'often'"):
        build_config(PretrainConfig, overrides=["train.checkpoint_every=often"])


# ------------------------------------------------------------------------------------------------ building

def test_defaults_validate():
    PretrainConfig().validate()
    FinetuneConfig().validate()


def test_dotted_overrides_set_nested_fields_with_their_types():
    cfg = build_config(PretrainConfig, overrides=[
        "model.d_model=64", "model.dropout=0", "model.glu=true", "train.lr=0.0003", "train.budget=90s",
        "data.train=[a.txt, b.txt]", "objective.mask_rate=0.25",
    ])
    assert cfg.model.d_model == 64 and isinstance(cfg.model.d_model, int)
    assert cfg.model.dropout == 0.0 and isinstance(cfg.model.dropout, float)
    assert cfg.model.glu is True
    assert cfg.train.lr == pytest.approx(3e-4)
    assert cfg.train.budget == "90s"
    assert cfg.data.train == ["a.txt", "b.txt"]
    assert cfg.objective.mask_rate == 0.25
    # untouched fields keep their defaults
    assert cfg.model.n_layers == ModelConfig().n_layers


@pytest.mark.parametrize("text, value", [("3e-4", 3e-4), ("1e-3", 1e-3), ("2E-5", 2e-5), ("3.0e-4", 3e-4)])
def test_float_fields_accept_exponent_notation(text, value, tmp_path):
    # `train.lr=3e-4` is how everyone writes a learning rate; PyYAML (YAML 1.1) reads "3e-4" as a *string*
    cfg = build_config(PretrainConfig, overrides=[f"train.lr={text}"])
    assert cfg.train.lr == pytest.approx(value)
    f = tmp_path / "c.yaml"
    f.write_text(f"train:\n  lr: {text}\n")
    assert build_config(PretrainConfig, str(f)).train.lr == pytest.approx(value)


def test_single_string_becomes_a_one_item_list():
    cfg = build_config(PretrainConfig, overrides=["data.train=corpus.txt"])
    assert cfg.data.train == ["corpus.txt"]


def test_overrides_win_over_the_yaml_file_and_the_rest_of_the_file_is_kept(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  d_model: 64\n  n_heads: 4\ntrain:\n  lr: 0.002\n")
    cfg = build_config(PretrainConfig, str(f), ["model.d_model=128"])
    assert cfg.model.d_model == 128
    assert cfg.model.n_heads == 4
    assert cfg.train.lr == 0.002


def test_finetune_section_defaults_survive_partial_overrides():
    # FinetuneConfig's train section has its own defaults (lr 1e-4, warmup 0.1): setting one key must keep them
    cfg = build_config(FinetuneConfig, overrides=["train.batch_size=8"])
    assert cfg.train.batch_size == 8
    assert cfg.train.lr == 1e-4
    assert cfg.train.warmup == 0.1


@pytest.mark.parametrize("override, fragment", [
    ("model.d_modle=64", "unknown config key 'model.d_modle'"),
    ("modle.d_model=64", "unknown config key 'modle'"),
    ("train.learning_rate=1", "unknown config key 'train.learning_rate'"),
])
def test_unknown_key_is_named_and_valid_keys_are_listed(override, fragment):
    with pytest.raises(UserError) as e:
        build_config(PretrainConfig, overrides=[override])
    assert fragment in str(e.value)
    assert "valid keys here" in str(e.value)


def test_unknown_key_lists_the_section_fields():
    with pytest.raises(UserError) as e:
        build_config(PretrainConfig, overrides=["model.d_modle=64"])
    assert "d_model" in str(e.value) and "n_heads" in str(e.value)


@pytest.mark.parametrize("override, fragment", [
    ("model.d_model=abc", "model.d_model: expected int, got 'abc'"),
    ("model.d_model=1.5", "model.d_model: expected int"),
    ("model.d_model=true", "model.d_model: expected int"),
    ("train.lr=fast", "train.lr: expected float"),
    ("model.glu=maybe", "model.glu: expected bool"),
    ("data.train={a: 1}", "data.train: expected"),
])
def test_wrong_type_names_the_field_and_the_value(override, fragment):
    with pytest.raises(UserError) as e:
        build_config(PretrainConfig, overrides=[override])
    assert fragment in str(e.value)


def test_wrong_type_in_yaml_is_an_error(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  n_layers: [1, 2]\n")
    with pytest.raises(UserError, match=r"model\.n_layers: expected int"):
        build_config(PretrainConfig, str(f))


def test_d_model_not_divisible_by_n_heads():
    with pytest.raises(UserError) as e:
        build_config(PretrainConfig, overrides=["model.d_model=30", "model.n_heads=4"])
    assert "model.d_model (30) must be divisible by model.n_heads (4)" in str(e.value)


def test_rope_needs_an_even_head_size():
    with pytest.raises(UserError, match="even head size"):
        build_config(PretrainConfig, overrides=["model.d_model=12", "model.n_heads=4", "model.position=rope"])


@pytest.mark.parametrize("cls, override, fragment", [
    (PretrainConfig, "model.activation=swish", "model.activation='swish' is not one of: gelu, gelu_tanh, relu, relu2, silu"),
    (PretrainConfig, "model.norm_position=middle", "model.norm_position='middle' is not one of: pre, post"),
    (PretrainConfig, "model.position=alibi", "model.position='alibi' is not one of: learned, rope"),
    (PretrainConfig, "train.decay=step", "train.decay='step' is not one of: linear, cosine, constant"),
    (PretrainConfig, "data.doc_split=page", "data.doc_split='page' is not one of: blank, line"),
    (PretrainConfig, "objective.masking=span", "objective.masking='span' is not one of: random"),
    (FinetuneConfig, "head.pooling=max", "head.pooling='max' is not one of: cls, mean"),
])
def test_bad_choice_lists_the_valid_ones(cls, override, fragment):
    with pytest.raises(UserError) as e:
        build_config(cls, overrides=[override])
    assert fragment in str(e.value)


@pytest.mark.parametrize("override, fragment", [
    ("model.n_layers=0", "model.n_layers must be > 0, got 0"),
    ("model.d_model=-32", "model.d_model must be > 0"),
    ("model.dropout=1.0", "model.dropout must be in [0, 1)"),
    ("model.attention_dropout=1.0", "model.attention_dropout must be in [0, 1) (or -1"),
    ("objective.mask_rate=0", "objective.mask_rate must be in (0, 1)"),
    ("objective.mask_token_prob=0.95", "must be <= 1"),
    ("train.lr=0", "train.lr must be > 0"),
    ("train.warmup=1.0", "train.warmup must be a fraction"),
    ("train.batch_size=0", "train.batch_size must be > 0"),
    ("data.vocab_size=8", "data.vocab_size must be >= 16"),
])
def test_out_of_range_values(override, fragment):
    with pytest.raises(UserError) as e:
        build_config(PretrainConfig, overrides=[override])
    assert fragment in str(e.value)


@pytest.mark.parametrize("bad", ["model.d_model", "=3", "model..d_model=3"])
def test_malformed_override(bad):
    with pytest.raises(UserError, match="override"):
        apply_overrides({}, [bad])


def test_missing_config_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        build_config(PretrainConfig, str(tmp_path / "nope.yaml"))


def test_config_file_that_is_not_a_mapping(tmp_path):
    f = tmp_path / "list.yaml"
    f.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="must be a mapping"):
        build_config(PretrainConfig, str(f))


def test_invalid_yaml_is_a_user_error(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("model: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        build_config(PretrainConfig, str(f))


def test_describe_has_a_help_line_for_every_field():
    lines = describe(PretrainConfig)
    assert any(l.strip().startswith("model.d_model=256") and "hidden size" in l for l in lines)
    assert any(l.strip().startswith("train.budget=") for l in lines)
    assert all(l.split(")", 1)[1].strip() for l in lines)  # no field without help text
    assert describe(TrainConfig)


# ------------------------------------------------------------------------------------------------ presets

PRESETS = sorted(presets_dir().glob("*.yaml"))


def test_there_are_presets():
    assert PRESETS, f"no YAML presets in {presets_dir()}"
    assert presets_dir() == REPO / "budgetlm" / "presets"  # inside the package, so a wheel carries them


def test_presets_live_only_inside_the_package():
    """Issue 23: a root configs/ folder is not in the wheel; the presets must not drift back there."""
    assert not (REPO / "configs").exists(), "presets live in budgetlm/presets/, not in a root configs/ folder"


@pytest.mark.parametrize("spelling", ["sst2-finetune", "sst2-finetune.yaml", "configs/sst2-finetune.yaml"])
def test_a_preset_is_named_by_its_name_its_file_or_its_old_path(spelling):
    assert preset_path(spelling) == presets_dir() / "sst2-finetune.yaml"
    assert config_path(spelling) == presets_dir() / "sst2-finetune.yaml"
    assert "sst2-finetune" in preset_names() and len(preset_names()) == len(PRESETS)


def test_an_unknown_preset_lists_the_presets():
    with pytest.raises(UserError, match="no preset named 'sst2-finetun'; the presets are: .*sst2-finetune"):
        preset_path("sst2-finetun")
    with pytest.raises(UserError, match="sst2-finetun: config file not found, and no preset of that name; the presets are"):
        build_config(FinetuneConfig, "sst2-finetun")


def test_a_file_wins_over_a_preset_of_the_same_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sst2-finetune").write_text("train:\n  lr: 0.125\n")
    assert build_config(FinetuneConfig, "sst2-finetune").train.lr == 0.125
    assert build_config(FinetuneConfig, "mrpc-finetune").train.lr == build_config(FinetuneConfig, str(preset_path("mrpc-finetune"))).train.lr


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_every_preset_validates(path):
    name = path.name
    if "pretrain" in name or name.startswith("gpt-"):  # gpt-*.yaml: decoder pre-training presets (issue 3)
        cls = PretrainConfig
    elif "finetune" in name:
        cls = FinetuneConfig
    else:
        pytest.fail(f"{name}: cannot tell which stage this preset is for (name it *pretrain*.yaml, *finetune*.yaml or gpt-*.yaml)")
    cfg = build_config(cls, str(path))
    parse_budget(cfg.train.budget)  # the budget in the preset is readable
    assert isinstance(cfg, cls)


def test_objective_defaults_to_the_family_s_own():
    cfg = build_config(PretrainConfig, None, ["model.family=encoder_decoder", "model.type_vocab_size=0"])
    assert cfg.objective.name == "span_corruption"
    assert build_config(PretrainConfig, None, []).objective.name == "mlm"
    cfg = build_config(PretrainConfig, None, ["model.family=encoder_decoder", "model.type_vocab_size=0",
                                              "objective.name=text_infilling"])
    assert cfg.objective.name == "text_infilling"


def test_finetune_overrides_both_dropouts_of_the_backbone(tiny_model_config):
    backbone = tiny_model_config(dropout=0.0)
    assert FinetuneConfig().backbone(backbone) == backbone
    tuned = FinetuneConfig(dropout=0.1, attention_dropout=0.0).backbone(backbone)
    assert (tuned.dropout, tuned.attention_dropout_p, backbone.dropout) == (0.1, 0.0, 0.0)
    assert FinetuneConfig(dropout=0.1).backbone(backbone).attention_dropout_p == 0.1
