"""Loading user-supplied backbone checkpoints safely and strictly.

Checkpoints are read as plain tensors only (``torch.load(weights_only=True)`` or safetensors);
nothing is ever unpickled. Every problem becomes a :class:`CheckpointError` (a
:class:`~core.errors.UserError`) naming the file and listing the offending keys.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from core.errors import ModelFileError

SHOW_KEYS = 5  # key names listed per problem; the rest are counted
_HASHES: dict[tuple, str] = {}


class CheckpointError(ModelFileError):
    """A backbone weight file is missing, unreadable, unsafe or does not fit the architecture."""


def weights_id(path: str | Path, length: int = 16) -> str:
    """First ``length`` hex digits of the file's SHA-256 (cached per path, size and mtime)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key][:length]


def read_tensor_file(path: str | Path) -> object:
    """The raw object stored in a ``.pth/.pt/.bin/.ckpt`` or ``.safetensors`` file, tensors only."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "weight file not found")
    if not path.is_file():
        raise CheckpointError(path, "not a file")
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            problem = f"not a readable safetensors file ({_short(exc)})"
            raise CheckpointError(path, problem) from None
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if not (magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80"):
        raise CheckpointError(path, "not a PyTorch checkpoint (neither a zip archive nor a pickle)")
    try:
        # argparse.Namespace: the run arguments DINO stores beside its weights (plain values only)
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            path,
            "not a plain tensor checkpoint: it holds Python objects, which are never unpickled "
            f"for safety ({_unsafe_global(exc)}). Save only the state dict (a dict of tensors).",
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError, ImportError,
            TypeError, IndexError) as exc:
        raise CheckpointError(path, f"not a PyTorch checkpoint ({_short(exc)})") from None


def find_state_dict(obj: object, path: Path, containers: Iterable[str]) -> dict[str, torch.Tensor]:
    """The tensor dict in ``obj``: the first of ``containers`` holding one, ``obj`` itself, or
    else the first nested tensor dict (whose keys the strict load then judges)."""
    if isinstance(obj, Mapping):
        for key in containers:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and _is_tensor_dict(inner):
                return dict(inner)
        if _is_tensor_dict(obj):
            return dict(obj)
        for inner in obj.values():  # some other wrapper: let the key check judge its content
            if isinstance(inner, Mapping) and _is_tensor_dict(inner):
                return dict(inner)
        tops = ", ".join(sorted(str(k) for k in obj)[:SHOW_KEYS])
        raise CheckpointError(
            path,
            f"no dict of tensors found (top-level keys: {tops}; looked inside: "
            f"{', '.join(containers)})",
        )
    raise CheckpointError(path, f"holds a {type(obj).__name__}, not a dict of tensors")


def strip_prefixes(state: Mapping[str, torch.Tensor], prefixes: Iterable[str]) -> dict:
    """Remove any of ``prefixes`` (repeatedly, in order) from the start of every key."""
    prefixes = tuple(prefixes)
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in prefixes:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


def load_strict(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    path: Path,
    architecture: str,
) -> None:
    """Copy ``state`` into ``module`` (float32), refusing any missing/unexpected/mis-shaped key.

    ``module`` may live on the meta device; its tensors are then replaced by the loaded ones.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if len(missing) == len(expected):
        raise CheckpointError(
            path,
            f"does not look like a {architecture} checkpoint: none of the {len(expected)} "
            f"expected weights is present (it holds {len(state)} tensors, e.g. "
            f"{_names(list(state))})",
        )
    shape_bad = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_names(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_names(unexpected)}")
    if shape_bad:
        problems.append(f"{len(shape_bad)} shape mismatch(es): {_names(shape_bad)}")
    if problems:
        raise CheckpointError(path, f"not a {architecture} checkpoint: " + "; ".join(problems))
    converted = {
        k: (state[k].to(torch.float32) if state[k].is_floating_point() else state[k]).contiguous()
        for k in expected
    }
    module.load_state_dict(converted, strict=True, assign=True)
    leftover = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
    if leftover:  # a buffer outside the state dict stayed uninitialised: a bug, not a user error
        raise RuntimeError(f"{architecture}: tensors not set by the checkpoint: {leftover[:5]}")


def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device`` for "cpu"/"cuda"/"cuda:N"; UserError when CUDA is requested but absent."""
    from core.errors import UserError

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {device!r}; use 'cpu' or 'cuda'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(
                f"device {device!r} requested but CUDA is not available "
                f"(torch {torch.__version__}, no usable GPU); use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(
                f"device {device!r} requested but only {torch.cuda.device_count()} GPU(s) exist"
            )
    elif dev.type != "cpu":
        raise UserError(f"unsupported device {device!r}; use 'cpu' or 'cuda'")
    return dev


def _is_tensor_dict(obj: Mapping) -> bool:
    return len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:SHOW_KEYS])
    return shown + (f", ... (+{len(items) - SHOW_KEYS} more)" if len(items) > SHOW_KEYS else "")


def _unsafe_global(exc: BaseException) -> str:
    """The 'Unsupported global: GLOBAL x.y' part of a weights-only refusal, if present."""
    match = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
    return f"found {match.group(1)}" if match else "unsupported pickle content"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]
