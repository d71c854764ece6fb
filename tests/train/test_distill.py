"""Knowledge distillation (config section ``distill``): a distilled task's loss is ``(1 - w) * gold + w * KD``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from mtcore import Trainer
from mtcore.cli.app import app
from mtcore.train.distill import Distiller, distillation_loss


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory, shared_make_config, word_encoder: Path) -> Path:
    """A run trained on the three synthetic tasks with the wider encoder (the same vocabulary as the student's)."""
    run = tmp_path_factory.mktemp("teacher") / "run"
    config = shared_make_config(encoder={"path": str(word_encoder)}, schedule={"max_steps": 12, "warmup_steps": 1})
    Trainer(config, output_dir=run).train()
    return run


def _student(tmp_path: Path, make_config, name: str, distill: dict | None, **sections) -> dict[str, torch.Tensor]:
    config = make_config(**sections)
    if distill is not None:
        config["distill"] = distill
    Trainer(config, output_dir=tmp_path / name).train()
    from safetensors.torch import load_file

    return {f"{p.parent.name}/{p.name}:{k}": v for p in sorted((tmp_path / name / "model").rglob("*.safetensors"))
            for k, v in load_file(str(p)).items()}


def _flipped(tasks: list[dict], root: Path) -> list[dict]:
    """The tasks with every label of the text-classification task's training rows flipped."""
    tasks = json.loads(json.dumps(tasks))
    files = tasks[0]["define"]["files"]
    rows = [json.loads(line) for line in Path(files["train"]).read_text().splitlines()]
    for row in rows:
        row["label"] = {"negative": "positive", "positive": "negative"}[row["label"]]
    root.mkdir()
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    files["train"] = str(root / "train.jsonl")
    return tasks


def test_the_teachers_share_decides_what_the_labels_count(tmp_path: Path, make_config, small_tasks, teacher: Path, helpers):
    """teacher_weight 1: the student learns from the teacher alone (flipped labels change nothing); 0.5: from both;
    0: exactly as without distillation."""
    flipped = _flipped(small_tasks, tmp_path / "flipped")
    taught = {"teacher": str(teacher), "teacher_weight": 1.0, "temperature": 2.0}
    alone, same = _student(tmp_path, make_config, "alone", taught), _student(tmp_path, make_config, "alone-flipped", taught, tasks=flipped)
    assert alone.keys() == same.keys() and len(alone) > 10
    assert all(torch.equal(alone[k], same[k]) for k in alone)
    half = {**taught, "teacher_weight": 0.5}
    mixed, mixed_flipped = _student(tmp_path, make_config, "half", half), _student(tmp_path, make_config, "half-flipped", half, tasks=flipped)
    assert sum(not torch.equal(mixed[k], mixed_flipped[k]) for k in mixed) > len(mixed) // 2
    assert any(not torch.equal(mixed[k], alone[k]) for k in mixed)
    plain, none = _student(tmp_path, make_config, "plain", None), _student(tmp_path, make_config, "none", {**taught, "teacher_weight": 0.0})
    assert all(torch.equal(plain[k], none[k]) for k in plain)
    assert any(not torch.equal(plain[k], mixed[k]) for k in plain)
    notes = [e for e in helpers.read_events(tmp_path / "half") if e["event"] == "start"][0]["notes"]
    assert f"distill: user:sent, user:pair, user:mc taught by {teacher} (teacher_weight 0.5, temperature 2)" in notes


def test_the_kd_term_of_each_kind_is_the_divergence_over_labelled_items():
    torch.manual_seed(0)
    student, teacher = torch.randn(4, 3), torch.randn(4, 3)
    labels = torch.tensor([0, 2, -100, 1])
    t = 2.0

    def kl(s, q):
        p_s, p_t = torch.softmax(s / t, -1), torch.softmax(q / t, -1)
        return (p_t * (p_t.log() - p_s.log())).sum(-1)

    expected = (t * t * kl(student, teacher))[[0, 1, 3]].mean()
    assert distillation_loss("text_classification", student, teacher, labels, temperature=t) == pytest.approx(float(expected), rel=1e-5)
    weights = torch.tensor([1.0, 2.0, 4.0])  # the head's class weights: a weighted mean, as the gold loss is
    per = t * t * kl(student, teacher)
    weighted = (per[0] * 1 + per[1] * 4 + per[3] * 2) / 7
    got = distillation_loss("pair_classification", student, teacher, labels, temperature=t, class_weights=weights)
    assert float(got) == pytest.approx(float(weighted), rel=1e-5)
    assert float(distillation_loss("text_classification", teacher, teacher, labels, temperature=t)) == pytest.approx(0, abs=1e-6)
    # multiple choice: a padded choice carries the dtype's lowest logit; a temperature below 1 keeps the term finite
    choices = student.clone()
    choices[:, 2] = torch.finfo(torch.float32).min
    stand_in = teacher.clone()
    stand_in[:, 2] = torch.finfo(torch.float32).min
    low = distillation_loss("multiple_choice", choices, stand_in, torch.tensor([0, 1, 1, 0]), temperature=0.5)
    assert torch.isfinite(low) and float(low) > 0
    assert float(distillation_loss("multiple_choice", stand_in, stand_in, torch.tensor([0, 1, 1, 0]), temperature=0.5)) == 0
    # multi-label: per label, the two-class divergence of the sigmoids; a negative target is no label
    targets = torch.tensor([[1.0, 0.0, -1.0]] * 4)
    q, p = torch.sigmoid(teacher / t), torch.sigmoid(student / t)
    binary = t * t * (q * (q.log() - p.log()) + (1 - q) * ((1 - q).log() - (1 - p).log()))
    assert float(distillation_loss("multi_label", student, teacher, targets, temperature=t)) == pytest.approx(float(binary[:, :2].mean()), rel=1e-5)
    # regression: the squared difference (no temperature), NaN labels left out
    value = distillation_loss("regression", torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.5, 2.0, 0.0]),
                              torch.tensor([0.0, float("nan"), 1.0]), temperature=t)
    assert float(value) == pytest.approx((0.25 + 9) / 2)
    # extractive QA: the mean of the start and end token distributions', rows without an answer left out
    spans_s, spans_t = torch.randn(2, 5, 2), torch.randn(2, 5, 2)
    qa = distillation_loss("extractive_qa", spans_s, spans_t, torch.tensor([[1, 2], [-100, -100]]), temperature=1.0)
    p_t, p_s = np.exp(spans_t[0].double().log_softmax(0).numpy()), np.exp(spans_s[0].double().log_softmax(0).numpy())
    by_hand = np.mean((p_t * (np.log(p_t) - np.log(p_s))).sum(0))  # row 0's start and end; row 1 has no answer
    assert float(qa) == pytest.approx(by_hand, rel=1e-5)


def test_annealing_moves_the_teachers_share_to_zero_by_the_last_step():
    distiller = Distiller({}, {}, {}, teacher_weight=0.8, temperature=1.0, anneal=True, total_steps=5)
    assert [distiller.share(s) for s in range(1, 6)] == pytest.approx([0.8, 0.6, 0.4, 0.2, 0.0])
    assert Distiller({}, {}, {}, teacher_weight=0.8, temperature=1.0, anneal=False, total_steps=5).share(5) == 0.8


def test_a_resumed_distilled_run_is_bit_identical(tmp_path: Path, make_config, teacher: Path, helpers):
    config = make_config(distill={"teacher": str(teacher), "anneal": True, "teacher_weight": 0.9},
                         loss={"strategy": "famo"}, schedule={"max_steps": 6, "warmup_steps": 1})
    full, resumed = helpers.resume_matches(config, tmp_path, "step-000003", step=3)
    losses = [(e["step"], e["task"], e["loss"]) for e in helpers.read_events(full) if e["event"] == "train"]
    assert losses == [(e["step"], e["task"], e["loss"]) for e in helpers.read_events(resumed) if e["event"] == "train"]
    shares = {e["step"]: e["teacher_weight"] for e in helpers.read_events(resumed) if e["event"] == "train"}
    assert shares == pytest.approx({2: 0.9 * 4 / 5, 4: 0.9 * 2 / 5, 6: 0.0})  # annealed: logged with each task's loss


def _check(tmp_path: Path, config: dict, *args: str):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return CliRunner().invoke(app, ["check", str(path), "--no-data", *args])


def test_teachers_that_cannot_teach_are_refused_in_one_line(tmp_path: Path, make_config, small_tasks, teacher: Path):
    tasks = json.loads(json.dumps(small_tasks))
    extra = json.loads(json.dumps(tasks[0]))
    extra["define"]["name"] = "sent2"
    config = make_config(tasks=[*tasks, extra], distill={"teacher": str(teacher)})
    ok = _check(tmp_path, config)
    assert ok.exit_code == 0 and f"note: distill: user:sent, user:pair, user:mc taught by {teacher}\n" in ok.stdout
    assert "note: distill: user:sent2 has no teacher (trained on the labels alone)\n" in ok.stdout  # as the run's first lines say
    cases = {
        f"distill.teachers={{sent2: {teacher}}}": f"config key 'distill.teachers': teacher {teacher} has no head for task 'user:sent2' (it has "
                                                  "user:sent, user:pair, user:mc); give a teacher trained on it",
        f"distill.teachers={{snet: {teacher}}}": "config key 'distill.teachers.snet': 'snet' is not a task of this run (did you mean 'user:sent' or",
        f"distill.teacher={tmp_path / 'nowhere'}": f"config key 'distill.teacher': {tmp_path / 'nowhere'}",
    }
    for override, message in cases.items():
        result = _check(tmp_path, config, override)
        assert result.exit_code == 2, (override, result.output)
        assert result.stderr.startswith(f"error: {message}"), result.stderr
        assert "Traceback" not in result.output
    reordered = json.loads(json.dumps(tasks))
    reordered[0]["define"]["labels"] = ["positive", "negative"]
    result = _check(tmp_path, make_config(tasks=reordered, distill={"teacher": str(teacher)}))
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: config key 'distill.teacher': teacher {teacher} cannot teach task 'user:sent': its labels "
                                     "are ['negative', 'positive'] there, ['positive', 'negative'] here (the same labels in the same "
                                     "order are needed); give it a teacher trained on the same task (distill.teachers)")
    assert _check(tmp_path, config).exit_code == 0  # c.yaml: the config every task of which the teacher can teach
    grid = CliRunner().invoke(app, ["train", str(tmp_path / "c.yaml"), "--output-dir", str(tmp_path / "grid"), "--grid",
                                    f"distill.teacher={teacher},{tmp_path / 'nowhere'}"])
    assert grid.exit_code == 2 and f"--grid distill.teacher={tmp_path / 'nowhere'}: config key 'distill.teacher'" in grid.stderr
    assert not (tmp_path / "grid").exists()
    # mt train checks the teachers before it makes the run folder: a missing teacher's near name is never the run itself
    trained = CliRunner().invoke(app, ["train", str(tmp_path / "c.yaml"), "--output-dir", str(tmp_path / "abcd1"),
                                       f"distill.teacher={tmp_path / 'abcd2'}"])
    assert trained.exit_code == 2 and "config key 'distill.teacher'" in trained.stderr, trained.output
    assert "abcd1" not in trained.stderr and not (tmp_path / "abcd1").exists()


def test_a_teacher_with_another_vocabulary_is_refused_before_any_data_is_read(tmp_path: Path, make_config, teacher: Path):
    from mtcore.testing import build_tiny_encoder

    other = build_tiny_encoder(tmp_path / "other-encoder", "bert", words=["just", "some", "other", "words"], hidden_size=32)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(make_config(encoder={"path": str(other)}, distill={"teacher": str(teacher / "model")})))
    result = CliRunner().invoke(app, ["train", str(path), "--output-dir", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: config key 'distill.teacher': teacher {teacher / 'model'} has another tokenizer than the "
                                    "encoder being trained (")
    assert "must share its vocabulary" in result.stderr and not (tmp_path / "run").exists()


def test_teacher_paths_start_at_the_config_file_and_the_student_needs_no_teacher_after_training(tmp_path: Path, make_config,
                                                                                                 teacher: Path, helpers):
    copy = tmp_path / "teachers" / "t1"
    shutil.copytree(teacher, copy)
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "c.yaml").write_text(yaml.safe_dump(make_config(distill={"teachers": {"sent": "../teachers/t1/model"}})))
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(folder / "c.yaml"), "--output-dir", str(run)])
    assert result.exit_code == 0, result.output
    notes = [e for e in helpers.read_events(run) if e["event"] == "start"][0]["notes"]
    assert f"distill: user:sent taught by {copy / 'model'} (teacher_weight 0.5, temperature 1)" in notes
    assert "distill: user:pair, user:mc have no teacher (trained on the labels alone)" in notes
    shutil.rmtree(copy)
    evaluated = CliRunner().invoke(app, ["evaluate", str(run)])
    assert evaluated.exit_code == 0, evaluated.output
    again = CliRunner().invoke(app, ["train", str(folder / "c.yaml"), "--output-dir", str(tmp_path / "again")])
    assert again.exit_code == 2 and again.stderr.startswith(f"error: config key 'distill.teachers': {copy / 'model'}"), again.output
    assert not (tmp_path / "again").exists()


@pytest.mark.parametrize("strategy", ["sum", "pcgrad"])  # every task each step; PCGrad writes the gradients itself
def test_every_loss_strategy_trains_on_the_mixed_loss(tmp_path: Path, make_config, small_tasks, teacher: Path, strategy):
    flipped = _flipped(small_tasks, tmp_path / "flipped")
    taught = {"teacher": str(teacher), "teacher_weight": 1.0}
    a = _student(tmp_path, make_config, "a", taught, loss={"strategy": strategy})
    b = _student(tmp_path, make_config, "b", taught, loss={"strategy": strategy}, tasks=flipped)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    c = _student(tmp_path, make_config, "c", {**taught, "teacher_weight": 0.5}, loss={"strategy": strategy}, tasks=flipped)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_what_a_teacher_would_compute_otherwise_is_refused(tmp_path: Path, make_config, small_tasks, teacher: Path, word_encoder: Path):
    """Three cases a regression audit found accepted: a BERT teacher (segment ids) teaching pairs to a DistilBERT student
    of the same vocabulary (no segment ids: the teacher read both texts as the first); a checkpoint teacher with other
    labels (mt check let it through); an evaluate-only task named in distill.teachers ("not a task of this run")."""
    from mtcore.testing import build_tiny_encoder

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(word_encoder)  # the teacher's vocabulary, in its order
    words = [w for w, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1]) if w not in tokenizer.all_special_tokens]
    distil = build_tiny_encoder(tmp_path / "distil", "distilbert", words=words, hidden_size=32)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(make_config(encoder={"path": str(distil)}, distill={"teacher": str(teacher)})))
    result = CliRunner().invoke(app, ["train", str(path), "--output-dir", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: config key 'distill.teacher': teacher {teacher} (BertModel) reads segment ids, which the "
                                    "encoder being trained (DistilBertModel) does not make, so on task 'user:pair' (two texts)")
    assert not (tmp_path / "run").exists()
    single = json.loads(json.dumps(small_tasks[:1]))  # one text: segment ids are all 0 either way
    path.write_text(yaml.safe_dump(make_config(encoder={"path": str(distil)}, tasks=single, distill={"teacher": str(teacher)},
                                               schedule={"max_steps": 2, "warmup_steps": 0})))
    assert CliRunner().invoke(app, ["train", str(path), "--output-dir", str(tmp_path / "single")]).exit_code == 0

    reordered = json.loads(json.dumps(small_tasks))
    reordered[0]["define"]["labels"] = ["positive", "negative"]
    checkpoint = sorted((teacher / "checkpoints").iterdir())[-1]
    result = _check(tmp_path, make_config(tasks=reordered, distill={"teacher": str(checkpoint)}))
    assert result.exit_code == 2 and f"teacher {checkpoint} cannot teach task 'user:sent': its labels are" in result.stderr

    scored = json.loads(json.dumps(small_tasks))
    scored.append({**json.loads(json.dumps(small_tasks[0])), "evaluate_with": "user:sent"})
    scored[-1]["define"]["name"] = "sent2"
    result = _check(tmp_path, make_config(tasks=scored, distill={"teachers": {"sent2": str(teacher)}}))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: config key 'distill.teachers.sent2': 'sent2' is scored with user:sent's head (evaluate_with), "
                                    "not trained, so it has no loss to distil")
