"""Settings of the learning stage, as typed dataclasses; this module does not import torch.

- ``EncoderConfig``: the sizes of the shared frame encoder (stem + ConvLSTM) that methods build on.
- ``PretextConfig``: how the generic trainer (``learn.pretext.trainer``) runs any pretext method.
- ``ClassifyConfig``: one direction classifier's schedule (``learn.downstream.classify``).
- ``CompareConfig``: the label-efficiency comparison's protocol (``learn.protocol.compare``).

A pretext method's own settings are a dataclass in its module (``learn.methods``); on the command
line they are given as ``--set key=value`` (``apply_settings``), nested fields as ``encoder.key=value``.
The CLI takes every default from these classes, so each default is written once. Every numeric
field declares its allowed range (``airhockey.ranges``), checked however the config is made; the
upper bounds are sanity limits, far above what fits in memory and time.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from airhockey.errors import UserError
from airhockey.ranges import SEED_MAX, Range, check_fields, derived_fields, replace_derived, set_derived

THRESHOLD = 0.9
"""The accuracy that "converged" and "frames needed" refer to in comparisons and reports."""
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
"""The numeric precisions of training and evaluation (``learn.device``): fp32 everywhere; tf32 and
fp16 on CUDA only; bf16 on a CPU with bfloat16 instructions or a GPU."""

T = TypeVar("T")

FrameCount = Annotated[int, Range(1, 1024)]
"""A number of frames (in a clip, a context, between clips), 1-1,024: more than an episode holds."""
Units = Annotated[int, Range(1, 16384)]
"""Units of a layer (a feature vector, a hidden layer), 1-16,384."""
Jitter = Annotated[int, Range(0, 64)]
"""A largest shift in pixels, 0-64."""
Keep = Annotated[float, Range(0, 1, low_open=True)]
"""A fraction of windows kept, in (0, 1]."""
MovingWeight = Annotated[float, Range(0, 1000)]
"""Extra loss weight of moving pixels, 0-1,000."""
MovingThreshold = Annotated[float, Range(0, 1, high_open=True)]
"""Change in [0, 1) units that makes a pixel moving."""
ClipCount = Annotated[int, Range(1, 10**6)]
"""A number of clips (of a baseline's average), 1 to 10^6."""


@dataclass(frozen=True)
class EncoderConfig:
    """Sizes of the shared frame encoder (``learn.nn.autoencoder.FrameEncoder``): stem and two ConvLSTMs."""

    image_size: tuple[Annotated[int, Range(1, 4096)], Annotated[int, Range(1, 4096)]] = (64, 64)
    """Frame height and width in pixels (1-4,096); each must be divisible by 2 ** len(stem_channels).
    Training sets it from the data."""
    stem_channels: tuple[Annotated[int, Range(1, 1024)], ...] = (16, 32)
    """Channels of the stride-2 convolutions before the ConvLSTMs, one per halving (1-1,024 each,
    at most 8 of them); () for none."""
    hidden_channels: Annotated[int, Range(1, 1024)] = 16
    """Channels of each ConvLSTM layer's hidden and cell state (the features classifiers read), 1-1,024."""
    kernel_size: Annotated[int, Range(1, 15)] = 3
    """Side of the ConvLSTM gate convolutions: odd, 1-15."""

    def __post_init__(self) -> None:
        check_fields(self)
        if len(self.stem_channels) > 8:
            raise ValueError(f"stem_channels must have at most 8 entries, got {len(self.stem_channels)}")
        factor = 2 ** len(self.stem_channels)
        if any(side % factor for side in self.image_size):
            raise ValueError(
                f"image_size {tuple(self.image_size)} must be divisible by {factor} (the stem's stride)"
            )
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")

    @property
    def feature_size(self) -> tuple[int, int]:
        """Height and width of the ConvLSTM feature maps."""
        factor = 2 ** len(self.stem_channels)
        return self.image_size[0] // factor, self.image_size[1] // factor


@dataclass(frozen=True)
class PretextConfig:
    """How the generic trainer runs a pretext method (the method's own settings are its config)."""

    steps: Annotated[int, Range(1, 10**9)] | None = None
    """Most optimiser steps in all (1 to 10^9), the budget that makes runs comparable; None for no limit."""
    flops: Annotated[float, Range(0, 1e21, low_open=True)] | None = None
    """A compute budget in FLOPs, in (0, 10^21], that makes methods of unlike cost comparable: the
    trainer converts it once, as a run starts, into ``ceil(flops / flops_per_step)`` steps, a step's
    FLOPs counted on the first training batch (``learn.pretext.flops``); with ``steps`` too, the
    smaller budget wins. None for no limit; less than one step's FLOPs is an error."""
    epochs: Annotated[int, Range(1, 10**6)] | None = 30
    """Most passes over the training samples (1 to 10^6); None for no limit (then set ``steps`` or
    ``minutes``)."""
    minutes: Annotated[float, Range(0, 10**6, low_open=True)] | None = None
    """Wall-clock budget of this session's training loop and its validations, in (0, 10^6]; None for
    no limit."""
    batch_size: Annotated[int, Range(1, 65536)] = 16
    """Samples per optimiser step, 1-65,536."""
    lr: Annotated[float, Range(0, 10)] = 2e-3
    """AdamW learning rate, 0-10."""
    weight_decay: Annotated[float, Range(0, 10)] = 1e-4
    """AdamW weight decay, 0-10."""
    grad_clip: Annotated[float, Range(0, 10**6, low_open=True)] = 1.0
    """Largest gradient norm, in (0, 10^6]; larger gradients are scaled down to it."""
    patience: Annotated[int, Range(1, 10**6)] = 5
    """Stop after this many validations in a row without a better selection metric."""
    split_seed: Annotated[int, Range(0, SEED_MAX)] = 0
    """Seed of the by-episode train/val/test split (``learn.data.split_episodes``); test is never read."""
    seed: Annotated[int, Range(0, SEED_MAX)] = 0
    """Seed of the initial weights, of the sample order in each epoch, and of random samples."""
    device: str = "cpu"
    """Torch device: 'cpu' (reproducible), 'cuda' or 'cuda:N'."""
    workers: Annotated[int, Range(0, 256)] = 0
    """DataLoader worker processes, 0-256 (0 loads in the training process)."""
    precision: str = "fp32"
    """Numeric precision of training and validation, one of ``PRECISIONS`` (``learn.device``): 'fp32'
    (float32, reproducible on CPU and the same on every device), 'bf16' (forward passes in bfloat16
    where the CPU or GPU has it), 'tf32' or 'fp16' (CUDA only). Losses and metrics stay float32."""
    frozen_encoder: bool = False
    """Keep every encoder of the model (each ``VideoEncoder`` in it) at its random initial weights
    and train the rest (the method's head) alone: how much of the pretext task a head solves on
    features nobody trained. A task a frozen random encoder solves about as well as a trained one
    does not need the encoder to learn anything: trivial for representation learning
    (docs/pretext_order_methods.md)."""

    def __post_init__(self) -> None:
        check_fields(self)
        check_precision_name(self.precision)


RESUMABLE = frozenset({"steps", "flops", "epochs", "minutes", "patience", "device", "workers"})
"""``PretextConfig`` fields that may change when a run is resumed; others would not continue it; the
budgets may, so that a finished run can be trained on."""


FREEZE_EPOCHS = 3
"""Frozen epochs of a classifier's schedule when ``freeze_epochs`` is not given (at most ``epochs - 1``)."""


HEAD_NORMS = ("scaler", "batchnorm")
"""How a classifier's head normalises the encoder's features (``ClassifyConfig.head_norm``)."""


@dataclass(frozen=True)
class ClassifyConfig:
    """Settings of one classifier training run (the model's sizes are in ``ClassifierConfig``)."""

    epochs: Annotated[int, Range(1, 10**5)] = 10
    """Epochs in all, frozen ones included (1 to 10^5)."""
    freeze_epochs: Annotated[int, Range(0, 10**5)] | None = None
    """First epochs with the encoder frozen (only the head trains), 0 to ``epochs``; ``epochs`` for a
    linear probe. None (the default): ``FREEZE_EPOCHS``, but at most ``epochs - 1``, so that the
    last epoch always fine-tunes the encoder (a 1-epoch run freezes nothing); given explicitly
    above ``epochs``, it is an error."""
    batch_size: Annotated[int, Range(1, 65536)] = 64
    """Frames per optimiser step, 1-65,536."""
    lr: Annotated[float, Range(0, 10, low_open=True)] = 1e-3
    """AdamW learning rate of the head, throughout, in (0, 10]."""
    encoder_lr: Annotated[float, Range(0, 10)] = 1e-4
    """AdamW learning rate of the encoder once unfrozen, reached by a linear warm-up over the first
    unfrozen epoch (a full step at once knocks the head's fixed standardisation off and can collapse
    the classifier to one class); 0-10."""
    weight_decay: Annotated[float, Range(0, 10)] = 1e-4
    """AdamW weight decay, 0-10."""
    min_epoch_frames: Annotated[int, Range(1, 10**8)] = 2048
    """Frames an epoch draws at least (1 to 10^8), passing over a small training set several times,
    so that a run on a few labelled episodes still takes enough optimiser steps to train."""
    frame_stride: Annotated[int, Range(1, 10**4)] = 1
    """Train on every ``frame_stride``-th frame of each episode (validation reads all; test reads
    every ``test_frame_stride``-th)."""
    include_after_hit: bool = False
    """Train, validate and score on frames with a lit button too (they give the label away)."""
    context_frames: Annotated[int, Range(1, 256)] = 1
    """k, 1-256: the classifier reads the k frames ending at the classified one (1: that frame alone,
    the classifier of Han et al. 2021); earlier than frame k - 1 of an episode the window repeats its
    first frame."""
    select_best: bool = True
    """Keep the weights of the epoch with the best validation accuracy (validation episodes are
    never tested on); False keeps the last epoch's."""
    val_max_frames: Annotated[int, Range(1, 10**8)] | None = None
    """Validate each epoch on at most this many validation frames, a fixed subsample spread evenly
    over them (the same every epoch and for every seed); None (the default) validates on all."""
    test_frame_stride: Annotated[int, Range(1, 10**4)] = 1
    """Score every ``test_frame_stride``-th frame of each test episode (frame indices divisible
    by it), 1-10,000; 1 scores them all. Consecutive frames are nearly alike, so 2 halves the
    cost of testing a k-frame classifier and keeps every episode and phase scored."""
    seed: Annotated[int, Range(0, SEED_MAX)] = 0
    """Seed of the initial weights, the order of the frames and dropout."""
    device: str = "cpu"
    """Torch device: 'cpu' (reproducible), 'cuda' or 'cuda:N'."""
    precision: str = "fp32"
    """Numeric precision of training, validation and testing, one of ``PRECISIONS``
    (``learn.device``); losses and scores stay float32."""
    head_norm: str = "scaler"
    """How the head normalises the encoder's features, one of ``HEAD_NORMS``: 'scaler', a fixed
    standardisation fit on the training frames as training starts; 'batchnorm', batch
    normalisation that learns its scale and shift and follows the encoder as it trains."""

    def __post_init__(self) -> None:
        check_fields(self)
        check_precision_name(self.precision)
        if self.head_norm not in HEAD_NORMS:
            raise ValueError(f"head_norm must be one of {HEAD_NORMS}, got {self.head_norm!r}")
        if self.freeze_epochs is None:
            set_derived(self, "freeze_epochs", min(FREEZE_EPOCHS, self.epochs - 1))
        elif self.freeze_epochs > self.epochs:
            raise ValueError(f"freeze_epochs must be in 0-{self.epochs} (epochs), got {self.freeze_epochs}")


SCRATCH = "scratch"
"""The arm name of the supervised baseline: the shared encoder from random weights."""
SCRATCH_TRANSFORMER = "scratch_transformer"
"""The arm name of the supervised baseline on the video transformer backbone: the transformer of
the comparison's first pretext arm that trains one, from random weights."""
PRACTITIONER = "practitioner"
"""The arm name (and kind) of the practitioner's supervised baseline: a small 2D CNN over the k
stacked frames and their differences (``learn.nn.stack_cnn``), trained from scratch with the usual
augmentation, as one would train without pretraining."""
SCRATCH_SCHEDULES = ("same", "unfrozen")
VALIDATIONS = ("budget", "split")
SEARCH_SCHEDULES = ("unfrozen", "frozen_then_unfrozen")
"""The schedules every arm's hyperparameter search tries (``CompareConfig.candidates``)."""


@dataclass(frozen=True)
class CompareConfig:
    """Settings of the comparison (the schedule of every run is ``training``)."""

    budgets: tuple[Annotated[int, Range(1, 10**7)] | None, ...] = (4, 16, 64, None)
    """Labelled training episodes per run (1 to 10^7), smallest first; None stands for all of them."""
    repeats: Annotated[int, Range(2, 1000)] = 3
    """Runs per budget and arm (2-1,000), each on another labelled subset with another seed."""
    training: ClassifyConfig = field(default_factory=ClassifyConfig)
    """The schedule of every arm (its ``seed`` is replaced by each repeat's)."""
    hidden: Annotated[int, Range(1, 16384)] = 64
    """Units of the classifier's hidden layer, 1-16,384."""
    scratch_schedule: str = "same"
    """'same': the scratch arm runs the pretrained arms' schedule exactly (its random encoder frozen,
    then at ``encoder_lr``); 'unfrozen': its encoder trains from the first epoch at ``lr``, as one
    would train a model from scratch."""
    after_hit_effect: bool = True
    """Run the largest budget again with the other ``include_after_hit`` setting."""
    validation: str = "budget"
    """Which labelled episodes pick each run's best epoch: 'budget': a quarter of the run's own
    budget, so that every label used counts against it (below ``VALIDATION_MIN_BUDGET`` episodes no
    selection: fixed epochs); 'split': the split's validation episodes, which no budget counts.
    Selection never reads the test episodes: a value naming them is refused."""
    frames_k: tuple[Annotated[int, Range(1, 256)], ...] = ()
    """Numbers of context frames k (besides 1; each 1-256) to run every budget with (or
    ``frames_k_budget``), every arm and the oracle: accuracy against budget at each k."""
    frames_k_budget: Annotated[int, Range(1, 10**7)] | None = None
    """The one budget (one of ``budgets``) to restrict the k > 1 runs to; None: every budget. A
    run's cost grows with k and with its training frames, so one small budget is cheaper."""
    convergence_accuracy: Annotated[float, Range(0, 1, low_open=True)] = 0.85
    """The validation accuracy, in (0, 1], whose first reaching (in optimiser steps) measures how
    fast each arm converges; a run that never reaches it is counted as such."""
    search_lrs: tuple[Annotated[float, Range(0, 10, low_open=True)], ...] = ()
    """The same small hyperparameter search for every arm: these head learning rates (each in
    (0, 10]), each with the schedules of ``SEARCH_SCHEDULES`` (and each of ``search_norms`` and
    ``search_epochs``); () for none (every arm runs ``training``, scratch with
    ``scratch_schedule``). The search runs at k = 1 and at each of ``frames_k``, and each k's runs
    use the choice made at that k: each arm's best mean validation accuracy on the first
    ``search_draws`` draws of ``search_budget`` episodes (validation drawn from them)."""
    search_norms: tuple[str, ...] = ()
    """The head normalisations the search also tries (each of ``HEAD_NORMS``, no repeats); ():
    ``training.head_norm`` alone, and candidate names without it."""
    search_epochs: tuple[Annotated[int, Range(1, 10**5)], ...] = ()
    """The numbers of epochs the search also tries (each 1 to 10^5, no repeats), longer schedules
    giving a model trained from scratch time to fit; (): ``training.epochs`` alone, and candidate
    names without it. A derived ``training.freeze_epochs`` is derived again for each."""
    search_budget: Annotated[int, Range(1, 10**7)] = 16
    """Labelled episodes of the search's runs (their validation episodes count against it)."""
    search_draws: Annotated[int, Range(1, 1000)] = 2
    """Draws the search runs each candidate on, 1-1,000."""
    oracle: bool = True
    """Also train the ceiling: the same head, and boosted trees, on the true state."""
    oracle_epochs: Annotated[int, Range(1, 10**5)] = 200
    """Most epochs of the oracle's head (1 to 10^5; each of ``training.min_epoch_frames`` frames at
    least). With validation frames it stops ``oracle_patience`` epochs after its best and keeps
    that epoch; without (budgets below ``VALIDATION_MIN_BUDGET``), it trains all of them, a fixed
    schedule long enough to converge on a few episodes' frames."""
    oracle_patience: Annotated[int, Range(1, 10**5)] = 20
    """Epochs without a better validation accuracy before the oracle's head stops, 1 to 10^5."""
    probes: bool = True
    """Also fit linear probes from each arm's frozen encoder to the true positions and velocity."""
    practitioner: bool = True
    """Add the ``PRACTITIONER`` arm beside ``scratch``. It goes through the same search as every arm;
    without a search it trains end to end from the first epoch at ``lr`` (a randomly initialised
    CNN is not frozen), whatever ``scratch_schedule`` says. False: the given arms alone."""
    scratch_per_backbone: bool = True
    """Add ``SCRATCH_TRANSFORMER`` beside ``scratch`` when a pretext arm's encoder is the video
    transformer, so that each backbone has its from-scratch baseline (the effect of the objective
    apart from that of the backbone). It is searched like every arm."""
    seed: Annotated[int, Range(0, SEED_MAX)] = 0
    """Root of the subsets' and runs' seeds."""

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.budgets:
            raise ValueError(
                f"budgets must be positive numbers of episodes or None (all), got {self.budgets}"
            )
        if self.scratch_schedule not in SCRATCH_SCHEDULES:
            raise ValueError(
                f"scratch_schedule must be one of {SCRATCH_SCHEDULES}, got {self.scratch_schedule!r}"
            )
        if "test" in self.validation.lower():
            raise ValueError(
                f"validation={self.validation!r} would choose on the test episodes: epochs, schedules "
                f"and rates are chosen on validation episodes only; use one of {VALIDATIONS}"
            )
        if self.validation not in VALIDATIONS:
            raise ValueError(f"validation must be one of {VALIDATIONS}, got {self.validation!r}")
        if self.frames_k_budget is not None and self.frames_k_budget not in self.budgets:
            raise ValueError(
                f"frames_k_budget must be one of the budgets {self.budgets}, got {self.frames_k_budget}"
            )
        self._check_search_space()

    def _check_search_space(self) -> None:
        """Refuses a ``search_norms`` or ``search_epochs`` value no candidate can take."""
        for name in ("search_norms", "search_epochs"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} lists a value twice: {values}; give each once")
        bad = [n for n in self.search_norms if n not in HEAD_NORMS]
        if bad:
            raise ValueError(f"search_norms must each be one of {HEAD_NORMS}, got {bad[0]!r}")
        if "freeze_epochs" not in derived_fields(self.training):
            short = [e for e in self.search_epochs if e < (self.training.freeze_epochs or 0)]
            if short:
                raise ValueError(
                    f"search_epochs {short[0]} is fewer than training.freeze_epochs "
                    f"({self.training.freeze_epochs}): give more epochs, or leave freeze_epochs unset"
                )

    def candidates(self) -> dict[str, ClassifyConfig]:
        """The search's candidate schedules by name; {} without a search.

        Every learning rate of ``search_lrs`` with every schedule of ``SEARCH_SCHEDULES``, head
        normalisation of ``search_norms`` and number of epochs of ``search_epochs``, in that
        nesting. A name lists the rate and schedule, then the normalisation and the epochs where
        the search varies them: ``lr=0.001,unfrozen``, ``lr=0.001,unfrozen,batchnorm,epochs=12``.

        'unfrozen': the encoder trains from the first epoch at the head's rate (training from
        scratch as usual); 'frozen_then_unfrozen': the first ``freeze_epochs`` epochs (those of
        ``training`` for its number of epochs, at least 1) train the head alone, then the encoder
        at a tenth of the head's rate (fine-tuning as usual).
        """
        norms = self.search_norms or (self.training.head_norm,)
        epoch_counts = self.search_epochs or (self.training.epochs,)
        out = {}
        for lr, schedule, norm, epochs in itertools.product(
            self.search_lrs, SEARCH_SCHEDULES, norms, epoch_counts
        ):
            # A derived freeze_epochs follows the candidate's epochs (at most epochs - 1).
            base = replace_derived(self.training, epochs=epochs, head_norm=norm)
            if schedule == "unfrozen":
                change = {"lr": lr, "encoder_lr": lr, "freeze_epochs": 0}
            else:
                change = {"lr": lr, "encoder_lr": lr / 10, "freeze_epochs": max(1, base.freeze_epochs or 0)}
            name = f"lr={lr:g},{schedule}"
            name += f",{norm}" if self.search_norms else ""
            name += f",epochs={epochs}" if self.search_epochs else ""
            out[name] = dataclasses.replace(base, **change)
        return out

    def arm_training(self, arm: str, seed: int, include_after_hit: bool | None = None) -> ClassifyConfig:
        """The schedule of one run of an arm of kind ``arm`` (``SCRATCH``, ``PRACTITIONER`` or
        'pretrained') with ``seed``, by default with ``training``'s hit setting."""
        training = dataclasses.replace(
            self.training,
            seed=seed,
            include_after_hit=self.training.include_after_hit
            if include_after_hit is None
            else include_after_hit,
        )
        if arm == PRACTITIONER or (arm == SCRATCH and self.scratch_schedule == "unfrozen"):
            training = dataclasses.replace(training, freeze_epochs=0, encoder_lr=training.lr)
        return training


def check_precision_name(precision: str) -> None:
    """Checks that ``precision`` is one of ``PRECISIONS`` (whether the hardware runs it is
    ``learn.device.check_precision``'s check).

    Raises:
        ValueError: for another name.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def most_training_episodes(episodes: int, classes: int) -> int:
    """The most training episodes that ``episodes`` in ``classes`` classes can leave after the
    by-episode split (``learn.data.split_episodes``: 10% of each class, rounded down, to validation
    and as many to test), whatever the episodes' labels turn out to be."""
    return episodes - 2 * max(0, math.ceil(episodes / 10) - classes)


def check_budgets_possible(config: CompareConfig, episodes: int, classes: int) -> None:
    """Checks, before any data exist, that the comparison's budgets fit the training episodes that
    a dataset of ``episodes`` episodes in ``classes`` classes will have.

    Raises:
        UserError: for a budget no such dataset can hold, naming the most it can.
    """
    most = most_training_episodes(episodes, classes)
    too_big = [b for b in (*config.budgets, config.frames_k_budget) if b is not None and b > most]
    if too_big:
        raise UserError(
            f"budget {too_big[0]} exceeds the at most {most} training episodes that {episodes} "
            "episodes leave after the train/val/test split: lower it, use 'all', or generate more episodes"
        )


# ----------------------------------------------------------------------- dataclasses <-> plain data
def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as plain data (nested dataclasses as dicts, tuples as tuples)."""
    return dataclasses.asdict(config)


def from_dict(cls: type[T], fields: dict[str, Any]) -> T:
    """The inverse of ``to_dict``: nested dataclass fields rebuilt, JSON lists back to tuples.

    Raises:
        UserError: for a field ``cls`` does not have.
    """
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(fields) - known)
    if unknown:
        raise UserError(f"{cls.__name__} has no field {unknown[0]!r}; its fields: {', '.join(sorted(known))}")
    values = {}
    for name, value in fields.items():
        sub = _dataclass_type(hints[name])
        if sub is not None and isinstance(value, dict):
            value = from_dict(sub, value)
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return cls(**values)


def _dataclass_type(hint: Any) -> type | None:
    """The dataclass a field's type hint names (also inside ``X | None``), else None."""
    if dataclasses.is_dataclass(hint):
        return hint  # type: ignore[return-value]
    for arg in typing.get_args(hint):
        if dataclasses.is_dataclass(arg):
            return arg  # type: ignore[return-value]
    return None


def field_names(cls: type, prefix: str = "") -> list[str]:
    """Every settable field of a config dataclass, nested ones as ``outer.inner``."""
    hints = typing.get_type_hints(cls)
    names = []
    for f in dataclasses.fields(cls):
        sub = _dataclass_type(hints[f.name])
        names += field_names(sub, f"{prefix}{f.name}.") if sub else [f"{prefix}{f.name}"]
    return names


def parse_value(text: str, hint: Any, name: str) -> Any:
    """``text`` read as a value of the type ``hint``: int, float, bool, str, None, tuples of those.

    A tuple is written ``a,b,c`` (brackets optional); an empty text or ``()`` is the empty tuple,
    which the config then accepts or refuses (``stem_channels=`` for no stem; a tuple of fixed
    length, such as ``image_size``, must have all its values). Whether a number is finite and in
    its range is the config's check (``ranges.check_fields``), whose message gives the range.

    Raises:
        UserError: naming ``name`` and the expected type when ``text`` is not one.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    text = text.strip()
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return parse_value(text, arg, name)
            except UserError as err:
                errors.append(str(err))
        raise UserError(errors[0] if errors else f"bad value for {name}: {text!r}")
    if origin is tuple:
        inner = text.strip("()[] ")
        parts = [p for p in (s.strip() for s in inner.split(",")) if p] if inner else []
        if args and args[-1] is not Ellipsis:
            if len(parts) != len(args):
                raise UserError(f"setting {name} takes {len(args)} values separated by commas, got {text!r}")
            return tuple(parse_value(p, a, name) for p, a in zip(parts, args, strict=True))
        item = args[0] if args else str
        return tuple(parse_value(p, item, name) for p in parts)
    if hint is bool:
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off"):
            return False
        raise UserError(f"setting {name} must be true or false, got {text!r}")
    if hint in (int, float):
        try:
            return hint(text)
        except ValueError:
            raise UserError(
                f"setting {name} must be {'an integer' if hint is int else 'a number'}, got {text!r}"
            ) from None
    if hint is str:
        return text
    raise UserError(f"setting {name} cannot be given on the command line")


def apply_settings(config: T, settings: list[str] | tuple[str, ...]) -> T:
    """``config`` with each ``key=value`` of ``settings`` applied (nested fields as ``outer.inner=value``).

    Every key and value is read first, then the config is rebuilt once, so that settings which
    depend on each other (``training.epochs`` and ``training.freeze_epochs``) may come in any order;
    a key given twice takes its last value.

    Raises:
        UserError: for a malformed assignment, an unknown key (the message lists the valid ones),
            a value of the wrong type, or a combination the config's own checks refuse.
    """
    changes: dict[str, Any] = {}
    given = []
    for item in settings:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--set takes key=value, got {item!r}")
        path = key.split(".")
        node = changes
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _parse_setting(config, path, text, key)
        given.append(f"{key}={text.strip()}")
    if not changes:
        return config
    try:
        return _replace_nested(config, changes)
    except ValueError as err:
        raise UserError(f"--set {', '.join(given)}: {err}") from None


def _parse_setting(config: Any, path: list[str], text: str, full: str) -> Any:
    """The value ``text`` of the field at ``path`` in ``config``, read as that field's type."""
    cls = type(config)
    hints = typing.get_type_hints(cls)
    unknown = UserError(f"unknown setting {full!r} of {cls.__name__}; valid: {', '.join(field_names(cls))}")
    if path[0] not in hints or path[0] not in {f.name for f in dataclasses.fields(cls)}:
        raise unknown
    hint = hints[path[0]]
    if len(path) > 1:
        inner = getattr(config, path[0])
        if not dataclasses.is_dataclass(inner):
            raise unknown
        return _parse_setting(inner, path[1:], text, full)
    if _dataclass_type(hint) is not None:
        example = field_names(_dataclass_type(hint))[0]  # type: ignore[arg-type]
        raise UserError(f"setting {full!r} is a group: set its fields, e.g. {full}.{example}")
    return parse_value(text, hint, full)


def _replace_nested(config: Any, changes: dict[str, Any]) -> Any:
    """``config`` with ``changes`` (field -> value, or a dict of a nested config's changes) applied;
    a default derived from other fields (``ranges.set_derived``) is derived again unless given."""
    values = {
        name: _replace_nested(getattr(config, name), change) if isinstance(change, dict) else change
        for name, change in changes.items()
    }
    return replace_derived(config, **values)
