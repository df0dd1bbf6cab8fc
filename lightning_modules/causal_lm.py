"""A decoder-only model (GPT-2, Gemma, ...) behind ``Trainer.predict``: next-token top-k, generation, translation.

    python scripts/next_token.py "The future of AI is"
    python scripts/generate.py --do-sample --top-p 0.9 "Había una vez"
    python scripts/translate.py --source es --target en "El niño juega."

The scripts build this module and run ``Trainer(accelerator=..., precision=...).predict``, so each runs on CPU,
CUDA or MPS without device code of its own.
"""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch

from resumen.core.loading import check_precision, check_vocab_fits, load_causal_model, load_tokenizer
from resumen.core.tokens import display_token
from resumen.core.generation import GenerationSettings

Task = Literal["next_token", "generate", "translate"]


class CausalLMModule(L.LightningModule):
    def __init__(
        self,
        model_name_or_path: str = "gpt2",
        task: Task = "generate",
        top_k_tokens: int = 10,
        all_positions: bool = False,
        max_new_tokens: int = 50,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int = 50,
        top_p: float = 1.0,
        num_beams: int = 1,
        repetition_penalty: float = 1.0,
        no_repeat_ngram_size: int = 0,
        num_return_sequences: int = 1,
        trust_remote_code: bool = False,
    ) -> None:
        """Load a causal LM for one task.

        Args:
            model_name_or_path: decoder-only model hub id or local directory.
            task: ``next_token`` (top-k table), ``generate`` (continuations) or ``translate`` (first line only).
            top_k_tokens: rows of the next-token table.
            all_positions: next-token table after every prefix position, not only the last.
            max_new_tokens: tokens to generate.
            do_sample: sample instead of greedy/beam decoding.
            temperature: sampling temperature (> 0).
            top_k: sample among the k most likely tokens.
            top_p: nucleus sampling mass, in (0, 1].
            num_beams: beam search width (1 = greedy or sampling).
            repetition_penalty: > 1 discourages repeating tokens.
            no_repeat_ngram_size: forbid repeating n-grams of this size (0 = off).
            num_return_sequences: continuations per prompt.
            trust_remote_code: allow the model repository to run its own code.
        """
        super().__init__()
        self.generation = GenerationSettings(
            max_new_tokens=max_new_tokens,
            num_beams=num_beams,
            no_repeat_ngram_size=no_repeat_ngram_size,
            repetition_penalty=repetition_penalty,
            do_sample=do_sample,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            num_return_sequences=num_return_sequences,
        )
        self.save_hyperparameters()
        self.model = load_causal_model(model_name_or_path, trust_remote_code=trust_remote_code)
        self.tokenizer = load_tokenizer(model_name_or_path, trust_remote_code=trust_remote_code)
        check_vocab_fits(model_name_or_path, self.tokenizer, self.model)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def check_precision(self, precision: str | int | None) -> None:
        check_precision(precision, self.model.config, self.hparams.model_name_or_path)

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> list[dict[str, Any]]:
        if self.hparams.task == "next_token":
            return self.next_token_rows(batch)
        return self.generation_rows(batch)

    # ------------------------------------------------------------------------------------------- next token
    @torch.no_grad()
    def next_token_rows(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """Top-k next tokens with softmax probabilities over the full vocabulary, computed in fp32."""
        logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        probabilities = torch.softmax(logits, dim=-1)
        k = min(self.hparams.top_k_tokens, logits.shape[-1])
        rows = []
        for row, length in enumerate(batch["attention_mask"].sum(dim=1).tolist()):
            ids = batch["input_ids"][row, :length].tolist()
            positions = range(length) if self.hparams.all_positions else [length - 1]
            steps = []
            for position in positions:
                top_p, top_ids = probabilities[row, position].topk(k)
                steps.append(
                    {
                        "position": position,
                        "prefix": self.tokenizer.decode(ids[: position + 1]),
                        "top": [
                            {
                                "rank": rank + 1,
                                "token": display_token(self.tokenizer, token_id),
                                "token_id": int(token_id),
                                "probability": float(p),
                                "logit": float(logits[row, position, token_id]),
                            }
                            for rank, (p, token_id) in enumerate(zip(top_p.tolist(), top_ids.tolist()))
                        ],
                    }
                )
            rows.append(
                {
                    "id": batch["id"][row],
                    "index": int(batch["index"][row]),
                    "text": batch["prompt"][row],
                    "tokens": [display_token(self.tokenizer, token_id) for token_id in ids],
                    "token_ids": ids,
                    "next_token": steps[-1]["top"][0]["token"],
                    "positions": steps,
                }
            )
        return rows

    # ------------------------------------------------------------------------------------------- generation
    @torch.no_grad()
    def generation_rows(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        output = self.model.generate(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], pad_token_id=self.tokenizer.pad_token_id, **self.generation.generate_kwargs()
        )
        new_tokens = output[:, batch["input_ids"].shape[1] :]  # left padding: every prompt ends at the same column
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        per_prompt = self.hparams.num_return_sequences
        rows = []
        for row in range(batch["input_ids"].shape[0]):
            outputs = texts[row * per_prompt : (row + 1) * per_prompt]
            if self.hparams.task == "translate":
                outputs = [first_line(text) for text in outputs]
            rows.append(
                {
                    "id": batch["id"][row],
                    "index": int(batch["index"][row]),
                    "prompt": batch["prompt"][row],
                    "outputs": outputs,
                }
            )
        return rows


def first_line(text: str) -> str:
    """A translation ends at the first newline (the model would go on with another prompt)."""
    return text.strip().split("\n", 1)[0].strip()
