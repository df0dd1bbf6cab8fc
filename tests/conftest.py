"""Offline test setup: the hub is off before transformers is imported; tiny models are built once per session."""

from __future__ import annotations

import contextlib
import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="resumen-datasets-"))
# Under pytest-xdist (make test runs two workers), each worker and the processes it starts get an equal share of the
# cores: two workers of two threads each on two cores spin-wait on each other's OpenMP barriers and run slower than one.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, _threads)

import logging
from pathlib import Path

import pytest

# Lightning's log handlers keep the stderr of the test that imported it; once pytest closes that capture, logging
# would print "--- Logging error ---" tracebacks into later tests' output. Drop those, not the messages' checks.
logging.raiseExceptions = False

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "datamodules" / "data"
REAL_TOKENIZERS = ROOT / "tests" / "fixtures" / "tokenizers"  # real T5 / GPT-2 vocabularies, in the repository


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """A tiny random-weight BERT encoder (3 layers) with a WordPiece tokenizer trained on the samples: BERTScore's."""
    from resumen.app.tiny_models import build_tiny_bert

    return str(build_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert"))


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> str:
    from resumen.app.tiny_models import build_tiny_t5

    return str(build_tiny_t5(tmp_path_factory.mktemp("models") / "tiny-t5"))


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> str:
    from resumen.app.tiny_models import build_tiny_gpt2

    return str(build_tiny_gpt2(tmp_path_factory.mktemp("models") / "tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny_gemma2(tmp_path_factory) -> str:
    from resumen.app.tiny_models import build_tiny_gemma2

    return str(build_tiny_gemma2(tmp_path_factory.mktemp("models") / "tiny-gemma2"))


@pytest.fixture(scope="session")
def sample_files() -> dict[str, str]:
    return {split: str(SAMPLE / f"{split}.jsonl") for split in ("train", "validation", "test")}


@pytest.fixture
def real_t5_dir() -> Path:
    return REAL_TOKENIZERS / "t5"


@pytest.fixture
def real_gpt2_dir() -> Path:
    return REAL_TOKENIZERS / "gpt2"


@pytest.fixture(scope="session")
def finished_run(tiny_t5, tmp_path_factory) -> dict:
    """fit (3 epochs) -> validate -> test -> predict on the demo config, once per session, all in version_0."""
    from cli_helpers import demo_args, run_train

    runs = tmp_path_factory.mktemp("e2e") / "runs"
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        fit = run_train(*demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=3"))
        validate = run_train(*demo_args("validate", tiny_t5, runs))
        test = run_train(*demo_args("test", tiny_t5, runs))
        predict = run_train(*demo_args("predict", tiny_t5, runs))
    finally:
        os.chdir(cwd)
    return {"runs": runs, "fit": fit, "validate": validate, "test": test, "predict": predict}


@contextlib.contextmanager
def read_only_mount(folder: Path, mount: Path):
    """``folder`` seen through a real read-only bind mount at ``mount`` (a new, empty directory), as a read-only
    volume presents it; the test is skipped where mounting is not allowed (it needs root)."""
    import subprocess

    mount.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "--bind", str(folder), str(mount)], capture_output=True).returncode != 0:
        pytest.skip("no bind mount here (needs root)")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(mount)], capture_output=True).returncode != 0:
            pytest.skip("no read-only remount here")
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


@pytest.fixture
def hub_t5_tokenizer_dir(real_t5_dir, tmp_path) -> Path:
    """The real T5 vocabulary saved the way the hub ships google/flan-t5-small (tokenizer_config: T5Tokenizer)."""
    from transformers import T5Tokenizer

    target = tmp_path / "flan-t5-tokenizer"
    T5Tokenizer.from_pretrained(real_t5_dir).save_pretrained(target)
    return target


# pytest-xdist (--dist loadscope) hands a worker the next test file whenever it has two tests or fewer left: the
# slowest files go first so that the two workers end together (seconds per file in a 2-worker run, this order; the
# compile test's file with a cold torch.compile cache, as on a fresh machine).
SLOWEST_FIRST = [
    "test_tune.py",
    "test_fault_tolerance.py",
    "test_ddp.py",
    "test_newcomer.py",
    "test_benchmark.py",
    "test_serving.py",
    "test_speed_options.py",
    "test_lora.py",
    "test_architectures.py",
    "test_runs.py",
    "test_learning.py",
    "test_vocabulary.py",
    "test_reliability.py",
    "test_predict_interrupted.py",
    "test_console.py",
    "test_cli_end_to_end.py",
    "test_security.py",
    "test_ecosystem.py",
]


def pytest_configure(config: pytest.Config) -> None:
    # xdist otherwise re-sorts the files by their number of tests, which put make demo's 4 tests last
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


# The fast tier (make test-fast, -m "not slow") leaves out what starts processes or trains for many steps: these files
# whole, any test that uses the session's finished demo run (a fit, validate, test and predict), and the tests marked
# @pytest.mark.slow in the other files. make test runs everything.
SLOW_FILES = {
    "test_ddp.py",
    "test_fault_tolerance.py",
    "test_newcomer.py",
    "test_benchmark.py",
    "test_tune.py",
    "test_speed_options.py",
    "test_learning.py",
    "test_predict_interrupted.py",
    "test_console.py",
    "test_serving.py",
    "test_lora.py",
    "test_ecosystem.py",
    "test_architectures.py",
}
SLOW_FIXTURES = {"finished_run"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Item) and (item.path.name in SLOW_FILES or SLOW_FIXTURES & set(item.fixturenames)):
            item.add_marker(pytest.mark.slow)
    rank = {name: position for position, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file's own order is kept
