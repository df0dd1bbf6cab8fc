"""The MLSUM-es instruction dataset: load -> clean -> select -> prompt -> tokenise (cached) -> pad/collate.

    python scripts/train.py fit --config configs/mlsum_flan_t5_small.yaml

Each article becomes ``"Resume el siguiente articulo:\\n\\n{text}"`` and its summary the target. Tokenisation
runs through ``datasets.map`` (batched, cached on disk: a second run with the same settings does not tokenise
again; a change of template, lengths or tokenizer does). Padding happens per batch in the collator.
"""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader

from resumen.core.encoding import CHARS_PER_TOKEN_CAP, check_template_fits, encode_articles, tokenize
from resumen.core.errors import ResumenError
from resumen.core.loading import load_tokenizer
from resumen.core.prompts import SUMMARY_TEMPLATE, validate_template
from resumen.core.vocabulary import Vocabulary
from resumen.datamodules.collate import Seq2SeqCollator
from resumen.datamodules.coverage import CoverageReport, coverage_report
from resumen.datamodules.progress import progress_bars_for
from resumen.datamodules.sampling import ResumableDataLoader, ResumableSampler
from resumen.datamodules.sources import load_predict_file, load_raw_dataset, normalise_data_files

PaddingMode = Literal["batch", "longest_in_dataset", "max_length"]
# Beyond this a sequence's attention alone takes gigabytes per example: a typo, not a setting.
MAX_SOURCE_LENGTH = 16384


class SummarizationDataModule(L.LightningDataModule):
    def __init__(
        self,
        tokenizer_name: str = "google/flan-t5-small",
        dataset_name: str | None = "mteb/mlsum",
        dataset_config: str | None = "es",
        dataset_revision: str | None = None,
        data_files: dict[str, str | list[str]] | None = None,
        text_column: str = "text",
        summary_column: str = "summary",
        id_column: str | None = None,
        max_train_samples: int | None = 1500,
        max_val_samples: int | None = 500,
        max_test_samples: int | None = 200,
        prompt_template: str | None = None,
        max_source_length: int = 512,
        max_target_length: int = 128,
        padding: PaddingMode = "batch",
        pad_to_multiple_of: int | None = None,
        group_by_length: bool = False,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        preprocessing_num_workers: int | None = None,
        predict_file: str | None = None,
        seed: int = 42,
        cache_dir: str | None = None,
        trust_remote_code: bool = False,
        coverage_samples: int = 1000,
        extend_vocabulary: bool = False,
        sort_eval_by_length: bool = True,
    ) -> None:
        """Build the instruction dataset.

        Args:
            tokenizer_name: tokenizer hub id or local directory (linked to the model's name by the CLI).
            dataset_name: hub dataset with parquet files (MLSUM: ``mteb/mlsum``); ignored when ``data_files`` is set.
            dataset_config: the hub dataset's configuration (MLSUM's language, ``es``).
            dataset_revision: a branch, tag or commit of the hub dataset (e.g. ``refs/convert/parquet``).
            data_files: local files per split, ``{train: a.jsonl, validation: b.jsonl, test: c.jsonl}``
                (json, jsonl, csv or parquet; a split may list several files).
            text_column: column holding the article.
            summary_column: column holding the reference summary.
            id_column: column with a stable id per row; by default the row's position in its split.
            max_train_samples: how many training rows to use (a seeded random subset); ``null`` for all.
            max_val_samples: how many validation rows to use; ``null`` for all.
            max_test_samples: how many test rows to use; ``null`` for all.
            prompt_template: instruction with one ``{text}`` placeholder for the article; ``null`` uses the template
                the model was trained with (an export of this tool carries it), else "Resume el siguiente
                articulo:\\n\\n{text}".
            max_source_length: prompt tokens kept (longer prompts are truncated).
            max_target_length: summary tokens kept as labels.
            padding: ``batch`` pads each batch to its longest example; ``longest_in_dataset`` pads every example
                to the longest in its split (the course recipe); ``max_length`` pads to the maximum lengths.
            pad_to_multiple_of: round padded lengths up to a multiple of this (8 helps tensor cores).
            group_by_length: batch training examples of similar source + summary length together (less padding).
            batch_size: training batch size per device.
            eval_batch_size: validation/test/predict batch size per device; defaults to twice ``batch_size``.
            num_workers: DataLoader worker processes.
            preprocessing_num_workers: processes for tokenisation with ``datasets.map``.
            predict_file: articles to summarise in ``predict`` (json/jsonl/csv/parquet with ``text_column``, or
                .txt with one article per line); defaults to the test split.
            seed: seed of the subset selection and of length grouping.
            cache_dir: where ``datasets`` caches downloads and tokenised data (default: its own cache).
            trust_remote_code: allow the tokenizer's repository to run its own code (off unless you trust it).
            coverage_samples: examples of the first split checked at setup for characters the tokenizer cannot
                represent (a table in the log and TensorBoard, a warning when summaries lose characters); 0 = off.
            extend_vocabulary: add the characters the data needs and the tokenizer lacks (T5: í ú ñ ¿ ¡ ...) as
                tokens (linked to ``model.extend_vocabulary`` by the CLI, which grows the model to match).
            sort_eval_by_length: batch test and predict examples longest first, so each batch holds similar
                lengths (less padding in generation); metrics and prediction files keep input order.
        """
        super().__init__()
        self.save_hyperparameters()
        if prompt_template is not None:
            validate_template(prompt_template, "data.prompt_template")
        check_data_settings(self.hparams)
        if not dataset_name and not data_files:
            raise ResumenError("no data source: set data.dataset_name (e.g. mteb/mlsum) or data.data_files.")
        self.datasets: dict[str, Any] = {}
        self.previews: dict[str, list[str]] = {}  # the first articles of each split, in input order
        self.fixed_lengths: dict[str, tuple[int, int]] = {}
        self.coverage: CoverageReport | None = None
        # split -> the share of its articles (and reference summaries) cut at max_source_length (max_target_length)
        self.truncation: dict[str, dict[str, float]] = {}
        self._vocabulary: Vocabulary | None = None  # the model's, through connect(); else loaded on first use
        self._trained_template: str | None = None

    def connect(self, vocabulary: Vocabulary, trained_template: str | None = None) -> None:
        """Use the model's tokenizer (one object, one set of ids) and the template the model was trained with."""
        if self.datasets and vocabulary is not self._vocabulary:
            raise ResumenError("connect the data module to the model before its data is tokenised (before setup).")
        if trained_template is not None:
            validate_template(trained_template, "the model's prompt_template (the template it was trained with)")
        self._vocabulary, self._trained_template = vocabulary, trained_template

    @property
    def vocabulary(self) -> Vocabulary:
        if self._vocabulary is None:  # used on its own (tests, benchmarks): load the tokenizer by name
            hp = self.hparams
            self._vocabulary = Vocabulary(load_tokenizer(hp.tokenizer_name, trust_remote_code=hp.trust_remote_code))
        return self._vocabulary

    @property
    def tokenizer(self) -> Any:
        return self.vocabulary.tokenizer

    @property
    def base_tokenizer(self) -> Any:
        return self.vocabulary.base

    @property
    def added_characters(self) -> list[str] | None:
        return self.vocabulary.added_characters

    @property
    def prompt_template(self) -> str:
        """The instruction in use: this setting, else the one the model was trained with, else the recipe's."""
        return self.hparams.prompt_template or self._trained_template or SUMMARY_TEMPLATE

    def record_fields(self) -> dict[str, Any]:
        """This data's part of a model's trained-with record: the template, the lengths and the data set."""
        hp = self.hparams
        if hp.data_files:
            dataset = {"files": {split: [str(p) for p in paths] for split, paths in normalise_data_files(dict(hp.data_files)).items()}}
        else:
            dataset = {"name": hp.dataset_name, "config": hp.dataset_config, "revision": hp.dataset_revision}
        return {
            "prompt_template": self.prompt_template,
            "max_source_length": hp.max_source_length,
            "max_target_length": hp.max_target_length,
            "dataset": dataset,
        }

    # ----------------------------------------------------------------------------------------------- loading
    def _raw(self):
        hp = self.hparams
        return load_raw_dataset(hp.dataset_name, hp.dataset_config, hp.dataset_revision, hp.data_files, hp.cache_dir)

    def prepare_data(self) -> None:
        """Download (rank 0 only); ``setup`` then reads from the local cache."""
        trainer = getattr(self, "trainer", None)
        predicting_a_file = trainer is not None and trainer.predicting and self.hparams.predict_file
        if not predicting_a_file:  # a predict file needs no training data (nor a hub download of it)
            self._raw()

    def setup(self, stage: str | None = None) -> None:
        wanted = {
            "fit": [("train", self.hparams.max_train_samples), ("validation", self.hparams.max_val_samples)],
            "validate": [("validation", self.hparams.max_val_samples)],
            "test": [("test", self.hparams.max_test_samples)],
            "predict": [("predict", self.hparams.max_test_samples)],
            None: [
                ("train", self.hparams.max_train_samples),
                ("validation", self.hparams.max_val_samples),
                ("test", self.hparams.max_test_samples),
            ],
        }[stage]
        raw, selected = None, {}
        for split, limit in wanted:
            if split in self.datasets:
                continue
            if split == "predict" and self.hparams.predict_file:
                source = load_predict_file(self.hparams.predict_file, self.hparams.cache_dir)
                selected[split] = self.select_rows(source, split, limit=None, need_summary=False)
                continue
            raw = raw if raw is not None else self._raw()
            source_split = "test" if split == "predict" else split
            if source_split not in raw:
                raise ResumenError(
                    f"the data has no '{source_split}' split (it has {sorted(raw)}): add it to data.data_files, e.g. --data.data_files.{source_split}=PATH."
                )
            selected[split] = self.select_rows(raw[source_split], split, limit, need_summary=split != "predict")
        for split, (dataset, text_column, _) in selected.items():
            ordered = dataset.sort("index") if len(dataset) > 1 else dataset
            self.previews[split] = list(ordered.select(range(min(3, len(ordered))))[text_column])
        if selected:
            self.prepare_vocabulary(selected)  # before tokenising: an extended tokenizer changes the ids
            check_template_fits(self.tokenizer, self.prompt_template, self.hparams.max_source_length)
        for split, (dataset, text_column, summary_column) in selected.items():
            self.datasets[split] = self.tokenize_split(dataset, split, text_column, summary_column)

    def articles(self, split: str = "test") -> tuple[list[str], list[str], list[str]]:
        """``(ids, articles, reference summaries)`` of a split, selected as ``setup`` selects it (same columns,
        same empty-row filter, same seeded subset), untokenised: what the inference core scores (compare.py,
        tune_generation.py), so its examples are the ones ``test`` scores."""
        limits = {"train": self.hparams.max_train_samples, "validation": self.hparams.max_val_samples, "test": self.hparams.max_test_samples}
        raw = self._raw()
        if split not in raw:
            raise ResumenError(f"the data has no '{split}' split (it has {sorted(raw)}): add it to data.data_files.")
        rows, text_column, summary_column = self.select_rows(raw[split], split, limits.get(split), need_summary=True)
        rows = rows.sort("index")  # dataset order, the order test's per-example scores are kept in
        return list(rows["id"]), list(rows[text_column]), list(rows[summary_column])

    # ------------------------------------------------------------------------------------------- vocabulary
    def use_added_characters(self, characters: list[str]) -> None:
        """Extend the tokenizer with exactly these characters (a checkpoint's), instead of what the data needs."""
        if self.datasets and sorted(set(characters)) != self.added_characters:
            raise ResumenError("the vocabulary must be decided before the data is tokenised (call before setup).")
        self.vocabulary.use(characters)

    def prepare_vocabulary(self, selected: dict[str, tuple]) -> None:
        """Report the tokenizer's coverage of the data and, when asked, extend it with the characters it lacks."""
        hp = self.hparams
        first, (dataset, text_column, summary_column) = next(iter(selected.items()))
        if hp.coverage_samples > 0 and self.coverage is None:
            rows = dataset.select(range(min(hp.coverage_samples, len(dataset))))
            summaries = [s for s in rows[summary_column] if isinstance(s, str)] if summary_column else None
            self.coverage = coverage_report(self.base_tokenizer, list(rows[text_column]), summaries)
            self._publish_coverage(first)
        if self.added_characters is None:
            added = self.vocabulary.decide(_texts(selected.values()), extend=hp.extend_vocabulary)
            if hp.extend_vocabulary:
                rank_zero_info(f"extend_vocabulary: added {len(added)} character token(s): {' '.join(added) or '(none needed)'}")

    def _publish_coverage(self, split: str) -> None:
        report = self.coverage
        table = report.table(f"Tokenizer coverage of the {split} data ({self.hparams.tokenizer_name})")
        trainer = getattr(self, "trainer", None)
        fitting = trainer is None or trainer.training or trainer.state.fn == "fit"
        # the full table once per run, at fit, when it has something to show; one line otherwise
        rank_zero_info(table if fitting and not report.perfect else report.summary_line(split))
        if trainer is not None and trainer.is_global_zero:
            for logger in trainer.loggers:
                if hasattr(getattr(logger, "experiment", None), "add_text"):
                    logger.experiment.add_text("data/tokenizer_coverage", table, global_step=0)
        in_summaries = [c for c, counts in report.unknown_characters.items() if counts["summaries"]]
        if in_summaries and not self.hparams.extend_vocabulary:
            rank_zero_warn(
                f"the tokenizer cannot represent {' '.join(in_summaries)}: {report.summaries_with_unknown:.0%} of the "
                f"{split} summaries lose characters (only {report.summary_round_trip:.0%} survive encode -> decode), "
                "so the model can never write them. Turn on --model.extend_vocabulary=true."
            )
        elif report.summary_round_trip < 1 and not in_summaries:
            rank_zero_warn(
                f"only {report.summary_round_trip:.0%} of the {split} summaries survive encode -> decode exactly: the "
                "tokenizer normalises some characters (e.g. NFKC turns º into o). ROUGE compares against the raw text."
            )

    # ------------------------------------------------------------------------------------------- processing
    def select_rows(self, dataset, split: str, limit: int | None, need_summary: bool = True):
        """Check columns, drop empty rows, take a deterministic subset: ``(rows, text_column, summary_column)``."""
        hp = self.hparams
        text_column = "text" if dataset.column_names == ["text"] else hp.text_column  # .txt files
        has_summary = hp.summary_column in dataset.column_names
        required = [text_column] + ([hp.summary_column] if need_summary else [])
        if hp.id_column:
            required.append(hp.id_column)
        missing = [column for column in required if column not in dataset.column_names]
        if missing:
            raise ResumenError(
                f"the {split} data has no column(s) {missing}; its columns are {dataset.column_names}: "
                "set data.text_column / data.summary_column (or data.id_column) to the right names."
            )
        id_column = hp.id_column

        def add_ids(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
            ids = [str(v) for v in batch[id_column]] if id_column else [str(i) for i in indices]
            return {"index": indices, "id": ids}

        with progress_bars_for(rows=len(dataset)):
            dataset = dataset.map(add_ids, with_indices=True, batched=True, desc=f"Indexing {split}")
        # predict needs only the article: a missing reference does not drop the row
        checked = [text_column] + ([hp.summary_column] if has_summary and need_summary else [])

        def usable(batch: dict[str, list]) -> list[bool]:
            return [all(isinstance(value, str) and value.strip() for value in values) for values in zip(*(batch[column] for column in checked))]

        before = len(dataset)
        with progress_bars_for(rows=len(dataset)):
            dataset = dataset.filter(usable, batched=True, desc=f"Dropping empty {split} rows")
        dropped = before - len(dataset)
        if dropped:
            rank_zero_warn(f"{split}: dropped {dropped} of {before} rows with an empty, null or non-text {checked}.")
        if len(dataset) == 0:
            raise ResumenError(f"the {split} split is empty after dropping rows with empty {checked}: check the column names and data.")
        if limit is not None:
            if limit > len(dataset):
                rank_zero_info(f"{split}: asked for {limit} rows but only {len(dataset)} exist; using all of them.")
            elif limit < len(dataset):
                dataset = dataset.shuffle(seed=hp.seed).select(range(limit)).flatten_indices()
        return dataset, text_column, hp.summary_column if has_summary else None

    def tokenize_split(self, dataset, split: str, text_column: str, summary_column: str | None):
        dataset = self.tokenize(dataset, text_column, summary_column, split)
        self.truncation[split] = truncation_shares(dataset)
        rank_zero_info(f"{split}: {len(dataset)} examples{self.truncation_words(split)}")
        if self.hparams.padding != "batch":
            self.fixed_lengths[split] = self._fixed_lengths(dataset)
        return dataset

    def tokenize(self, dataset, text_column: str, summary_column: str | None, split: str = "data"):
        """Batched, cached tokenisation; keeps ``id``, ``index``, ``length`` and the raw ``reference``."""
        hp = self.hparams
        tokenizer, template = self.tokenizer, self.prompt_template
        max_source, max_target = hp.max_source_length, hp.max_target_length
        char_cap = max_source * CHARS_PER_TOKEN_CAP

        def encode(batch: dict[str, list]) -> dict[str, list]:
            features = encode_articles(tokenizer, template, batch[text_column], max_source)
            if summary_column and split != "predict":
                texts = batch[summary_column]
                targets = tokenize(tokenizer, text_target=[text[:char_cap] for text in texts], max_length=max_target, truncation=True)
                features["labels"] = targets["input_ids"]
                features["target_length"] = [len(ids) for ids in features["labels"]]
                cut = [bool(e.overflowing) for e in targets.encodings] if targets.encodings else [False] * len(texts)
                features["target_truncated"] = [overflow or len(text) > char_cap for overflow, text in zip(cut, texts)]
            if summary_column:  # predict keeps a reference when the row has one (null otherwise)
                features["reference"] = [text if isinstance(text, str) and text.strip() else None for text in batch[summary_column]]
            if split in ("validation", "test"):  # what the article-reading metrics (resumen.core.summary_metrics) read
                features["article"] = list(batch[text_column])
            return features

        keep = {"id", "index"}
        with progress_bars_for(rows=len(dataset)):
            return self._map_tokens(dataset, encode, keep, split)

    def truncation_words(self, split: str) -> str:
        """``; 12.5% of articles cut at max_source_length=512 (0.0% of summaries at max_target_length=128)``."""
        shares, hp = self.truncation.get(split) or {}, self.hparams
        if "articles" not in shares:
            return ""
        words = f"; {shares['articles']:.1%} of articles cut at max_source_length={hp.max_source_length}"
        if "summaries" in shares:
            words += f" ({shares['summaries']:.1%} of summaries at max_target_length={hp.max_target_length})"
        return words

    def _map_tokens(self, dataset, encode, keep: set[str], split: str):
        hp = self.hparams
        return dataset.map(
            encode,
            batched=True,
            num_proc=hp.preprocessing_num_workers,
            remove_columns=[c for c in dataset.column_names if c not in keep],
            desc=f"Tokenising {split}",
        )

    def _fixed_lengths(self, dataset) -> tuple[int, int]:
        if self.hparams.padding == "max_length":
            return self.hparams.max_source_length, self.hparams.max_target_length
        source = max(dataset["length"])
        target = max(dataset["target_length"], default=1) if "target_length" in dataset.column_names else 1
        return source, target

    # ---------------------------------------------------------------------------------------------- loaders
    def collator(self, split: str) -> Seq2SeqCollator:
        source, target = self.fixed_lengths.get(split, (None, None))
        return Seq2SeqCollator(self.tokenizer, source, target, self.hparams.pad_to_multiple_of)

    def _loader_kwargs(self, split: str, batch_size: int) -> dict[str, Any]:
        import torch

        return {
            "batch_size": batch_size,
            "collate_fn": self.collator(split),
            "num_workers": self.hparams.num_workers,
            "pin_memory": torch.cuda.is_available(),
            "persistent_workers": self.hparams.num_workers > 0,
            # Its own generator: creating an iterator would otherwise draw from the global RNG, so a resumed run's
            # dropout masks would drift from the uninterrupted run's.
            "generator": torch.Generator().manual_seed(self.hparams.seed),
        }

    def _set_up(self, split: str) -> Any:
        """A split ``setup`` tokenised. Lightning runs ``setup(stage)`` before it asks for a stage's loaders; code
        that uses the data module without a trainer (tests, the benchmark) calls ``setup`` itself."""
        if split not in self.datasets:
            stage = {"train": "fit", "validation": "fit"}.get(split, split)
            raise ResumenError(f"the {split} split is not set up: call setup({stage!r}) before asking for its loader.")
        return self.datasets[split]

    def _loader(self, split: str, batch_size: int, sampler=None) -> DataLoader:
        return DataLoader(self._set_up(split), sampler=sampler, **self._loader_kwargs(split, batch_size))

    @property
    def eval_batch_size(self) -> int:
        return self.hparams.eval_batch_size or 2 * self.hparams.batch_size

    def train_dataloader(self) -> DataLoader:
        hp, train = self.hparams, self._set_up("train")
        trainer = getattr(self, "trainer", None)
        lengths = None
        if hp.group_by_length:
            # Group by source + target length: news articles mostly hit max_source_length, so grouping by the
            # source alone (the library's LengthGroupedSampler) leaves the summaries' padding untouched.
            lengths = [source + target for source, target in zip(train["length"], train["target_length"])]
        sampler = ResumableSampler(
            train,
            batch_size=hp.batch_size,
            num_replicas=trainer.world_size if trainer is not None else 1,
            rank=trainer.global_rank if trainer is not None else 0,
            seed=hp.seed,
            lengths=lengths,
            batches_done=self._train_batches_done,
        )
        return ResumableDataLoader(train, sampler=sampler, **self._loader_kwargs("train", hp.batch_size))

    def _train_batches_done(self) -> int:
        """Training batches already trained in the current epoch: 0 when an epoch starts, except in the epoch a
        resumed run restarts in (the trainer's progress comes back from the checkpoint)."""
        trainer = getattr(self, "trainer", None)
        return trainer.fit_loop.epoch_loop.batch_progress.current.ready if trainer is not None else 0

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", self.eval_batch_size)

    def _longest_first(self, split: str) -> list[int] | None:
        if not self.hparams.sort_eval_by_length:
            return None
        lengths = self._set_up(split)["length"]
        return sorted(range(len(lengths)), key=lambda i: -lengths[i])  # a plain index list is a valid sampler

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, sampler=self._longest_first("test"))

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", self.eval_batch_size, sampler=self._longest_first("predict"))

    def first_articles(self, split: str, count: int = 3) -> list[str]:
        """The first ``count`` articles of a split that was set up, in input order (for showing sample summaries)."""
        return self.previews.get(split, [])[:count]

    def predict_rows(self) -> int:
        """How many inputs ``predict`` has (after setup)."""
        return len(self.datasets["predict"])

    def skip_predict_rows(self, done: set[int]) -> None:
        """Leave out the inputs (by ``index``) an interrupted ``predict`` already wrote: a rerun continues."""
        if done and "predict" in self.datasets:
            with progress_bars_for(rows=len(self.datasets["predict"])):
                self.datasets["predict"] = self.datasets["predict"].filter(
                    lambda batch: [index not in done for index in batch["index"]], batched=True, desc="Skipping done inputs"
                )


def truncation_shares(dataset) -> dict[str, float]:
    """The share of a tokenised split's articles, and of its reference summaries, that were cut."""
    shares = {}
    for column, name in (("truncated", "articles"), ("target_truncated", "summaries")):
        if column in dataset.column_names and len(dataset):
            values = dataset[column]
            shares[name] = round(sum(values) / len(values), 4)
    return shares


def _texts(selected: Any):
    """Every article and summary of the selected splits, streamed in batches (the full MLSUM is ~1 GB of text)."""
    for dataset, text_column, summary_column in selected:
        columns = [column for column in (text_column, summary_column) if column]
        for batch in dataset.select_columns(columns).iter(batch_size=1000):
            for column in columns:
                yield from (text for text in batch[column] if isinstance(text, str))


def check_data_settings(hp: Any) -> None:
    """Refuse sizes that would fail late (an empty split, a zero batch) before anything is loaded."""
    for name in ("max_source_length", "max_target_length", "batch_size", "eval_batch_size", "pad_to_multiple_of"):
        value = hp.get(name)
        if value is not None and value < 1:
            raise ResumenError(f"data.{name} must be at least 1 (got {value}).")
    for name in ("max_train_samples", "max_val_samples", "max_test_samples"):
        value = hp.get(name)
        if value is not None and value < 1:
            raise ResumenError(f"data.{name} must be at least 1, or null for every row (got {value}).")
    if hp.max_source_length > MAX_SOURCE_LENGTH:
        raise ResumenError(
            f"data.max_source_length={hp.max_source_length} is far beyond any summarisation model's input "
            f"(T5 was trained on 512 tokens; attention memory grows with its square): use at most {MAX_SOURCE_LENGTH}."
        )
