"""2-process DDP on CPU (torchrun, gloo; Accelerate with cpu=True): the plain ``mt train`` command, unchanged,
trains with identical weights on both ranks and matches one process with the same global batch."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

#: Largest absolute weight difference allowed between 2-process DDP and 1-process training
#: (same global batch, dropout off): float summation order differs, nothing else.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def no_dropout_encoder(tmp_path_factory) -> Path:
    from mtcore.testing import build_tiny_encoder

    path = build_tiny_encoder(tmp_path_factory.mktemp("ddp-encoder"), "bert", words=["good", "bad", "red", "blue", "green", "apple", "stone"],
                              hidden_size=32, num_layers=2, num_heads=2)
    config = json.loads((path / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (path / "config.json").write_text(json.dumps(config))
    return path


def _extra_tasks(root: Path) -> list[dict]:
    """A token task (labelled tokens per row vary: each rank's loss is a mean over another number of them) and a
    task of 3 rows, fewer than one global round (one batch: rank 1 reads a copy of rank 0's)."""
    rng = random.Random(7)
    files: dict[str, dict[str, str]] = {"ner": {}, "tiny": {}}
    for split, n in (("train", 48), ("validation", 8)):
        rows = []
        for _ in range(n):
            words = [rng.choice(["the", "a", "red", "blue", "on", "apple"]) for _ in range(rng.randint(2, 9))]
            rows.append({"tokens": words, "label": ["B-C" if w in ("red", "blue") else "O" for w in words]})
        files["ner"][split] = str(root / f"ner_{split}.jsonl")
        Path(files["ner"][split]).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for split, n in (("train", 3), ("validation", 4)):
        rows = [{"text": f"the {rng.choice(['good', 'bad'])} {rng.choice(['red', 'stone'])}", "label": rng.choice(["neg", "pos"])}
                for _ in range(n)]
        files["tiny"][split] = str(root / f"tiny_{split}.jsonl")
        Path(files["tiny"][split]).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return [{"define": {"name": "ner", "kind": "token_classification", "labels": ["O", "B-C"], "files": files["ner"]}},
            {"define": {"name": "tiny", "kind": "text_classification", "labels": ["neg", "pos"], "files": files["tiny"]}}]


def test_two_process_ddp_matches_one_process(tmp_path: Path, make_config, no_dropout_encoder: Path, helpers):
    """Also: the token task's loss is the mean over the global batch's labelled tokens (it was the mean of the two
    ranks' means), and the counters count the tiny task's rows once per step (rank 1's copy counted them twice)."""
    config = make_config(
        encoder={"path": str(no_dropout_encoder)},
        tasks=[{**t, "head_options": {"dropout": 0.0}} for t in make_config()["tasks"] + _extra_tasks(tmp_path)],
        sampler={"name": "uniform"},
        schedule={"max_steps": 10, "warmup_steps": 1},
        batching={"batch_size": 4, "group_by_length": False},
        evaluation={"every": 4, "at_end": True},
        checkpoint={"every": 4, "keep_last": 1},
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = helpers.subprocess_env()
    train = ["-m", "mtcore.cli.app", "train", str(path), "debug.save_rank_weights=true", "--output-dir"]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *train,
                          str(tmp_path / "ddp")], capture_output=True, text=True, env=env, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    helpers.train_in_this_process(path, tmp_path / "single", ["debug.save_rank_weights=true", "batching.batch_size=8"])  # one process

    rank0, rank1 = (load_file(str(tmp_path / "ddp" / "rank-weights" / f"rank{r}-of-2.safetensors")) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), "ranks diverged"
    one = load_file(str(tmp_path / "single" / "rank-weights" / "rank0-of-1.safetensors"))
    assert one.keys() == rank0.keys()
    worst = max((one[k] - rank0[k]).abs().max().item() for k in one)
    print(f"largest |DDP - single| weight difference: {worst:.3g}")
    assert worst <= TOLERANCE, f"DDP and single-process weights differ by {worst}"
    # training moved the weights far more than the tolerance (the comparison is not trivially true)
    initial = load_file(str(no_dropout_encoder / "model.safetensors"))
    moved = max((one[f"encoder.{k}"] - v).abs().max().item() for k, v in initial.items() if f"encoder.{k}" in one)
    assert moved > 100 * TOLERANCE
    saved = load_file(str(tmp_path / "ddp" / "model" / "encoder" / "model.safetensors"))
    assert all(torch.equal(saved[k], rank0[f"encoder.{k}"]) for k in saved if f"encoder.{k}" in rank0)
    # the run's counters add up every process's rows (each reads its own half of the global batch of 8: 48 rows per
    # task, so every step is a full batch), the tiny task's 3 rows once per step (rank 1 reads a copy of them)
    events = helpers.read_events(tmp_path / "ddp")
    draws = {task: sum(e["batches"] for e in events if e["event"] == "train" and e["task"] == task) for task in ("user:tiny", "user:ner")}
    assert sum(draws.values()) < config["schedule"]["max_steps"] and min(draws.values()) >= 1, draws  # both were trained
    ddp_summary, single_summary = (json.loads((tmp_path / run / "summary.json").read_text()) for run in ("ddp", "single"))
    assert ddp_summary["examples_seen"] == single_summary["examples_seen"] == \
        (config["schedule"]["max_steps"] - draws["user:tiny"]) * 8 + draws["user:tiny"] * 3
    assert ddp_summary["tokens_seen"] == single_summary["tokens_seen"] > 0
    assert events[0]["processes"] == 2
    logged = {(e["step"], e["task"]): e["loss"] for e in events if e["event"] == "train"}
    single_logged = {(e["step"], e["task"]): e["loss"] for e in helpers.read_events(tmp_path / "single") if e["event"] == "train"}
    assert logged.keys() == single_logged.keys() and all(abs(logged[k] - single_logged[k]) < 1e-4 for k in logged)
    evals = [e for e in events if e["event"] == "eval"]
    single_evals = [e for e in helpers.read_events(tmp_path / "single") if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [4, 8, 10]
    for a, b in zip(evals, single_evals):
        assert {k: v for k, v in a["metrics"].items() if not k.endswith("/loss")} == \
            {k: v for k, v in b["metrics"].items() if not k.endswith("/loss")}
    # only the main process wrote the run directory; each rank wrote its RNG state into the checkpoint
    assert sorted(p.name for p in (tmp_path / "ddp" / "checkpoints" / "step-000010").glob("rng-*.json")) == ["rng-0.json", "rng-1.json"]


@pytest.fixture(scope="module")
def single_task_seeds_under_ddp(tmp_path_factory, shared_make_config, helpers) -> tuple[dict, subprocess.CompletedProcess, Path]:
    """One torchrun launch for the two tests below: one task (cls pooling, so BERT's pooler gets no gradient),
    ``--seeds 1,2``, 3 steps each; returns (config, the finished launch, the output folder)."""
    tmp_path = tmp_path_factory.mktemp("ddp-seeds")
    config = shared_make_config(tasks=shared_make_config()["tasks"][:1], schedule={"max_steps": 3, "warmup_steps": 0},
                                batching={"batch_size": 4}, checkpoint={"every": None})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mtcore.cli.app",
                           "train", str(path), "--seeds", "1,2", "--output-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)
    return config, done, tmp_path / "out"


def test_seeds_under_ddp_train_every_seed_on_both_ranks_and_write_one_spread(single_task_seeds_under_ddp, helpers):
    _, done, out = single_task_seeds_under_ddp
    assert done.returncode == 0, done.stderr[-3000:]
    spread = json.loads((out / "seeds.json").read_text())
    assert spread["seeds"] == [1, 2] and spread["final"]["aggregate"]["n"] == 2
    for seed in (1, 2):
        summary = json.loads((out / f"seed-{seed}" / "summary.json").read_text())
        assert summary["steps"] == 3 and spread["final"]["aggregate"]["values"][str(seed)] == summary["final"]["aggregate"]
        start = next(e for e in helpers.read_events(out / f"seed-{seed}") if e["event"] == "start")
        assert start["processes"] == 2
    assert done.stdout.count("final metrics over 2 seeds") == 1 and "no final metrics" not in done.stdout  # main process only


def test_single_task_ddp_with_an_unused_pooler_trains(single_task_seeds_under_ddp):
    """One task, cls pooling: BERT's pooler gets no gradient, which DDP without the unused-parameter
    search refused at step 2; the pooler is frozen instead, and stays as it was (in each seed's run)."""
    config, done, out = single_task_seeds_under_ddp
    assert done.returncode == 0, done.stderr[-3000:]
    initial = load_file(str(next(Path(config["encoder"]["path"]).glob("*.safetensors"))))
    for seed in (1, 2):
        saved = load_file(str(out / f"seed-{seed}" / "model" / "encoder" / "model.safetensors"))
        pooler = [k for k in saved if k.startswith("pooler.")]
        assert pooler and all(torch.equal(saved[k], initial[k]) for k in pooler)
        assert any(not torch.equal(saved[k], initial[k]) for k in saved if k.startswith("encoder.layer."))


@pytest.mark.parametrize("loss, tolerance", [
    ({"strategy": "gradnorm", "options": {"lr": 0.05}}, TOLERANCE),
    # db_mtl raises each task's averaged gradient to the largest norm, which raises its float32 rounding too
    ({"strategy": "db_mtl"}, 10 * TOLERANCE),
    ({"strategy": "imtl", "options": {"loss_scale": True}}, TOLERANCE),
    ({"strategy": "stch", "options": {"warmup_steps": 2}}, TOLERANCE),  # weights from the step's global losses, before it
], ids=["gradnorm", "db_mtl", "imtl-loss-scale", "stch"])
def test_a_gradient_combining_strategy_under_ddp_matches_one_process(tmp_path: Path, make_config, no_dropout_encoder: Path, helpers,
                                                                     loss, tolerance):
    """GradNorm (per-task gradients, learned weights from the step's losses, weighted heads), DB-MTL (log-losses of
    the global step, gradient averages) and hybrid IMTL (learned loss scales) on 2 processes: each task's gradient
    and loss are averaged over the processes before they are combined, so both ranks take the update one process
    takes with the same global batch (it was refused under DDP). With the token task (unequal labelled tokens per
    rank) and the 3-row task (rank 1 reads a copy of rank 0's batch, which counts nothing). STCH, which weighs each task's
    loss by the step's losses run forward first, averages them over the processes the same way."""
    config = make_config(
        encoder={"path": str(no_dropout_encoder)},
        tasks=[{**t, "head_options": {"dropout": 0.0}} for t in make_config()["tasks"] + _extra_tasks(tmp_path)],
        loss=loss,
        schedule={"max_steps": 6, "warmup_steps": 1},
        batching={"batch_size": 4, "group_by_length": False},
        evaluation={"every": None, "at_end": False},
        checkpoint={"every": None, "at_end": False},
        logging={"every": 1, "progress": "none", "plot": False},
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mtcore.cli.app",
                          "train", str(path), "debug.save_rank_weights=true", "--output-dir", str(tmp_path / "ddp")],
                         capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    helpers.train_in_this_process(path, tmp_path / "single", ["debug.save_rank_weights=true", "batching.batch_size=8"])

    rank0, rank1 = (load_file(str(tmp_path / "ddp" / "rank-weights" / f"rank{r}-of-2.safetensors")) for r in (0, 1))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), "ranks diverged"
    one = load_file(str(tmp_path / "single" / "rank-weights" / "rank0-of-1.safetensors"))
    worst = max((one[k] - rank0[k]).abs().max().item() for k in one)
    print(f"largest |DDP - single| weight difference: {worst:.3g}")
    assert worst <= tolerance, f"DDP and single-process weights differ by {worst}"
    initial = load_file(str(no_dropout_encoder / "model.safetensors"))
    assert max((one[f"encoder.{k}"] - v).abs().max().item() for k, v in initial.items() if f"encoder.{k}" in one) > 100 * TOLERANCE
    weights = [e["weights"] for e in helpers.read_events(tmp_path / "ddp") if e["event"] == "loss_weights"]
    single = [e["weights"] for e in helpers.read_events(tmp_path / "single") if e["event"] == "loss_weights"]
    assert len(weights) == len(single) == 6 and weights[-1] != weights[0]  # the learned weights moved, alike
    assert all(abs(a[t] - b[t]) < 1e-4 * max(1.0, abs(b[t])) for a, b in zip(weights, single) for t in a), (weights, single)


def test_per_task_lora_with_frozen_encoder_steps_under_ddp_matches_one_process(tmp_path: Path, make_config, no_dropout_encoder: Path,
                                                                               helpers):
    """Each task's adapters (only its batches reach them: DDP's unused parameters) and the encoder's gradients dropped
    for the first steps (encoder.freeze_encoder_steps) train under two processes as in one."""
    pytest.importorskip("peft")
    config = make_config(
        encoder={"path": str(no_dropout_encoder), "freeze_encoder_steps": 2, "options": {"lora": {"r": 4, "alpha": 8, "per_task": True}}},
        tasks=[{**t, "head_options": {"dropout": 0.0}} for t in make_config()["tasks"]],
        sampler={"name": "uniform"}, optimizer={"lr": 5e-3},
        schedule={"max_steps": 6, "warmup_steps": 0},
        batching={"batch_size": 4, "group_by_length": False},
        evaluation={"every": None, "at_end": True}, checkpoint={"every": None},
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    train = ["-m", "mtcore.cli.app", "train", str(path), "debug.save_rank_weights=true", "--output-dir"]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *train,
                          str(tmp_path / "ddp")], capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    helpers.train_in_this_process(path, tmp_path / "single", ["debug.save_rank_weights=true", "batching.batch_size=8"])
    rank0, rank1 = (load_file(str(tmp_path / "ddp" / "rank-weights" / f"rank{r}-of-2.safetensors")) for r in (0, 1))
    one = load_file(str(tmp_path / "single" / "rank-weights" / "rank0-of-1.safetensors"))
    adapters = [k for k in one if ".lora_B." in k]
    assert {k.split(".lora_B.")[1].split(".")[0] for k in adapters} == {"user:sent", "user:pair", "user:mc"}
    assert one.keys() == rank0.keys() == rank1.keys() and all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    worst = max((one[k] - rank0[k]).abs().max().item() for k in one)
    assert worst <= TOLERANCE, f"DDP and single-process weights differ by {worst}"
    assert max(one[k].abs().max().item() for k in adapters) > 100 * TOLERANCE  # lora_B starts at 0: the adapters trained


def test_distillation_under_ddp_matches_one_process(tmp_path: Path, make_config, no_dropout_encoder: Path, helpers):
    """Each process runs the teacher on its own batches (distill, annealed: the share follows the step on every rank)."""
    sections = dict(encoder={"path": str(no_dropout_encoder)}, tasks=[{**t, "head_options": {"dropout": 0.0}} for t in make_config()["tasks"]],
                    sampler={"name": "uniform"}, optimizer={"lr": 5e-3}, schedule={"max_steps": 6, "warmup_steps": 0},
                    batching={"batch_size": 4, "group_by_length": False}, evaluation={"every": None, "at_end": True},
                    checkpoint={"every": None})
    teacher = tmp_path / "teacher.yaml"
    teacher.write_text(yaml.safe_dump(make_config(**sections)))
    helpers.train_in_this_process(teacher, tmp_path / "teacher", ["batching.batch_size=8", "schedule.max_steps=4"])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(make_config(**sections, distill={"teacher": str(tmp_path / "teacher"), "teacher_weight": 0.7,
                                                                     "anneal": True, "temperature": 2.0})))
    train = ["-m", "mtcore.cli.app", "train", str(path), "debug.save_rank_weights=true", "--output-dir"]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *train,
                          str(tmp_path / "ddp")], capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    helpers.train_in_this_process(path, tmp_path / "single", ["debug.save_rank_weights=true", "batching.batch_size=8"])
    helpers.train_in_this_process(path, tmp_path / "plain", ["debug.save_rank_weights=true", "batching.batch_size=8", "distill=null"])
    rank0, rank1 = (load_file(str(tmp_path / "ddp" / "rank-weights" / f"rank{r}-of-2.safetensors")) for r in (0, 1))
    one, plain = (load_file(str(tmp_path / run / "rank-weights" / "rank0-of-1.safetensors")) for run in ("single", "plain"))
    assert one.keys() == rank0.keys() == rank1.keys() and all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    worst = max((one[k] - rank0[k]).abs().max().item() for k in one)
    assert worst <= TOLERANCE, f"DDP and single-process weights differ by {worst}"
    assert max((one[k] - plain[k]).abs().max().item() for k in one) > 100 * TOLERANCE  # the teacher changed what was learnt


def test_r3f_under_ddp_keeps_the_ranks_identical(tmp_path: Path, make_config, no_dropout_encoder: Path, helpers):
    """The noisy forward pass runs on the model itself, not DDP's wrapper, and feeds the step's one synchronised backward."""
    config = make_config(encoder={"path": str(no_dropout_encoder)}, loss={"strategy": "single", "r3f": {"noise": 0.05}},
                         schedule={"max_steps": 4, "warmup_steps": 0}, batching={"batch_size": 4, "group_by_length": False},
                         evaluation={"every": None, "at_end": True}, checkpoint={"every": None})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    train = ["-m", "mtcore.cli.app", "train", str(path), "debug.save_rank_weights=true", "--output-dir"]
    for name, extra in (("ddp", []), ("plain", ["loss.r3f=null"])):
        ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *train,
                              str(tmp_path / name), *extra], capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)
        assert ddp.returncode == 0, ddp.stderr[-3000:]
    rank0, rank1, plain = (load_file(str(tmp_path / run / "rank-weights" / f"rank{r}-of-2.safetensors"))
                           for run, r in (("ddp", 0), ("ddp", 1), ("plain", 0)))
    assert rank0.keys() == rank1.keys() and all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    assert max((rank0[k] - plain[k]).abs().max().item() for k in rank0) > 100 * TOLERANCE
