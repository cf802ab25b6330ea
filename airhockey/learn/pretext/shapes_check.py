"""The moving-shapes sanity check: does a predictive method's rollout keep the shape where it truly is?

On a dataset of ``airhockey data shapes`` the first shape's true centre is stored for every frame
(``puck_pos``, pixels). For each validation episode of a run's split, every context of at least
``context`` true frames is rolled out ``steps`` frames by the method's ``predict_episode`` (its
predictions fed back); the centroid of the pixels of each predicted frame that have the first
shape's colour is compared with the stored centre. A clip passes when every rolled-out frame's
centroid is within ``tolerance`` pixels (Leuschner and Scheffczyk 2020, section 4, and Srivastava
et al. 2015, section 3.2, check their models on such synthetic motion before trusting them on real
data).

    python -m airhockey.learn.pretext.shapes_check RUN [RUN ...] --data SHAPES
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from airhockey.generate.shapes import BACKGROUND, COLOURS
from airhockey.generate.shards import open_shards
from airhockey.learn.data import frames_to_tensor, split_episodes
from airhockey.learn.pretext.run import PretextRun

SHAPE_WEIGHT = 0.5
"""A pixel belongs to the shape where it is at least this close to the shape's colour, on the scale from
the background's colour (0) to the shape's (1)."""


@dataclass(frozen=True)
class RolloutCheck:
    """How a run's rollouts track the first shape on the validation episodes of a shapes dataset."""

    clips: int
    """Contexts rolled out."""
    within: float
    """Fraction of them whose every rolled-out frame has the shape within ``tolerance`` pixels."""
    mean_error: tuple[float, ...]
    """Mean distance (pixels) between the predicted and the true centre, per step ahead (a vanished
    shape counts as the frame's diagonal)."""


def shape_centres(frames: Tensor, colour: tuple[int, int, int] = COLOURS[0]) -> NDArray[np.float64]:
    """Centroids (x, y) in pixels of the pixels of ``colour`` in each frame: (N, 3, H, W) in [0, 1] -> (N, 2).

    A frame without such a pixel gives NaN.
    """
    target = torch.tensor(colour, dtype=frames.dtype) / 255
    background = torch.tensor(BACKGROUND, dtype=frames.dtype) / 255
    distance = (frames - target[:, None, None]).norm(dim=1)  # (N, H, W)
    weight = (1 - distance / (background - target).norm()).clamp(0, 1)
    weight = weight * (weight >= SHAPE_WEIGHT)
    ys, xs = torch.meshgrid(
        torch.arange(frames.shape[2]) + 0.5, torch.arange(frames.shape[3]) + 0.5, indexing="ij"
    )
    total = weight.sum(dim=(1, 2))
    centres = (
        torch.stack([(weight * xs).sum(dim=(1, 2)), (weight * ys).sum(dim=(1, 2))], dim=1) / total[:, None]
    )
    return centres.double().numpy()


def check_rollouts(
    run: str, data: str, steps: int = 3, context: int = 5, stride: int = 4, tolerance: float = 2.0
) -> RolloutCheck:
    """Rolls out a trained predictive run on the validation episodes of its split of a shapes dataset.

    Args:
        run: the run folder (its best checkpoint) or a checkpoint.
        data: the shapes dataset (``airhockey data shapes``).
        steps: frames rolled out after each context.
        context: fewest true frames in a context.
        stride: frames between the ends of successive contexts of an episode.
        tolerance: largest distance in pixels between the predicted and the true centre.
    """
    opened = PretextRun.open(run)
    model, method = opened.model().eval(), opened.method
    episodes = open_shards(data)
    split = split_episodes(episodes.table()["label"], seed=opened.training.split_seed)
    errors = []  # (clips, steps)
    for index in split.val:
        frames = frames_to_tensor(episodes.frames(int(index)))  # (T, 3, H, W)
        truth = episodes[int(index)]["puck_pos"]  # (T, 2)
        ahead = [method.predict_episode(model, frames, k)[1] for k in range(1, steps + 1)]
        diagonal = float(np.hypot(*frames.shape[2:]))
        for end in range(context - 1, frames.shape[0] - steps, stride):  # the context's last frame
            targets = np.arange(end + 1, end + steps + 1)
            centres = np.stack([shape_centres(ahead[k][targets[k], None])[0] for k in range(steps)])
            distance = np.linalg.norm(centres - truth[targets], axis=1)
            errors.append(np.nan_to_num(distance, nan=diagonal))
    table = np.array(errors)
    return RolloutCheck(
        len(table), float((table.max(axis=1) <= tolerance).mean()), tuple(table.mean(axis=0).tolist())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="pretext run folders")
    parser.add_argument("--data", required=True, help="a dataset written by 'airhockey data shapes'")
    parser.add_argument("--steps", type=int, default=3, help="frames rolled out")
    parser.add_argument("--tolerance", type=float, default=2.0, help="pixels")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"| run | clips | within {args.tolerance:g} px | mean error per step (px) |")
    print("| --- | ---: | ---: | --- |")
    for run in args.runs:
        result = check_rollouts(run, args.data, args.steps, tolerance=args.tolerance)
        errors = ", ".join(f"{e:.2f}" for e in result.mean_error)
        print(f"| {run} | {result.clips} | {result.within:.1%} | {errors} |", flush=True)


if __name__ == "__main__":
    main()
