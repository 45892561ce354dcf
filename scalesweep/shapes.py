"""Transformer shapes for a parameter count, and the two ways papers count parameters.

A decoder-only transformer of ``n_layer`` blocks of width ``d_model`` (attention width d_attn = d_model, feed-
forward width d_ff = 4 d_model) has

* non-embedding parameters ``N_E = 2 d_model n_layer (2 d_attn + d_ff) = 12 n_layer d_model^2`` (Kaplan et al.
  2020, arXiv:2001.08361, Eq. 2.1; biases and layer norms ignored),
* embedding parameters ``n_vocab d_model``, plus ``n_ctx d_model`` for learned positions (Kaplan §2.1),
* total ``N_T = N_E + embedding`` (Hoffmann et al. 2022 count N this way: App. F).

At a fixed aspect ratio ``A = d_model / n_layer``, ``N_E = (12 / A) d_model^3``, so
``N_T = N_E + n_vocab (A / 12)^(1/3) N_E^(1/3)``: Pearce & Song 2024 (arXiv:2406.12907)'s
``N_T = N_E + omega N_E^(1/3)`` with ``omega = n_vocab (A / 12)^(1/3)`` (``omega``, ``to_total``).

``shape`` picks a concrete shape: the real d_model of the aspect ratio, rounded to a multiple of the head size
(n_heads = d_model / head size), then the whole number of layers nearest the target count. Every function
works on floats and numpy arrays alike; NaN (an infeasible row) gives NaN.

The accepted deviation: the shape's non-embedding count ``12 n_layer d_model^2`` is within half a layer
(``6 d_model^2``) of the requested non-embedding count N_E, with d_model the width after rounding to the head
size, so that n_layer is the nearest whole number of layers and never a floor of one layer forced on a model
too small for it (relative deviation at most 1 / (2 n_layer - 1): 1% or less from 51 layers). A row that no shape
meets (less than half a layer of that width: a head size or aspect ratio far too large for the model, or a
model smaller than one head's layer) is refused with one line naming the option to change,
never answered with a shape many times the row's params.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ScalesweepError

# GPT-3 175B (Brown et al. 2020, arXiv:2005.14165, Table 2.1): 96 layers of d_model 12,288 in 96 heads of 128,
# an aspect ratio of 128; Kaplan et al. 2020 §3.1 (Fig. 5) find the loss within a few percent of the best for
# aspect ratios from about 20 to 200 at fixed N, so the shape is a convention more than an optimum.
DEFAULT_ASPECT_RATIO = 128.0
DEFAULT_HEAD_SIZE = 128
DEFAULT_VOCAB = 50257  # GPT-2 byte-level BPE, the vocabulary of Kaplan et al. 2020 (§2)
DEFAULT_CONTEXT = 1024  # n_ctx of Kaplan et al. 2020 (§2): the context of every run behind their laws
FF_MULT = 4  # d_ff = 4 d_model (Kaplan Eq. 2.1's standard shape)
NON_EMBEDDING_PER_LAYER_D2 = 12  # N_E = 12 n_layer d_model^2 (Kaplan Eq. 2.1)
CONVENTIONS = ("total", "non_embedding")


def omega(n_vocab, aspect_ratio, n_ctx=0):
    """The embedding coefficient of ``N_T = N_E + omega N_E^(1/3)`` at a fixed aspect ratio: the embedding
    rows (vocabulary, plus positions when counted) times ``(A / 12)^(1/3)``."""
    return (np.asarray(n_vocab, dtype=np.float64) + n_ctx) * np.cbrt(np.asarray(aspect_ratio, dtype=np.float64)
                                                                     / NON_EMBEDDING_PER_LAYER_D2)


def to_total(non_embedding, n_vocab=DEFAULT_VOCAB, aspect_ratio=DEFAULT_ASPECT_RATIO, n_ctx=0):
    """Total parameters of a model with ``non_embedding`` parameters at the aspect ratio (real-valued d_model)."""
    n_e = np.asarray(non_embedding, dtype=np.float64)
    return n_e + omega(n_vocab, aspect_ratio, n_ctx) * np.cbrt(n_e)


def to_non_embedding(total, n_vocab=DEFAULT_VOCAB, aspect_ratio=DEFAULT_ASPECT_RATIO, n_ctx=0):
    """The inverse of ``to_total``: x = N_E^(1/3) solves x^3 + omega x = N_T (one positive root; Newton from
    x = N_T^(1/3), which lies above it, decreases monotonically to it)."""
    n_t = np.asarray(total, dtype=np.float64)
    w = omega(n_vocab, aspect_ratio, n_ctx)
    x = np.cbrt(n_t)
    with np.errstate(invalid="ignore"):
        for _ in range(100):
            step = (x * x * x + w * x - n_t) / (3.0 * x * x + w)
            x = x - step
            if not np.any(np.abs(step) > 1e-15 * np.abs(x)):
                break
    return x * x * x


@dataclass(frozen=True)
class ShapeSpec:
    """How a parameter count becomes a shape: vocabulary, context, aspect ratio d_model / n_layer, head size,
    whether learned positions count as embedding parameters, and the convention of the count."""

    vocab: float = DEFAULT_VOCAB
    context: float = DEFAULT_CONTEXT
    aspect_ratio: float = DEFAULT_ASPECT_RATIO
    head_size: float = DEFAULT_HEAD_SIZE
    positional: bool = False
    convention: str = "total"

    def __post_init__(self):
        if self.convention not in CONVENTIONS:
            raise ScalesweepError(f"unknown parameter convention {self.convention!r} "
                                  f"(one of: {', '.join(CONVENTIONS)})")

    @property
    def embedding_rows(self) -> float:
        return self.vocab + (self.context if self.positional else 0.0)


def shape(params, spec: ShapeSpec = ShapeSpec()) -> dict:
    """The shape for ``params`` (counted in ``spec.convention``): columns n_layer, d_model, n_heads, d_ff,
    non_embedding_params, embedding_params and total_params of the rounded shape (float arrays; NaN in, NaN
    out). The target's non-embedding part sets the shape: d = (A N_E / 12)^(1/3) rounded to a multiple of the
    head size (at least one head), n_layer = round(N_E / (12 d^2)) (at least one)."""
    n = np.asarray(params, dtype=np.float64)
    rows = spec.embedding_rows
    n_e = n if spec.convention == "non_embedding" else to_non_embedding(n, rows, spec.aspect_ratio)
    with np.errstate(invalid="ignore"):
        d_real = np.cbrt(spec.aspect_ratio * n_e / NON_EMBEDDING_PER_LAYER_D2)
        h = spec.head_size
        d_model = np.maximum(h, h * np.round(d_real / h))
        n_layer = np.maximum(1.0, np.round(n_e / (NON_EMBEDDING_PER_LAYER_D2 * d_model * d_model)))
        nan = np.isnan(n_e)
        d_model, n_layer = np.where(nan, np.nan, d_model), np.where(nan, np.nan, n_layer)
        non_embedding = NON_EMBEDDING_PER_LAYER_D2 * n_layer * d_model * d_model
        embedding = rows * d_model
        too_thin = n_e < 0.5 * NON_EMBEDDING_PER_LAYER_D2 * d_model * d_model  # under half a layer (NaN: False)
    if np.any(too_thin):
        _refuse(n, n_e, d_real, d_model, too_thin, spec)
    return {"n_layer": n_layer, "d_model": d_model, "n_heads": d_model / h, "d_ff": FF_MULT * d_model,
            "non_embedding_params": non_embedding, "embedding_params": embedding,
            "total_params": non_embedding + embedding}


def _refuse(n, n_e, d_real, d_model, too_thin, spec: ShapeSpec):
    """The one-line error for the first row without a shape within half a layer of its count, naming the
    option behind it: the head size where one head is wider than the aspect ratio's d_model would be, else
    the aspect ratio."""
    i = int(np.argmax(np.broadcast_to(too_thin, np.shape(too_thin)).reshape(-1)))
    pick = [float(np.broadcast_to(a, np.shape(too_thin)).reshape(-1)[i]) for a in (n, n_e, d_real, d_model)]
    n_i, n_e_i, d_real_i, d_i = pick
    layer = NON_EMBEDDING_PER_LAYER_D2 * d_i * d_i
    what = (f"params {n_i:.4g}" if spec.convention == "non_embedding"
            else f"params {n_i:.4g} ({n_e_i:.4g} of them non-embedding)")
    if d_real_i < spec.head_size / 2:
        why = (f"one head of --head-size {spec.head_size:g} is wider than the d_model {d_real_i:.4g} of "
               f"--aspect-ratio {spec.aspect_ratio:g}, and one layer that wide holds {layer:.4g} parameters; give a "
               "smaller --head-size, or a larger budget")
    else:
        why = (f"--aspect-ratio {spec.aspect_ratio:g} gives d_model {d_i:g}, and one layer that wide holds "
               f"{layer:.4g} parameters; give a smaller --aspect-ratio")
    raise ScalesweepError(f"no transformer shape within half a layer of {what}: {why}")


SHAPE_COLUMNS = ("n_layer", "d_model", "n_heads", "non_embedding_params", "embedding_params")

# Training FLOPs per token (forward + backward = 3 x forward), as a function of the law's N:
#   6N          C = 6 N D, the convention of every preset (Kaplan §2.1, Hoffmann §3);
#   kaplan      6 N_E + 6 n_layer n_ctx d_model: Kaplan Eq. 2.2's forward 2 N + 2 n_layer n_ctx d_attn, times 3;
#   chinchilla  3 x Hoffmann et al. 2022 App. F's full forward count per token: embeddings 2 V d, per layer
#               QKV 6 d^2, scores 2 n_ctx d, softmax 3 h n_ctx, values 2 n_ctx d, output 2 d^2, dense 16 d^2
#               (d_ff = 4 d), logits 2 d V; that is 2 N_E + n_layer (4 n_ctx d + 3 h n_ctx) + 4 V d.
# kaplan and chinchilla use the real-valued shape of the aspect ratio (d = (A N_E / 12)^(1/3), n_layer = d / A,
# h = d / head size), so the count is smooth in N. With y = N_E^(1/3) and kappa = (A / 12)^(1/3) (so d = kappa y)
# both N and f are polynomials in y (``flops_coefficients``):
#   N(y) = y^3 + n1 y                 n1 = omega for a total count (``to_total``), 0 for a non-embedding one;
#   f(y) = 6 y^3 + f2 y^2 + f1 y      6N: f2 = 0, f1 = 6 n1 (f = 6 N);
#                                     kaplan: f2 = 6 n_ctx kappa^2 / A, f1 = 0;
#                                     chinchilla: f2 = 3 n_ctx (4 + 3 / h_size) kappa^2 / A, f1 = 12 V kappa.
FLOPS_MODELS = FLOPS_6N, FLOPS_KAPLAN, FLOPS_CHINCHILLA = ("6N", "kaplan", "chinchilla")


def flops_coefficients(model: str, spec: ShapeSpec = ShapeSpec()) -> tuple[float, float, float]:
    """(n1, f2, f1) of N(y) = y^3 + n1 y and f(y) = 6 y^3 + f2 y^2 + f1 y, y = N_E^(1/3) (see above)."""
    if model not in FLOPS_MODELS:
        raise ScalesweepError(f"unknown FLOPs model {model!r} (one of: {', '.join(FLOPS_MODELS)})")
    a = float(spec.aspect_ratio)
    kappa = float(np.cbrt(a / NON_EMBEDDING_PER_LAYER_D2))
    n1 = float(omega(spec.embedding_rows, a)) if spec.convention == "total" else 0.0
    if model == FLOPS_6N:
        return n1, 0.0, 6.0 * n1
    if model == FLOPS_KAPLAN:
        return n1, 6.0 * spec.context * kappa * kappa / a, 0.0
    return n1, 3.0 * spec.context * (4.0 + 3.0 / spec.head_size) * kappa * kappa / a, 12.0 * spec.vocab * kappa


def flops_per_token(params, model: str, spec: ShapeSpec = ShapeSpec()):
    """Training FLOPs per token of a model of ``params`` parameters (counted in ``spec.convention``) under
    ``model`` (``FLOPS_MODELS``)."""
    n = np.asarray(params, dtype=np.float64)
    n1, f2, f1 = flops_coefficients(model, spec)
    if model == FLOPS_6N:
        return 6.0 * n
    n_e = n if spec.convention == "non_embedding" else to_non_embedding(n, spec.embedding_rows, spec.aspect_ratio)
    y = np.cbrt(n_e)
    return 6.0 * n_e + (f2 * y + f1) * y
