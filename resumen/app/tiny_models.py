"""Tiny random-weight checkpoints with locally trained tokenizers, for tests, the demo and benchmarks.

They are real Hugging Face directories (``config.json``, safetensors, tokenizer files), loaded through the same
``from_pretrained`` path as hub models; only the weights are random and the vocabulary is small.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path

from resumen.core.prompts import SUMMARY_TEMPLATE

SPANISH_ALPHABET = list("abcdefghijklmnopqrstuvwxyzáéíóúüñABCDEFGHIJKLMNOPQRSTUVWXYZÁÉÍÓÚÜÑ¿¡0123456789.,;:%-")
SAMPLE_DIR = Path(str(files("resumen.datamodules") / "data"))  # the shipped sample articles


def sample_corpus() -> list[str]:
    """Articles, summaries and the instruction text of the shipped Spanish sample."""
    lines = [SUMMARY_TEMPLATE.format(text="").strip()]  # the instruction's words
    for path in sorted(SAMPLE_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            lines += [row["text"], row["summary"], row["title"]]
    return lines


def train_t5_tokenizer(texts: Iterable[str], vocab_size: int = 2000, model_max_length: int = 512, pad_last: bool = False):
    """A T5-style Unigram tokenizer (pad=0, eos=1, unk=2) that keeps Spanish accents. ``pad_last``: Marian's layout
    instead (eos=0, unk=1, pad the last id)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    # Like T5's own normaliser: runs of whitespace (the template's "\n\n") become one space.
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    specials = ["</s>", "<unk>"] if pad_last else ["<pad>", "</s>", "<unk>"]
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        unk_token="<unk>",
        initial_alphabet=SPANISH_ALPHABET,
        show_progress=False,  # a bar for a sub-second training
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    tokenizer = _reproducible(tokenizer, specials=len(specials))
    if pad_last:
        tokenizer.add_special_tokens(["<pad>"])
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", tokenizer.token_to_id("</s>"))])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=model_max_length,
    )


def _reproducible(tokenizer, specials: int):
    """The same vocabulary from every build. The Unigram trainer's scores differ between processes: in the last digits
    for most pieces (parallel sums), and by about 0.002 for the alphabet's characters the corpus barely uses, which sit
    at the lowest score. Scores are rounded, those lowest ones share one value, and ties are ordered by piece."""
    from tokenizers import Tokenizer

    state = json.loads(tokenizer.to_str())
    vocab = state["model"]["vocab"]
    lowest = min(score for _, score in vocab[specials:])
    rest = [[piece, round(lowest, 1) if score <= lowest + 0.05 else round(score, 6)] for piece, score in vocab[specials:]]
    state["model"]["vocab"] = vocab[:specials] + sorted(rest, key=lambda item: (-item[1], item[0]))
    return Tokenizer.from_str(json.dumps(state))


def build_tiny_t5(
    out_dir: str | Path,
    texts: Iterable[str] | None = None,
    vocab_size: int = 2000,
    d_model: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    d_ff: int = 128,
    seed: int = 0,
    tokenizer=None,
    tie_word_embeddings: bool = False,
) -> Path:
    """Write a Flan-T5-shaped model (gated-GELU) with random weights to ``out_dir``. The demo's ties the input and
    output embeddings (T5 v1.0's choice; Flan-T5 unties them): a token the decoder copies from the article is then
    the same vector in and out, and the tiny model writes the article's names (unsupported names on the demo's test
    split: 45% untied after 25 epochs, 7.5% tied after 20)."""
    import torch
    from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration

    tokenizer = tokenizer or train_t5_tokenizer(texts or sample_corpus(), vocab_size)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_kv=d_model // num_heads,
        d_ff=d_ff,
        num_layers=num_layers,
        num_decoder_layers=num_layers,
        num_heads=num_heads,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=tie_word_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    return _save(model, tokenizer, out_dir)


def build_tiny_gpt2(out_dir: str | Path, texts: Iterable[str] | None = None, vocab_size: int = 1000, seed: int = 0) -> Path:
    """Write a GPT-2-shaped model with a byte-level BPE tokenizer to ``out_dir``."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(list(texts or sample_corpus()), vocab_size=vocab_size, special_tokens=["<|endoftext|>"], show_progress=False)
    tokenizer = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, model_max_length=256)
    tokenizer.add_special_tokens({"eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"})
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=256,
        n_embd=64,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    return _save(GPT2LMHeadModel(config), tokenizer, out_dir)


def train_gemma_tokenizer(texts: Iterable[str] | None = None, vocab_size: int = 800):
    """A Gemma-style BPE tokenizer with byte fallback (any script round-trips): ``<pad>``, ``<eos>``, ``<bos>``,
    ``<unk>``, and ``<bos>`` before every text."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.normalizer = normalizers.Replace(" ", "▁")
    texts = list(texts or sample_corpus()) + ["Translate this from Spanish to Chinese:", "English: Chinese:"]
    trained.train_from_iterator(texts, trainer=trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False))
    # The 256 <0x..> byte pieces must be ordinary vocabulary entries (not special tokens, which decoding skips)
    # so that characters never seen in training fall back to bytes and round-trip.
    state = json.loads(trained.to_str())["model"]
    vocab = dict(state["vocab"])
    for i in range(256):
        vocab.setdefault(f"<0x{i:02X}>", len(vocab))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tokenizer.add_special_tokens(specials)
    tokenizer.normalizer = normalizers.Replace(" ", "▁")
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    bos = tokenizer.token_to_id("<bos>")
    tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
        model_max_length=512,
    )


# the Gemma 2 blocks of the tiny causal Gemma 2 and of each T5Gemma stack
TINY_GEMMA_SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32}


def build_tiny_gemma2(out_dir: str | Path, texts: Iterable[str] | None = None, vocab_size: int = 800, seed: int = 0) -> Path:
    """Write a Gemma2-shaped causal model whose BPE tokenizer has byte fallback (any script round-trips)."""
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    wrapped = train_gemma_tokenizer(texts, vocab_size)
    config = Gemma2Config(
        vocab_size=len(wrapped),
        **TINY_GEMMA_SHAPE,
        max_position_embeddings=512,
        pad_token_id=wrapped.pad_token_id,
        bos_token_id=wrapped.bos_token_id,
        eos_token_id=wrapped.eos_token_id,
    )
    torch.manual_seed(seed)
    return _save(Gemma2ForCausalLM(config), wrapped, out_dir)


def build_tiny_t5gemma(out_dir: str | Path, texts: Iterable[str] | None = None, vocab_size: int = 800, seed: int = 0) -> Path:
    """A T5Gemma-shaped encoder-decoder (Gemma 2 blocks, RoPE, GQA, soft-capping) with the Gemma-style byte-fallback
    tokenizer: no vocabulary extension is needed for Spanish. The decoder starts from ``<bos>``, as T5Gemma's."""
    import torch
    from transformers import GenerationConfig, T5GemmaConfig, T5GemmaForConditionalGeneration
    from transformers.models.t5gemma.configuration_t5gemma import T5GemmaModuleConfig

    tokenizer = train_gemma_tokenizer(texts, vocab_size)
    ids = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id, "bos_token_id": tokenizer.bos_token_id}

    def stack(is_decoder: bool) -> T5GemmaModuleConfig:
        # sliding_window: the real models' 4096 (CTranslate2's loader reads no other), longer than any test input
        return T5GemmaModuleConfig(
            vocab_size=len(tokenizer),
            **TINY_GEMMA_SHAPE,
            query_pre_attn_scalar=32,
            max_position_embeddings=8192,
            sliding_window=4096,
            is_decoder=is_decoder,
            **ids,
        )

    config = T5GemmaConfig(encoder=stack(False), decoder=stack(True), vocab_size=len(tokenizer), tie_word_embeddings=True)
    for name, value in {**ids, "decoder_start_token_id": tokenizer.bos_token_id}.items():
        setattr(config, name, value)
    torch.manual_seed(seed)
    model = T5GemmaForConditionalGeneration(config)
    model.generation_config = GenerationConfig(decoder_start_token_id=tokenizer.bos_token_id, **ids)
    return _save(model, tokenizer, out_dir)


def build_tiny_bart(out_dir: str | Path, texts: Iterable[str] | None = None, vocab_size: int = 2000, seed: int = 0, kind: str = "bart") -> Path:
    """A BART-shaped (learned positions, post-norm) or Marian-shaped (``kind="marian"``: sinusoidal positions,
    scaled embeddings) encoder-decoder on the T5-style Spanish vocabulary; the decoder starts from ``</s>`` (BART)
    or ``<pad>`` (Marian), as the real models do."""
    import torch
    from transformers import BartConfig, BartForConditionalGeneration, GenerationConfig, MarianConfig, MarianMTModel

    tokenizer = train_t5_tokenizer(texts or sample_corpus(), vocab_size, pad_last=kind == "marian")
    shape = {
        "vocab_size": len(tokenizer),
        "d_model": 64,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 4,
        "encoder_ffn_dim": 128,
        "decoder_ffn_dim": 128,
        "max_position_embeddings": 1024,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if kind == "marian":
        config, architecture = MarianConfig(**shape, decoder_start_token_id=tokenizer.pad_token_id), MarianMTModel
    else:
        shape["bos_token_id"] = tokenizer.eos_token_id  # no <s> in this vocabulary: BART's decoder starts from </s>
        config, architecture = BartConfig(**shape, decoder_start_token_id=tokenizer.eos_token_id), BartForConditionalGeneration
    torch.manual_seed(seed)
    model = architecture(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    return _save(model, tokenizer, out_dir)


def build_tiny_marian(out_dir: str | Path, texts: Iterable[str] | None = None, vocab_size: int = 2000, seed: int = 0) -> Path:
    return build_tiny_bart(out_dir, texts, vocab_size, seed, kind="marian")


def build_tiny_mt5(out_dir: str | Path, texts: Iterable[str] | None = None, vocab_size: int = 2000, seed: int = 0) -> Path:
    """An mT5-shaped model (T5 v1.1 blocks, untied embeddings, ``model_type: mt5``) on the Spanish vocabulary."""
    from transformers import MT5Config, MT5ForConditionalGeneration

    path = build_tiny_t5(out_dir, texts, vocab_size, seed=seed)
    config = MT5Config.from_dict({**json.loads((path / "config.json").read_text()), "model_type": "mt5", "architectures": ["MT5ForConditionalGeneration"]})
    model = MT5ForConditionalGeneration.from_pretrained(path, config=config)
    model.save_pretrained(path)
    return path


def build_tiny_bert(out_dir: str | Path, texts: Iterable[str] | None = None, vocab_size: int = 1000, num_layers: int = 3, seed: int = 0) -> Path:
    """Write a tiny random-weight BERT encoder with a WordPiece tokenizer trained on ``texts``: the encoder BERTScore
    runs in tests (the real default is bert-base-multilingual-cased)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.train_from_iterator(list(texts or sample_corpus()), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    cls, sep = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", model_max_length=512
    )
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    return _save(BertModel(config), tokenizer, out_dir)


def _save(model, tokenizer, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


BUILDERS = {
    "t5": build_tiny_t5,
    "mt5": build_tiny_mt5,
    "bart": build_tiny_bart,
    "marian": build_tiny_marian,
    "t5gemma": build_tiny_t5gemma,
    "gpt2": build_tiny_gpt2,
    "gemma2": build_tiny_gemma2,
    "bert": build_tiny_bert,
}
