"""The real tokenizer files the Spanish-fidelity tests read are in the repository, unchanged from their sources."""

import doctest
import hashlib
import re

import pytest

from conftest import REAL_TOKENIZERS


def published_hashes() -> dict[str, str]:
    table = (REAL_TOKENIZERS / "README.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\| (\S+/\S+) \|.*\| ([0-9a-f]{64}) \|$", table, flags=re.MULTILINE))


def test_every_fixture_matches_the_sha256_in_its_readme():
    hashes = published_hashes()
    assert sorted(hashes) == ["gpt2/merges.txt", "gpt2/vocab.json", "t5/spiece.model", "t5/tokenizer.json"]
    for name, digest in hashes.items():
        assert hashlib.sha256((REAL_TOKENIZERS / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("module_name", ["resumen.lightning_modules.metrics", "resumen.core.rouge"])
def test_docstring_examples_run(module_name):
    import importlib

    result = doctest.testmod(importlib.import_module(module_name))
    assert result.attempted > 0 and result.failed == 0
