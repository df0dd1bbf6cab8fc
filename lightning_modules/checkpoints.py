"""Read and write training checkpoints safely, whatever strategy wrote them.

A checkpoint is one ``.ckpt`` file (a torch zip archive) or a directory of shards (FSDP ``state_dict_type:
sharded``, DeepSpeed). Nothing here unpickles anything but tensors and plain values: files load with
``weights_only=True``, the FSDP ``.metadata`` pickle goes through an allowlist, and DeepSpeed's converter runs with
``torch.load`` forced to ``weights_only=True``. Files are written next to their target and renamed into place.
"""

from __future__ import annotations

import contextlib
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from resumen.core.checkpoint_file import check_checkpoint_file, load_checkpoint_file
from resumen.core.errors import ResumenError, first_line
from resumen.core.files import atomic_file

FSDP_EXTRA_FILE = "meta.pt"  # Lightning's file beside the shards with everything but weights and optimizer states


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, but durable on any local filesystem and checked on load.

    Lightning stages a save in the system temp directory and moves it into place, which is a copy (not atomic)
    when ``runs/`` is on another filesystem: a kill or a full disk then truncates the target.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):  # remote storage: fsspec's own transaction
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_file(path, "wb") as handle:
            torch.save(checkpoint, handle)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        if "://" in str(path):
            return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
        return load_checkpoint_file(path)


# ------------------------------------------------------------------------------------------ sharded checkpoints
class _MetadataUnpickler(pickle.Unpickler):
    """Unpickle ``torch.distributed.checkpoint``'s ``.metadata`` with an allowlist (``pickle.load`` would run code)."""

    ALLOWED = {
        ("torch", "Size"),
        ("torch.serialization", "_get_layout"),
        ("collections", "OrderedDict"),
        ("pathlib", "PosixPath"),
        ("pathlib", "PurePosixPath"),
        ("pathlib", "WindowsPath"),
        ("pathlib", "PureWindowsPath"),
        ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch.distributed.checkpoint.metadata" or (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"'{module}.{name}' is not allowed in checkpoint metadata")


def _safe_reader(path: Path):
    from torch.distributed.checkpoint import FileSystemReader

    class SafeFileSystemReader(FileSystemReader):
        def read_metadata(self, *args: Any, **kwargs: Any):
            from torch.distributed.checkpoint.metadata import Metadata, StorageMeta

            with open(self._get_metadata_path(kwargs.get("rank")), "rb") as handle:
                metadata = _MetadataUnpickler(handle).load()
            if not isinstance(metadata, Metadata):
                raise pickle.UnpicklingError(f"the metadata is a {type(metadata).__name__}")
            if getattr(metadata, "storage_meta", None) is None:
                metadata.storage_meta = StorageMeta()
            metadata.storage_meta.load_id = self.load_id
            return metadata

    return SafeFileSystemReader(path)


def _safe_planner(keys: set[str] | None):
    from torch.distributed.checkpoint._traverse import set_element
    from torch.distributed.checkpoint.default_planner import _EmptyStateDictLoadPlanner

    class SafeLoadPlanner(_EmptyStateDictLoadPlanner):
        def load_bytes(self, read_item: Any, value: Any) -> None:  # replaces torch's default, which is not weights-only
            loaded = torch.load(value, map_location="cpu", weights_only=True)
            if self.flatten_state_dict:
                set_element(self.original_state_dict, self.mappings[read_item.dest_index.fqn], loaded)
            else:
                self.state_dict[read_item.dest_index.fqn] = loaded

    return SafeLoadPlanner(keys=keys)


def _refused(path: Path, error: BaseException) -> ResumenError:
    return ResumenError(
        f"sharded checkpoint '{path}' holds something other than tensors and plain values ({first_line(error, 200)}): "
        "refusing to unpickle it, since that could run code. Only load checkpoints written by scripts/train.py."
    )


def load_fsdp_checkpoint(path: Path, keys: set[str] | None = None) -> dict[str, Any]:
    """An FSDP sharded directory consolidated on the CPU (``keys``: only these flattened names, e.g. model weights)."""
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict

    checkpoint: dict[str, Any] = {}
    try:
        _load_state_dict(checkpoint, storage_reader=_safe_reader(path), planner=_safe_planner(keys), no_dist=True)
        extra = path / FSDP_EXTRA_FILE
        if extra.is_file():
            checkpoint.update(torch.load(extra, map_location="cpu", weights_only=True))
    except pickle.UnpicklingError as error:
        raise _refused(path, error) from None
    if "model" in checkpoint:  # Lightning's layout: model / optimizer_N -> state_dict / optimizer_states
        from lightning.pytorch.utilities.consolidate_checkpoint import _format_checkpoint

        checkpoint = _format_checkpoint(checkpoint)
    return checkpoint


def check_fsdp_checkpoint(path: Path) -> None:
    """Read every pickled part of an FSDP directory through the allowlist before Lightning unpickles it."""
    from torch.distributed.checkpoint.metadata import BytesStorageMetadata

    try:
        metadata = _safe_reader(path).read_metadata()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as error:
        raise _refused(path, error) from None
    byte_keys = {key for key, value in metadata.state_dict_metadata.items() if isinstance(value, BytesStorageMetadata)}
    load_fsdp_checkpoint(path, keys=byte_keys or {"__no_such_key__"})


def _deepspeed_files(path: Path) -> list[Path]:
    return sorted(path.rglob("*.pt"))


def is_deepspeed_checkpoint(path: Path) -> bool:
    return (path / "checkpoint").is_dir() or any(path.glob("*/mp_rank_*_model_states.pt"))


def check_deepspeed_checkpoint(path: Path) -> None:
    """Every DeepSpeed file must load weights-only (DeepSpeed's own loaders use ``weights_only=False``)."""
    for file in _deepspeed_files(path):
        try:
            torch.load(file, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(file))
        except pickle.UnpicklingError as error:
            raise _refused(path, error) from None


@contextlib.contextmanager
def _weights_only_torch_load():
    """Force ``weights_only=True`` on every ``torch.load`` inside the block (DeepSpeed's converter asks for False)."""
    original = torch.load

    def weights_only_load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return original(*args, **kwargs)

    torch.load = weights_only_load
    try:
        yield
    finally:
        torch.load = original


def check_sharded_checkpoint(path: Path) -> None:
    """Refuse a sharded directory that is neither FSDP's nor DeepSpeed's, or that holds more than tensors."""
    if is_deepspeed_checkpoint(path):
        check_deepspeed_checkpoint(path)
    elif (path / ".metadata").is_file():
        check_fsdp_checkpoint(path)
    else:
        raise ResumenError(
            f"'{path}' is a directory but neither an FSDP sharded checkpoint (no .metadata) nor a DeepSpeed one: "
            "pass the .ckpt file or the checkpoint directory itself."
        )


def check_any_checkpoint(path: str | Path) -> None:
    """The one-line check for whatever a user passes as ``--ckpt_path``, before Lightning reads it."""
    path = Path(path)
    if path.is_dir():
        check_sharded_checkpoint(path)
    else:
        check_checkpoint_file(path)


def load_full_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint as one dict with a full (unsharded) ``state_dict`` on the CPU.

    Sharded directories are consolidated on the CPU (as ``python -m lightning.pytorch.utilities.consolidate_checkpoint``
    and DeepSpeed's ``zero_to_fp32`` do), unpickling tensors and plain values only.
    """
    path = Path(path)
    if not path.exists():
        raise ResumenError(f"checkpoint '{path}' does not exist: pass a .ckpt file or a sharded checkpoint directory.")
    if path.is_file():
        return load_checkpoint_file(path)
    check_sharded_checkpoint(path)
    if is_deepspeed_checkpoint(path):
        from lightning.pytorch.utilities.deepspeed import convert_zero_checkpoint_to_fp32_state_dict

        with tempfile.TemporaryDirectory(dir=path.parent) as tmp, _weights_only_torch_load():
            merged = Path(tmp) / "merged.ckpt"
            try:
                convert_zero_checkpoint_to_fp32_state_dict(str(path), str(merged))
            except pickle.UnpicklingError as error:
                raise _refused(path, error) from None
            return load_checkpoint_file(merged)
    return load_fsdp_checkpoint(path)


def saved_module_settings(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The module arguments a checkpoint records, minus anything that could choose code to run.

    LightningCLI's bookkeeping (``_instantiator``, ``_class_path``: which class to build) and the security settings
    (``trust_remote_code``) are dropped: a checkpoint from elsewhere must not turn on remote code, whatever it holds.
    """
    from resumen.core.loading import SECURITY_SETTINGS

    saved = checkpoint.get("hyper_parameters") or {}
    if not isinstance(saved, dict):
        return {}
    return {k: v for k, v in saved.items() if isinstance(k, str) and not k.startswith("_") and k not in SECURITY_SETTINGS}


def model_state_dict(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The Hugging Face model's weights from a Lightning checkpoint of :class:`Seq2SeqSummarizer`."""
    state = checkpoint.get("state_dict") or checkpoint.get("module") or {}
    weights = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    if not weights:
        raise ResumenError("the checkpoint holds no 'model.*' weights: is it a checkpoint of scripts/train.py?")
    return weights
