"""scripts/tune_generation.py: a seeded Optuna search over decoding settings of a trained export, each distinct
decoding run once, the best reported against the current settings, and --write touching only what it says."""

import hashlib
import json
import shutil

import pytest

from conftest import SAMPLE
from resumen.core.errors import ResumenError
from resumen.core.generation import GenerationSettings
from resumen.app import tune_generation

VALIDATION = str(SAMPLE / "validation.jsonl")


@pytest.fixture
def export(finished_run, tmp_path):
    copy = tmp_path / "export"
    shutil.copytree(finished_run["runs"] / "demo" / "version_0" / "export", copy)
    return copy


def digests(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir() if p.is_file()}


def test_a_search_starts_from_the_current_settings_and_decodes_each_setting_once(export):
    result = tune_generation.main(["--model", str(export), "--data-file", VALIDATION, "--trials", "8", "--max-articles", "6", "--json"])
    current = json.loads((export / "generation_config.json").read_text())
    assert {k: result["current"][k] for k in ("num_beams", "max_new_tokens")} == {
        k: current[k] for k in ("num_beams", "max_new_tokens")
    }  # trial 0 is the export's own settings
    assert result["decodings_run"] == len(result["distinct_settings"]) <= 8  # repeats came from the cache
    assert result["best"]["rougeL"] == max(row["rougeL"] for row in result["distinct_settings"])
    assert result["best"]["rougeL"] >= result["current"]["rougeL"]
    difference = result["difference"]
    assert difference["low"] <= difference["mean"] <= difference["high"] and "rougeL" in difference["in_words"]


def test_greedy_decoding_ignores_the_length_penalty_so_they_share_one_decoding():
    greedy = GenerationSettings(num_beams=1, max_new_tokens=32)
    assert tune_generation.decoding_key(greedy.with_overrides(length_penalty=2.0)) == tune_generation.decoding_key(greedy)
    beams = greedy.with_beams(4)
    assert tune_generation.decoding_key(beams.with_overrides(length_penalty=2.0)) != tune_generation.decoding_key(beams)


def test_write_changes_only_the_generation_config_and_the_card(export):
    before = digests(export)
    result = tune_generation.main(["--model", str(export), "--data-file", VALIDATION, "--trials", "8", "--max-articles", "6", "--write", "--json"])
    after = digests(export)
    changed = {name for name in after if after[name] != before.get(name)}
    if not result["better"]:
        pytest.skip("the current settings scored best on this model: nothing to write")  # seeded: not expected
    assert changed == {"generation_config.json", "README.md"} and set(after) == set(before)
    written = json.loads((export / "generation_config.json").read_text())
    assert all(written[k] == result["best"][k] for k in ("num_beams", "no_repeat_ngram_size", "max_new_tokens"))
    card = (export / "README.md").read_text()
    assert card.count(tune_generation.CARD_SECTION) == 1 and "judge it on test" in card
    again = tune_generation.main(["--model", str(export), "--data-file", VALIDATION, "--trials", "2", "--max-articles", "6", "--write", "--json"])
    assert again["current"]["rougeL"] == result["best"]["rougeL"]  # the export now decodes with the best settings
    assert (export / "README.md").read_text().count(tune_generation.CARD_SECTION) == 1  # replaced, not stacked


def test_a_write_that_fails_while_preparing_leaves_both_files_as_they_were(export, monkeypatch):
    before = digests(export)

    def broken(self, generation_config):
        raise OSError("disk full")

    monkeypatch.setattr(GenerationSettings, "apply_to", broken)  # only --write calls it: the search itself runs
    with pytest.raises(OSError):
        tune_generation.main(["--model", str(export), "--data-file", VALIDATION, "--trials", "3", "--max-articles", "4", "--write", "--json", "--seed", "1"])
    assert digests(export) == before and not [p for p in export.iterdir() if p.name.startswith(".")]


def test_bad_input_is_one_line_before_any_model_loads(tmp_path):
    with pytest.raises(ResumenError, match="give the validation articles"):
        tune_generation.main(["--model", "google/flan-t5-small", "--trials", "3"])
    with pytest.raises(ResumenError, match="--write needs an export directory"):
        tune_generation.main(["--model", "google/flan-t5-small", "--data-file", VALIDATION, "--write"])
    with pytest.raises(ResumenError, match="at least 1"):
        tune_generation.main(["--model", str(tmp_path), "--data-file", VALIDATION, "--trials", "0"])


def test_the_settings_and_the_card_change_together_or_not_at_all(tmp_path, monkeypatch):
    """A card that cannot be replaced used to leave generation_config.json already changed while the message said
    the previous files were intact."""
    import os

    from resumen.core import files

    config, card = tmp_path / "generation_config.json", tmp_path / "README.md"
    config.write_text("old settings")
    card.write_text("old card")
    real_replace = os.replace

    def refuse_the_card(source, target):
        if str(target).endswith("README.md"):
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(files.os, "replace", refuse_the_card)
    with pytest.raises(ResumenError, match="README.md' \\(the disk is full\\)"):
        files.atomic_files({config: "new settings", card: "new card"})
    monkeypatch.setattr(files.os, "replace", real_replace)
    assert config.read_text() == "old settings" and card.read_text() == "old card"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "generation_config.json"]  # no temporaries
    files.atomic_files({config: "new settings", card: "new card"})
    assert config.read_text() == "new settings" and card.read_text() == "new card"


def test_write_refuses_a_card_it_cannot_replace_before_the_search(export):
    (export / "README.md").unlink()
    (export / "README.md").mkdir()
    with pytest.raises(ResumenError, match="--write '.*README.md' is a directory"):
        tune_generation.main(["--model", str(export), "--data-file", VALIDATION, "--trials", "2", "--write"])


def test_an_objective_and_limits_choose_the_best_and_a_limit_nothing_meets_writes_nothing(export):
    args = ["--model", str(export), "--data-file", VALIDATION, "--trials", "6", "--max-articles", "6", "--json"]
    limited = tune_generation.main([*args, "--constraint", "words<=1000", "--constraint", "repeated_trigrams<=100"])
    assert limited["within_constraints"] and limited["constraints"] == ["words<=1000", "repeated_trigrams<=100"]
    assert {"rougeL", "words", "repeated_trigrams"} <= set(limited["best"])
    # a metric where lower is better: the search minimises it
    fewer = tune_generation.main([*args, "--objective", "repeated_trigrams"])
    assert fewer["best"]["repeated_trigrams"] == min(row["repeated_trigrams"] for row in fewer["distinct_settings"])
    before = digests(export)
    impossible = tune_generation.main([*args, "--constraint", "words<=0", "--write"])
    assert not impossible["within_constraints"] and impossible["best"] == impossible["current"] and impossible["written"] == []
    assert digests(export) == before


@pytest.mark.parametrize(
    "flag,message",
    [
        (["--objective", "words"], "describes a summary rather than judging it"),
        (["--objective", "wordz"], "unknown metric 'wordz'"),
        (["--constraint", "words<40"], "write METRIC<=VALUE"),
        (["--constraint", "words<=many"], "a number must follow <="),
    ],
)
def test_a_bad_objective_or_limit_is_refused_before_any_model_loads(flag, message, capsys):
    with pytest.raises(SystemExit):
        tune_generation.parse_args(["--model", "missing", *flag])
    assert message in capsys.readouterr().err
