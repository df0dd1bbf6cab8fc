"""The data-file checks stream: constant memory whatever the file's size, the same one-line messages with the right
line numbers past the first block, and each file read once per process (datamodules/sources.py)."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT
from resumen.core.errors import ResumenError
from resumen.datamodules import sources

ROW = {"text": "El Betis ganó al Celta por 3-1 en Sevilla. " * 8, "summary": "El Betis ganó."}


def write_rows(path, count, bad_line=None, bad=b'{"text": "a", \n'):
    line = (json.dumps(ROW, ensure_ascii=False) + "\n").encode()
    with open(path, "wb") as handle:
        for number in range(1, count + 1):
            handle.write(bad if number == bad_line else line)
    return path


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(sources, "BLOCK", 1 << 16)  # 64 kB: a few thousand rows span many blocks
    monkeypatch.setattr(sources, "_CHECKED", set())


@pytest.mark.parametrize(
    "bad, message",
    [
        (b'{"text": "a", \n', r"line 2500 is not valid JSON"),
        (b'{"text": "ni\xf1o", "summary": "c"}\n', r"line 2500 is not UTF-8 \(byte 0xf1\)"),
        (b'{"text": "a \\ud800", "summary": "c"}\n', r"line 2500 holds a lone surrogate escape"),
    ],
    ids=["json", "utf8", "surrogate"],
)
def test_a_bad_line_far_past_the_first_block_is_named_by_its_number(small_blocks, tmp_path, bad, message):
    path = write_rows(tmp_path / "train.jsonl", 3000, bad_line=2500, bad=bad)
    with pytest.raises(ResumenError, match=message):
        sources.check_local_files([str(path)])


def test_each_file_is_read_once_per_process_and_again_when_it_changes(small_blocks, tmp_path, monkeypatch):
    read = []
    real = sources._check_content
    monkeypatch.setattr(sources, "_check_content", lambda file, suffix: read.append(file.name) or real(file, suffix))
    path = write_rows(tmp_path / "train.jsonl", 10)
    for _ in range(3):  # the CLI's check, the data module's, a second split naming the same file
        assert sources.check_local_files([str(path)]) == "json"
    assert read == ["train.jsonl"]
    write_rows(path, 11)
    sources.check_local_files([str(path)])
    assert read == ["train.jsonl", "train.jsonl"]


def grown_mb(path) -> float:
    """How much a fresh process grows while checking ``path`` (its libraries imported first)."""
    script = f"""
import json
import pyarrow.json, codecs  # imported before the baseline: the check's own memory is what is measured
from resumen.datamodules import sources
from resumen.lightning_modules.run_report import peak_rss_bytes
before = peak_rss_bytes()
sources.check_local_files([{str(path)!r}])
print(json.dumps({{"grew_mb": (peak_rss_bytes() - before) / 2**20}}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["grew_mb"]


@pytest.mark.slow  # writes and reads 200 MB
def test_a_200_mb_file_is_checked_without_holding_it(tmp_path):
    """Constant memory: checking 200 MB of JSON lines grows the process by its blocks and pyarrow's pool (about
    40-100 MB, whatever the file's size), not by the file (reading it whole, as before, grew it by about three times
    the file: its bytes, its text and the parsed rows; 3 GB for a 1 GB file)."""
    large = write_rows(tmp_path / "large.jsonl", 520_000)
    assert large.stat().st_size > 190 * 2**20
    grew = grown_mb(large)
    assert grew < 150, f"checking a {large.stat().st_size / 2**20:.0f} MB file grew the process by {grew:.0f} MB"


def test_emoji_written_as_escape_pairs_are_characters_not_lone_surrogates(small_blocks, tmp_path):
    """json.dumps and pandas write non-ASCII as escapes by default: an emoji is a surrogate pair, which is valid."""
    path = tmp_path / "emoji.jsonl"
    path.write_text(json.dumps({"text": "Gol \U0001f600 del Betis", "summary": "Gol."}) + "\n", encoding="utf-8")
    assert "\\ud83d\\ude00" in path.read_text()
    assert sources.check_local_files([str(path)]) == "json"


def test_under_ddp_only_rank_zero_reads_the_files(small_blocks, tmp_path, monkeypatch):
    """Once per command, not per rank: another rank trusts rank 0's check (which stops the whole job on a bad file)
    and only looks at what costs nothing (existence, extension, size)."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    path = write_rows(tmp_path / "train.jsonl", 3000, bad_line=2500)
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    assert sources.check_local_files([str(path)]) == "json"
    with pytest.raises(ResumenError, match="does not exist"):
        sources.check_local_files([str(tmp_path / "missing.jsonl")])
    monkeypatch.setattr(rank_zero_only, "rank", 0)
    with pytest.raises(ResumenError, match="line 2500 is not valid JSON"):
        sources.check_local_files([str(path)])
