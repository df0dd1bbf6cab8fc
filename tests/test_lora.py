"""LoRA through PEFT: it learns with few trainable parameters, writes added characters, resumes, and exports
a merged model and an adapter that generate exactly what the trained module generates."""

import json

import pytest
import torch

from cli_helpers import demo_args, in_root, run_train
from conftest import ROOT

LORA = ["--model.lora.r=16", "--model.lora.alpha=32", "--model.lora.dropout=0.0"]


def test_lora_learns_writes_enye_and_its_merged_and_adapter_exports_generate_the_same(hub_t5_tokenizer_dir, tmp_path, monkeypatch, caplog):
    from peft import PeftModel
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from resumen.core.vocabulary import decode_texts
    from resumen.lightning_modules.checkpoints import load_full_checkpoint, model_state_dict
    from resumen.app import compare
    from resumen.app.tiny_models import build_tiny_t5
    from synthetic import enye_rows, write_jsonl

    # a tiny T5 with the real 32,100-token vocabulary (no ñ), extended, on the first-sentence task whose summaries hold ñ
    model_dir = build_tiny_t5(tmp_path / "t5-real-vocab", tokenizer=AutoTokenizer.from_pretrained(hub_t5_tokenizer_dir))
    train = write_jsonl(tmp_path / "train.jsonl", enye_rows(256, seed=0))
    val = write_jsonl(tmp_path / "val.jsonl", enye_rows(16, seed=1))
    monkeypatch.chdir(ROOT)
    cli = run_train(
        "fit",
        "--config",
        str(ROOT / "configs" / "demo.yaml"),
        f"--model.model_name_or_path={model_dir}",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
        "--model.extend_vocabulary=true",
        f"--data.data_files={{train: {train}, validation: {val}, test: {val}}}",
        "--data.max_source_length=64",
        "--data.max_target_length=32",
        "--model.generation.max_new_tokens=24",
        "--trainer.max_epochs=8",
        "--model.learning_rate=1e-2",
        "--data.batch_size=16",
        "--data.max_train_samples=null",
        "--model.val_generate_samples=16",
        "--trainer.enable_progress_bar=false",
        *LORA,
        # stop once it writes most first sentences (epoch 5 of 8 here: 3.8 16.0 18.9 15.1 38.6 41.3 42.2 41.0)
        "--early_stopping.patience=8",
        "--early_stopping.stopping_threshold=30",
    )
    module = cli.model
    trainable = sum(p.numel() for p in module.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.model.parameters())
    assert trainable < 0.10 * total, (trainable, total)
    assert f"Trainable parameters: {trainable:,} of {total:,}" in caplog.text  # the run says it
    # Learning: untrained, ROUGE-L is 0-4 (no copied words in order); 25 needs most of the first sentence in order.
    history = [module.val_history[e]["val/rougeL"] for e in sorted(module.val_history)]
    assert history[0] < 10 and max(history) >= 25, history

    # the exports: the merged model (plain transformers) and the adapter (PEFT), both from the best checkpoint
    export = tmp_path / "runs" / "demo" / "version_0" / "export"
    best = load_full_checkpoint(cli.trainer.checkpoint_callback.best_model_path)
    module.model.load_state_dict(model_state_dict(best))
    module.model.eval()
    tokenizer = AutoTokenizer.from_pretrained(export)
    prompts = ["Resume el siguiente articulo:\n\n" + row["text"] for row in enye_rows(4, seed=7)]
    batch = tokenizer(prompts, return_tensors="pt", padding=True)

    def generate(model):
        with torch.no_grad():
            return model.generate(**batch, max_new_tokens=24, num_beams=1, do_sample=False).tolist()

    in_memory = generate(module.model)
    merged = AutoModelForSeq2SeqLM.from_pretrained(export)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    base = AutoModelForSeq2SeqLM.from_pretrained(model_dir)
    base.resize_token_embeddings(len(AutoTokenizer.from_pretrained(export / "adapter")), mean_resizing=False)
    adapter = PeftModel.from_pretrained(base, export / "adapter")
    assert generate(merged) == in_memory == generate(adapter)
    written = decode_texts(tokenizer, in_memory)
    assert sum("ñ" in text for text in written) >= 2, written  # the added character's rows trained
    text = "El niño de Peñíscola ganó en A Coruña."
    assert decode_texts(tokenizer, [tokenizer(text).input_ids]) == [text]  # the export's tokenizer round-trips ñ

    # compare.py takes the merged export and the adapter directory alike: the same scores
    rows = compare.main(["--dataset", "--models", str(export), str(export / "adapter"), "--data-file", str(val), "--max-new-tokens", "24", "--num-beams", "1"])
    scores = ("rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len")
    assert [rows[0][key] for key in scores] == [rows[1][key] for key in scores]
    assert rows[1]["difference"]["rougeL"]["mean"] == 0


def test_lora_run_in_bf16_resumes_tests_and_predicts(tiny_t5, tmp_path):
    from resumen.lightning_modules.checkpoints import load_full_checkpoint

    runs = tmp_path / "runs"
    lora = ["--model.lora.r=4", "--trainer.precision=bf16-mixed", "--trainer.enable_progress_bar=false"]
    first = in_root(run_train, *demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=1", *lora))
    last = runs / "demo" / "version_0" / "checkpoints" / "last.ckpt"
    checkpoint = load_full_checkpoint(last)
    trainable = [p for p in first.model.model.parameters() if p.requires_grad]
    # the optimizer state covers the adapters (and nothing frozen); the weights are all there to resume
    assert len(checkpoint["optimizer_states"][0]["state"]) == len(trainable)
    assert any(".lora_A." in key for key in checkpoint["state_dict"])
    assert checkpoint["hyper_parameters"]["lora"]["r"] == 4
    resumed = in_root(run_train, *demo_args("fit", tiny_t5, runs, "--trainer.max_epochs=2", "--ckpt_path=last", *lora))
    assert resumed.trainer.global_step == 2 * first.trainer.global_step
    assert sorted(resumed.model.val_history) == [0, 1]
    adapter = runs / "demo" / "version_0" / "export" / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 4
    # test and predict load the best LoRA checkpoint (its hyper-parameters bring the LoRA settings back)
    tested = in_root(run_train, *demo_args("test", tiny_t5, runs, "--trainer.precision=bf16-mixed"))
    assert tested.model.lora.r == 4 and "test/rougeL" in tested.trainer.callback_metrics
    predictions = tmp_path / "predictions.jsonl"
    in_root(run_train, *demo_args("predict", tiny_t5, runs, f"--predictions.output_path={predictions}"))
    assert len(predictions.read_text(encoding="utf-8").splitlines()) == 5


def test_lora_settings_are_checked_before_any_model_loads(tiny_t5):
    from resumen.core.errors import ResumenError
    from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer

    with pytest.raises(ResumenError, match="model.lora needs r >= 0"):
        Seq2SeqSummarizer(tiny_t5, lora={"r": 8, "alpha": 16, "dropout": 1.5})


def test_memory_estimates_count_the_published_models_exactly():
    from resumen.app.lora_memory import counts, table

    # the parameter counts Hugging Face publishes for google/flan-t5-small and -base (untied LM head)
    assert counts("google/flan-t5-small", 16, "all-linear") == (76_961_152, 2_555_904)
    assert counts("google/flan-t5-base", 16, "all-linear")[0] == 247_577_856
    rows = table(16, "all-linear").splitlines()
    assert len(rows) == 8 and rows[2].startswith("| google/flan-t5-small | 77M | 1.1 GiB | 2.6M (3.3%) | 0.3 GiB |")


def test_the_model_is_prepared_in_one_order_each_step_once(tiny_t5):
    """prepare_model: embeddings grown -> LoRA -> (fit) compile or the CPU dropout masks; called again (setup, a
    checkpoint load, from_checkpoint all call it) it does nothing; another vocabulary after LoRA is refused."""
    from resumen.core.errors import ResumenError
    from resumen.lightning_modules.lora import LoraSettings
    from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer

    module = Seq2SeqSummarizer(tiny_t5, lora=LoraSettings(r=4, alpha=8))
    module.vocabulary.use(["ñ", "¿"])
    done = module.prepare_model("fit", "cpu", "32-true")
    assert done == ["embeddings grown by 2 rows", f"LoRA r=4 on {', '.join(module.lora.target_modules)}", "CPU dropout masks drawn in bulk"]
    assert module.prepare_model("fit", "cpu", "32-true") == [] and module.preparation == done
    with pytest.raises(ResumenError, match="the vocabulary was extended with"):  # the shapes LoRA wrapped stay
        module.use_added_characters(["ñ", "¿", "¡"])

    compiled = Seq2SeqSummarizer(tiny_t5, compile=True)
    with pytest.raises(ResumenError, match="compile with bf16-mixed on the CPU"):
        compiled.prepare_model("fit", "cpu", "bf16-mixed")
    assert compiled.prepare_model("fit", "cpu", "32-true") == ["compiled"]  # compiled: torch's own dropout masks
    assert Seq2SeqSummarizer(tiny_t5).prepare_model("test", "cpu", "32-true") == []  # only fit trains
