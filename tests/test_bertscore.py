"""BERTScore through torchmetrics on a tiny local BERT (offline): the value is the paper's greedy cosine matching,
a bad encoder or layer is one line before any summary is generated, and compare.py reports it with intervals."""

import pytest
import torch

from resumen.app import compare
from resumen.core.bertscore import bertscore_rows, check_encoder
from resumen.core.errors import ResumenError


def by_hand(encoder, layer, candidate, reference):
    """Zhang et al. 2020, without idf: each token's best cosine match in the other text; special tokens left out."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(encoder), AutoModel.from_pretrained(encoder).eval()

    def embeddings(text):
        batch = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            states = model(**batch, output_hidden_states=True).hidden_states[layer][0]
        return torch.nn.functional.normalize(states[1:-1], dim=-1)  # without [CLS] and [SEP]

    c, r = embeddings(candidate), embeddings(reference)
    similarity = c @ r.T
    precision, recall = similarity.max(dim=1).values.mean(), similarity.max(dim=0).values.mean()
    return float(200 * precision * recall / (precision + recall))


def test_bertscore_is_the_greedy_cosine_match_of_one_layer(tiny_bert):
    pairs = [("El niño juega en el parque.", "Un niño jugaba en el parque ayer."), ("La medida costará 180.000 euros.", "El plan costará dinero.")]
    scores = bertscore_rows([c for c, _ in pairs], [r for _, r in pairs], tiny_bert, 2, "cpu", batch_size=2)
    assert scores == pytest.approx([by_hand(tiny_bert, 2, c, r) for c, r in pairs], abs=0.05)
    same = bertscore_rows(["El niño juega."], ["El niño juega."], tiny_bert, 3, "cpu")
    assert same == pytest.approx([100.0], abs=1e-3)
    assert bertscore_rows([""], ["algo"], tiny_bert, 2, "cpu").tolist() == [0.0]  # an empty summary scores 0


def test_a_bad_encoder_or_layer_is_one_line(tiny_bert, tiny_t5):
    with pytest.raises(ResumenError, match="--bertscore-layer 7: .* has layers 1 to 3"):
        check_encoder(tiny_bert, 7)
    with pytest.raises(ResumenError, match="BERTScore needs an encoder"):
        check_encoder(tiny_t5, 2)


def test_compare_adds_bertscore_with_its_interval_and_paired_difference(tiny_bert, sample_files):
    args = ["--dataset", "--models", "lead-1", "oracle", "--data-file", sample_files["test"], "--metrics", "bertscore"]
    rows = compare.main([*args, "--bertscore-model", tiny_bert, "--bertscore-layer", "2"])
    assert all(row["bertscore_low"] <= row["bertscore"] <= row["bertscore_high"] <= 100 for row in rows[:2])
    assert "bertscore" in rows[1]["difference"] and "bertscore" not in rows[2]  # the references' row: model-free only
    with pytest.raises(ResumenError, match="has layers 1 to 3"):
        compare.main([*args, "--bertscore-model", tiny_bert, "--bertscore-layer", "9"])


@pytest.mark.slow
def test_train_py_test_adds_bertscore_on_request_and_compare_py_agrees(finished_run, tiny_t5, tiny_bert, tmp_path):
    """On request (never in validation) test scores BERTScore too; compare.py on the export it was made from gives
    the same value: one encoder, one layer, the same summaries."""
    import json
    import shutil

    from cli_helpers import demo_args, in_root, run_train

    runs = tmp_path / "runs"
    shutil.copytree(finished_run["runs"], runs)
    bert = [f"--model.test_bertscore_model={tiny_bert}", "--model.test_bertscore_layer=2"]
    in_root(run_train, *demo_args("test", tiny_t5, runs, *bert))
    run = runs / "demo" / "version_0"
    tested = json.loads((run / "test_results.json").read_text())["semantic"]["bertscore"]
    assert 0 < tested["low"] <= tested["mean"] <= tested["high"] <= 100
    assert "BERTScore F1 (test)" in (run / "export" / "README.md").read_text()
    rows = in_root(
        compare.main,
        [
            "--dataset",
            "--data-config",
            str(run / "config.yaml"),
            "--models",
            str(run / "export"),
            "--metrics",
            "bertscore",
            "--bertscore-model",
            tiny_bert,
            "--bertscore-layer",
            "2",
        ],
    )
    assert rows[0]["bertscore"] == pytest.approx(tested["mean"], abs=0.01)
