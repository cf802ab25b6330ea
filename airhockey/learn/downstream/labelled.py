"""Labelled frames for the classifiers: the split the pretext runs used, label budgets, frames in memory.

``ClassifierData.load(data, runs)`` opens a generated dataset, takes the by-episode split the
pretext runs trained on (checked against what each run recorded), and reads the frames of its
episodes into memory once, for every run of a comparison to select from. A label budget is a
number of whole training episodes, drawn class-balanced by ``budget_order``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from airhockey.errors import UserError
from airhockey.generate.shards import EpisodeShards, open_shards
from airhockey.learn.data import EpisodeSplit, FrameDataset, split_episodes
from airhockey.learn.pretext.run import PretextRun

VALIDATION_MIN_BUDGET = 8
"""Label budgets below this many episodes train on all of them for fixed epochs; from it up, a
quarter of the budget picks the best epoch (``ClassifierData.labelled_and_validation``)."""
STATE_NAMES = ("bar_x", "bar_y", "bar_vx", "bar_vy", "puck_x", "puck_y", "puck_vx", "puck_vy")
"""The columns of ``FrameSet.state``: the true bar and puck centres (m) and velocities (m/s)."""
POSITIONS = (0, 1, 4, 5)
"""Columns of ``FrameSet.state`` that one frame shows: the bar's and the puck's position."""


@dataclass(frozen=True)
class FrameSet:
    """Labelled frames held in memory, with where each one sits in its episode; arrays (N, ...).

    ``source`` holds every frame loaded (shared by all selections, never copied); a selection keeps
    each frame's position ``pos`` in it, so that the k frames ending at a frame (``window``) can be
    read whatever was selected.
    """

    source: NDArray[np.uint8]
    """(M, H, W, 3) every frame loaded, episode after episode, each episode's frames in order."""
    pos: NDArray[np.int64]
    """(N,) the frame's position in ``source``."""
    label: NDArray[np.int64]
    """(N,) the class of the frame's episode."""
    episode: NDArray[np.int64]
    """(N,) the episode's dataset-wide index."""
    frame_index: NDArray[np.int64]
    """(N,) the frame's index in its episode."""
    hit_frame: NDArray[np.int64]
    """(N,) the index of the episode's first frame with a button lit."""
    strike_frame: NDArray[np.int64]
    """(N,) the index of the episode's first frame after the bar first touched the puck (-1: never)."""
    state: NDArray[np.float32]
    """(N, 8) the true state at the frame, columns ``STATE_NAMES``; NaN in a column the dataset does
    not hold (the second shape of a one-shape ``data shapes`` set)."""
    state_columns: tuple[int, ...] = tuple(range(len(STATE_NAMES)))
    """The columns of ``state`` that the dataset holds (finite in every frame loaded)."""

    def __len__(self) -> int:
        return len(self.label)

    @property
    def frames(self) -> NDArray[np.uint8]:
        """(N, H, W, 3) the frames (a copy)."""
        return self.source[self.pos]

    @property
    def before_strike(self) -> NDArray[np.bool_]:
        """(N,) whether the bar has not yet touched the puck at the frame (the puck still rests)."""
        return (self.strike_frame < 0) | (self.frame_index < self.strike_frame)

    @property
    def after_hit(self) -> NDArray[np.bool_]:
        """(N,) whether a button is lit in the frame, which gives the label away."""
        return self.frame_index >= self.hit_frame

    def window(self, idx: NDArray[np.int64], k: int) -> NDArray[np.uint8]:
        """The ``k`` frames ending at each frame ``idx`` of this set: (len(idx), k, H, W, 3).

        Frame t gets frames t - k + 1 .. t of its episode, never a later one; before the episode's
        frame k - 1 the window starts with copies of frame 0 (the table before anything moves).
        """
        return self.source[self.window_positions(idx, k)]

    def window_positions(self, idx: NDArray[np.int64], k: int) -> NDArray[np.int64]:
        """(len(idx), k) the positions in ``source`` of ``window``'s frames."""
        back = np.arange(k - 1, -1, -1)  # (k,): k - 1 .. 0 frames back
        f = self.frame_index[idx]
        return self.pos[idx, None] - np.minimum(back[None, :], f[:, None])

    def concat(self, other: FrameSet, episode_offset: int) -> FrameSet:
        """This set and ``other`` (loaded whole from another dataset) as one, ``other``'s episodes
        numbered from ``episode_offset`` on."""
        fields = {f.name: (getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self)}
        fields["pos"] = (self.pos, other.pos + len(self.source))
        fields["episode"] = (self.episode, other.episode + episode_offset)
        del fields["state_columns"]
        held = tuple(c for c in self.state_columns if c in other.state_columns)
        return FrameSet(**{k: np.concatenate(v) for k, v in fields.items()}, state_columns=held)

    def select(self, mask: NDArray[np.bool_]) -> FrameSet:
        """The frames where ``mask`` (N,) is True."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        shared = ("source", "state_columns")  # of the whole set, not per frame
        return FrameSet(**{k: v if k in shared else v[mask] for k, v in fields.items()})

    def of_episodes(self, episodes: Sequence[int] | NDArray[np.int64]) -> FrameSet:
        """The frames of the given episodes."""
        return self.select(np.isin(self.episode, episodes))

    def usable(self, include_after_hit: bool, stride: int = 1) -> FrameSet:
        """The frames a run trains or is scored on: before the hit unless ``include_after_hit``,
        and every ``stride``-th frame of each episode."""
        keep = self.frame_index % stride == 0
        return self.select(keep if include_after_hit else keep & ~self.after_hit)


def load_frames(episodes: EpisodeShards, ids: Sequence[int] | NDArray[np.int64]) -> FrameSet:
    """Every frame of the episodes ``ids`` and its true state, read once into memory.

    A state column that is not finite in every frame is one the dataset does not hold (a one-shape
    ``data shapes`` set stores NaN for the absent second shape): it is left out of
    ``FrameSet.state_columns``, so that the oracle and the probes never read it.
    """
    ids = np.asarray(ids, dtype=np.int64)
    index = FrameDataset(episodes, ids).index  # (N, 4): episode, frame index, label, hit frame
    first = episodes.frames(0, 0, 1)
    frames = np.concatenate([episodes.frames(int(e)) for e in ids] or [first[:0]])
    names = ("bar_pos", "bar_vel", "puck_pos", "puck_vel")
    state = np.concatenate(
        [np.concatenate([episodes.read(int(e), n) for n in names], axis=1) for e in ids] or [np.zeros((0, 8))]
    ).astype(np.float32)
    episodes.close()
    strike = np.asarray(episodes.table()["strike_frame"], np.int64)[index[:, 0]]
    return FrameSet(
        source=frames,
        pos=np.arange(len(frames)),
        label=index[:, 2],
        episode=index[:, 0],
        frame_index=index[:, 1],
        hit_frame=index[:, 3],
        strike_frame=strike,
        state=state,
        state_columns=tuple(int(c) for c in np.flatnonzero(np.isfinite(state).all(axis=0))),
    )


def check_test_data(
    train: EpisodeShards, test: EpisodeShards, train_path: str | Path, test_path: str | Path
) -> None:
    """Checks that a separately generated test set fits the training data and shares none of its episodes.

    Raises:
        UserError: for other classes, another frame size, or episode reset seeds in common (the
            same seed replays the same episode: generate the test data with another ``--seed``).
    """
    if list(test.label_names) != list(train.label_names):
        raise UserError(
            f"the test data {str(test_path)!r} has classes {test.label_names}, "
            f"the training data {train.label_names}"
        )
    sizes = [tuple(e.frames(0, 0, 1).shape[1:3]) for e in (train, test)]
    if sizes[0] != sizes[1]:
        raise UserError(f"the test data's frames are {sizes[1]}, the training data's {sizes[0]}")
    shared = np.intersect1d(train.table()["seed"], test.table()["seed"])
    if shared.size:
        raise UserError(
            f"the test data {str(test_path)!r} shares {shared.size} episode seeds with {str(train_path)!r} "
            "(the same seed plays the same episode): generate it with another --seed"
        )


def classifier_split(
    episodes: EpisodeShards, runs: Sequence[PretextRun] = (), split_seed: int = 0
) -> EpisodeSplit:
    """The by-episode split of a dataset for classifiers: the pretext runs' own, when there are any.

    The split is ``split_episodes(labels, seed=...)`` with the runs' ``split_seed`` (they must
    agree), as ``train_pretext`` makes it from a dataset; where a run records its dataset's
    fingerprint (``EpisodeShards.fingerprint``) and its episodes, they are checked to be this
    dataset's and this split, so that the test episodes are ones no pretext run read.

    Args:
        episodes: the dataset.
        runs: the pretext runs whose encoders the classifiers load.
        split_seed: the split's seed when there is no run.

    Raises:
        UserError: when the runs disagree on the split, or a run was trained on another split or dataset.
    """
    seeds = {run.training.split_seed for run in runs}
    if len(seeds) > 1:
        raise UserError(
            "the pretext runs were trained on different splits (split seeds "
            f"{', '.join(str(s) for s in sorted(seeds))}): compare runs of one split"
        )
    if seeds:
        split_seed = seeds.pop()
    split = split_episodes(episodes.table()["label"], seed=split_seed)
    for run in runs:
        data = run.data
        fingerprint = data.get("fingerprint")
        if fingerprint and episodes.fingerprint and fingerprint != episodes.fingerprint:
            raise UserError(
                f"the pretext run {str(run.folder)!r} was trained on another dataset ({data.get('path')!r}, "
                f"fingerprint {fingerprint[:12]}, this one's {episodes.fingerprint[:12]}): pass the "
                "dataset it was trained on"
            )
        for part in ("train", "val", "test"):
            stored = data.get(f"{part}_episodes")
            if stored is not None and sorted(stored) != getattr(split, part).tolist():
                raise UserError(
                    f"the pretext run {str(run.folder)!r} was trained on another dataset or split "
                    f"({data.get('path')!r}, split seed {data.get('split_seed')}): its {part} episodes "
                    "differ from this dataset's; pass the dataset it was trained on"
                )
    return split


def assert_disjoint(test: NDArray[np.int64], *seen: NDArray[np.int64]) -> None:
    """Raises AssertionError if a test episode is among episodes a training read."""
    for episodes in seen:
        overlap = np.intersect1d(test, episodes)
        if overlap.size:
            raise AssertionError(f"test episodes {overlap.tolist()} were read in training")


def budget_order(
    labels: NDArray[np.int64], pool: NDArray[np.int64], rng: np.random.Generator
) -> NDArray[np.int64]:
    """The episodes of ``pool`` in a random order whose every prefix is as class-balanced as it can be.

    Each class's episodes are shuffled; then rounds take one episode of each class (classes in a
    shuffled order each round) while a class has episodes left. The first N episodes are the
    labelled subset of budget N, so the subsets of one order are nested (4 within 16 within 64).

    Args:
        labels: (E,) the label of every episode of the dataset.
        pool: dataset-wide indices of the episodes to draw from.
        rng: the draw's generator.
    """
    by_class = [rng.permutation(pool[labels[pool] == c]) for c in np.unique(labels[pool])]
    order: list[int] = []
    for r in range(max((len(m) for m in by_class), default=0)):
        for c in rng.permutation(len(by_class)):
            if r < len(by_class[c]):
                order.append(int(by_class[c][r]))
    return np.asarray(order, dtype=np.int64)


@dataclass
class ClassifierData:
    """A dataset made ready for classifiers: the split, and the frames of its episodes in memory."""

    split: EpisodeSplit
    label_names: list[str]
    labels: NDArray[np.int64]
    """(E,) the label of every episode."""
    frames: FrameSet
    """Every frame of the train, val and test episodes."""

    @property
    def image_size(self) -> tuple[int, int]:
        """The frames' height and width."""
        return tuple(self.frames.source.shape[1:3])  # type: ignore[return-value]

    @classmethod
    def load(
        cls,
        data: str | Path,
        runs: Sequence[PretextRun] = (),
        split_seed: int = 0,
        test_data: str | Path | None = None,
    ) -> ClassifierData:
        """Opens a generated dataset, takes the pretext runs' split, and reads the frames.

        Args:
            data: the dataset the labelled episodes come from (and the pretext runs trained on).
            runs: the pretext runs whose encoders the classifiers load.
            split_seed: the split's seed when there is no run.
            test_data: a separately generated dataset whose episodes all become the test episodes
                (the split's own test episodes are then left unread); its episodes' reset seeds must
                be disjoint from ``data``'s. Its episodes are numbered after ``data``'s.

        Raises:
            UserError: a missing dataset, runs of another split or dataset, frames of another size
                than a run's model reads, or test data that shares episode seeds, classes or frame
                size with the training data's.
        """
        episodes = open_shards(data)
        split = classifier_split(episodes, runs, split_seed)
        table = episodes.table()
        if test_data is None:
            if not (len(split.train) and len(split.test)):
                raise UserError(
                    f"{str(data)!r} is too small to hold out test episodes: generate more episodes"
                )
            frames = load_frames(episodes, np.concatenate([split.train, split.val, split.test]))
        else:
            tests = open_shards(test_data)
            check_test_data(episodes, tests, data, test_data)
            train = load_frames(episodes, np.concatenate([split.train, split.val]))
            test = load_frames(tests, np.arange(len(tests)))
            frames = train.concat(test, episode_offset=len(table["label"]))
            split = EpisodeSplit(split.train, split.val, np.arange(len(tests)) + len(table["label"]))
        size = tuple(frames.source.shape[1:3])
        for run in runs:
            if run.image_size != size:
                raise UserError(
                    f"the frames are {size}, the pretext run {str(run.folder)!r} reads {run.image_size}"
                )
        return cls(split, episodes.label_names, table["label"], frames)

    def labelled_and_validation(
        self, n: int | None, rng: np.random.Generator
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """A label budget of ``n`` episodes (None: all) split into those trained on and those that
        pick the best epoch, so that validation counts against the budget.

        Below ``VALIDATION_MIN_BUDGET`` episodes nothing is held out (the run trains for fixed
        epochs, with no selection); from it up, a quarter of each class's episodes in the budget
        (at least one) validates. Both are sorted.
        """
        budget = self.labelled(n, rng)
        if len(budget) < VALIDATION_MIN_BUDGET:
            return budget, budget[:0]
        val = []
        for c in np.unique(self.labels[budget]):
            members = budget[self.labels[budget] == c]
            val.extend(rng.permutation(members)[: max(1, round(len(members) / 4))].tolist())
        val_ids = np.sort(np.asarray(val, dtype=np.int64))
        return np.setdiff1d(budget, val_ids), val_ids

    def labelled(self, n: int | None, rng: np.random.Generator) -> NDArray[np.int64]:
        """The first ``n`` (None: all) training episodes of a fresh ``budget_order``, sorted.

        Raises:
            UserError: when ``n`` is not in 1 to the number of training episodes.
        """
        order = budget_order(self.labels, self.split.train, rng)
        if n is not None and not 1 <= n <= len(order):
            raise UserError(f"labelled episodes must be in 1-{len(order)} (the training episodes), got {n}")
        return np.sort(order[:n])
