"""The inference core: summaries of articles from one model, with the settings it was trained and exported with.

    from resumen.core.inference import Summarizer
    summarizer = Summarizer.load("runs/demo/version_0/export")      # an export, a LoRA adapter dir or a hub id
    summarizer.summarize(["El Ayuntamiento de Valencia ..."])[0].summary

Every door goes through here: ``train.py``'s validation, test and predict steps call :func:`generate_summaries` on
the batches the DataModule encoded; ``summarize.py``, the server and ``compare.py`` call :meth:`Summarizer.summarize`,
which encodes with the DataModule's own function (:func:`resumen.core.encoding.encode_articles`: the export's template,
cut to the ``max_source_length`` it was trained with) and decodes with the export's ``generation_config``. The same
weights, settings and precision therefore give the same summaries from every door.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from resumen.core.encoding import encode_articles
from resumen.core.errors import ResumenError
from resumen.core.generation import GenerationSettings
from resumen.core.trained_with import TrainedWith, from_model_config
from resumen.core.vocabulary import decode_texts

DEFAULT_MAX_SOURCE_LENGTH = 512  # the recipe's, for models whose record does not say (a base model from the hub)


def generate_summaries(model: Any, tokenizer: Any, input_ids: Any, attention_mask: Any, settings: GenerationSettings, **extra: Any) -> tuple[list[str], Any]:
    """Summaries of one encoded batch, and each summary's length in tokens (the one ``generate`` call)."""

    output = model.generate(input_ids=input_ids, attention_mask=attention_mask, **settings.generate_kwargs(), **extra)
    return decode_texts(tokenizer, output), generated_lengths(output, model.generation_config.eos_token_id)


def generated_lengths(output: Any, eos_token_id: Any) -> Any:
    """Each summary's length in tokens: what follows the decoder's start token, up to and including the first end
    token (all of it when none was written). Counting the tokens that are not padding was wrong twice: beam search
    fills a finished row with end tokens up to the batch's longest (every row then reported the longest), and a
    model may write the padding token as text."""
    import torch

    generated = output[:, 1:]  # an encoder-decoder's output starts with the decoder start token
    ends = torch.as_tensor([eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or []), device=output.device)
    is_end = torch.isin(generated, ends)
    first_end = is_end.int().argmax(dim=1)
    return torch.where(is_end.any(dim=1), first_end + 1, torch.full_like(first_end, generated.shape[1]))


def stripped_pieces(pieces: Any):
    """Streamed pieces whose concatenation is the stripped text every other door returns: no leading whitespace,
    and whitespace held back until more text follows it (a summary never ends in a space)."""
    held, started = "", False
    for piece in pieces:
        if not started:
            piece = piece.lstrip()
        if not piece.strip():
            held += piece if started else ""
            continue
        started = True
        body = piece.rstrip()
        yield held + body
        held = piece[len(body) :]


@dataclass(frozen=True)
class Summary:
    summary: str
    input_tokens: int
    output_tokens: int
    truncated: bool


def resolve_device(device: str) -> str:
    """``auto``: CUDA, then Apple's MPS, then the CPU (as Lightning's ``accelerator=auto``)."""
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_precision(precision: str | None, device: str) -> tuple[str, str]:
    """``(precision, why)``: ``auto`` (or None) chooses as training does (resumen.core.precision); T5 never runs in fp16.

    The doors default to ``32-true``: in fp32 a summary does not depend on the articles batched with it; under
    bf16 autocast it can (measured on the demo model: 3-10 of 30 summaries changed with their batch on a CPU).
    """
    from resumen.core.precision import choose_precision

    if precision in (None, "auto"):
        return choose_precision(device.split(":")[0])
    if precision not in ("32-true", "bf16-mixed"):
        raise ResumenError(f"precision '{precision}' is not one inference offers: use auto, 32-true or bf16-mixed.")
    return precision, "asked for"


class Summarizer:
    """One model ready to summarise: its weights, tokenizer, trained-with record and generation settings."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        trained_with: TrainedWith,
        generation: GenerationSettings,
        name: str,
        device: str = "cpu",
        precision: str = "32-true",
        batch_size: int = 8,
        engine: Any = None,
    ) -> None:
        """``model``: the torch model, or ``None`` with ``engine`` (a CTranslate2Engine) doing the generation."""
        if batch_size < 1:
            raise ResumenError(f"batch size must be at least 1 (got {batch_size}).")
        self.engine = engine
        self.backend = "ctranslate2" if engine is not None else "torch"
        self.model = model.eval() if model is not None else None
        self.tokenizer = tokenizer
        self.trained_with = trained_with
        self.generation = generation
        self.name = name
        self.device = device
        self.precision = precision
        self.batch_size = batch_size
        if self.model is not None:
            self.model.to(device)
        if device == "cpu":
            import torch

            torch.set_flush_denormal(True)  # as training does: denormals cost x86 microcode assists

    @property
    def max_source_length(self) -> int:
        return self.trained_with.max_source_length or DEFAULT_MAX_SOURCE_LENGTH

    @classmethod
    def load(
        cls,
        name_or_path: str,
        device: str = "auto",
        precision: str | None = "32-true",
        trust_remote_code: bool = False,
        batch_size: int = 8,
        prompt_template: str | None = None,
        name: str | None = None,
        backend: str = "torch",
        compute_type: str | None = None,
        announce: Any = print,
    ) -> Summarizer:
        """An export, a LoRA adapter directory or a hub id, loaded as everywhere else (weights only, no remote code
        unless asked). ``prompt_template`` replaces the model's own (a base model trained with another prompt).
        ``backend="ctranslate2"``: the model's CTranslate2 conversion (made on first use) with ``compute_type``."""
        if backend not in ("torch", "ctranslate2"):
            raise ResumenError(f"backend '{backend}' is not one resumen has: use torch or ctranslate2.")
        from resumen.core.loading import check_vocab_fits, load_config, load_seq2seq_model, load_tokenizer
        from resumen.core.prompts import validate_template

        if prompt_template is not None:
            validate_template(prompt_template, f"the prompt template for {name_or_path}")
        config = load_config(name_or_path, trust_remote_code=trust_remote_code)
        record = from_model_config(config, name_or_path) or TrainedWith(base_model=name_or_path)
        if prompt_template is not None:
            record = TrainedWith(**{**record.as_dict(), "prompt_template": prompt_template})
        tokenizer = load_tokenizer(name_or_path, trust_remote_code=trust_remote_code, config=config)
        device = resolve_device(device)
        if backend == "ctranslate2":
            from transformers import GenerationConfig

            from resumen.core.ctranslate2_backend import CTranslate2Engine
            from resumen.core.loading import check_model_kind

            check_model_kind(name_or_path, config, want_encoder_decoder=True)
            engine = CTranslate2Engine(name_or_path, device, compute_type, announce)
            try:
                generation_config = GenerationConfig.from_pretrained(name_or_path)
            except (OSError, ValueError):
                generation_config = None
            generation = GenerationSettings.from_generation_config(generation_config)
            return cls(None, tokenizer, record, generation, name or name_or_path, device, engine.compute_type, batch_size, engine)
        precision, _ = resolve_precision(precision, device)
        from resumen.core.torch_settings import apply_torch_settings

        apply_torch_settings(device, allow_tf32=False)  # as train.py predict runs; true fp32 where fp32 is asked
        model = load_seq2seq_model(name_or_path, trust_remote_code=trust_remote_code, config=config)
        check_vocab_fits(name_or_path, tokenizer, model)
        generation = GenerationSettings.from_generation_config(model.generation_config)
        return cls(model, tokenizer, record, generation, name or name_or_path, device, precision, batch_size)

    # ------------------------------------------------------------------------------------------- inference
    def settings(self, **overrides: Any) -> GenerationSettings:
        """The model's generation settings with per-call overrides (``max_new_tokens``, ``num_beams``, ...)."""
        return self.generation.with_overrides(**overrides)

    def encode(self, articles: list[str]) -> dict[str, list]:
        return encode_articles(self.tokenizer, self.trained_with.prompt_template, articles, self.max_source_length)

    def summarize(self, articles: list[str], **overrides: Any) -> list[Summary]:
        """Summaries in input order; batches are formed by length (longest first), as ``predict`` forms them."""
        import torch

        settings = self.settings(**overrides)
        encoded = self.encode(list(articles))
        order = sorted(range(len(articles)), key=lambda i: -encoded["length"][i])
        results: dict[int, Summary] = {}
        pad = self.tokenizer.pad_token_id or 0
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            if self.engine is not None:
                ids, lengths = self.engine.generate(self.tokenizer, [encoded["input_ids"][i] for i in indices], settings)
                texts = decode_texts(self.tokenizer, ids)
                for row, i in enumerate(indices):
                    results[i] = Summary(texts[row], encoded["length"][i], lengths[row], encoded["truncated"][i])
                continue
            width = max(encoded["length"][i] for i in indices)
            ids = torch.full((len(indices), width), pad, dtype=torch.long)
            mask = torch.zeros((len(indices), width), dtype=torch.long)
            for row, i in enumerate(indices):  # right padding, as the DataModule's collator pads
                ids[row, : encoded["length"][i]] = torch.as_tensor(encoded["input_ids"][i])
                mask[row, : encoded["length"][i]] = 1
            with torch.inference_mode(), self._autocast():
                texts, lengths = generate_summaries(self.model, self.tokenizer, ids.to(self.device), mask.to(self.device), settings)
            for row, i in enumerate(indices):
                results[i] = Summary(texts[row], encoded["length"][i], int(lengths[row]), encoded["truncated"][i])
        return [results[i] for i in range(len(articles))]

    def stream(self, article: str, counts: dict[str, int] | None = None, **overrides: Any):
        """The summary of one article, in pieces as it is generated (greedy decoding streams token by token; beam
        search cannot show a summary before its beams are decided, so it yields the finished one word by word).
        ``counts`` receives ``input_tokens`` and ``output_tokens`` when the summary is done."""
        import threading

        import torch
        from transformers import TextIteratorStreamer

        counts = counts if counts is not None else {}
        settings = self.settings(**overrides)
        if settings.num_beams == 1 and self.engine is not None:
            yield from self._stream_ctranslate2(article, counts, settings)
            return
        if settings.num_beams > 1:
            summary = self.summarize([article], **overrides)[0]
            counts.update(input_tokens=summary.input_tokens, output_tokens=summary.output_tokens)
            words = summary.summary.split(" ")
            yield from (word if i == 0 else " " + word for i, word in enumerate(words))
            return
        model = self.model
        assert model is not None, "greedy streaming without CTranslate2 runs the torch model"  # the engine's returned above
        encoded = self.encode([article])
        ids = torch.as_tensor(encoded["input_ids"], device=self.device)
        mask = torch.ones_like(ids)
        streamer = TextIteratorStreamer(self.tokenizer, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        done: dict[str, Any] = {}

        def run() -> None:
            try:
                with torch.inference_mode(), self._autocast():
                    done["output"] = model.generate(input_ids=ids, attention_mask=mask, streamer=streamer, **settings.generate_kwargs())
            except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
                done["error"] = error
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        yield from stripped_pieces(streamer)
        worker.join()
        if "error" in done:
            raise done["error"]
        written = generated_lengths(done["output"], model.generation_config.eos_token_id)
        counts.update(input_tokens=encoded["length"][0], output_tokens=int(written[0]))

    def _stream_ctranslate2(self, article: str, counts: dict[str, int], settings: GenerationSettings):
        """CTranslate2's greedy steps, decoded as they come (each piece is what the new token added to the text)."""
        encoded = self.encode([article])
        ids: list[int] = []
        shown = ""
        for token_id in self.engine.stream(self.tokenizer, encoded["input_ids"][0], settings):
            ids.append(token_id)
            text = decode_texts(self.tokenizer, [ids])[0]
            if text.startswith(shown) and len(text) > len(shown):
                yield text[len(shown) :]
                shown = text
        counts.update(input_tokens=encoded["length"][0], output_tokens=len(ids))

    def _autocast(self):
        import torch

        if self.precision == "bf16-mixed":
            return torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16)
        return nullcontext()

    def describe(self) -> dict[str, Any]:
        """What ``GET /models`` shows: the base model, the prompt, the lengths and the generation settings."""
        return {
            "name": self.name,
            "base_model": self.trained_with.base_model,
            "prompt_template": self.trained_with.prompt_template,
            "max_source_length": self.max_source_length,
            "generation": self.generation.describe(),
            "device": self.device,
            "backend": self.backend,
            "precision": self.precision,
        }
