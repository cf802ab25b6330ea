"""What an encoder's frozen features know: linear probes to the true state, and the state's own ceiling.

- ``encoder_features``: an encoder's features of every frame of a ``FrameSet`` (the k frames ending
  at each), computed once and reused by every probe and frozen-feature head.
- ``probe_r2``: ridge regression on standardised features from features to true variables (bar and
  puck positions; the puck's velocity needs k >= 2), its penalty chosen by leave-one-out error on the
  training frames, scored by R² on held-out frames. R² near 1: the features hold the variable
  linearly; near 0: they do not. ``ridge_loo`` solves it with one eigendecomposition of the smaller
  of the two Gram matrices, reused for every penalty.
- ``oracle_features``: the true state a classifier would need, the ceiling of what pixels can give:
  positions at the frame for k = 1, positions and velocities (what two frames show) for k >= 2.
- ``fit_state_head``: the classifiers' head on the true state, trained to convergence (early
  stopping on validation frames).
- ``fit_boosting``: a strong off-the-shelf learner on the same inputs (scikit-learn's
  ``HistGradientBoostingClassifier``), its leaf size chosen on validation frames so that a few
  labelled episodes still split. The protocol reports the better of the two by validation as the
  ceiling.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from airhockey.learn.config import ClassifyConfig
from airhockey.learn.downstream.classifier import FeatureScaler
from airhockey.learn.downstream.classify import epoch_order, features_in_batches
from airhockey.learn.downstream.labelled import POSITIONS, STATE_NAMES, FrameSet
from airhockey.learn.nn.encoder import VideoEncoder
from airhockey.learn.pretext.guards import check_finite

VELOCITIES = (6, 7)
"""Columns of ``FrameSet.state`` of the puck's velocity, which takes two frames to see."""
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
"""The ridge penalties a probe chooses from (by efficient leave-one-out on the training frames)."""
PROBE_SOLVERS = ("eigen", "ridgecv")
"""How ``probe_r2`` fits: ``eigen`` (``ridge_loo``) or ``ridgecv`` (scikit-learn's ``RidgeCV``, whose
per-penalty work grows with the cube of the features once frames outnumber them); same choice
of penalty, R² equal to float rounding."""
TREE_MIN_LEAF = (20, 5, 1)
"""The boosted trees' ``min_samples_leaf`` values validation chooses from (first of equals wins):
scikit-learn's default, and smaller leaves that let a few labelled episodes split."""
TREE_FRAMES_PER_LEAF = 50
"""Without validation frames, one frame per leaf for every this many training frames
(``tree_min_leaf``)."""
ROW_BLOCK = 2048
"""Training frames ``ridge_loo`` projects at a time when frames outnumber features (bounds its memory)."""


@torch.no_grad()
def encoder_features(
    encoder: VideoEncoder, frames: FrameSet, k: int = 1, batch_size: int = 256
) -> NDArray[np.float32]:
    """The encoder's flattened features of every frame of ``frames``: (N, C * h * w) float32.

    Args:
        encoder: any ``VideoEncoder``; it is run in eval mode and left in the mode it was in.
        frames: the frames.
        k: the encoder reads the k frames ending at each frame (``FrameSet.window``).
        batch_size: frames per forward pass.
    """
    if len(frames) == 0:
        return np.zeros((0, encoder.feature_count), np.float32)
    return features_in_batches(encoder, frames, k, batch_size).flatten(1).cpu().numpy().astype(np.float32)


def probe_r2(
    train_x: NDArray[np.floating],
    train_state: NDArray[np.floating],
    test_x: NDArray[np.floating],
    test_state: NDArray[np.floating],
    columns: Sequence[int],
    solver: str = "eigen",
) -> dict[str, float]:
    """R² on the test frames of ridge regressions from features to each state column.

    Features are standardised on the training frames; the penalty, one for all columns, is the
    ``RIDGE_ALPHAS`` value of least mean squared leave-one-out error on the training frames.

    Args:
        train_x, test_x: (N, F) features of the training and test frames.
        train_state, test_state: (N, 8) true states (``FrameSet.state``).
        columns: the state columns to predict (such as ``POSITIONS + VELOCITIES``); a column that is
            not finite in every training and test row is a variable the dataset does not hold (the
            absent shape of a one-shape ``data shapes`` set) and is left out.
        solver: one of ``PROBE_SOLVERS``.

    Returns:
        ``{name: R²}`` by ``STATE_NAMES``; 1 is perfect, 0 is as good as the training mean, below 0
        worse. Empty when no column is held.

    Raises:
        ValueError: an unknown ``solver``.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.preprocessing import StandardScaler

    if solver not in PROBE_SOLVERS:
        raise ValueError(f"probe solver must be one of {', '.join(PROBE_SOLVERS)}, got {solver!r}")
    cols = [
        c for c in columns if np.isfinite(train_state[:, c]).all() and np.isfinite(test_state[:, c]).all()
    ]
    if not cols:
        return {}
    scaler = StandardScaler().fit(train_x)
    x, test = scaler.transform(train_x), scaler.transform(test_x)
    if solver == "ridgecv":
        predicted = RidgeCV(alphas=RIDGE_ALPHAS).fit(x, train_state[:, cols]).predict(test)
    else:
        coef, intercept, _ = ridge_loo(x, train_state[:, cols], RIDGE_ALPHAS)
        predicted = np.asarray(test, np.float64) @ coef + intercept
    scores = r2_score(test_state[:, cols], predicted, multioutput="raw_values")
    return {STATE_NAMES[c]: float(r) for c, r in zip(cols, scores, strict=True)}


def ridge_loo(
    x: NDArray[np.floating], y: NDArray[np.floating], alphas: Sequence[float]
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Ridge regression with an unpenalised intercept, its penalty chosen by leave-one-out error.

    One eigendecomposition serves every penalty: of X^T X (F x F) when frames outnumber features,
    of X X^T (N x N) otherwise. The leave-one-out residual of frame i is r_i / (1 - h_ii), with
    r the training residual and h the hat matrix (the intercept's 1/N included); the penalty of
    least mean squared residual over frames and targets wins, the first of equals in ``alphas``
    order. In float64; the same choice and coefficients as scikit-learn's ``RidgeCV``.

    Args:
        x: (N, F) inputs.
        y: (N, T) targets.
        alphas: the penalties to choose from.

    Returns:
        ``(coef, intercept, alpha)``: (F, T) coefficients, (T,) intercept, the chosen penalty; the
        prediction for inputs ``z`` is ``z @ coef + intercept``.
    """
    x = np.asarray(x, np.float64)
    x_mean = x.mean(axis=0)
    x = x - x_mean
    y = np.asarray(y, np.float64)
    y_mean = y.mean(axis=0)
    y = y - y_mean
    n, f = x.shape
    alpha_array = np.asarray(alphas, np.float64)
    if n > f:
        eigvals, v = np.linalg.eigh(x.T @ x)  # (F,), (F, F)
        inverse = 1.0 / (eigvals[:, None] + alpha_array)  # (F, A)
        vt_xty = v.T @ (x.T @ y)  # (F, T)
        fitted, hat = np.empty((len(alphas), n, y.shape[1])), np.empty((n, len(alphas)))
        for start in range(0, n, ROW_BLOCK):
            q = x[start : start + ROW_BLOCK] @ v  # (B, F): the frames in the eigenbasis
            hat[start : start + ROW_BLOCK] = (q * q) @ inverse
            for a in range(len(alphas)):
                fitted[a, start : start + ROW_BLOCK] = q @ (inverse[:, a, None] * vt_xty)
        residual = (y - fitted) / (1.0 - 1.0 / n - hat.T[:, :, None])  # (A, N, T)
        best = _first_smallest((residual**2).mean(axis=(1, 2)))
        coef = v @ (inverse[:, best, None] * vt_xty)
    else:
        eigvals, u = np.linalg.eigh(x @ x.T)  # (N,), (N, N)
        inverse = 1.0 / (eigvals[:, None] + alpha_array)  # (N, A)
        ut_y, ut_one = u.T @ y, u.sum(axis=0)  # (N, T), (N,)
        u2 = u * u
        errors, duals = [], []
        for a in range(len(alphas)):
            dual = u @ (inverse[:, a, None] * ut_y)  # (N, T): (K + alpha I)^-1 y
            diag = u2 @ inverse[:, a] - (u @ (inverse[:, a] * ut_one)) / n  # (N,)
            errors.append(float(((dual / diag[:, None]) ** 2).mean()))
            duals.append(dual)
        best = _first_smallest(np.asarray(errors))
        coef = x.T @ duals[best]
    return coef, y_mean - x_mean @ coef, float(alphas[best])


def _first_smallest(errors: NDArray[np.float64]) -> int:
    """The index of the smallest error, the first of equals."""
    return int(np.flatnonzero(errors == errors.min())[0])


def oracle_features(frames: FrameSet, k: int = 1) -> NDArray[np.float32]:
    """The true state a k-frame classifier could at best read: (N, 4) positions for k = 1, (N, 8)
    positions and velocities for k >= 2; of these, only the columns the dataset holds
    (``FrameSet.state_columns``: (N, 2) and (N, 4) on a one-shape ``data shapes`` set)."""
    wanted = POSITIONS if k == 1 else range(len(STATE_NAMES))
    return frames.state[:, [c for c in wanted if c in frames.state_columns]]


@dataclass(frozen=True)
class StateFit:
    """A classifier of the true state fitted on training frames: what it says on the test frames and
    how it did on the validation frames that chose it."""

    predicted: NDArray[np.int64]
    """(N_test,) the predicted class of every test input."""
    val_accuracy: float
    """Accuracy on the validation frames of the model kept; nan without validation frames."""
    chosen: int
    """What was chosen: the head's epoch kept (1-based; the last without validation frames), the
    trees' ``min_samples_leaf``."""


def tree_min_leaf(frames: int) -> int:
    """The boosted trees' ``min_samples_leaf`` without validation frames to choose it: one per
    ``TREE_FRAMES_PER_LEAF`` training frames, within ``TREE_MIN_LEAF``'s range, so that a few
    labelled episodes (tens of frames) still split."""
    return min(max(TREE_MIN_LEAF), max(min(TREE_MIN_LEAF), frames // TREE_FRAMES_PER_LEAF))


def fit_boosting(
    train_x: NDArray[np.floating],
    train_y: NDArray[np.int64],
    test_x: NDArray[np.floating],
    seed: int,
    val_x: NDArray[np.floating] | None = None,
    val_y: NDArray[np.int64] | None = None,
) -> StateFit:
    """Scikit-learn's boosted trees (``HistGradientBoostingClassifier``) fitted on the training inputs.

    Their leaf size suits the budget: with validation frames, the ``TREE_MIN_LEAF`` value of best
    validation accuracy (the first of equals, so the larger leaf); without, ``tree_min_leaf`` of
    the training frames (scikit-learn's default of 20 allows no split of a few tens of frames).

    Args:
        train_x, test_x, val_x: (N, F) inputs (``oracle_features``).
        train_y, val_y: (N,) classes; ``val_x``/``val_y`` None or empty: no validation frames.
        seed: the trees' ``random_state``.

    Returns:
        The test predictions, the validation accuracy and the leaf size chosen.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    has_val = val_x is not None and val_y is not None and len(val_y) > 0

    def val_accuracy(predict: Callable[[NDArray[np.floating]], NDArray[np.int64]]) -> float:
        return float(np.mean(predict(val_x) == val_y)) if has_val else math.nan

    leaves = TREE_MIN_LEAF if has_val else (tree_min_leaf(len(train_y)),)
    if len(np.unique(train_y)) < 2:  # one class only: the trees can only say it

        def say(z: NDArray[np.floating]) -> NDArray[np.int64]:
            return np.full(len(z), train_y[0], np.int64)

        return StateFit(say(test_x), val_accuracy(say), leaves[0])
    best: StateFit | None = None
    for leaf in leaves:
        model = HistGradientBoostingClassifier(min_samples_leaf=leaf, random_state=seed)
        model.fit(train_x, train_y)
        fit = StateFit(model.predict(test_x).astype(np.int64), val_accuracy(model.predict), leaf)
        if best is None or fit.val_accuracy > best.val_accuracy:
            best = fit
    assert best is not None
    return best


def fit_state_head(
    train_x: NDArray[np.floating],
    train_y: NDArray[np.int64],
    test_x: NDArray[np.floating],
    config: ClassifyConfig,
    hidden: int,
    num_classes: int,
    val_x: NDArray[np.floating] | None = None,
    val_y: NDArray[np.int64] | None = None,
    patience: int | None = None,
) -> StateFit:
    """The classifiers' head (standardisation, one hidden layer, softmax) trained to convergence on
    given inputs: the oracle arm on the true state. Same optimiser, learning rate, frames per
    epoch, batch size, dropout and seed as the classifiers' head.

    With validation frames it trains at most ``config.epochs`` epochs, scores the validation
    frames after each, stops once ``patience`` epochs in a row did not beat the best (of best
    accuracy, then of least cross-entropy), and keeps the best epoch's weights. Without, it trains
    all ``config.epochs`` epochs (a fixed schedule that must be long enough to converge on the
    training frames) and keeps the last.

    Args:
        train_x, test_x, val_x: (N, F) inputs (``oracle_features``).
        train_y, val_y: (N,) classes; ``val_x``/``val_y`` None or empty: no validation frames.
        config: the schedule (its ``lr``, ``epochs``, ``min_epoch_frames``, ``batch_size``,
            ``weight_decay`` and ``seed`` are used).
        hidden: units of the hidden layer.
        num_classes: classes of the softmax.
        patience: epochs without a better validation accuracy before stopping; None: never stop
            early (the best epoch is still kept).

    Returns:
        The test predictions, the kept epoch's validation accuracy and the kept epoch.

    Raises:
        UserError: at the first training loss that is not a number (``guards.check_finite``).
    """
    x = torch.as_tensor(np.asarray(train_x, np.float32))
    y = torch.as_tensor(train_y)
    has_val = val_x is not None and val_y is not None and len(val_y) > 0
    val = torch.as_tensor(np.asarray(val_x, np.float32)) if has_val else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        scaler = FeatureScaler(x.shape[1])
        head = nn.Sequential(
            scaler,
            nn.Linear(x.shape[1], hidden),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(hidden, num_classes),
        )
        scaler.fit(x)
        optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        rng = np.random.default_rng(np.random.SeedSequence(config.seed))
        # The best epoch: of best validation accuracy, then of least validation loss.
        step, best, best_epoch, best_state = 0, (-1.0, -math.inf), config.epochs, None
        for epoch in range(config.epochs):
            head.train()
            order = epoch_order(len(x), config.min_epoch_frames, rng)
            for i in range(0, len(order), config.batch_size):
                idx = torch.from_numpy(order[i : i + config.batch_size])
                loss = nn.functional.cross_entropy(head(x[idx]), y[idx])
                step += 1
                where, setting = f"step {step} (epoch {epoch + 1})", f"lower --lr (now {config.lr:g})"
                check_finite(loss.item(), "oracle head's training loss", where, setting)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if val is None:
                continue
            head.eval()
            with torch.no_grad():
                logits = head(val)
                loss_val = float(nn.functional.cross_entropy(logits, torch.as_tensor(val_y)))
                score = (float((logits.argmax(-1).numpy() == val_y).mean()), -loss_val)
            if score > best:
                best, best_epoch = score, epoch + 1
                best_state = {name: t.clone() for name, t in head.state_dict().items()}
            elif patience is not None and epoch + 1 - best_epoch >= patience:
                break
    if best_state is not None:
        head.load_state_dict(best_state)
    head.eval()
    with torch.no_grad():
        predicted = head(torch.as_tensor(np.asarray(test_x, np.float32))).argmax(-1).numpy()
    return StateFit(predicted, best[0] if has_val else math.nan, best_epoch)
