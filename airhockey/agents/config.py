"""The agent's settings, without torch: PPO hyperparameters (loaded by env id from ``hyperparams/ppo.yml``,
a file in rl-baselines3-zoo's format), a training run's ``TrainConfig``, and the seed ranges of
training and evaluation."""

from __future__ import annotations

import ast
import dataclasses
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import airhockey
from airhockey.errors import UserError
from airhockey.ranges import Range, check_fields

HYPERPARAMS_PATH = Path(__file__).parent / "hyperparams" / "ppo.yml"
ACTIVATIONS = ("tanh", "relu")
TRAIN_SEED_BASE = 2**31
"""Training resets its environments with seeds from here up, so lower seeds are never trained on."""
EVAL_SEED = 1_000_000
"""The first reset seed of a final evaluation (``agents.evaluation.evaluate``)."""
VALIDATION_SEED = 900_000
"""The first reset seed of the evaluations made during training."""


@dataclass(frozen=True)
class PPOHyperparams:
    """Everything that sets up PPO and its vectorised, normalised environments."""

    n_envs: Annotated[int, Range(1, 1024)]
    """Environments stepped in parallel, 1-1,024; a rollout holds ``n_envs * n_steps`` transitions."""
    n_steps: Annotated[int, Range(1, 10**6)]
    """Steps per environment in each rollout, 1 to 10^6."""
    batch_size: Annotated[int, Range(1, 10**7)]
    """Transitions per gradient step, 1 to 10^7."""
    n_epochs: Annotated[int, Range(1, 1000)]
    """Passes over each rollout, 1-1,000."""
    learning_rate: Annotated[float, Range(0, 10, low_open=True)]
    """Adam step size at the start of training, in (0, 10]."""
    learning_rate_end: Annotated[float, Range(0, 10)] | None
    """Adam step size at the end of the run's timesteps (0-10), reached linearly from
    ``learning_rate`` (stable-baselines3's ``LinearSchedule``); null: constant."""
    gamma: Annotated[float, Range(0, 1, low_open=True)]
    """Discount factor, in (0, 1], also used by VecNormalize to scale rewards."""
    gae_lambda: Annotated[float, Range(0, 1, low_open=True)]
    """Bias/variance trade-off of generalised advantage estimation, in (0, 1]."""
    clip_range: Annotated[float, Range(0, 10, low_open=True)]
    """PPO's ratio clipping, in (0, 10]."""
    ent_coef: Annotated[float, Range(0, 100)]
    """Weight of the entropy bonus, 0-100."""
    vf_coef: Annotated[float, Range(0, 100)]
    """Weight of the value loss, 0-100."""
    max_grad_norm: Annotated[float, Range(0, 10**6, low_open=True)]
    """Gradient-norm clipping, in (0, 10^6]."""
    target_kl: Annotated[float, Range(0, 100, low_open=True)] | None
    """Stop an update's epochs early beyond this approximate KL divergence, in (0, 100]; null: never."""
    policy: str
    """stable-baselines3 policy class name; the state observation needs ``MlpPolicy``."""
    net_arch: list[Annotated[int, Range(1, 16384)]]
    """Hidden layer widths (1-16,384 each), shared by the separate actor and critic networks."""
    activation_fn: str
    """Hidden activation: ``tanh`` or ``relu``."""
    log_std_init: Annotated[float, Range(-20, 20)]
    """Initial log standard deviation of the Gaussian action distribution, -20 to 20."""
    norm_obs: bool
    """Normalise observations by running mean and variance (VecNormalize)."""
    norm_reward: bool
    """Scale rewards by the running standard deviation of the discounted return (VecNormalize)."""
    clip_obs: Annotated[float, Range(0, 10**6, low_open=True)]
    """Clip normalised observations to +-this, in (0, 10^6]."""

    def __post_init__(self) -> None:
        try:
            check_fields(self)
        except UserError as err:
            raise UserError(f"hyperparameter {err}") from None
        if self.activation_fn not in ACTIVATIONS:
            raise UserError(f"hyperparameter activation_fn must be one of {list(ACTIVATIONS)}")
        if not self.net_arch:
            raise UserError("hyperparameter net_arch must list at least one width")

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str) -> PPOHyperparams:
        """Builds hyperparameters from plain values, checking names and types.

        Args:
            values: one value for every field.
            source: where the values came from, for error messages.

        Raises:
            UserError: on an unknown or missing name, or a value of the wrong type.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if "tensorboard_log" in unknown:
            raise UserError(
                "tensorboard_log is not a hyperparameter: training writes TensorBoard logs into the run "
                "folder's tb/ by itself when the 'tensorboard' extra is installed"
            )
        if unknown:
            raise UserError(f"unknown hyperparameter(s) {unknown} in {source}; known: {names}")
        missing = [name for name in names if name not in values]
        if missing:
            raise UserError(f"hyperparameter(s) {missing} missing from {source}")
        hints = typing.get_type_hints(cls)
        return cls(**{name: _coerce(name, hints[name], values[name], source) for name in names})

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain values, as written to a run's resolved config."""
        return dataclasses.asdict(self)

    def with_overrides(self, assignments: Iterable[str]) -> PPOHyperparams:
        """Returns a copy with ``NAME=VALUE`` assignments applied (values parsed as YAML).

        Raises:
            UserError: on a malformed assignment, an unknown name or a value of the wrong type.
        """
        import yaml

        values = self.to_dict()
        for assignment in assignments:
            name, sep, text = assignment.partition("=")
            if not sep or not name.strip():
                raise UserError(f"hyperparameter override must look like NAME=VALUE, got {assignment!r}")
            try:
                values[name.strip()] = yaml.safe_load(text)
            except yaml.YAMLError as err:
                problem = " ".join(str(getattr(err, "problem", None) or err).split())
                raise UserError(
                    f"hyperparameter override {assignment!r}: not valid YAML ({problem})"
                ) from None
        return PPOHyperparams.from_dict(values, "the overrides")

    def ppo_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``stable_baselines3.PPO`` (all but env, seed and device)."""
        import torch
        from stable_baselines3.common.utils import LinearSchedule

        activation = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[self.activation_fn]
        return {
            "policy": self.policy,
            "n_steps": self.n_steps,
            "batch_size": self.batch_size,
            "n_epochs": self.n_epochs,
            "learning_rate": self.learning_rate
            if self.learning_rate_end is None
            else LinearSchedule(self.learning_rate, self.learning_rate_end, 1.0),
            "gamma": self.gamma,
            "gae_lambda": self.gae_lambda,
            "clip_range": self.clip_range,
            "ent_coef": self.ent_coef,
            "vf_coef": self.vf_coef,
            "max_grad_norm": self.max_grad_norm,
            "target_kl": self.target_kl,
            "policy_kwargs": {
                "net_arch": list(self.net_arch),
                "activation_fn": activation,
                "log_std_init": self.log_std_init,
            },
        }


def _coerce(name: str, hint: Any, value: Any, source: str) -> Any:
    """Checks ``value`` against the field type ``hint``; floats may be given as ints or strings."""
    wrong = UserError(f"hyperparameter {name} in {source} has the wrong type: {value!r}")
    if hint is bool or hint is str:
        if not isinstance(value, hint):
            raise wrong
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        return value
    if hint is float or hint == (float | None):
        if value is None and hint is not float:
            return None
        if isinstance(value, str):
            # PyYAML reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise wrong from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong
        return float(value)
    if hint == list[int]:
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise wrong
        return list(value)
    raise TypeError(f"no coercion for hyperparameter {name} of type {hint}")


ZOO_KEYS = (
    "n_timesteps",
    "policy",
    "n_envs",
    "n_steps",
    "batch_size",
    "n_epochs",
    "learning_rate",
    "gamma",
    "gae_lambda",
    "clip_range",
    "ent_coef",
    "vf_coef",
    "max_grad_norm",
    "target_kl",
    "normalize",
    "policy_kwargs",
)
"""The keys of an entry of ``hyperparams/ppo.yml``, in rl-baselines3-zoo's format; all are required."""
NORMALIZE_KEYS = ("norm_obs", "norm_reward", "clip_obs")
POLICY_KWARGS_KEYS = ("net_arch", "activation_fn", "log_std_init")
ZOO_ACTIVATIONS = {"nn.Tanh": "tanh", "nn.ReLU": "relu"}


def load_hyperparams(env_id: str = airhockey.ENV_ID, path: Path = HYPERPARAMS_PATH) -> PPOHyperparams:
    """Reads the hyperparameters of ``env_id`` from a file in rl-baselines3-zoo's format.

    As the zoo does, an env's entry is taken whole, and an env without one takes the ``default``
    entry. The zoo's string forms are parsed, never evaluated: ``learning_rate`` is a number or
    ``lin_<start>`` (decaying linearly to 0 over the run), ``normalize`` and ``policy_kwargs`` are
    ``dict(name=value, ...)`` strings (or mappings) whose ``activation_fn`` is ``nn.Tanh`` or
    ``nn.ReLU``. ``n_timesteps`` is checked but not used: training takes its own step budget.

    Args:
        env_id: a key of the file.
        path: a YAML file keyed by env id, each entry holding every key of ``ZOO_KEYS``.

    Raises:
        UserError: when the file is missing or malformed, or a value is unknown, missing or mistyped.
    """
    import yaml

    try:
        table = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"cannot read hyperparameters from {path}: {err}".replace("\n", " ")) from None
    if not isinstance(table, dict) or not all(isinstance(entry, dict) for entry in table.values()):
        raise UserError(f"{path} must map env ids to hyperparameter entries (rl-baselines3-zoo's format)")
    entry = table.get(env_id, table.get("default"))
    if entry is None:
        raise UserError(f"{path} has no entry for {env_id} and no 'default' entry; add one")
    return _from_zoo(entry, f"{path} ({env_id})")


def _from_zoo(entry: dict[str, Any], source: str) -> PPOHyperparams:
    """Translates one zoo entry into ``PPOHyperparams`` (see ``load_hyperparams``)."""
    unknown = sorted(set(entry) - set(ZOO_KEYS))
    if unknown:
        raise UserError(f"unknown hyperparameter(s) {unknown} in {source}; known: {list(ZOO_KEYS)}")
    missing = [key for key in ZOO_KEYS if key not in entry]
    if missing:
        raise UserError(f"hyperparameter(s) {missing} missing from {source}")
    steps = entry["n_timesteps"]
    if isinstance(steps, bool) or not isinstance(steps, int | float) or not steps >= 1:
        raise UserError(f"hyperparameter n_timesteps in {source} must be a number of steps, got {steps!r}")
    rate, rate_end = entry["learning_rate"], None
    if isinstance(rate, str) and rate.startswith("lin_"):
        rate, rate_end = rate.removeprefix("lin_"), 0.0
    normalize = _dict_call(entry["normalize"], "normalize", NORMALIZE_KEYS, source)
    kwargs = _dict_call(entry["policy_kwargs"], "policy_kwargs", POLICY_KWARGS_KEYS, source)
    activation = kwargs["activation_fn"]
    if activation not in ZOO_ACTIVATIONS:
        raise UserError(
            f"hyperparameter policy_kwargs in {source}: activation_fn must be one of "
            f"{list(ZOO_ACTIVATIONS)}, got {activation!r}"
        )
    copied = ("policy", "n_envs", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range")
    values = {
        **{key: entry[key] for key in copied},
        **{key: entry[key] for key in ("ent_coef", "vf_coef", "max_grad_norm", "target_kl")},
        "learning_rate": rate,
        "learning_rate_end": rate_end,
        **normalize,
        "net_arch": kwargs["net_arch"],
        "activation_fn": ZOO_ACTIVATIONS[activation],
        "log_std_init": kwargs["log_std_init"],
    }
    return PPOHyperparams.from_dict(values, source)


def _dict_call(value: Any, key: str, names: tuple[str, ...], source: str) -> dict[str, Any]:
    """Reads a zoo ``dict(name=value, ...)`` string (or a mapping) with exactly ``names`` as keys,
    without evaluating it; ``nn.<Name>`` values are returned as the strings ``"nn.<Name>"``."""
    form = "dict(" + ", ".join(f"{name}=..." for name in names) + ")"
    bad = UserError(f"hyperparameter {key} in {source} must look like '{form}', got {value!r}")
    if isinstance(value, str):
        try:
            call = ast.parse(value.strip(), mode="eval").body
        except SyntaxError:
            raise bad from None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "dict"):
            raise bad
        if call.args or any(keyword.arg is None for keyword in call.keywords):
            raise bad
        try:
            value = {keyword.arg: _literal(keyword.value) for keyword in call.keywords}
        except ValueError:
            raise bad from None
    if not isinstance(value, dict) or sorted(value) != sorted(names):
        raise bad
    return value


def _literal(node: ast.expr) -> Any:
    """A Python literal, or ``nn.<Name>`` as a string. Raises ValueError on anything else."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "nn":
        return f"nn.{node.attr}"
    return ast.literal_eval(node)


@dataclass
class TrainConfig:
    """One training run."""

    out: Path
    """The run folder; must not exist (or be empty) unless resuming."""
    timesteps: Annotated[int, Range(1, 10**10)] = 1_000_000
    """Environment steps to train for, in total over all sessions of the run (1 to 10^10)."""
    workers: Annotated[int, Range(1, 1024)] = 1
    """Processes that step the environments, this one included (see ParallelVecEnv), at most n_envs."""
    seed: Annotated[int, Range(0, 2**32 - 1)] = 0
    """Seed of the network initialisation, PPO's sampling and the training environments, below 2^32
    (numpy's global seed, which stable-baselines3 sets, takes no more)."""
    target_buttons: str = "leftright"
    """Which buttons episodes target: ``leftright`` (0 and 4) or ``all``."""
    device: str = "cpu"
    """Torch device; runs are reproducible only on ``cpu``."""
    eval_every: Annotated[int, Range(0, 10**10)] = 20_480
    """Environment steps between evaluations (and checkpoints); 0: only at the start and end."""
    eval_episodes: Annotated[int, Range(1, 10**5)] = 100
    """Episodes per evaluation (1 to 10^5), on validation seeds 900,000 up."""
    resume: bool = False
    """Continue the run in ``out`` from its last checkpoint (or start it, if ``out`` is empty)."""
    progress_bar: bool = True
    """Show a progress bar on stderr."""
    hyperparams: PPOHyperparams = field(default_factory=load_hyperparams)
    """PPO and environment hyperparameters (default: ``hyperparams/ppo.yml`` for AirHockey-v0)."""

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        check_fields(self)
        n_envs = self.hyperparams.n_envs
        if self.workers > n_envs:
            raise UserError(f"workers must be between 1 and n_envs ({n_envs}), got {self.workers}")
        if not isinstance(self.target_buttons, str):
            raise UserError(f"target_buttons must be 'leftright' or 'all', got {self.target_buttons!r}")
        from airhockey.envs import resolve_target_buttons  # MuJoCo: only when a run is configured

        try:
            resolve_target_buttons(self.target_buttons)
        except ValueError as err:
            raise UserError(str(err)) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain values, as written to ``config.json``."""
        values = dataclasses.asdict(self)
        values["out"] = str(self.out)
        return values
