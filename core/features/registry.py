"""Registry of frozen feature extractors, looked up by name.

Extractor modules register a factory with ``@register(name, modality)``. Modules listed in
:data:`KNOWN_MODULES` are imported lazily the first time one of their names is asked for, so
heavy dependencies (timm, weights) load only when used and new backbones need one entry here.

Every extractor follows the :class:`FeatureExtractor` protocol: ``extract(batch, grid)`` turns a
list of S×S inputs into a (B, dim, grid, grid) float32 tensor of patch features.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from typing import Callable, Protocol, runtime_checkable

import numpy as np
import torch

from core.errors import UserError

MODALITIES = ("rgb", "xyz")

# name -> (module that registers it, modality). Modules may be absent (added by other work).
KNOWN_MODULES: dict[str, tuple[str, str]] = {
    "efficientnet_lite0": ("core.features.rgb_efficientnet", "rgb"),
    "efficientnet_lite1": ("core.features.rgb_efficientnet", "rgb"),
    "efficientnet_lite2": ("core.features.rgb_efficientnet", "rgb"),
    "fpfh": ("core.features.fpfh", "xyz"),
    "fpfh_surface": ("core.features.surface", "xyz"),
    "dino_vitb8": ("core.features.dino_vit", "rgb"),
    "pointmae": ("core.features.pointmae", "xyz"),
}

DEFAULTS = {"rgb": "efficientnet_lite0", "xyz": "fpfh_surface"}


@runtime_checkable
class FeatureExtractor(Protocol):
    """A frozen backbone producing patch features on a square grid."""

    name: str
    modality: str  # "rgb" | "xyz"
    dim: int  # channels of the output
    weights_id: str  # SHA-256 prefix of the weight file, or "none" for weight-free features
    params: dict  # keyword arguments: create_extractor(name, **params) recreates it

    def extract(self, batch: list[np.ndarray], grid: int = 28, progress=None) -> torch.Tensor:
        """(B, dim, grid, grid) float32 features for S×S×3 uint8 images or float32 clouds.
        ``progress`` (a core.progress.Progress or None) is checked between samples, so a
        cancel stops the batch there (Cancelled)."""
        ...


_FACTORIES: dict[str, tuple[Callable[..., FeatureExtractor], str]] = {}


def register(name: str, modality: str) -> Callable:
    """Decorator registering ``factory(**kwargs) -> FeatureExtractor`` under ``name``."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")

    def decorate(factory: Callable[..., FeatureExtractor]) -> Callable[..., FeatureExtractor]:
        _FACTORIES[name] = (factory, modality)
        return factory

    return decorate


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _ensure_loaded(name: str) -> None:
    if name in _FACTORIES or name not in KNOWN_MODULES:
        return
    module, _ = KNOWN_MODULES[name]
    if not _module_exists(module):
        return
    try:
        importlib.import_module(module)
    except ImportError as exc:  # the module is there but one of its dependencies is not
        raise UserError(f"feature extractor {name!r} cannot be loaded: {exc}") from None


def available(modality: str | None = None) -> list[str]:
    """Sorted extractor names (optionally of one modality) whose code is present.

    Does not import lazily-registered modules; whether their weights exist is checked only
    when the extractor is created.
    """
    if modality is not None and modality not in MODALITIES:
        raise UserError(f"unknown modality {modality!r}; use one of {', '.join(MODALITIES)}")
    names = {n: m for n, (_, m) in _FACTORIES.items()}
    for name, (module, mod) in KNOWN_MODULES.items():
        if name not in names and _module_exists(module):
            names[name] = mod
    return sorted(n for n, m in names.items() if modality is None or m == modality)


def modality_of(name: str) -> str:
    """"rgb" or "xyz" for a known extractor name (UserError if unknown)."""
    if name in _FACTORIES:
        return _FACTORIES[name][1]
    if name in KNOWN_MODULES and _module_exists(KNOWN_MODULES[name][0]):
        return KNOWN_MODULES[name][1]
    raise _unknown(name)


def create_extractor(name: str, **kwargs) -> FeatureExtractor:
    """Build the extractor registered under ``name`` with the factory's keyword arguments."""
    _ensure_loaded(name)
    if name not in _FACTORIES:
        raise _unknown(name)
    factory, _ = _FACTORIES[name]
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:
        raise UserError(f"feature extractor {name!r}: {exc}") from None
    return factory(**kwargs)


def param_defaults(name: str) -> dict:
    """{keyword: (default, annotation text)} of the factory registered as ``name`` (keywords
    with a default only)."""
    _ensure_loaded(name)
    if name not in _FACTORIES:
        raise _unknown(name)
    params = inspect.signature(_FACTORIES[name][0]).parameters.values()
    return {
        p.name: (p.default, p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", ""))
        for p in params
        if p.default is not inspect.Parameter.empty
    }


def accepts(name: str, option: str) -> bool:
    """Whether the factory registered as ``name`` takes the keyword argument ``option``."""
    _ensure_loaded(name)
    entry = _FACTORIES.get(name)
    return entry is not None and option in inspect.signature(entry[0]).parameters


def _unknown(name: str) -> UserError:
    known = available()
    hint = ""
    if name in KNOWN_MODULES:
        module = KNOWN_MODULES[name][0]
        state = "did not register it" if _module_exists(module) else "is not installed"
        hint = f" (its module {module} {state})"
    return UserError(
        f"unknown feature extractor {name!r}{hint}; known: {', '.join(known) or 'none'}"
    )
