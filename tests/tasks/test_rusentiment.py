"""The built-in RuSentiment task: its files in the data root (CSV posts with line breaks inside quotes, emoji, commas,
the 5 labels), the training set read from two files with every 10th post held out, and weighted F1 as its figure."""

from __future__ import annotations

import csv
import io

import pytest

from budgetlm.errors import UserError
from budgetlm.stages.finetune_head import prepare_task
from budgetlm.stages.method import single_task_files
from budgetlm.stages.config import FinetuneConfig
from budgetlm.tasks.config import TaskDataConfig
from budgetlm.tasks.resolve import resolve_task

LABELS = ["neutral", "positive", "negative", "speech", "skip"]
POSTS = [
    "Александр, тебе к лицу эта пушка :)\n",
    "Скоро ты вернешься домой, грязный, не бритый но такой любимый ❤",
    "Мы просто с  [id12210212|Елисеем]  психанули )))))\nК новому году в бункере готовы!))))))",
    'ой, прости забыла поздравить, с "праздничьком", да ! ))))',
    "нельзя общаться с людьми, которые нуждаются в тебе меньше чем ты в них...",
    "20% усилий приносят 80% результата",
    "Наши красавцы. 1:3 в первом периоде и 7:3 в итоге.🍹",
]


def posts_csv(seed: int, n: int) -> str:
    """`label,text` rows as the RuSentiment release writes them: minimal quoting, LF line ends."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["label", "text"])
    for i in range(n):
        w.writerow([LABELS[(i + seed) % 5], f"{POSTS[(i * 3 + seed) % len(POSTS)]} #{seed}-{i}"])
    return buf.getvalue()


def write_rusentiment(root, n_random: int = 14, n_preselected: int = 6, n_test: int = 5) -> None:
    d = root / "rusentiment"
    d.mkdir(parents=True, exist_ok=True)
    (d / "rusentiment_random_posts.csv").write_text(posts_csv(0, n_random), encoding="utf-8")
    (d / "rusentiment_preselected_posts.csv").write_text(posts_csv(1, n_preselected), encoding="utf-8")
    (d / "rusentiment_test.csv").write_text(posts_csv(2, n_test), encoding="utf-8")


@pytest.fixture
def root(tmp_path, monkeypatch):
    write_rusentiment(tmp_path)
    monkeypatch.setenv("BUDGETLM_DATA", str(tmp_path))
    return tmp_path


def test_resolves_both_training_files_the_test_file_and_weighted_f1(root):
    spec = resolve_task(TaskDataConfig(task="rusentiment"))
    d = root / "rusentiment"
    assert spec.train_files() == [str(d / "rusentiment_random_posts.csv"), str(d / "rusentiment_preselected_posts.csv")]
    assert (spec.valid, spec.test, spec.valid_every) == ("", str(d / "rusentiment_test.csv"), 10)
    assert spec.files() == spec.train_files() + [spec.test]
    assert (spec.task_type, spec.columns.text, spec.columns.label, spec.main_metric) == ("sentence", "text", "label", "weighted_f1")


def test_main_metric_defaults_to_the_task_types(tmp_path):
    p = tmp_path / "s.tsv"
    p.write_text("sentence\tlabel\ngood\t1\nbad\t0\n")
    assert resolve_task(TaskDataConfig(train=str(p), valid=str(p))).main_metric == "accuracy"
    c = tmp_path / "t.conll"
    c.write_text("Paris\tB-LOC\nis\tO\n")
    assert resolve_task(TaskDataConfig(train=str(c), valid=str(c))).main_metric == "f1"


def test_reads_posts_across_lines_and_holds_out_every_tenth(root, tiny_tokenizer):
    task = prepare_task(resolve_task(TaskDataConfig(task="rusentiment")), tiny_tokenizer, 32, "cls")
    assert task.labels == sorted(LABELS)  # negative, neutral, positive, skip, speech
    # 14 random + 6 preselected = 20 posts read as one set; posts 0 and 10 (both random) are held out
    assert (len(task.train), len(task.valid), len(task.test)) == (18, 2, 5)
    assert task.valid.data.texts[0] == "Александр, тебе к лицу эта пушка :)\n #0-0"
    assert task.valid.data.labels == ["neutral", "neutral"]
    train = task.train.data
    assert train.path.endswith("rusentiment_random_posts.csv + " + str(root / "rusentiment" / "rusentiment_preselected_posts.csv"))
    assert any("\nК новому году" in t for t in train.texts) and any("❤" in t for t in train.texts)
    assert any('"праздничьком"' in t for t in train.texts)
    assert train.texts[-1].endswith("#1-5")  # the last preselected post comes last
    # each post keeps the line its record starts on: post 0 (held out) spans lines 2-3, posts 1 and 2 are on 4 and 5,
    # post 3 spans 6-7, post 4 is on 8
    assert train.lines[:4] == [4, 5, 6, 8]
    assert set(task.test.data.labels) == set(LABELS)


def test_single_file_methods_are_refused(root):
    cfg = FinetuneConfig()
    cfg.data.task = "rusentiment"
    with pytest.raises(UserError, match="needs a validation file; built-in task rusentiment has none"):
        single_task_files(cfg, "text2text")
