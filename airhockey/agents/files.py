"""Where a saved agent's files lie, and their identity; reading no file's contents and no torch.

A saved agent is a stable-baselines3 PPO model zip and, beside it, the VecNormalize statistics it
was trained with (``<name>.zip``, ``<name>_vecnormalize.pkl``); both unpickle Python objects when
loaded, so load only files you trust. Training also writes the deterministic actor as plain arrays
(``<name>_actor.npz``, see ``airhockey.agents.actor``), which ``airhockey generate`` reads without
torch and without unpickling anything.

A run folder of rl-baselines3-zoo (``logs/ppo/AirHockey-v0_1/``) is read as it is: its model
``AirHockey-v0.zip`` (or ``best_model.zip``, given as a path) with the statistics the zoo saves in
``AirHockey-v0/vecnormalize.pkl``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import airhockey
from airhockey.errors import UserError

BUNDLED = "bundled"
"""The name of the bundled agent trained with target buttons ``leftright`` (0 and 4)."""
BUNDLED_ALL = "bundled-all"
"""The name of the bundled agent trained with target buttons ``all`` (any of the five)."""
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
BUNDLED_MODELS = {BUNDLED: ASSETS_DIR / "ppo_leftright.zip", BUNDLED_ALL: ASSETS_DIR / "ppo_all.zip"}
"""The bundled agents' model zips, by name."""
BUNDLED_MODEL = BUNDLED_MODELS[BUNDLED]
MODEL_FILE = "model.zip"
"""The final model's name in a run folder."""
STATS_SUFFIX = "_vecnormalize.pkl"
ZOO_MODEL_FILE = f"{airhockey.ENV_ID}.zip"
"""The final model's name in an rl-baselines3-zoo run folder."""
ZOO_STATS = Path(airhockey.ENV_ID) / "vecnormalize.pkl"
"""Where an rl-baselines3-zoo run folder holds its VecNormalize statistics."""
ACTOR_SUFFIX = "_actor.npz"


def stats_path(model_path: Path) -> Path:
    """The VecNormalize statistics saved beside a model zip: ``a/b.zip`` -> ``a/b_vecnormalize.pkl``."""
    return model_path.with_name(model_path.stem + STATS_SUFFIX)


def _found_stats(model_path: Path) -> Path:
    """The statistics of a model zip: ``stats_path``'s file, or where the zoo saves them (``ZOO_STATS``
    in the model's folder) when only that exists."""
    own, zoo = stats_path(model_path), model_path.parent / ZOO_STATS
    return zoo if not own.is_file() and zoo.is_file() else own


def actor_path(model_path: Path) -> Path:
    """The exported actor saved beside a model zip: ``a/b.zip`` -> ``a/b_actor.npz``."""
    return model_path.with_name(model_path.stem + ACTOR_SUFFIX)


@dataclass(frozen=True)
class PolicyFiles:
    """The files of a saved agent; finding them reads no file's contents."""

    model: Path
    """The stable-baselines3 PPO model zip."""
    stats: Path
    """The pickled VecNormalize holding the observation statistics."""

    @property
    def actor(self) -> Path:
        """Where its exported actor lies, if it was exported (``<name>_actor.npz``)."""
        return actor_path(self.model)

    def sha256(self) -> str:
        """Hex SHA-256 of the model's bytes followed by the statistics' bytes: the agent's identity."""
        digest = hashlib.sha256()
        for path in (self.model, self.stats):
            digest.update(path.read_bytes())
        return digest.hexdigest()


def bundled_for(targets: str) -> str:
    """The name of the bundled agent trained for the target preset ``targets``."""
    return BUNDLED_ALL if targets == "all" else BUNDLED


def find_policy_files(policy: str | Path) -> PolicyFiles:
    """Resolves ``"bundled"``, ``"bundled-all"``, a run folder (this package's or rl-baselines3-zoo's)
    or a model zip to the agent's two files.

    Raises:
        UserError: when a file is missing.
    """
    if str(policy) in BUNDLED_MODELS:
        model = BUNDLED_MODELS[str(policy)]
        if not model.is_file():
            raise UserError(
                f"the bundled policy {str(policy)!r} is not installed ({model} is missing); "
                "train one with 'airhockey agent train' and pass its run folder with --policy"
            )
    else:
        path = Path(policy).expanduser()
        model = path / MODEL_FILE if path.is_dir() else path
        if path.is_dir() and not model.is_file() and (path / ZOO_MODEL_FILE).is_file():
            model = path / ZOO_MODEL_FILE
        if not model.is_file():
            where = (
                f"run folder {path} holds no {MODEL_FILE} (nor a zoo run's {ZOO_MODEL_FILE})"
                if path.is_dir()
                else f"{path} does not exist"
            )
            raise UserError(
                f"cannot load policy: {where}; pass 'bundled', 'bundled-all', a run folder or a model .zip"
            )
    stats = _found_stats(model)
    if not stats.is_file():
        raise UserError(f"cannot load policy {model}: its normalisation statistics {stats.name} are missing")
    return PolicyFiles(model, stats)
