"""``mt predict`` / ``mt export`` / ``mt evaluate``: bad output paths and devices are one line, nothing left on disk."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

linux_proc = pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/proc/self").is_dir(), reason="needs Linux /proc")


def _one_error_line(result, *parts: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and "unexpected" not in lines[0], result.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_output_that_is_a_folder_is_refused_before_predicting(cli, bert_model_dir, reviews_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "od").mkdir()
    before = _listing(tmp_path)
    for fmt in ("jsonl", "csv"):
        result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", "od", "--format", fmt)
        assert result.exit_code == 2
        _one_error_line(result, "--output od is a folder; give a file path", f"od{os.sep}predictions.{fmt}")
    assert _listing(tmp_path) == before  # no .tmp-* file in the current folder, nothing in od/


def test_output_with_a_trailing_slash_is_a_folder_even_when_it_does_not_exist_yet(cli, bert_model_dir, reviews_file, tmp_path,
                                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _listing(tmp_path)
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", "preds/")
    assert result.exit_code == 2  # it used to write a file named 'preds'
    _one_error_line(result, "--output preds/ is a folder; give a file path", f"preds{os.sep}predictions.jsonl")
    assert _listing(tmp_path) == before


@linux_proc
def test_unwritable_output_folder_is_one_line(cli, bert_model_dir, reviews_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _listing(tmp_path)
    for out in ("/proc/o.jsonl", "/proc/sub/dir/o.jsonl", "/proc/version"):  # the path asked for, then the folder that refused
        result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", out)
        assert result.exit_code == 1
        _one_error_line(result, f"cannot write to {out}: ", "(folder /proc takes no new file); choose another --output")
    assert _listing(tmp_path) == before


def test_output_below_a_file_is_one_line(cli, bert_model_dir, reviews_file, tmp_path):
    (tmp_path / "ff").write_text("keep\n")
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", tmp_path / "ff" / "sub" / "o.jsonl")
    assert result.exit_code == 2
    _one_error_line(result, "is a file, not a folder")
    assert _listing(tmp_path) == ["ff", "reviews.jsonl"] and (tmp_path / "ff").read_text() == "keep\n"


def test_an_output_through_a_broken_link_says_so(cli, bert_model_dir, reviews_file, tmp_path):
    """A link to a drive not mounted was "is a file, not a folder" or "File exists", and mt predict -o LINK made the
    link's missing folders; a link to a file yet to be written (in an existing folder) is still written through."""
    gone = tmp_path / "unmounted" / "volume"
    (tmp_path / "drive").symlink_to(gone)
    broken = f"{tmp_path / 'drive'} is a broken link (to {str(gone)!r}, which does not exist); fix the link"
    for args in (["predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", tmp_path / "drive"],
                 ["predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", tmp_path / "drive" / "p.jsonl"],
                 ["export", bert_model_dir, tmp_path / "drive" / "exported", "--encoder-only"],
                 ["export", bert_model_dir, tmp_path / "drive", "--encoder-only"]):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        _one_error_line(result, broken)
    assert not (tmp_path / "unmounted").exists() and _listing(tmp_path) == ["drive", "reviews.jsonl"]
    (tmp_path / "later").symlink_to(tmp_path / "p.jsonl")
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", tmp_path / "later")
    rows = reviews_file.read_text(encoding="utf-8").count("\n")
    assert result.exit_code == 0 and (tmp_path / "p.jsonl").read_text(encoding="utf-8").count("\n") == rows > 0, result.output


def test_a_file_where_a_folder_output_goes_exits_2(cli, bert_model_dir, reviews_file, tmp_path):
    """Export folders and folder writers (--format rsg) given an existing file: a usage mistake, before any work."""
    (tmp_path / "ff").write_text("keep\n")
    for args in (["export", bert_model_dir, tmp_path / "ff", "--encoder-only"], ["export", bert_model_dir, tmp_path / "ff" / "x", "--encoder-only"]):
        result = cli(*args)
        assert result.exit_code == 2, result.stderr
        _one_error_line(result, "is a file")
    assert (tmp_path / "ff").read_text() == "keep\n" and _listing(tmp_path) == ["ff", "reviews.jsonl"]


def test_a_failed_final_rename_leaves_no_temporary_file(cli, bert_model_dir, reviews_file, tmp_path, monkeypatch):
    import mtcore.outputs as outputs

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(outputs.os, "replace", refuse)
    out = tmp_path / "new" / "deeper" / "preds.jsonl"
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", out)
    assert result.exit_code == 1
    _one_error_line(result, f"cannot write to {out}: Permission denied")
    assert _listing(tmp_path) == ["reviews.jsonl"]  # neither the temporary file nor the folders made for it


@linux_proc
def test_export_to_an_unwritable_place_is_one_line(cli, bert_model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["--encoder-only"], ["--task", "sentiment"]):
        result = cli("export", bert_model_dir, "/proc/exp", *args)
        assert result.exit_code == 1
        _one_error_line(result, "cannot write to /proc: ", "; choose another OUT_DIR")  # the export is built beside OUT_DIR
    assert _listing(tmp_path) == []


def test_export_write_failure_leaves_nothing(cli, bert_model_dir, tmp_path, monkeypatch):
    import mtcore.export.hf as hf

    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hf.tempfile, "mkdtemp", refuse)
    result = cli("export", bert_model_dir, tmp_path / "a" / "b" / "exp", "--encoder-only")
    assert result.exit_code == 1
    _one_error_line(result, "cannot write to", "No space left on device")
    assert _listing(tmp_path) == []  # the parent folders made for the export are removed again


@pytest.fixture()
def no_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("cuda", "--device cuda: no CUDA GPU is available here; use --device cpu"),
        ("cuda:1", "--device cuda:1: no CUDA GPU is available here; use --device cpu"),
        ("gpu", "--device 'gpu' is not a device (did you mean 'cuda'?)"),
        ("cpux", "--device 'cpux' is not a device (did you mean 'cpu'?)"),
    ],
)
def test_bad_device_is_one_line(cli, bert_model_dir, reviews_file, tmp_path, no_cuda, device, message):
    out = tmp_path / "o.jsonl"
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", out, "--device", device)
    assert result.exit_code == 2
    _one_error_line(result, message)
    result = cli("evaluate", bert_model_dir, "-t", "sentiment", "--device", device)
    assert result.exit_code == 2
    _one_error_line(result, message)
    assert not out.exists()


def test_cuda_index_past_the_last_gpu(cli, bert_model_dir, reviews_file, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "--device", "cuda:1")
    assert result.exit_code == 2
    _one_error_line(result, "--device cuda:1: this machine has 1 CUDA GPU (cuda:0 to cuda:0)")


def test_cpu_device_and_a_new_output_folder_still_work(cli, bert_model_dir, reviews_file, tmp_path):
    out = tmp_path / "made" / "preds.jsonl"
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert out.is_file() and _listing(tmp_path) == ["made", f"made{os.sep}preds.jsonl", "reviews.jsonl"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs symlinks and FIFOs")
def test_links_are_written_through_fifos_directly_and_files_are_not_private(cli, bert_model_dir, reviews_file, tmp_path):
    import threading

    (tmp_path / "target.jsonl").write_text("old\n")
    (tmp_path / "link.jsonl").symlink_to("target.jsonl")
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", tmp_path / "link.jsonl")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "link.jsonl").is_symlink() and "probabilities" in (tmp_path / "target.jsonl").read_text()
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "target.jsonl").stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600

    os.mkfifo(tmp_path / "fifo")
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append((tmp_path / "fifo").read_text()))
    reader.start()
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", tmp_path / "fifo")
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert received and received[0].count("\n") == len(reviews_file.read_text().splitlines())
    assert (tmp_path / "fifo").is_fifo()  # still a FIFO, not replaced by a file


def _tsv_writer(fail: bool):
    def write(task, rows, output_path):
        path = Path(output_path)
        path.write_text("".join(f"{row['idx']}\t{row['label']}\n" for row in rows), encoding="utf-8")
        if fail:
            raise RuntimeError("disk went away")
        return [path]

    return write


def test_a_plugin_writer_that_fails_leaves_nothing_and_is_named(cli, bert_model_dir, reviews_file, tmp_path, monkeypatch):
    from mtcore.plugins import register_component

    register_component("writer", "half_tsv_test", _tsv_writer(fail=True))
    monkeypatch.chdir(tmp_path)
    before = _listing(tmp_path)
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", "new/preds.tsv", "--format", "half_tsv_test")
    assert result.exit_code == 1
    _one_error_line(result, "writer 'user:half_tsv_test' failed: RuntimeError: disk went away; nothing was written")
    assert _listing(tmp_path) == before  # neither the half-written file nor the folder made for it


def test_a_plugin_writers_own_os_error_names_the_writer_and_a_full_disk_names_the_output(cli, bert_model_dir, reviews_file,
                                                                                         tmp_path, monkeypatch):
    """A writer opening <output>/sub/x.tsv without making sub/ was "cannot write to OUTPUT: No such file or directory":
    the user's path blamed, the writer not named."""
    import errno

    from mtcore.plugins import register_component

    def into_a_missing_folder(task, rows, output_path):
        return [Path(output_path, "sub", "x.tsv").write_text("x") and Path(output_path, "sub", "x.tsv")]

    def on_a_full_disk(task, rows, output_path):
        raise OSError(errno.ENOSPC, "No space left on device", str(output_path))

    register_component("writer", "subfolder_tsv_test", into_a_missing_folder)
    register_component("writer", "full_disk_tsv_test", on_a_full_disk)
    monkeypatch.chdir(tmp_path)
    before = _listing(tmp_path)
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", "out", "--format", "subfolder_tsv_test")
    assert result.exit_code == 1
    _one_error_line(result, "writer 'user:subfolder_tsv_test' failed: FileNotFoundError: ", "sub/x.tsv", "; nothing was written")
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", "out", "--format", "full_disk_tsv_test")
    assert result.exit_code == 1
    _one_error_line(result, "cannot write to out: No space left on device")
    assert _listing(tmp_path) == before


def test_a_plugin_writer_gets_missing_folders_and_shareable_files(cli, bert_model_dir, reviews_file, tmp_path, monkeypatch):
    from mtcore.plugins import register_component

    register_component("writer", "tsv_test", _tsv_writer(fail=False))
    monkeypatch.chdir(tmp_path)
    mask = os.umask(0o022)
    try:
        result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", "new/deeper/preds.tsv", "--format", "tsv_test")
    finally:
        os.umask(mask)
    assert result.exit_code == 0, result.output
    written = tmp_path / "new" / "deeper" / "preds.tsv"
    assert written.read_text(encoding="utf-8").count("\n") > 0 and written.stat().st_mode & 0o777 == 0o644
    assert [p for p in _listing(tmp_path) if p.startswith("new")] == ["new", "new/deeper", "new/deeper/preds.tsv"]  # no staging folder


@pytest.mark.parametrize("made", [False, True])
def test_a_one_file_plugin_writer_given_a_folder_is_refused_and_writes_nothing(cli, bert_model_dir, reviews_file, tmp_path, monkeypatch, made):
    """``-o preds/`` (or a folder that exists) with a writer that writes the one file it is given wrote a file named
    ``preds`` (or failed to move it onto the folder): the user is told to give a file path."""
    from mtcore.plugins import register_component

    name = f"tsv_folder{int(made)}"
    register_component("writer", name, _tsv_writer(fail=False))
    monkeypatch.chdir(tmp_path)
    if made:
        (tmp_path / "preds").mkdir()
    before = _listing(tmp_path)
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", "preds/" if not made else "preds", "--format", name)
    assert result.exit_code == 2, result.output
    _one_error_line(result, f"names a folder: give a file path (e.g. preds/predictions.{name})")
    assert _listing(tmp_path) == before


def test_a_signal_while_the_temporary_file_is_made_acts_once_its_name_is_known(tmp_path, monkeypatch):
    """SIGTERM between mkstemp and noting the file's name left a .tmp- file behind (a helper saw it once under load):
    the name is noted before the file is made."""
    import os
    import signal

    from mtcore.outputs import AtomicText

    made = AtomicText._create_temporary

    def create_then_signal(self):
        fd = made(self)
        os.kill(os.getpid(), signal.SIGTERM)  # arrives inside open(), the moment the file exists
        return fd

    def stop(signum, frame):
        raise SystemExit(143)

    previous = signal.signal(signal.SIGTERM, stop)
    monkeypatch.setattr(AtomicText, "_create_temporary", create_then_signal)
    target = AtomicText(tmp_path / "p.jsonl")
    try:
        with pytest.raises(SystemExit):
            with target:
                pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert list(tmp_path.iterdir()) == []


def test_output_dash_is_stdout_as_input_dash_is_stdin(cli, bert_model_dir, reviews_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("predict", bert_model_dir, "--task", "sentiment", "-i", reviews_file, "-o", "-")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() and all(line.startswith("{") for line in result.stdout.splitlines())
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("name", ["preds.tsv", "preds.json", "preds.parquet"])
def test_an_output_named_for_a_format_no_writer_writes_is_refused_unless_the_format_is_given(cli, bert_model_dir, reviews_file,
                                                                                              tmp_path, name):
    result = cli("predict", bert_model_dir, "--task", "sentiment", "-i", reviews_file, "-o", tmp_path / name)
    _one_error_line(result, f"--output {tmp_path / name}: predictions are written as JSON Lines (.jsonl) or CSV (.csv)", "--format jsonl")
    assert result.exit_code == 2 and not (tmp_path / name).exists()
    asked = cli("predict", bert_model_dir, "--task", "sentiment", "-i", reviews_file, "-o", tmp_path / name, "--format", "jsonl")
    assert asked.exit_code == 0, asked.stderr
    assert (tmp_path / name).read_text().startswith("{")


def test_a_one_file_plugin_writer_for_several_tasks_says_to_predict_them_one_at_a_time(cli, trained_run, tmp_path, monkeypatch):
    """Each task's file was written at the same path, each replacing the last, and moving it onto the output folder failed
    as "cannot write to preds: Directory not empty" (exit 1): the writer is named, with the one-task command."""
    from mtcore.plugins import register_component

    register_component("writer", "one_tsv_test", _tsv_writer(fail=False), needs_ids=False)
    monkeypatch.chdir(tmp_path)
    before = _listing(tmp_path)
    result = cli("predict", trained_run, "--task", "rsg:terra,rsg:parus", "--split", "validation", "--format", "one_tsv_test",
                 "-o", "preds/")
    assert result.exit_code == 2, result.output
    _one_error_line(result, "the user:one_tsv_test writer writes one file at the path it is given, so it cannot write several tasks' "
                            "predictions into the folder", "predict one task at a time, --task rsg:terra --output FILE")
    assert _listing(tmp_path) == before
    one = cli("predict", trained_run, "--task", "rsg:terra", "--split", "validation", "--format", "one_tsv_test", "-o", "terra.tsv")
    assert one.exit_code == 0 and (tmp_path / "terra.tsv").read_text(encoding="utf-8").count("\n") > 0, one.output
