"""Characters a tokenizer cannot represent, and the vocabulary extension that fixes them.

T5's SentencePiece vocabulary (Flan-T5's too) has no byte fallback and no piece for í ú ñ Á Í Ó Ú Ñ ¿ ¡: each
becomes ``<unk>`` and decoding drops it ("niño" -> "nio"). :func:`extend_tokenizer` adds such characters as tokens
and makes the tokenizer round-trip them; :func:`extend_embeddings` grows the model to match, starting each new
row from a close known character.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import Any

from resumen.core.errors import ResumenError

# Close known characters for those NFD cannot reduce to a base letter.
CLOSE_CHARACTERS = {"¿": "?", "¡": "!", "«": '"', "»": '"', "“": '"', "”": '"', "‘": "'", "’": "'", "—": "-", "–": "-", "…": "."}


def decode_texts(tokenizer: Any, ids: Any) -> list[str]:
    """Token ids -> text, the one way the whole project decodes generated summaries (and checks round-trips)."""
    texts = tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return [text.strip() for text in texts]


def normalise_whitespace(text: str) -> str:
    return " ".join(text.split())


def character_counts(texts: Iterable[str]) -> Counter:
    counts: Counter = Counter()
    for text in texts:
        counts.update(text)
    return counts


def unknown_token_id(tokenizer: Any) -> int | None:
    """The unknown token's id, also for a bare tokenizer.json whose wrapper was not told which token it is."""
    if tokenizer.unk_token_id is not None:
        return tokenizer.unk_token_id
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    for token in (getattr(backend.model, "unk_token", None), "<unk>", "[UNK]"):
        if token and backend.token_to_id(token) is not None:
            return backend.token_to_id(token)
    return None


def unknown_characters(tokenizer: Any, characters: Iterable[str]) -> list[str]:
    """The characters (whitespace excluded) that ``tokenizer`` encodes as its unknown token, sorted."""
    unk = unknown_token_id(tokenizer)
    if unk is None:  # byte-level vocabularies represent everything
        return []
    candidates = sorted({c for c in characters if not c.isspace() and unicodedata.category(c) != "Cc"})
    if not candidates:
        return []
    from resumen.core.encoding import tokenize

    encoded = tokenize(tokenizer, candidates, add_special_tokens=False)["input_ids"]
    return [c for c, ids in zip(candidates, encoded) if unk in ids]


def extend_tokenizer(tokenizer: Any, characters: Iterable[str]) -> Any:
    """A copy of ``tokenizer`` with ``characters`` added as tokens, that encodes and decodes them exactly.

    ``add_tokens`` alone breaks T5: its pre-tokenizer (``WhitespaceSplit`` + ``Metaspace(prepend_scheme="always")``)
    prepends "▁" to every piece between added tokens, so "niño" decodes as "niñ o". The copy uses a Metaspace that
    prepends only at the start of the text, and collapses runs of whitespace in the normaliser instead (what
    ``WhitespaceSplit`` did), so text without the new characters keeps its token ids. The result is a plain
    fast tokenizer: ``save_pretrained`` writes this pipeline and ``AutoTokenizer`` reloads it as is (the
    ``T5Tokenizer`` class would rebuild the old pipeline from the vocabulary).
    """
    import copy

    from tokenizers import Regex, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    added = sorted(set(characters))
    backend = copy.deepcopy(tokenizer.backend_tokenizer)
    if added and "Metaspace" in str(backend.pre_tokenizer):
        replacement = "▁"
        backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=replacement, prepend_scheme="first", split=True)
        steps = [backend.normalizer] if backend.normalizer is not None else []
        backend.normalizer = normalizers.Sequence(steps + [normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip(left=False, right=True)])
    special = {name: getattr(tokenizer, name) for name in ("pad_token", "eos_token", "unk_token", "bos_token", "sep_token", "cls_token", "mask_token")}
    extended = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=tokenizer.model_max_length,
        padding_side=tokenizer.padding_side,
        **{name: value for name, value in special.items() if value is not None},
    )
    new = [c for c in added if c not in extended.get_vocab()]
    if new:
        extended.add_tokens(new)
    probe = " ".join(f"a{c}b {c}" for c in added)
    round_trip = decode_texts(extended, [extended(probe).input_ids])[0]
    if round_trip != normalise_whitespace(probe):
        raise ResumenError(
            f"extending this tokenizer with {added} does not round-trip ('{probe}' came back as '{round_trip}'); "
            "its pre-tokenizer is not one resumen knows how to fix: turn extend_vocabulary off."
        )
    return extended


def close_character(character: str) -> list[str]:
    """Known characters to start a new character's embedding from: ñ -> n, Í -> I then i, ¿ -> ?."""
    base = "".join(c for c in unicodedata.normalize("NFD", character) if not unicodedata.combining(c))
    candidates = [base, base.lower(), CLOSE_CHARACTERS.get(character, "")]
    return [c for c in dict.fromkeys(candidates) if c and c != character]


def source_token_id(tokenizer: Any, character: str, known_rows: int) -> int | None:
    """The id of the piece closest to ``character`` (as a word-inner piece first, then as a word start)."""
    vocabulary = tokenizer.get_vocab()
    for candidate in close_character(character):
        for piece in (candidate, "▁" + candidate, "Ġ" + candidate):
            token_id = vocabulary.get(piece)
            if token_id is not None and token_id != unknown_token_id(tokenizer) and token_id < known_rows:
                return token_id
    return None


def extend_embeddings(model: Any, tokenizer: Any, characters: list[str], known_rows: int) -> dict[str, str]:
    """Make room for the new tokens and initialise each new row from a close known one; returns {new: source}.

    ``known_rows`` is the size of the vocabulary before extension (rows at or above it are new or unused padding).
    """
    import torch

    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:  # T5 checkpoints pad their matrix (32128 rows for 32100 tokens): reuse those rows first
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    inputs = model.get_input_embeddings().weight
    output_layer = model.get_output_embeddings()
    outputs = output_layer.weight if output_layer is not None and output_layer.weight is not inputs else None
    sources: dict[str, str] = {}
    with torch.no_grad():
        mean_input = inputs[:known_rows].mean(dim=0)
        mean_output = outputs[:known_rows].mean(dim=0) if outputs is not None else None
        for character in characters:
            new_id = tokenizer.convert_tokens_to_ids(character)
            source = source_token_id(tokenizer, character, known_rows)
            inputs[new_id] = inputs[source] if source is not None else mean_input
            if outputs is not None:
                outputs[new_id] = outputs[source] if source is not None else mean_output
            sources[character] = tokenizer.convert_ids_to_tokens(source) if source is not None else "(mean)"
    return sources


class Vocabulary:
    """The one tokenizer data and model share, and the characters added to it: decided once, restored from a
    checkpoint by the same object, so the data is tokenised and the model sized with the same ids."""

    def __init__(self, base_tokenizer: Any) -> None:
        self.base = base_tokenizer
        self.tokenizer = base_tokenizer
        self.added_characters: list[str] | None = None  # None until decided (by the data, or a checkpoint)

    def use(self, characters: Iterable[str]) -> None:
        """Extend with exactly these characters (idempotent; another set after a decision is refused)."""
        characters = sorted(set(characters))
        if characters == self.added_characters:
            return
        if self.added_characters is not None:
            raise ResumenError(
                f"the vocabulary was extended with {self.added_characters}, not {characters}: use the data settings the checkpoint was trained with."
            )
        self.tokenizer = extend_tokenizer(self.base, characters) if characters else self.base
        self.added_characters = characters

    def decide(self, texts: Iterable[str], extend: bool) -> list[str]:
        """Once: add the characters of ``texts`` the tokenizer lacks (when ``extend``), else add none."""
        if self.added_characters is None:
            self.use(unknown_characters(self.base, character_counts(texts)) if extend else [])
        return list(self.added_characters or [])

    def restore(self, checkpoint_path: str) -> None:
        """Take the characters a training checkpoint was extended with (before any data is tokenised)."""
        from resumen.core.checkpoint_file import read_checkpoint_metadata
        from resumen.core.trained_with import from_checkpoint

        record = from_checkpoint(read_checkpoint_metadata(checkpoint_path), checkpoint_path)
        if record is not None:  # the checkpoint decides, extended or not
            self.use(record.added_characters)
