"""What an encoder's frozen features know: linear probes to the true state, and the state's own ceiling.

- ``encoder_features``: an encoder's features of every frame of a ``FrameSet`` (the k frames ending
  at each), computed once and reused by every probe and frozen-feature head.
- ``probe_r2``: ridge regression (scikit-learn's ``RidgeCV`` on standardised features) from features
  to true variables (bar and puck positions; the puck's velocity needs k >= 2), scored by R² on
  held-out frames. R² near 1: the features hold the variable linearly; near 0: they do not.
- ``oracle_features``: the true state a classifier would need, the ceiling of what pixels can give:
  positions at the frame for k = 1, positions and velocities (what two frames show) for k >= 2.
- ``boosting_accuracy``: a strong off-the-shelf learner on the same inputs (scikit-learn's
  ``HistGradientBoostingClassifier``), as a reference for the ceiling.
"""

from __future__ import annotations

from collections.abc import Sequence

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
"""The ridge penalties ``RidgeCV`` chooses from (by efficient leave-one-out on the training frames)."""


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
) -> dict[str, float]:
    """R² on the test frames of ridge regressions from features to each state column.

    Args:
        train_x, test_x: (N, F) features of the training and test frames.
        train_state, test_state: (N, 8) true states (``FrameSet.state``).
        columns: the state columns to predict (such as ``POSITIONS + VELOCITIES``); a column that is
            not finite in every training and test row is a variable the dataset does not hold (the
            absent shape of a one-shape ``data shapes`` set) and is left out.

    Returns:
        ``{name: R²}`` by ``STATE_NAMES``; 1 is perfect, 0 is as good as the training mean, below 0
        worse. Empty when no column is held.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cols = [
        c for c in columns if np.isfinite(train_state[:, c]).all() and np.isfinite(test_state[:, c]).all()
    ]
    if not cols:
        return {}
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS))
    model.fit(train_x, train_state[:, cols])
    scores = r2_score(test_state[:, cols], model.predict(test_x), multioutput="raw_values")
    return {STATE_NAMES[c]: float(r) for c, r in zip(cols, scores, strict=True)}


def oracle_features(frames: FrameSet, k: int = 1) -> NDArray[np.float32]:
    """The true state a k-frame classifier could at best read: (N, 4) positions for k = 1, (N, 8)
    positions and velocities for k >= 2; of these, only the columns the dataset holds
    (``FrameSet.state_columns``: (N, 2) and (N, 4) on a one-shape ``data shapes`` set)."""
    wanted = POSITIONS if k == 1 else range(len(STATE_NAMES))
    return frames.state[:, [c for c in wanted if c in frames.state_columns]]


def boosting_accuracy(
    train_x: NDArray[np.floating],
    train_y: NDArray[np.int64],
    test_x: NDArray[np.floating],
    test_y: NDArray[np.int64],
    seed: int,
) -> NDArray[np.bool_]:
    """(N,) whether scikit-learn's boosted trees, fit on the training inputs, get each test frame right."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    if len(np.unique(train_y)) < 2:  # one class only: the trees can only say it
        return test_y == train_y[0]
    model = HistGradientBoostingClassifier(random_state=seed)
    model.fit(train_x, train_y)
    return model.predict(test_x) == test_y


def fit_state_head(
    train_x: NDArray[np.floating],
    train_y: NDArray[np.int64],
    test_x: NDArray[np.floating],
    config: ClassifyConfig,
    hidden: int,
    num_classes: int,
) -> NDArray[np.int64]:
    """The classifiers' head (standardisation, one hidden layer, softmax) trained on given inputs:
    the oracle arm on the true state. Same optimiser, learning rate, epochs, frames per epoch,
    batch size, dropout and seed as the classifiers' head; no epoch selection.

    Args:
        train_x, test_x: (N, F) inputs (``oracle_features``).
        train_y: (N,) classes.
        config: the schedule (its ``lr``, ``epochs``, ``min_epoch_frames``, ``batch_size``,
            ``weight_decay`` and ``seed`` are used).
        hidden: units of the hidden layer.
        num_classes: classes of the softmax.

    Returns:
        (N_test,) the predicted class of every test input.

    Raises:
        UserError: at the first training loss that is not a number (``guards.check_finite``).
    """
    x = torch.as_tensor(np.asarray(train_x, np.float32))
    y = torch.as_tensor(train_y)
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
        step = 0
        for epoch in range(config.epochs):
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
    head.eval()
    with torch.no_grad():
        return head(torch.as_tensor(np.asarray(test_x, np.float32))).argmax(-1).numpy()
