"""``mtcore.testing.pytest_plugin``: a plugin author's test suite uses its fixtures."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from clitools import clean_env

SUITE = '''
import math

from mtcore.testing import build_tiny_encoder


def test_tiny_encoder_is_built_once_per_session(tiny_encoder, tiny_encoder_factory):
    assert (tiny_encoder / "config.json").is_file()
    assert tiny_encoder_factory("bert") == tiny_encoder


def test_other_architectures(tiny_encoder_factory):
    path = tiny_encoder_factory("roberta", words=["hello"])
    assert '"model_type": "roberta"' in (path / "config.json").read_text()


def test_registry_fixture(mt_registry):
    assert "rsg:terra" in mt_registry.tasks


def test_offline_mode_is_on():
    import os
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"


def test_smoke_training_fixture(mt_smoke_train):
    result = mt_smoke_train("rsg:terra", steps=2, batch_size=4)
    assert result.steps == 2 and len(result.losses) == 2
    assert all(math.isfinite(x) for x in result.losses)
    assert set(result.metrics["rsg:terra"]) >= {"accuracy", "f1_macro"}
    assert (result.model_dir / "mtcore.json").is_file()
'''


def test_plugin_authors_get_the_fixtures_through_pytest_plugins(tmp_path):
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["mtcore.testing.pytest_plugin"]\n')
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = clean_env(OMP_NUM_THREADS="1", HF_DATASETS_CACHE=str(tmp_path / "hf-cache"))
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("HF_DATASETS_OFFLINE", None)  # the plugin must switch offline mode on by itself
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "5 passed" in done.stdout
