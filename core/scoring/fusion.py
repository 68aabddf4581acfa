"""Late (decision-level) fusion of per-modality anomaly scores into one score.

Fitted on the score vectors (n, m) of nominal samples (one column per modality, raw kNN-distance
units); used for image scores (n = images) and for maps (n = pixels, millions of rows). Every
mode increases with each modality's score, so the fused value is an anomaly score.

Modes
-----
``"sum"``    each column standardised by its nominal mean and std, then summed.
``"max"``    each column standardised likewise, then the maximum.
``"tail_sum"`` each column put in "good-tail units": u = max(0, (s - c) / t) with c the median
             and c + t the TAIL_QUANTILE of the column's nominal non-zero scores, then summed.
             One unit is how far this product's good parts reach on this modality, so a
             modality that is noisy here (heavy tail) is shrunk by its own tail, and the clip
             at 0 makes a modality with no data at a pixel (0: no 3D point, e.g. a hole)
             neutral instead of a vote for "normal". The default: on the evaluation suite's
             tuning group its worst fused-vs-best-single-modality I-AUROC gap was the smallest
             (docs/evaluation.md).
``"tail_max"``  the same units, then the maximum over modalities (higher mean, worse worst case).
``"ocsvm"``  M3DM's decision-layer fusion: scikit-learn ``SGDOneClassSVM(nu=0.5,
             random_state=42)`` fitted on the nominal score vectors; the fused score is its
             ``score_samples`` (the dot product w . z), used directly as in M3DM. The linear
             one-class SVM separates the data from the origin, and since the scores are
             non-negative distances w has non-negative components (a convex combination of
             support vectors), so w . z grows with every modality's score. This is why the
             columns are only *scaled* by their nominal std (z = s / std) and not centred:
             centring puts the origin inside the data and w collapses to noise. The per-column
             scale replaces M3DM's fixed 0.1 factor on the RGB score. At most 200 000 rows
             (seeded subsample) go into the SVM, and negative weights, which only SGD noise can
             produce, are clipped to 0 (all-zero weights fall back to equal ones).

In every mode, rows that are exactly 0 in all modalities (pure-background pixels of the maps) are
ignored when fitting, so the object's share of the image does not change the statistics.

The linear modes are evaluated as ``scores @ a + b``, so transforming millions of rows
is one matrix-vector product. ``state()`` is JSON-able (floats and strings), nothing is pickled.
"""

from __future__ import annotations

import math

import numpy as np

MODES = ("tail_sum", "tail_max", "sum", "max", "ocsvm")
TAIL_QUANTILE = 0.999  # nominal quantile that defines one "good-tail unit" per modality
MAX_SVM_ROWS = 200_000
_STATE_VERSION = 1


class LateFusion:
    """Fuses (n, m) per-modality scores into (n,) anomaly scores; see the module docstring."""

    def __init__(self, mode: str = "tail_sum"):
        if mode not in MODES:
            raise ValueError(f"fusion mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.mean: np.ndarray | None = None  # (m,) nominal mean (tail modes: median) per modality
        self.std: np.ndarray | None = None  # (m,) nominal std (tail modes: tail width) per modality
        self.coef: np.ndarray | None = None  # (m,) weights a of the linear form scores @ a + b
        self.bias: float = 0.0
        self.weights: np.ndarray | None = None  # (m,) tail modes: per-modality weight (None = 1);
        #   0 drops a modality the fit-time self-check found uninformative (core.self_check)

    @property
    def fitted(self) -> bool:
        return self.coef is not None

    @property
    def n_modalities(self) -> int | None:
        return None if self.coef is None else len(self.coef)

    # ----------------------------------------------------------------- fitting
    def fit(self, scores: np.ndarray, seed: int = 0) -> LateFusion:
        """Fit on nominal score vectors (n, m) (or (n,) for one modality)."""
        s = _as_scores(scores)
        if len(s) == 0:
            raise ValueError("cannot fit late fusion on zero rows")
        informative = np.any(s != 0, axis=1)
        if informative.any() and not informative.all():
            s = s[informative]  # drop pure-background pixels (all modalities exactly 0)
        if self.mode.startswith("tail_"):
            self.mean, self.std = _tail_stats(s)
            self.coef = 1.0 / self.std
            self.bias = 0.0
            return self
        mean = s.mean(axis=0, dtype=np.float64)
        std = s.std(axis=0, dtype=np.float64)
        tiny = 1e-12 * np.maximum(np.abs(mean), 1.0)
        std = np.where(std > tiny, std, 1.0)
        self.mean, self.std = mean, std
        if self.mode == "ocsvm":
            self.coef = _fit_ocsvm(s, std, seed) / std
            self.bias = 0.0
        else:
            self.coef = 1.0 / std
            self.bias = float(-(mean / std).sum())
        return self

    # --------------------------------------------------------------- inference
    def transform(self, scores: np.ndarray) -> np.ndarray:
        """Fused anomaly scores (n,), float32 for float32 input, else float64."""
        if not self.fitted:
            raise ValueError("late fusion is not fitted")
        s = _as_scores(scores)
        if s.shape[1] != len(self.coef):
            raise ValueError(f"expected {len(self.coef)} modality columns, got {s.shape[1]}")
        dtype = np.float32 if s.dtype == np.float32 else np.float64
        if self.mode.startswith("tail_"):
            z = self.tail_terms(s)
            return z.max(axis=1) if self.mode == "tail_max" else z.sum(axis=1)
        if self.mode == "max":
            z = (s - self.mean.astype(dtype)) / self.std.astype(dtype)
            return z.max(axis=1)
        out = s @ self.coef.astype(dtype)
        if self.bias:
            out += dtype(self.bias)
        return out

    def tail_terms(self, scores: np.ndarray) -> np.ndarray:
        """(n, m) each modality's weighted good-tail units max(0, w (s - c) / t) (tail modes
        only): the terms that ``transform`` adds (tail_sum) or takes the maximum of (tail_max)."""
        if not (self.fitted and self.mode.startswith("tail_")):
            raise ValueError("tail terms need a fitted tail_sum/tail_max fusion")
        s = _as_scores(scores)
        if s.shape[1] != len(self.coef):
            raise ValueError(f"expected {len(self.coef)} modality columns, got {s.shape[1]}")
        dtype = np.float32 if s.dtype == np.float32 else np.float64
        coef = self.coef if self.weights is None else self.coef * self.weights
        z = (s - self.mean.astype(dtype)) * coef.astype(dtype)
        return np.maximum(z, 0, out=z)

    def with_weights(self, weights) -> LateFusion:
        """A copy using per-modality ``weights`` (tail modes only; non-negative, not all 0)."""
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if not self.mode.startswith("tail_"):
            raise ValueError("per-modality weights apply to the tail_sum/tail_max modes only")
        if not self.fitted or len(w) != len(self.coef):
            raise ValueError("weights need a fitted fusion with one weight per modality")
        if not (np.isfinite(w).all() and (w >= 0).all() and (w > 0).any()):
            raise ValueError(f"fusion weights must be non-negative, finite and not all 0, got {w.tolist()}")
        out = LateFusion(self.mode)
        out.mean, out.std, out.coef, out.bias = self.mean, self.std, self.coef, self.bias
        out.weights = None if np.all(w == 1) else w
        return out

    def weighted_as(self, fusion) -> LateFusion:
        """This fusion with ``fusion``'s per-modality weights (a modality the self-check dropped
        stays out) when ``fusion`` has weights and this is a tail mode; else this fusion."""
        if fusion.weights is not None and self.mode.startswith("tail_"):
            return self.with_weights(fusion.weights)
        return self

    def fit_transform(self, scores: np.ndarray, seed: int = 0) -> np.ndarray:
        return self.fit(scores, seed).transform(scores)

    # ------------------------------------------------------------- persistence
    def state(self) -> dict:
        """JSON-able dict (str, int, floats and lists of floats)."""
        if not self.fitted:
            return {"version": _STATE_VERSION, "mode": self.mode, "fitted": False}
        return {
            "version": _STATE_VERSION,
            "mode": self.mode,
            "fitted": True,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "coef": [float(v) for v in self.coef],
            "bias": float(self.bias),
            **({"weights": [float(v) for v in self.weights]} if self.weights is not None else {}),
        }

    @classmethod
    def from_state(cls, state: dict) -> LateFusion:
        """Inverse of :meth:`state`; ValueError if malformed."""
        if not isinstance(state, dict):
            raise ValueError("late fusion state must be a dict")
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported late fusion state version {state.get('version')!r}")
        fusion = cls(state.get("mode"))
        if not state.get("fitted"):
            return fusion
        arrays = {}
        for key in ("mean", "std", "coef"):
            arr = np.asarray(state.get(key), dtype=np.float64)
            if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all():
                raise ValueError(f"late fusion state has a malformed {key!r}")
            arrays[key] = arr
        if not len(arrays["mean"]) == len(arrays["std"]) == len(arrays["coef"]):
            raise ValueError("late fusion state arrays differ in length")
        bias = float(state.get("bias", 0.0))
        if not math.isfinite(bias) or (arrays["std"] <= 0).any():
            raise ValueError("late fusion state has a non-finite bias or a non-positive std")
        fusion.mean, fusion.std, fusion.coef, fusion.bias = (
            arrays["mean"], arrays["std"], arrays["coef"], bias,
        )
        if "weights" in state:
            try:
                return fusion.with_weights(state["weights"])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"late fusion state has malformed weights ({exc})") from None
        return fusion

    def __repr__(self) -> str:
        return f"LateFusion(mode={self.mode!r}, fitted={self.fitted})"


def _as_scores(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2 or s.shape[1] == 0:
        raise ValueError(f"scores must be (n, m) or (n,), got shape {np.shape(scores)}")
    if s.dtype not in (np.float32, np.float64):
        s = s.astype(np.float64)
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    return s


def _tail_stats(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: (median, TAIL_QUANTILE - median) of the non-zero nominal scores."""
    centre = np.zeros(s.shape[1])
    width = np.ones(s.shape[1])
    for j in range(s.shape[1]):
        v = s[:, j]
        v = v[v != 0]
        if len(v) == 0:
            continue
        c = float(np.median(v))
        t = float(np.quantile(v, TAIL_QUANTILE)) - c
        if not t > 1e-12 * max(abs(c), 1.0):
            t = float(v.std()) or 1.0
        centre[j], width[j] = c, t
    return centre, width


def _fit_ocsvm(s: np.ndarray, std: np.ndarray, seed: int) -> np.ndarray:
    """SVM weights w (m,) for the std-scaled scores z = s / std (non-negative, not all zero)."""
    from sklearn.linear_model import SGDOneClassSVM

    z = s
    if len(z) > MAX_SVM_ROWS:
        z = z[np.sort(np.random.default_rng(seed).choice(len(z), MAX_SVM_ROWS, replace=False))]
    z = z.astype(np.float64) / std
    svm = SGDOneClassSVM(nu=0.5, random_state=42).fit(z)
    w = np.maximum(np.asarray(svm.coef_, dtype=np.float64).reshape(-1), 0.0)
    if not (w > 0).any() or not np.isfinite(w).all():
        w = np.ones(s.shape[1])
    return w


__all__ = ["LateFusion", "MODES", "MAX_SVM_ROWS", "TAIL_QUANTILE"]
