"""Model and tokenizer loading with one-line errors, and the precision guard.

Every loader takes a hub id (``google/flan-t5-small``) or a local directory. Failures are turned into a
:class:`ResumenError` that says what is wrong and what to do, before any expensive work starts.
"""

from __future__ import annotations

import functools
import os
import pickle
import sys
from pathlib import Path
from typing import Any

from resumen.core.errors import ResumenError, error_chain, first_line, is_rust_panic

T5_FAMILY = {"t5", "mt5", "umt5", "longt5", "switch_transformers"}
# Settings that decide whether code from a model repository runs: only the command line may turn them on, never a
# file the tool is handed (a config file, a checkpoint's hyper-parameters, an export).
SECURITY_SETTINGS = frozenset({"trust_remote_code"})


def _explain_load_error(name: str, error: Exception) -> ResumenError:
    """Translate the many ways ``from_pretrained`` fails into one sentence with the fix."""
    from huggingface_hub.errors import (
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    path = Path(name).expanduser()
    if path.is_dir() and not (path / "config.json").exists() and not (path / "tokenizer_config.json").exists():
        return ResumenError(
            f"'{name}' is a directory but holds no config.json: it is not a Hugging Face model directory "
            "(export one with save_pretrained, or point at the export folder)."
        )
    for cause in error_chain(error):
        if "contains custom code" in str(cause):
            return ResumenError(
                f"'{name}' contains custom code (its config asks to run Python files from the model's repository), "
                "and resumen runs none unless you turn trust_remote_code on yourself for a model you trust "
                "(--model.trust_remote_code=true, or --trust-remote-code in the scripts); a checkpoint or an export "
                "cannot turn it on."
            )
        if isinstance(cause, LocalEntryNotFoundError) or "couldn't connect" in str(cause).lower():
            if name.startswith((".", "/", "~")):
                break
            offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
            reach = "HF_HUB_OFFLINE is set: unset it once online" if offline else "no network: go online"
            return ResumenError(
                f"model '{name}' is not a local directory and the Hugging Face hub cannot be reached ({reach}), "
                f"or pre-download it with `hf download {name}` and pass the local directory."
            )
        if isinstance(cause, RepositoryNotFoundError):
            return ResumenError(f"model '{name}' does not exist on the hub and is not a local directory: check the name.")
        if isinstance(cause, HFValidationError):
            break
    if not path.exists():
        return ResumenError(f"model path '{name}' does not exist: pass an existing model directory or a hub id such as google/flan-t5-small.")
    return ResumenError(f"could not load '{name}': {str(error).splitlines()[0]}")


def load_config(name: str, trust_remote_code: bool = False):
    """A model's config, read once per process (the CLI's checks and the module share it) and returned as a copy,
    so that one model resizing its embeddings never changes another's config."""
    import copy

    return copy.deepcopy(_read_config(name, trust_remote_code, _config_stamp(name)))


def _config_stamp(name: str) -> float | None:
    """A local config.json's modification time: a rewritten model directory is read again."""
    path = Path(name).expanduser() / "config.json"
    return path.stat().st_mtime if path.is_file() else None


@functools.lru_cache(maxsize=8)
def _read_config(name: str, trust_remote_code: bool, stamp: float | None):
    from transformers import AutoConfig

    if is_adapter_dir(name):  # a LoRA adapter: its base model's config, with the adapter's trained-with record
        from resumen.core.trained_with import from_adapter_dir, write_to_model_config

        config = load_config(adapter_base(name), trust_remote_code)
        record = from_adapter_dir(Path(name).expanduser())
        if record is not None:
            write_to_model_config(config, record)
        return config
    if trust_remote_code:
        warn_remote_code(name)
    try:
        return AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as error:
        raise _explain_load_error(name, error) from error


def warn_remote_code(name: str) -> None:
    """Say, before it runs, which code ``trust_remote_code`` lets a model run (once per model and process)."""
    local = Path(name).expanduser()
    if local.is_dir():
        files = sorted(str(path.relative_to(local)) for path in local.rglob("*.py"))
        which = ", ".join(files) if files else "none (it has no .py files)"
        print(f"warning: trust_remote_code is on: the Python files in '{name}' may run with your permissions: {which}.", file=sys.stderr)
    else:
        print(
            f"warning: trust_remote_code is on: the Python files of the hub repository '{name}' named by its "
            "config.json (auto_map) will be downloaded and run with your permissions.",
            file=sys.stderr,
        )


def is_adapter_dir(name: str) -> bool:
    """A directory holding a PEFT adapter (``adapter_config.json``) rather than a full model."""
    return (Path(name).expanduser() / "adapter_config.json").is_file()


def adapter_base(name: str) -> str:
    """The base model an adapter directory was trained on (hub id or local path)."""
    import json

    config = json.loads((Path(name).expanduser() / "adapter_config.json").read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise ResumenError(f"adapter '{name}' does not name its base model (base_model_name_or_path in adapter_config.json).")
    return base


def load_tokenizer(name: str, trust_remote_code: bool = False, config: Any = None):
    """Load a tokenizer from a hub id or a local directory (``config``: the model's, if already read)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code, config=config)
    except (OSError, ValueError, KeyError) as error:
        if Path(name).expanduser().is_dir() and (Path(name).expanduser() / "config.json").exists():
            raise _unreadable_tokenizer(name, error) from error
        raise _explain_load_error(name, error) from error
    except Exception as error:  # the Rust tokenizer reports a malformed tokenizer.json as a bare Exception
        raise _unreadable_tokenizer(name, error) from error
    except BaseException as error:
        if not is_rust_panic(error):
            raise
        raise _unreadable_tokenizer(name, error) from None


def _unreadable_tokenizer(name: str, error: BaseException) -> ResumenError:
    return ResumenError(
        f"the tokenizer files of '{name}' (tokenizer.json, tokenizer_config.json) cannot be read ({first_line(error)}): "
        "copy them again from the model they belong to."
    )


def check_model_kind(name: str, config: Any, want_encoder_decoder: bool) -> None:
    """Refuse a decoder-only model where a seq2seq one is needed, and the reverse."""
    is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    if want_encoder_decoder and not is_seq2seq:
        raise ResumenError(
            f"model '{name}' ({config.model_type}) is decoder-only, but this needs an encoder-decoder model "
            "(T5, Flan-T5, BART, Marian): use the causal-LM tools (scripts/generate.py) for it."
        )
    if not want_encoder_decoder and is_seq2seq:
        raise ResumenError(
            f"model '{name}' ({config.model_type}) is an encoder-decoder model, but this needs a decoder-only "
            "(causal) model such as GPT-2 or Gemma: use the seq2seq tools for it."
        )


def load_seq2seq_model(name: str, trust_remote_code: bool = False, dtype: Any = None, config: Any = None):
    """Load an ``AutoModelForSeq2SeqLM`` after checking that ``name`` is one (``config``: if already read)."""
    return _load_model("AutoModelForSeq2SeqLM", name, True, trust_remote_code, dtype, config)


def load_causal_model(name: str, trust_remote_code: bool = False, dtype: Any = None, config: Any = None):
    """Load an ``AutoModelForCausalLM`` after checking that ``name`` is one (``config``: if already read)."""
    return _load_model("AutoModelForCausalLM", name, False, trust_remote_code, dtype, config)


def _load_model(auto_class: str, name: str, encoder_decoder: bool, trust_remote_code: bool, dtype: Any, config: Any):
    import transformers

    config = config if config is not None else load_config(name, trust_remote_code)
    check_model_kind(name, config, want_encoder_decoder=encoder_decoder)
    if is_adapter_dir(name):
        return _load_adapter(auto_class, name, trust_remote_code, dtype, config)
    check_weights_fit(name, config, auto_class, trust_remote_code)
    try:
        return getattr(transformers, auto_class).from_pretrained(name, trust_remote_code=trust_remote_code, dtype=dtype, config=config)
    except pickle.UnpicklingError:  # a pytorch_model.bin holding more than tensors (loaded weights-only)
        raise ResumenError(
            f"the weights of '{name}' (pytorch_model.bin) hold objects other than tensors and plain values: refusing "
            "to unpickle them, since that could run code. Use the model's model.safetensors."
        ) from None
    except (OSError, ValueError) as error:
        raise _explain_load_error(name, error) from error


def _saved_tensor_shapes(directory: Path) -> dict[str, tuple[int, ...]] | None:
    """Names and shapes of a local model's safetensors weights, read from the file headers (no tensor is loaded)."""
    import json

    from safetensors import safe_open

    index = directory / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()))
    elif (directory / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        return None
    shapes: dict[str, tuple[int, ...]] = {}
    for file in files:
        try:
            with safe_open(str(directory / file), framework="pt") as handle:
                for key in handle.keys():
                    shapes[key] = tuple(handle.get_slice(key).get_shape())
        except Exception as error:  # a truncated or foreign file: safetensors' own one-line reason
            raise ResumenError(f"the weights file '{directory / file}' cannot be read ({str(error).splitlines()[0]}): copy it again.") from None
    return shapes


def check_weights_fit(name: str, config: Any, auto_class: str, trust_remote_code: bool = False) -> None:
    """Refuse, before loading, weights that are not the architecture ``config.json`` names (a mismatched
    ``model_type`` would otherwise load with most layers freshly random and one long table of warnings)."""
    directory = Path(name).expanduser()
    if not directory.is_dir():
        return
    saved = _saved_tensor_shapes(directory)
    if not saved:
        return
    import torch
    import transformers

    with torch.device("meta"):
        model = getattr(transformers, auto_class).from_config(config, trust_remote_code=trust_remote_code)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    found = {k: saved.get(k, saved.get(k.removeprefix(prefix))) for k in expected}
    present = {k: shape for k, shape in found.items() if shape is not None}
    if len(present) < len(expected) / 2:
        raise ResumenError(
            f"the weights in '{name}' do not belong to a {config.model_type} model: only {len(present)} of the "
            f"{len(expected)} tensors a {type(model).__name__} has are there. config.json's model_type does not match "
            "the weights: use the config.json saved with them."
        )
    for key, shape in present.items():
        if shape != expected[key]:
            raise ResumenError(
                f"the weights in '{name}' do not match its config.json: '{key}' is {list(shape)} in the weights and "
                f"{list(expected[key])} in the model the config describes. Use the config.json saved with the weights."
            )


def _load_adapter(auto_class: str, name: str, trust_remote_code: bool, dtype: Any, config: Any):
    """Base model + LoRA adapter, merged into a plain model (inference needs no PEFT wrapper).

    The base is resized first when the adapter's tokenizer has added characters: their embedding rows are in the
    adapter (trainable tokens), and they need rows to land in.
    """
    try:
        from peft import PeftModel
    except ImportError as error:
        raise ResumenError(f"'{name}' is a LoRA adapter: loading it needs peft (pip install 'peft>=0.21').") from error
    base = _load_model(auto_class, adapter_base(name), bool(config.is_encoder_decoder), trust_remote_code, dtype, config)
    rows = len(load_tokenizer(name, trust_remote_code))
    if rows > base.get_input_embeddings().num_embeddings:
        base.resize_token_embeddings(rows, mean_resizing=False)
    try:
        model = merge_adapter(PeftModel.from_pretrained(base, name))
    except pickle.UnpicklingError as error:  # peft loads a .bin adapter weights-only: anything more is refused
        raise ResumenError(
            f"adapter '{name}' holds something other than tensors and plain values: refusing to unpickle it, since "
            "that could run code. Use an adapter saved as adapter_model.safetensors (as resumen's exports are)."
        ) from error
    except (OSError, ValueError, RuntimeError) as error:
        raise ResumenError(f"could not apply the adapter '{name}' to '{adapter_base(name)}': {str(error).splitlines()[0]}") from error
    from resumen.core.trained_with import CONFIG_KEY

    for key in (CONFIG_KEY, "prompt_template"):  # the adapter's record, on the merged model
        if getattr(config, key, None) is not None:
            setattr(model.config, key, getattr(config, key))
    return model


def check_vocab_fits(name: str, tokenizer: Any, model: Any) -> None:
    """Token ids beyond the embedding matrix crash deep inside the forward pass; refuse them up front."""
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        raise ResumenError(
            f"the tokenizer of '{name}' has {len(tokenizer)} tokens but the model's embeddings only {rows}: "
            "use the tokenizer saved with this model (or resize the embeddings with extend_vocabulary)."
        )


def is_t5_family(config: Any) -> bool:
    return getattr(config, "model_type", None) in T5_FAMILY


def check_precision(precision: str | int | None, config: Any, name: str) -> None:
    """T5 activations overflow fp16 and the loss turns NaN (transformers #14189): refuse it early."""
    if precision is None:
        return
    if str(precision) in {"16", "16-mixed", "16-true"} and is_t5_family(config):
        raise ResumenError(
            f"precision '{precision}' with the T5-family model '{name}' overflows to NaN: "
            "use --trainer.precision=bf16-mixed on GPUs that support bf16, or 32-true."
        )


def merge_adapter(peft_model: Any) -> Any:
    """``merge_and_unload``, keeping the base model's tied output embeddings. PEFT compares the output embeddings
    with ``get_input_embeddings()`` (the encoder's) and, for a model whose head is tied to the decoder's own
    embeddings (T5Gemma), wrote ``tie_word_embeddings=False``: the export then loaded with a random head."""
    tied = bool(getattr(peft_model.get_base_model().config, "tie_word_embeddings", False))
    model = peft_model.merge_and_unload()
    output, decoder = model.get_output_embeddings(), getattr(model, "get_decoder", lambda: None)()
    inputs = decoder.get_input_embeddings() if decoder is not None and hasattr(decoder, "get_input_embeddings") else None
    if tied and output is not None and inputs is not None and output.weight.data_ptr() == inputs.weight.data_ptr():
        model.config.tie_word_embeddings = True
    return model
