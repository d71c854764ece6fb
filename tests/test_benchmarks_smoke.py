"""Each benchmark script runs in its smallest mode and prints its JSON report and markdown table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_script(name: str, *args: str) -> tuple[dict, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / name), *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    text, _, table = done.stdout.partition("\n\n|")
    return json.loads(text), "|" + table


@pytest.mark.parametrize("threads", ["1"])
def test_multitask_overhead_smoke(threads):
    report, table = run_script("multitask_overhead.py", "--smoke", "--threads", threads)
    plain, engine = report["plain_single_task"], report["engine_three_tasks"]
    assert engine["steps"] == report["setup"]["steps"]
    assert plain["real_tokens"] >= engine["real_tokens"] > 0  # the plain loop covers at least the same tokens
    assert report["overhead"] == pytest.approx(1 - engine["real_tokens_per_s"] / plain["real_tokens_per_s"])
    assert "plain single-task loop" in table and "mtcore engine, 3 tasks" in table


def test_loss_strategies_smoke():
    report, table = run_script("loss_strategies.py", "--smoke", "--threads", "1")
    setup, results = report["setup"], report["results"]
    assert list(results) == ["sum", "famo", "pcgrad"] and setup["fresh_process_first_round"] is False
    for name, r in results.items():
        assert r["steps"] == setup["warmup_steps"] + setup["timed_steps"] and r["timed_steps"] == setup["timed_steps"]
        assert 0 < r["min_ms_per_step"] <= r["ms_per_step"] == min(r["rounds_ms_per_step"]) and len(r["rounds_ms_per_step"]) == 1
        assert r["peak_rss_growth_mb"] is None  # in-process: not its own peak
        assert f"\n| {name} | " in table
    assert len({r["samples_per_step"] for r in results.values()}) == 1  # one batch of every task per step, the same ones
    assert results["sum"]["vs_sum"] == 1.0
    assert results["famo"]["vs_sum"] == pytest.approx(results["famo"]["ms_per_step"] / results["sum"]["ms_per_step"])
    assert results["famo"]["after_step_ms_per_step"] > 0 and results["famo"]["end_backward_ms_per_step"] is None
    assert results["pcgrad"]["end_backward_ms_per_step"] > 0 and results["pcgrad"]["after_step_ms_per_step"] is None
    assert results["sum"]["end_backward_ms_per_step"] is None and table.count("\n|") == 4


def test_train_throughput_small_run():
    report, table = run_script("train_throughput.py", "--steps", "4", "--hidden", "32", "--layers", "1", "--heads", "2",
                               "--rows", "40", "--repeats", "1", "--threads", "1")
    seed, engine = report["seed_loop"], report["engine"]
    assert seed["steps"] == engine["steps"] == 4
    for r in (seed, engine):
        assert 0 < r["padding_efficiency"] <= 1 and r["samples_per_s"] > 0
    assert report["speedup"]["samples_per_s"] == pytest.approx(engine["samples_per_s"] / seed["samples_per_s"])
    assert "seed loop" in table and "mtcore engine" in table
    packed = report["engine_padding_free"]
    assert packed["steps"] == 4 and packed["padding_efficiency"] == 1.0  # the encoder's layers see real tokens only
    assert "engine, padding-free, random batches" in table


def test_memory_scaling_smoke():
    report, table = run_script("memory_scaling.py", "--smoke")
    rows = [r["rows"] for r in report["results"]]
    assert rows == sorted(rows) and len(rows) == 2
    assert all(r["peak_rss_mb"] >= r["rss_before_loading_mb"] > 0 for r in report["results"])
    assert report["growth_mb"] == pytest.approx(report["results"][1]["peak_rss_mb"] - report["results"][0]["peak_rss_mb"], abs=0.2)
    assert all(0 < r["peak_anon_mb"] <= r["peak_rss_mb"] + 1 and r["peak_file_mb"] > 0 for r in report["results"])
    assert "peak RSS" in table and "RssAnon" in table


def test_gpu_bench_smoke():
    names = ("eager_random_bs32,eager_grouped_budget,compiled_grouped_bs32,packed_random_bs32_attn_drop0,packed_random_budget64k_attn_drop0,"
             "regional_packed_random_budget64k_no_dropout_bf16_residual")
    # 2 profiled steps (default 6): the profiler's trace of CPU ops takes seconds per step to sort on a CPU
    report, table = run_script("gpu_bench.py", "--smoke", "--diagnose", "--diagnose-steps", "2", "--variants", names)
    results = {r["variant"]: r for r in report["results"]}
    assert set(results) == set(names.split(",")) and report["failed"] == []
    for r in results.values():
        assert r["real_tokens_per_s"] > 0 and 0 < r["padding_efficiency"] <= 1 and r["mfu"] > 0
    assert results["compiled_grouped_bs32"]["compile"] is True
    packed = results["packed_random_bs32_attn_drop0"]
    assert packed["padding_efficiency"] == 1.0 and packed["attention"] == "sdpa (per sequence or re-padded)"  # no CUDA here
    assert packed["packed_gap"] < 0.05  # bf16 logits of the packed and the padded forward agree
    assert table.count("\n|") >= 5
    low = results["regional_packed_random_budget64k_no_dropout_bf16_residual"]
    assert low["fp32_residual"] is False and results["eager_random_bs32"]["fp32_residual"] is True
    assert low["packed_gap"] < 0.1 and low["regional"] is True and results["compiled_grouped_bs32"]["regional"] is False
    budget = results["packed_random_budget64k_attn_drop0"]
    assert 0 < budget["tokens_per_step"] <= budget["token_budget"]  # packed budgets count real tokens
    for r in results.values():
        assert 0 <= r["data_ms_per_step"] < r["ms_per_step"]
        diagnosis = r["diagnosis"]
        assert diagnosis["profiled_steps"] == 2 and diagnosis["profiled_ms_per_step"] > 0
        assert diagnosis["gpu_busy"] is None and diagnosis["top_kernels"] == []  # no GPU kernels on this machine


def test_gpu_bench_pretraining_mix_smoke():
    # --mix seq512: every row is 512 tokens (BERT pre-training's phase 2), so a padding-free 1024-token smoke budget
    # holds exactly two rows, and MFU counts their attention FLOPs
    report, _ = run_script("gpu_bench.py", "--smoke", "--mix", "seq512", "--variants", "packed_random_budget64k_attn_drop0")
    [result] = report["results"]
    assert result["mix"] == "seq512" and report["failed"] == []
    assert result["tokens_per_step"] == 1024 and result["padding_efficiency"] == 1.0


def test_gpu_bench_exits_non_zero_with_a_failed_row_when_a_variant_fails():
    """A failed variant was only left out of the table, exit 0: gpu.sh's failure branch never ran."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    name = "regional_packed_random_budget64k_no_dropout_bf16_residual_fa4"  # FA4: not installed on a CPU machine
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_bench.py"), "--smoke", "--variants", name],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert done.returncode == 1, done.stderr[-3000:]
    text, _, table = done.stdout.partition("\n\n|")
    assert [f["variant"] for f in json.loads(text)["failed"]] == [name]
    assert f"\n| {name} | failed: " in "\n|" + table, table


def test_gpu_script_is_valid_bash():
    script = REPO / "benchmarks" / "gpu.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    assert "gpu_bench.py" in script.read_text()
    for name in ("device_wheels.sh", "device_fa4_payload.sh", "gpu_fa4.sh"):
        assert subprocess.run(["bash", "-n", str(REPO / "benchmarks" / name)], capture_output=True).returncode == 0, name


def test_the_gpu_scripts_name_variants_that_exist_and_the_attention_benchmark_loads():
    import re

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from gpu_variants import VARIANTS
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    for script in ("gpu.sh", "gpu_fa4.sh"):
        text = (REPO / "benchmarks" / script).read_text()
        defaults = re.search(r"VARIANTS:-(.*?)}\"", text).group(1).replace("${P}", "regional_packed_random_budget64k")
        assert [n for n in defaults.split(",") if n not in VARIANTS] == [], script
    assert VARIANTS["regional_packed_random_budget64k_no_dropout_bf16_residual_fa4"].flash_attention == "FA4"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "attention_kernels.py"), "--help"], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0 and "--impl" in done.stdout, done.stderr[-2000:]


def test_gpu_profile_sorts_kernels_into_kinds():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from gpu_profile import kernel_kind

    assert kernel_kind("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64") == "matmul"
    assert kernel_kind("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NTN") == "matmul"
    assert kernel_kind("void flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128>>") == "attention"
    assert kernel_kind("triton_per_fused_add_native_layer_norm_0") == "triton (fused)"
    assert kernel_kind("triton_tem_fused_flex_attention_backward_transpose_view_11") == "attention"
    assert kernel_kind("void at::native::(anonymous namespace)::fused_adam_kernel") == "optimizer"
    assert kernel_kind("Memcpy HtoD (Pinned -> Device)") == "copy/fill"
    assert kernel_kind("void at::native::vectorized_elementwise_kernel<4, GeluCUDAKernelImpl>") == "other"


def test_gpu_engine_smoke_config_trains_two_tasks_here(tmp_path):
    """gpu.sh's first step (the engine end to end) also runs on a CPU, so it is known to work before a GPU is lent."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "mtcore.cli.app", "train", str(REPO / "benchmarks" / "gpu_engine_smoke.yaml"),
                           "--output-dir", str(tmp_path / "run")], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 40
    assert {"user:reviews/accuracy", "user:reviews_short/accuracy"} <= set(summary["final"]["metrics"])


def test_the_gpu_plot_is_drawn_from_the_recorded_runs(tmp_path):
    out = tmp_path / "gpu.png"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "plot_gpu.py"), "--out", str(out)], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


def test_predict_memory_smoke():
    report, table = run_script("predict_memory.py", "--smoke")
    rows = [r["rows"] for r in report["results"]]
    assert rows == [200, 2000] and all(r["peak_rss_mb"] > 0 for r in report["results"])
    assert report["growth_mb"] == pytest.approx(report["results"][1]["peak_rss_mb"] - report["results"][0]["peak_rss_mb"], abs=0.2)
    assert "peak RSS" in table and "2,000" in table


def test_cli_startup_stops_at_a_command_that_fails_rather_than_timing_it():
    env = {**os.environ, "MT_LOAD_PLUGINS": ""}  # no plugin loaded: mt show-task rsg:terra exits 2
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cli_startup.py"), "--runs", "1"], capture_output=True,
                          text=True, timeout=300, env=env, cwd=REPO)
    assert done.returncode == 1 and "mt show-task rsg:terra exits 2: error: unknown task 'rsg:terra'" in done.stderr, done.stderr
    assert done.stdout == ""  # no table of a failure's timings


def test_collate_speed_smoke():
    report, table = run_script("collate_speed.py", "--smoke")
    kinds = [r["kind"] for r in report["results"]]
    assert kinds == ["text_classification", "token_classification", "multiple_choice"]
    for r in report["results"]:
        assert r["ms_per_batch"] > 0 and r["padded"][0] == r["rows"] and r["padded"][-1] <= r["longest"]
        assert f"\n| {r['kind']} | {r['rows']} | " in table
    assert report["results"][2]["padded"][1] == 4  # the choices keep their own axis
