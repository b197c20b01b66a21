"""The MLP behind every predictor, with Hedge Backpropagation (NASOA Eq. 3-4; Sahoo et al. 2018).

Network (Eq. 3): ``h_0`` = encoded meta-features, ``h_l = ReLU(Phi_l h_{l-1} + b_l)`` for
``l = 1..L`` (``hidden_units`` each), and a linear output head ``f_l = W_l h_l + c_l``. The
**adaptive** MLP has a head at every depth and predicts ``sum_l alpha_l f_l``; a **fixed-depth**
MLP is the same network with a single head at depth ``L`` (``alpha = (1)``). Biases are added to
the paper's ``Phi_l h`` / ``h W_l`` as in any MLP regression (and in Sahoo et al.'s code).
Initialisation: Glorot-uniform weights, zero biases: the default of an MLP regression in
scikit-learn and Keras (NASOA does not say which it used). The choice matters for deep MLPs trained
online: under PyTorch's ``nn.Linear`` default (``+-1/sqrt(fan_in)``) the signal shrinks ~6x per ReLU
layer and heads beyond the 3rd barely learned within a few thousand single-sample steps on our
test streams; with He initialisation depth cost nothing there. Glorot sits between.

**Loss** ``L(f, y)`` with the target ``y`` (test accuracy) a fraction in ``[0, 1]``:
``"absolute"`` (default) ``|f - y|`` or ``"squared"`` ``(f - y)^2``. Hedge is given the loss of the
head's output clipped to ``[0, 1]`` (the range of an accuracy); gradients are those of the unclipped
loss (for ``f`` in ``[0, 1]`` the two agree; outside, the unclipped gradient still pulls ``f`` back).
Since Hedge normalises the losses of each step (below), its behaviour no longer depends on the
loss's scale: the choice between the two is about the gradients only (the absolute error's are
its sign, the squared error's are proportional to the error).

**Online step** (Eq. 4), per arriving sample, after the prediction was made, as Sahoo et al.'s
released code runs it (``github.com/LIBOL/ODL``, Keras 1; ``training.py``: ``Model.compile(...,
hedge=True)`` and ``src/hbp/model.py``: ``MyCallback.on_batch_end``):

1. gradient step (plain SGD, learning rate ``eta``) on ``sum_l alpha_l L(f_l, y)``: head ``W_l``
   gets ``alpha_l * grad L(f_l)``; hidden ``Phi_l`` gets ``sum_{j >= l} alpha_j grad L(f_j)``
   (every deeper head backpropagates through it), computed with the ``alpha`` that made the
   prediction. Their code does exactly this: with ``hedge=True`` the total loss is the dot product
   of the current Hedge weights (fed in as placeholders each batch) with the per-output losses,
   differentiated as one loss, and the weights change only after the batch. A consequence worth
   knowing when reading Table 3: with ``alpha`` near uniform each head of the adaptive MLP moves
   ~L times less per step than the single head of a fixed MLP with the same learning rate;
2. Hedge (:func:`hedge_update`) on the step's head losses **normalised** to ``[0, 1]``: their code
   divides the losses by their sum, then min-max scales them, so the best head of the step gets 0
   and the worst 1 (dividing by the sum changes nothing after the min-max; we skip it). Then
   ``alpha_l <- alpha_l * beta^{L_l}``. Without it, raw losses ~0.17 with ``beta = 0.99`` change
   ``alpha`` by ~0.2 % per step, and two heads 0.02 apart in loss differ by ~1.3x after 1,300 steps:
   ``alpha`` cannot move at our stream length. With it, a head that is the step's best gains up to
   ``1 / beta`` on the worst each step, whatever the losses' scale. A step whose losses are all equal
   carries no information and leaves ``alpha`` unchanged (their code divides 0 by 0 there);
3. smoothing floor: ``alpha_l <- max(alpha_l, s / L)``, then renormalise to sum 1 (so every weight
   stays >= s / (L (1 + s)) after normalisation). With ``s > 0`` no head ever dies, so a deep head
   that starts badly keeps receiving gradient and can win later; ``s = 0`` is plain Hedge. Default
   ``s = 0.2`` (Sahoo et al.'s paper). Their code floors at the constant 0.01 instead, ~``s / L``
   for ``s = 0.2`` and the 19 heads of their released configuration (``src/hbp/hb19.yaml``:
   0.2 / 19 = 0.0105); we keep the paper's ``s / L`` so the floor scales with our L = 10.

Theorem 1's regret bound holds for the normalised losses Hedge sees (they lie in ``[0, 1]``).

Everything is numpy (float64) with a hand-written backward pass: one update on a 64-unit,
10-layer net is ~60 small array operations, where autograd's per-op overhead dominates (a textbook
PyTorch per-sample step of the fixed L = 10 MLP is ~3x slower, ``benchmarks/online_update.py``).
Tests check the gradients against ``torch.autograd``. The matrices are tiny, so BLAS runs on one
thread (:func:`single_thread_blas`): on a busy 2-core machine a threaded 500 x 64 product waited
for a second thread ~100x longer than it computed.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Iterator, Mapping

import numpy as np
from scipy.linalg.blas import dger as _dger

from nasoa_lib.errors import InvalidPredictorConfig

LOSSES = ("absolute", "squared")


@dataclass(frozen=True)
class NetworkConfig:
    """Shape and online learning rule of one MLP (see the module docstring)."""

    depth: int = 10
    hidden_units: int = 64
    hedge: bool = True
    lr: float = 0.01
    beta: float = 0.99
    smoothing: float = 0.2
    loss: str = "absolute"

    def __post_init__(self) -> None:
        def bad(message: str, hint: str) -> InvalidPredictorConfig:
            return InvalidPredictorConfig(message, hint=hint)

        if int(self.depth) != self.depth or self.depth < 1:
            raise bad(f"depth={self.depth!r} must be an int >= 1", "NASOA uses L = 10 (fixed baselines 3, 6, 10, 14)")
        if int(self.hidden_units) != self.hidden_units or self.hidden_units < 1:
            raise bad(f"hidden_units={self.hidden_units!r} must be an int >= 1", "NASOA uses 64 units per layer")
        if not (0.0 < self.lr < 10.0):
            raise bad(f"lr={self.lr!r} must be in (0, 10)", "NASOA uses eta = 0.01")
        if not (0.0 < self.beta < 1.0):
            raise bad(f"beta={self.beta!r} must be in (0, 1)", "NASOA uses beta = 0.99")
        if not (0.0 <= self.smoothing < 1.0):
            raise bad(f"smoothing={self.smoothing!r} must be in [0, 1)", "0 = plain Hedge; Sahoo et al. use 0.2")
        if self.loss not in LOSSES:
            raise bad(f"loss={self.loss!r} is not one of {LOSSES}", "'absolute' = |f - y|, 'squared' = (f - y)^2")
        object.__setattr__(self, "depth", int(self.depth))
        object.__setattr__(self, "hidden_units", int(self.hidden_units))

    @property
    def head_layers(self) -> tuple[int, ...]:
        """0-based hidden layers that carry an output head."""
        return tuple(range(self.depth)) if self.hedge else (self.depth - 1,)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "NetworkConfig":
        return cls(**dict(data))


@lru_cache(maxsize=1)
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def single_thread_blas() -> Iterator[None]:
    """Run numpy's BLAS on one thread inside the block (~10 us to enter)."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


def _rank_one_update(matrix: np.ndarray, scale: float, left: np.ndarray, right: np.ndarray) -> None:
    """``matrix += scale * outer(left, right)`` in place with BLAS ``dger`` (one pass, no temporary).

    ``matrix`` is C-ordered, so its transpose is the Fortran-ordered array ``dger`` updates in place.
    """
    updated = _dger(scale, right, left, a=matrix.T, overwrite_a=True)
    if not np.shares_memory(updated, matrix):  # pragma: no cover - only if BLAS had to copy
        matrix[...] = updated.T


def bounded_loss(prediction: np.ndarray | float, target: np.ndarray | float, kind: str) -> np.ndarray:
    """The loss Hedge sees: of the prediction clipped to [0, 1], so it lies in [0, 1] (Theorem 1)."""
    diff = np.clip(prediction, 0.0, 1.0) - target
    return np.abs(diff) if kind == "absolute" else diff * diff


def loss_gradient(prediction: np.ndarray, target: np.ndarray | float, kind: str) -> np.ndarray:
    """d L(f, y) / d f of the unclipped loss."""
    diff = prediction - target
    return np.sign(diff) if kind == "absolute" else 2.0 * diff


def normalized_losses(losses: np.ndarray) -> np.ndarray:
    """One step's head losses min-max scaled to ``[0, 1]`` (Sahoo et al.'s code, module docstring):
    the step's best head gets 0, its worst 1; all zeros when every head lost the same."""
    losses = np.asarray(losses, dtype=np.float64)
    low, spread = losses.min(), np.ptp(losses)
    if not np.isfinite(spread) or spread <= 0.0:
        return np.zeros_like(losses)
    return (losses - low) / spread


def hedge_update(alpha: np.ndarray, losses: np.ndarray, beta: float, smoothing: float = 0.0, *,
                 normalize: bool = True) -> np.ndarray:
    """One Hedge step (NASOA Eq. 4, as Sahoo et al.'s code runs it): ``alpha * beta**losses`` on the
    step's losses normalised by :func:`normalized_losses` (``normalize=False``: the raw losses, plain
    Hedge of Theorem 1), floored at ``smoothing / L`` (skipped when ``smoothing=0``), renormalised
    to sum 1. The only place the Hedge weights change."""
    losses = normalized_losses(losses) if normalize else np.asarray(losses, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64) * np.power(beta, losses)
    if smoothing > 0.0:
        alpha = np.maximum(alpha, smoothing / alpha.size)
    return alpha / alpha.sum()


class HedgeMLP:
    """An MLP with output heads and Hedge-weighted mixing; adaptive or fixed by ``config.hedge``."""

    def __init__(self, config: NetworkConfig, input_dim: int, seed: int = 0) -> None:
        if input_dim < 1:
            raise InvalidPredictorConfig(f"input_dim={input_dim} must be >= 1", hint="encode at least one feature")
        self.config = config
        self.input_dim = int(input_dim)
        rng = np.random.default_rng(seed)
        units = config.hidden_units
        self.weights: list[np.ndarray] = []
        self.biases: list[np.ndarray] = []
        fan_in = self.input_dim
        for _ in range(config.depth):
            bound = np.sqrt(6.0 / (fan_in + units))
            self.weights.append(rng.uniform(-bound, bound, size=(fan_in, units)))
            self.biases.append(np.zeros(units))
            fan_in = units
        heads = len(config.head_layers)
        bound = np.sqrt(6.0 / (units + 1))
        self.head_weights = rng.uniform(-bound, bound, size=(heads, units))
        self.head_biases = np.zeros(heads)
        self.alpha = np.full(heads, 1.0 / heads)
        self.updates = 0
        self._head_of = {layer: k for k, layer in enumerate(config.head_layers)}

    # ---- forward / backward -------------------------------------------------------------------

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Head outputs ``(n, heads)`` and the hidden activations ``[h_1 .. h_L]``."""
        h = np.asarray(x, dtype=np.float64)
        hidden = []
        outputs = np.empty((h.shape[0], len(self.head_biases)))
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w
            h += b
            np.maximum(h, 0.0, out=h)
            hidden.append(h)
            k = self._head_of.get(layer)
            if k is not None:
                outputs[:, k] = h @ self.head_weights[k] + self.head_biases[k]
        return outputs, hidden

    def head_outputs(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``sum_l alpha_l f_l`` per row (not clipped)."""
        with single_thread_blas():
            return self.head_outputs(x) @ self.alpha

    def gradients(self, x: np.ndarray, hidden: list[np.ndarray], grad_out: np.ndarray) -> dict[str, Any]:
        """Gradients of ``sum_{i,k} grad_out[i,k] * f_k(x_i)`` w.r.t. every parameter (backprop)."""
        x = np.asarray(x, dtype=np.float64)
        g_head_w = np.empty_like(self.head_weights)
        g_head_b = grad_out.sum(axis=0)
        g_w: list[np.ndarray] = [None] * self.config.depth  # type: ignore[list-item]
        g_b: list[np.ndarray] = [None] * self.config.depth  # type: ignore[list-item]
        g_h = np.zeros_like(hidden[-1])
        for layer in range(self.config.depth - 1, -1, -1):
            h = hidden[layer]
            k = self._head_of.get(layer)
            if k is not None:
                g_head_w[k] = grad_out[:, k] @ h
                g_h += np.outer(grad_out[:, k], self.head_weights[k])
            g_z = g_h * (h > 0.0)
            below = hidden[layer - 1] if layer > 0 else x
            g_w[layer] = below.T @ g_z
            g_b[layer] = g_z.sum(axis=0)
            if layer > 0:
                g_h = g_z @ self.weights[layer].T
        return {"weights": g_w, "biases": g_b, "head_weights": g_head_w, "head_biases": g_head_b}

    def _apply(self, grads: Mapping[str, Any], lr: float) -> None:
        for w, g in zip(self.weights, grads["weights"]):
            w -= lr * g
        for b, g in zip(self.biases, grads["biases"]):
            b -= lr * g
        self.head_weights -= lr * grads["head_weights"]
        self.head_biases -= lr * grads["head_biases"]

    # ---- the online step (Eq. 4) ---------------------------------------------------------------

    def learn(self, x: np.ndarray, target: float) -> tuple[float, np.ndarray, np.ndarray]:
        """Predict ``x`` (one row), then one HBP step on the observed ``target``.

        Returns ``(prediction, head_losses, alpha_used)``: the unclipped mixed prediction made
        *before* learning, each head's bounded loss and the alpha that weighted them.

        The same step as :meth:`gradients` + an SGD update, fused for one row: each layer's
        gradient is applied as soon as the layer below has received its backpropagated signal
        (computed with the old weights), on 1-D vectors, with in-place rank-one BLAS updates;
        ~3x faster than the batched path.
        """
        h = np.asarray(x, dtype=np.float64).reshape(self.input_dim)
        below = [h]
        outputs = np.empty(len(self.head_biases))
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w
            h += b
            np.maximum(h, 0.0, out=h)
            below.append(h)
            k = self._head_of.get(layer)
            if k is not None:
                outputs[k] = h @ self.head_weights[k] + self.head_biases[k]
        alpha = self.alpha
        prediction = float(outputs @ alpha)
        loss = self.config.loss
        head_losses = bounded_loss(outputs, target, loss)
        grad_out = alpha * loss_gradient(outputs, target, loss)
        lr = self.config.lr
        g_h = np.zeros(self.config.hidden_units)
        for layer in range(self.config.depth - 1, -1, -1):
            h = below[layer + 1]
            k = self._head_of.get(layer)
            if k is not None:
                g_h += grad_out[k] * self.head_weights[k]
                self.head_weights[k] -= (lr * grad_out[k]) * h
                self.head_biases[k] -= lr * grad_out[k]
            g_z = g_h * (h > 0.0)
            w = self.weights[layer]
            if layer > 0:
                g_h = w @ g_z
            _rank_one_update(w, -lr, below[layer], g_z)
            self.biases[layer] -= lr * g_z
        if self.config.hedge and alpha.size > 1:
            self.alpha = hedge_update(alpha, head_losses, self.config.beta, self.config.smoothing)
        self.updates += 1
        return prediction, head_losses, alpha

    # ---- offline training (the "offline fixed MLP" baseline) -----------------------------------

    def fit(self, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int, lr: float, seed: int = 0,
            weight_decay: float = 0.0) -> list[float]:
        """Offline mini-batch Adam on the mean loss of the alpha-mixed output; returns epoch losses.

        Used once for the offline baseline (NASOA 4.3: trained on the 24K split, then frozen).
        """
        with single_thread_blas():
            return self._adam_epochs(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64),
                                     int(epochs), int(batch_size), lr, np.random.default_rng(seed), weight_decay)

    def _adam_epochs(self, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, lr: float,
                     rng: np.random.Generator, weight_decay: float) -> list[float]:
        params = self._params()
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        beta1, beta2, eps, step = 0.9, 0.999, 1e-8, 0
        history = []
        for _ in range(epochs):
            order = rng.permutation(len(y))
            total = 0.0
            for start in range(0, len(y), batch_size):
                idx = order[start:start + batch_size]
                outputs, hidden = self.forward(x[idx])
                mixed = outputs @ self.alpha
                total += float(bounded_loss(mixed, y[idx], self.config.loss).sum())
                grad_out = np.outer(loss_gradient(mixed, y[idx], self.config.loss), self.alpha) / len(idx)
                grads = self.gradients(x[idx], hidden, grad_out)
                flat = [*grads["weights"], *grads["biases"], grads["head_weights"], grads["head_biases"]]
                step += 1
                for p, g, mi, vi in zip(params, flat, m, v):
                    if weight_decay:
                        g = g + weight_decay * p
                    mi *= beta1
                    mi += (1 - beta1) * g
                    vi *= beta2
                    vi += (1 - beta2) * g * g
                    p -= lr * (mi / (1 - beta1**step)) / (np.sqrt(vi / (1 - beta2**step)) + eps)
            history.append(total / len(y))
        return history

    def _params(self) -> list[np.ndarray]:
        return [*self.weights, *self.biases, self.head_weights, self.head_biases]

    # ---- state ---------------------------------------------------------------------------------

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every array of the learner's state (weights, biases, heads, alpha), copied."""
        out = {f"weight_{i}": w.copy() for i, w in enumerate(self.weights)}
        out.update({f"bias_{i}": b.copy() for i, b in enumerate(self.biases)})
        out.update(head_weights=self.head_weights.copy(), head_biases=self.head_biases.copy(),
                   alpha=self.alpha.copy())
        return out

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray], updates: int) -> None:
        expected = set(self.state_arrays())
        missing = sorted(expected - set(arrays))
        if missing:
            raise InvalidPredictorConfig(f"saved predictor state lacks {missing}",
                                         hint="the file is not a predictor saved by this library; re-train it")
        for name, current in self.state_arrays().items():
            if np.shape(arrays[name]) != current.shape:
                raise InvalidPredictorConfig(
                    f"saved array {name!r} has shape {np.shape(arrays[name])}, expected {current.shape}",
                    hint="the saved predictor was built with other settings; load it with its own config")
        self.weights = [np.array(arrays[f"weight_{i}"], dtype=np.float64) for i in range(self.config.depth)]
        self.biases = [np.array(arrays[f"bias_{i}"], dtype=np.float64) for i in range(self.config.depth)]
        self.head_weights = np.array(arrays["head_weights"], dtype=np.float64)
        self.head_biases = np.array(arrays["head_biases"], dtype=np.float64)
        self.alpha = np.array(arrays["alpha"], dtype=np.float64)
        self.updates = int(updates)
