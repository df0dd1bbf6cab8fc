"""Fine-tune any ``AutoModelForSeq2SeqLM`` (default ``google/flan-t5-small``) to summarise, with Spanish ROUGE.

    python scripts/train.py fit --config configs/demo.yaml

Training logs the loss and learning rate; validation logs the loss on every batch and, on the first
``val_generate_samples`` examples, generates greedily and scores ROUGE; test does the same with beams; predict
returns one summary per input.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from dataclasses import asdict

import torch
from lightning.pytorch.utilities import rank_zero_info

from resumen.core.contract import Batch, summarization_data
from resumen.core.errors import ResumenError
from resumen.core.generation import GenerationSettings
from resumen.core.inference import generate_summaries
from resumen.core.loading import check_model_kind, check_precision, check_vocab_fits, load_config, load_seq2seq_model, load_tokenizer
from resumen.core.baselines import TEST_BASELINES, baseline_summaries
from resumen.core.rouge import Interval, paired_differences, rouge_intervals
from resumen.core import summary_metrics
from resumen.core.trained_with import TrainedWith, from_checkpoint, from_model_config
from resumen.core.vocabulary import Vocabulary
from resumen.lightning_modules import compat
from resumen.lightning_modules.cpu_dropout import use_cpu_dropout
from resumen.lightning_modules.lora import LoraSettings, apply_lora, lora_targets, parameter_counts
from resumen.lightning_modules.metrics import ROUGE_KEYS, IndexedMean, LiteratureRouge, SpanishRouge, SummaryScores
from resumen.lightning_modules.model_changes import check_same_shapes, set_dropout
from resumen.lightning_modules.optimizer import adamw_with_linear_decay


class Seq2SeqSummarizer(L.LightningModule):
    def __init__(
        self,
        model_name_or_path: str = "google/flan-t5-small",
        learning_rate: float = 5e-5,
        weight_decay: float = 0.01,
        warmup_steps: int = 0,
        warmup_ratio: float = 0.0,
        adam_epsilon: float = 1e-8,
        fused_adamw: bool | None = None,
        generation: GenerationSettings = GenerationSettings(num_beams=4),
        val_num_beams: int = 1,
        val_generate_samples: int = 64,
        log_text_samples: int = 3,
        trust_remote_code: bool = False,
        extend_vocabulary: bool = False,
        allow_tf32: bool = True,
        dropout_rate: float | None = None,
        compile: bool = False,
        fast_cpu_dropout: bool = True,
        lora: LoraSettings = LoraSettings(),
        test_bertscore_model: str | None = None,
        test_bertscore_layer: int = 9,
    ) -> None:
        """Build the module and load the pretrained model.

        Args:
            model_name_or_path: seq2seq model hub id or local directory (an export of this tool works too).
            learning_rate: peak AdamW learning rate.
            weight_decay: AdamW weight decay (not applied to biases and normalisation weights).
            warmup_steps: linear warm-up steps before the linear decay to 0.
            warmup_ratio: warm-up as a share of all training steps (used when ``warmup_steps`` is 0).
            adam_epsilon: AdamW epsilon.
            fused_adamw: use the fused AdamW kernel; ``null`` picks it when all parameters are on a GPU or all on
                the CPU (on a 2-core Xeon its step is 5x faster than the default loop: 0.087 s vs 0.44 s for 108M
                parameters).
            generation: how test and predict decode, and what the export's ``generation_config.json`` holds
                (``--model.generation.num_beams 4 --model.generation.max_new_tokens 128``, ``length_penalty``,
                ``no_repeat_ngram_size``; every field, its help and bounds: resumen/core/generation.py). They change
                no weight, so ``fit --ckpt_path last`` may change them.
            val_num_beams: beams during validation (1 = greedy, the fast choice while training); the other
                decoding settings are ``generation``'s.
            val_generate_samples: how many validation examples are generated and scored each epoch (all ranks
                together; the loss always covers every example).
            log_text_samples: article / reference / generated triples written to TensorBoard each validation (by
                the SampleSummaries callback, which reads it here).
            trust_remote_code: allow the model repository to run its own code (off unless you trust it).
            extend_vocabulary: add the characters the data needs and the tokenizer lacks (T5 cannot write í ú ñ
                ¿ ¡ ...) as tokens, growing the embeddings; each new row starts from a close character (ñ from n).
                The data module decides the characters; a checkpoint remembers them.
            allow_tf32: on Ampere and newer GPUs, run float32 matrix multiplies as TF32 (much faster for
                ``32-true``; no effect on CPU or under bf16-mixed, whose matmuls are bf16 already). A process-wide
                setting the CLI applies (resumen/core/torch_settings.py); kept here so configs keep their place for it.
            dropout_rate: dropout probability while training; ``null`` keeps the model's own (0.1 for Flan-T5).
                ``0.0`` skips drawing the dropout masks, a sizeable share of a CPU step (docs/performance.md), at
                the price of less regularisation: fine for short fine-tunes, watch val/loss on long ones.
            compile: run the training steps through ``torch.compile`` (validation stays eager). Each new batch
                shape compiles again (tens of seconds to minutes), so pair it with few shapes
                (``--data.pad_to_multiple_of=128``) and long runs; docs/performance.md gives the break-even. On a
                CPU it needs ``32-true`` (under bf16-mixed the compiled T5 returned NaN losses).
            fast_cpu_dropout: when training on a CPU, draw the dropout masks in bulk from NumPy, seeded by torch
                (lightning_modules/cpu_dropout.py), instead of torch's element-by-element CPU generator: the same
                dropout (p within 1e-5), reproducible from the seed, and a cheaper step. No effect on GPUs or with
                ``compile``; ``false`` gives torch's own masks.
            lora: LoRA fine-tuning through PEFT (``--model.lora.r 16 --model.lora.alpha 32``): only low-rank
                adapters (and the rows of added characters) train; ``fit`` exports the merged model and the
                adapter. Off while ``r`` is 0.
            test_bertscore_model: an encoder (hub id or local directory) for BERTScore on ``test``, e.g.
                ``bert-base-multilingual-cased`` (its authors' choice for Spanish); ``null``: off (it loads a second
                model: on request only, never during validation). docs/evaluation.md.
            test_bertscore_layer: the encoder layer whose embeddings BERTScore matches (9 for
                bert-base-multilingual-cased).
        """
        super().__init__()
        self.generation = GenerationSettings(**generation) if isinstance(generation, dict) else generation  # a dict from a checkpoint
        self.val_generation = self.generation.with_beams(val_num_beams)  # greedy by default: the fast choice
        if learning_rate <= 0:
            raise ResumenError(f"learning_rate must be positive (got {learning_rate}).")
        if dropout_rate is not None and not 0.0 <= dropout_rate < 1.0:
            raise ResumenError(f"model.dropout_rate must be in [0, 1) (got {dropout_rate}): 0.0 turns dropout off.")
        self.lora = LoraSettings(**lora) if isinstance(lora, dict) else lora  # a dict when read from a checkpoint
        self.lora.check()
        if test_bertscore_model is not None:  # a wrong encoder or layer is found before any data or weights load
            from resumen.core.bertscore import check_encoder

            check_encoder(test_bertscore_model, test_bertscore_layer)
        self.save_hyperparameters(ignore=["lora", "generation"])
        self.hparams["lora"] = self.lora.as_dict()  # plain values: checkpoints load with weights_only=True
        self.hparams["generation"] = asdict(self.generation)
        config = load_config(model_name_or_path, trust_remote_code=trust_remote_code)  # read once, shared below
        # the tokenizer first: a broken tokenizer.json is reported before any weights load
        tokenizer = load_tokenizer(model_name_or_path, trust_remote_code=trust_remote_code, config=config)
        check_model_kind(model_name_or_path, config, want_encoder_decoder=True)  # a decoder-only model: that first
        if tokenizer.pad_token_id is None:  # the collator would fail after the whole data set was tokenised
            raise ResumenError(
                f"the tokenizer of '{model_name_or_path}' has no padding token, which batches of articles need: use the "
                "tokenizer the model was published with (T5's pads with <pad>), or save one that has one "
                "(tokenizer.pad_token = ...; tokenizer.save_pretrained(DIR)) and pass that directory."
            )
        self.model = load_seq2seq_model(model_name_or_path, trust_remote_code=trust_remote_code, config=config)
        check_vocab_fits(model_name_or_path, tokenizer, self.model)
        # What the loaded model was trained with, when it is an export of this tool (its prompt travels on).
        self.loaded_record = from_model_config(self.model.config, model_name_or_path)
        # The one tokenizer: the CLI hands this object to the data module (connect), so both use the same ids.
        self.vocabulary = Vocabulary(tokenizer)
        self._embedding_characters: list[str] = []  # the characters the embeddings were grown for
        if dropout_rate is not None:
            set_dropout(self.model, dropout_rate)
        self.model.train()  # from_pretrained returns eval mode: dropout would be off during fit
        # every metric of resumen.core.summary_metrics (ROUGE first), per example, counted once under DDP
        self.val_metrics, self.test_metrics = SummaryScores(), SummaryScores()
        self.test_reference_metrics = IndexedMean(num_values=len(summary_metrics.KEYS))  # the references' own
        # ROUGE of the lead baselines on the same test articles: does the model beat copying the opening?
        self.test_baseline_rouge = {name: SpanishRouge() for name in TEST_BASELINES}
        self.val_gen_len, self.test_gen_len = IndexedMean(), IndexedMean()
        self.test_literature_rouge = LiteratureRouge()  # comparable with published MLSUM-es figures, kept apart
        self.val_history: dict[int, dict[str, float]] = {}
        # after test: each metric's bootstrap interval, and the per-example scores a paired comparison needs
        self.test_intervals: dict[str, Interval] = {}
        self.test_reference_intervals: dict[str, Interval] = {}  # the same model-free metrics for the references
        self.test_versus_baselines: dict[str, dict[str, Interval]] = {}  # baseline -> ROUGE key -> paired difference
        self.test_literature_intervals: dict[str, Interval] = {}
        self.test_scores: tuple[Any, Any] | None = None  # (dataset indices, examples x summary_metrics.KEYS), index order
        self._generated_this_epoch = 0
        self._test_texts: list[tuple[int, str, str]] = []  # (index, summary, reference) for BERTScore at the end
        self._lora_applied = False
        self._compiled = False
        self._cpu_dropout = False
        self.preparation: list[str] = []  # what prepare_model did to the model, in order

    @classmethod
    def from_checkpoint(cls, path: str, model_name_or_path: str | None = None, trust_remote_code: bool = False):
        """``(module with the checkpoint's weights, its trained-with record, the checkpoint)`` from a ``.ckpt`` file or a
        sharded directory, loaded safely; the checkpoint's settings never turn ``trust_remote_code`` on."""
        import inspect

        from resumen.lightning_modules.checkpoints import load_full_checkpoint, model_state_dict, saved_module_settings

        checkpoint = load_full_checkpoint(path)
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
        settings = {k: v for k, v in saved_module_settings(checkpoint).items() if k in accepted}
        settings["trust_remote_code"] = trust_remote_code
        if model_name_or_path:
            settings["model_name_or_path"] = model_name_or_path
        if "model_name_or_path" not in settings:
            raise ResumenError(f"the checkpoint {path} does not name its base model: pass the model it was trained from.")
        saved = from_checkpoint(checkpoint, f"checkpoint {path}")  # its template is checked before weights load
        module = cls(**settings)
        module.on_load_checkpoint(checkpoint)  # its vocabulary and LoRA settings, then prepare_model: the shapes it saved
        module.model.load_state_dict(model_state_dict(checkpoint))
        record = saved if saved is not None else module.trained_with({})
        return module, record, checkpoint

    # ------------------------------------------------------------------------------------------------ setup
    def check_precision(self, precision: str | int | None) -> None:
        check_precision(precision, self.model.config, self.hparams.model_name_or_path)

    def setup(self, stage: str) -> None:
        if self._trainer is None:
            return
        self.check_precision(self.trainer.precision)
        root = self.trainer.strategy.root_device
        if self.hparams.extend_vocabulary and self.vocabulary.added_characters is None:
            raise ResumenError(
                "model.extend_vocabulary needs the data module to decide the characters (SummarizationDataModule "
                "with extend_vocabulary: true, connected to this model)."
            )
        self.prepare_model(stage, root.type, str(self.trainer.precision))
        if stage == "fit":
            trainable, total = parameter_counts(self.model)
            rank_zero_info(
                f"Trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%)"
                + (f", LoRA r={self.lora.r} on {', '.join(lora_targets(self.model))}" if self.lora.enabled else ", full fine-tuning")
            )

    def prepare_model(self, stage: str | None = None, device_type: str | None = None, precision: str | None = None) -> list[str]:
        """The one place the module changes its own model, in this order: the embeddings grow rows for the added
        characters (LoRA must see the final shapes), LoRA wraps the model, then for ``fit`` either ``torch.compile``
        or, on a CPU, the bulk dropout masks (after LoRA, so its dropout layers are included; a compiled model keeps
        torch's). Each step runs once, however often this is called (setup, a checkpoint load, ``from_checkpoint``);
        what ran is appended to ``self.preparation`` and returned."""
        done = []
        grown = self.grow_embeddings()
        if grown:
            done.append(f"embeddings grown by {grown} rows")
        if self.apply_lora():
            done.append(f"LoRA r={self.lora.r} on {', '.join(self.lora.target_modules)}")
        if stage == "fit" and self.hparams.compile and not self._compiled:
            if device_type == "cpu" and precision == "bf16-mixed":
                # measured with torch 2.13: the compiled T5 forward under CPU bf16 autocast returns a NaN loss
                raise ResumenError(
                    "model.compile with bf16-mixed on the CPU gives NaN losses (torch.compile's CPU bf16 path, "
                    "measured with T5): add --trainer.precision=32-true, or drop --model.compile."
                )
            rank_zero_info(
                "Compiling the training steps with torch.compile: the first step, and each new batch shape, "
                "waits for the compiler (tens of seconds to minutes)."
            )
            self.model.compile()  # in place: parameter names, checkpoints and exports stay as without it
            self._compiled = True
            done.append("compiled")
        if stage == "fit" and device_type == "cpu" and self.hparams.fast_cpu_dropout and not self._compiled and not self._cpu_dropout:
            use_cpu_dropout(self.model)
            self._cpu_dropout = True
            done.append("CPU dropout masks drawn in bulk")
        self.preparation += done
        return done

    # Only training steps run compiled: validation's generation changes shapes every token and would recompile.
    def on_validation_start(self) -> None:
        if self._compiled:
            torch.compiler.set_stance("force_eager")

    def on_validation_end(self) -> None:
        if self._compiled:
            torch.compiler.set_stance("default")

    def apply_lora(self) -> bool:
        """Wrap the model in LoRA adapters once, after the embeddings have their final rows (prepare_model's second
        step); whether it wrapped it now."""
        if not self.lora.enabled or self._lora_applied:
            return False
        new_ids = self.tokenizer.convert_tokens_to_ids(self.added_characters)
        self.model = apply_lora(self.model, self.lora, new_ids)
        self._lora_applied = True
        return True

    @property
    def tokenizer(self) -> Any:
        return self.vocabulary.tokenizer

    @property
    def added_characters(self) -> list[str]:
        return list(self.vocabulary.added_characters or [])

    @property
    def trained_prompt_template(self) -> str | None:
        """The template an export of this tool was trained with (its trained-with record)."""
        return self.loaded_record.prompt_template if self.loaded_record is not None else None

    def trained_with(self, data_fields: dict[str, Any] | None = None) -> TrainedWith:
        """The record these weights go with: the data's template and lengths (``data_fields``, from the connected
        data module by default), the added characters, the LoRA settings, the base model."""
        if data_fields is None:
            datamodule = summarization_data(self._trainer)
            data_fields = datamodule.record_fields() if datamodule is not None else {}
        if "prompt_template" not in data_fields and self.trained_prompt_template:
            data_fields = {**data_fields, "prompt_template": self.trained_prompt_template}
        return TrainedWith(
            base_model=self.hparams.model_name_or_path,
            added_characters=self.added_characters,
            lora=self.lora.as_dict() if self.lora.enabled else None,
            **data_fields,
        )

    def summarizer(self, device: str = "cpu", precision: str = "32-true", batch_size: int = 8, record: TrainedWith | None = None):
        """This module's model as the inference core sees an export: same record, same generation settings."""
        from resumen.core.inference import Summarizer

        return Summarizer(
            self.model, self.tokenizer, record or self.trained_with(), self.generation, self.hparams.model_name_or_path, device, precision, batch_size
        )

    def use_added_characters(self, characters: list[str]) -> None:
        """Extend the shared vocabulary with these characters and grow the embeddings (idempotent)."""
        self.vocabulary.use(characters)
        self.prepare_model()

    def grow_embeddings(self) -> int:
        """Give the vocabulary's added characters embedding rows, each starting from a close character
        (prepare_model's first step); how many rows it added now."""
        characters = self.added_characters
        if characters == self._embedding_characters:
            return 0
        if self._lora_applied:
            raise ResumenError("the vocabulary changed after the LoRA adapters were added: restore it before setup.")
        from resumen.core.vocabulary import extend_embeddings

        sources = extend_embeddings(self.model, self.tokenizer, characters, known_rows=len(self.vocabulary.base))
        added = len(characters) - len(self._embedding_characters)
        self._embedding_characters = characters
        rank_zero_info("New token embeddings start from: " + ", ".join(f"{new} <- {old}" for new, old in sources.items()))
        return added

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Per-epoch validation metrics travel with the weights: a resumed run and a later export still know them.
        checkpoint["val_history"] = {int(epoch): dict(metrics) for epoch, metrics in self.val_history.items()}
        # the template, lengths and added characters (the embeddings' shape depends on them) travel with the weights
        checkpoint["trained_with"] = self.trained_with().as_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.val_history = {int(epoch): dict(metrics) for epoch, metrics in checkpoint.get("val_history", {}).items()}
        record = from_checkpoint(checkpoint, "the checkpoint")
        self.use_added_characters(record.added_characters if record else [])  # before Lightning loads the weights
        self.adopt_lora(checkpoint)
        check_same_shapes(checkpoint.get("state_dict", {}), self.state_dict(), self.hparams.model_name_or_path)

    def adopt_lora(self, checkpoint: dict[str, Any]) -> None:
        """A LoRA checkpoint brings its LoRA settings (``test --ckpt_path best`` needs no --model.lora flags)."""
        saved = LoraSettings(**((checkpoint.get("hyper_parameters") or {}).get("lora") or {}))
        if saved.enabled and not self._lora_applied:
            self.lora = saved
            self.hparams["lora"] = saved.as_dict()
            self.prepare_model()
        elif self._lora_applied and saved != self.lora:
            trained = f"LoRA r={saved.r} on {saved.target_modules}" if saved.enabled else "full fine-tuning"
            raise ResumenError(
                f"the checkpoint was trained with {trained}, but this run asks for LoRA r={self.lora.r} on "
                f"{self.lora.target_modules}: drop the --model.lora options (the checkpoint brings its own) or match them."
            )

    # ---------------------------------------------------------------------------------------------- helpers
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)

    def generate(self, batch: Batch, settings: GenerationSettings) -> tuple[list[str], torch.Tensor]:
        """Summaries for a batch, and each summary's length in tokens (the inference core's one generate call)."""
        return generate_summaries(
            self.model, self.tokenizer, batch["input_ids"], batch["attention_mask"], settings, synced_gpus=needs_synced_gpus(self._trainer)
        )

    # --------------------------------------------------------------------------------------------- training
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        # Loss health, gradient norm and throughput are callbacks (lightning_modules/training_monitors.py).
        loss = self(batch["input_ids"], batch["attention_mask"], batch["labels"]).loss
        size = batch["input_ids"].shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=size)
        if self._trainer is not None and compat.should_update_logs(self.trainer):  # the bar would read it every step
            self.log("loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True, logger=False, batch_size=size)
        return loss

    def configure_optimizers(self):
        hp = self.hparams
        fused = hp.fused_adamw
        if fused is not False and self.trainer.gradient_clip_val and "mixed" in str(self.trainer.precision):
            # Lightning 2.6 refuses to clip for a fused optimizer under any mixed precision, bf16 included (issue
            # #21435, fixed upstream after 2.6.6): clip with torch's non-fused AdamW instead
            rank_zero_info(
                f"AdamW without the fused kernel: --trainer.gradient_clip_val with {self.trainer.precision} "
                "needs it in Lightning 2.6 (a little slower per step)."
            )
            fused = False
        return adamw_with_linear_decay(
            self.model,
            hp.learning_rate,
            hp.weight_decay,
            hp.adam_epsilon,
            fused,
            self.trainer.estimated_stepping_batches,
            hp.warmup_steps,
            hp.warmup_ratio,
        )

    # ------------------------------------------------------------------------------------------- evaluation
    def on_validation_epoch_start(self) -> None:
        self._generated_this_epoch = 0

    def evaluation_step(self, batch: Batch, stage: str) -> dict[str, list[str]] | None:
        """Validation and test: the loss on every example; generation and ROUGE on the examples to be scored, whose
        summaries are returned (the SampleSummaries callback keeps the first few)."""
        size = batch["input_ids"].shape[0]
        loss = self(batch["input_ids"], batch["attention_mask"], batch["labels"]).loss
        self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=stage == "val", sync_dist=True, batch_size=size)
        if stage == "val":
            per_rank = -(-self.hparams.val_generate_samples // max(self.trainer.world_size, 1))
            if self._generated_this_epoch >= per_rank:
                return None
            self._generated_this_epoch += size
        summaries, lengths = self.generate(batch, self.val_generation if stage == "val" else self.generation)
        scores, gen_len = (self.val_metrics, self.val_gen_len) if stage == "val" else (self.test_metrics, self.test_gen_len)
        scores.update(summaries, batch["reference"], batch["index"], batch.get("article"))
        if stage == "test":
            self.test_literature_rouge.update(summaries, batch["reference"], batch["index"])
            if self.hparams.get("test_bertscore_model"):
                self._test_texts += list(zip(batch["index"].tolist(), summaries, batch["reference"]))
            if batch.get("article"):
                references = summary_metrics.reference_rows(batch["reference"], batch["article"])
                self.test_reference_metrics.update(torch.from_numpy(references), batch["index"])
                for name, rouge in self.test_baseline_rouge.items():
                    rouge.update(baseline_summaries(name, batch["article"], batch["reference"]), batch["reference"], batch["index"])
        gen_len.update(lengths.float(), batch["index"])
        return {"summaries": summaries}

    def validation_step(self, batch: Batch, batch_idx: int) -> dict[str, list[str]] | None:
        return self.evaluation_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        metrics = self._log_generation_metrics("val", self.val_metrics, self.val_gen_len)
        if metrics and not self.trainer.sanity_checking:
            metrics["val/loss"] = float(self.trainer.callback_metrics.get("val/loss", float("nan")))
            self.val_history[self.current_epoch] = metrics

    def test_step(self, batch: Batch, batch_idx: int) -> dict[str, list[str]] | None:
        return self.evaluation_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_generation_metrics("test", self.test_metrics, self.test_gen_len)

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> list[dict[str, Any]]:
        summaries, _ = self.generate(batch, self.generation)
        rows = []
        for i, summary in enumerate(summaries):
            row = {"id": batch["id"][i], "index": int(batch["index"][i]), "summary": summary}
            if batch.get("reference") and batch["reference"][i] is not None:
                row["reference"] = batch["reference"][i]
            rows.append(row)
        return rows

    def _log_generation_metrics(self, stage: str, scored: SummaryScores, gen_len: IndexedMean) -> dict[str, float]:
        if scored.update_count == 0:
            return {}
        scores = scored.compute()
        metrics = {f"{stage}/{key}": float(value) for key, value in scores.items()}
        metrics[f"{stage}/gen_len"] = float(gen_len.compute())
        if stage == "test":  # a test score comes with its uncertainty (seeded 95% bootstrap over the examples)
            self.test_scores = scored.per_example()
            self.test_intervals = summary_metrics.intervals(self.test_scores[1])
            bertscore = self._test_bertscore()
            if bertscore is not None:  # model-based, on request: one more metric with its interval
                self.test_intervals["bertscore"] = bertscore
                metrics["test/bertscore"] = bertscore.mean
            for key, interval in self.test_intervals.items():
                metrics[f"test/{key}_low"], metrics[f"test/{key}_high"] = interval.low, interval.high
            self.test_versus_baselines = {}
            for name, rouge in self.test_baseline_rouge.items():
                if rouge.update_count:  # the model's ROUGE minus the baseline's, paired on the same examples
                    indices, rows = rouge.per_example()
                    if list(indices) == list(self.test_scores[0]):
                        self.test_versus_baselines[name] = paired_differences(rows, self.test_scores[1][:, : len(ROUGE_KEYS)])
                    rouge.reset()
            if self.test_reference_metrics.update_count:
                self.test_reference_intervals = summary_metrics.intervals(self.test_reference_metrics.per_example()[1])
                self.test_reference_metrics.reset()
            self.test_literature_intervals = rouge_intervals(self.test_literature_rouge.per_example()[1])
            for key, interval in self.test_literature_intervals.items():
                metrics[f"test/literature_{key}"] = interval.mean
            self.test_literature_rouge.reset()
        shown = {f"{stage}/{key}" for key in ROUGE_KEYS}  # the progress bar keeps to ROUGE; the logger gets every metric
        self.log_dict({k: v for k, v in metrics.items() if k in shown}, prog_bar=stage == "val", sync_dist=False)
        self.log_dict({k: v for k, v in metrics.items() if k not in shown}, sync_dist=False)
        scored.reset()
        gen_len.reset()
        return metrics

    def _test_bertscore(self) -> Interval | None:
        """BERTScore of the test summaries (every rank's, each example once), with its interval; None when off."""
        if not self.hparams.get("test_bertscore_model"):
            return None
        from resumen.core.bertscore import bertscore_rows
        from resumen.core.rouge import bootstrap_intervals

        texts, self._test_texts = self._test_texts, []
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, texts)
            texts = [item for part in gathered for item in part]
        unique = sorted({index: (index, summary, reference) for index, summary, reference in texts}.values())  # pads once
        scores = bertscore_rows(
            [s for _, s, _ in unique], [r for _, _, r in unique], self.hparams.test_bertscore_model, self.hparams.test_bertscore_layer, str(self.device)
        )
        return bootstrap_intervals(scores.reshape(-1, 1))[0]


def needs_synced_gpus(trainer: Any) -> bool:
    """Under FSDP or ZeRO-3 every rank must keep stepping until all ranks finish generating, or they hang."""
    if trainer is None or trainer.world_size < 2:
        return False
    strategy = trainer.strategy
    name = type(strategy).__name__
    if name == "FSDPStrategy":
        return True
    if name == "DeepSpeedStrategy":
        return int(strategy.config.get("zero_optimization", {}).get("stage", 0)) == 3
    return False
