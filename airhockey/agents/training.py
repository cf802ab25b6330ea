"""Training the PPO agent with stable-baselines3, into a self-describing run folder.

A run folder holds everything needed to reproduce, resume and reload the run::

    config.json                   the resolved TrainConfig (hyperparameters included) and versions
    command.txt                   the command line of each session that trained it
    eval.csv                      one row per evaluation on the validation seeds (runlog.EvalRow)
    tb/                           TensorBoard event files of stable-baselines3's logger (rollout/,
                                  time/, train/) and of the evaluations (eval/), with the
                                  ``tensorboard`` extra
    curve.png                     success rate against env steps and wall-clock time
    model.zip                     the final model ...
    model_vecnormalize.pkl        ... and its VecNormalize statistics (load with load_policy(run))
    model_actor.npz               ... and its deterministic actor as numpy arrays (for generation)
    checkpoint/                   the same three files and state.json, written at each evaluation
    best/                         the same for the evaluation with the highest success rate so far

Seeding: the network's initialisation and PPO's sampling follow ``seed``; environment ``i`` is
first reset with seed ``base + i``, ``base`` drawn from ``SeedSequence([seed, start_timesteps])``
into ``[TRAIN_SEED_BASE, TRAIN_SEED_BASE + 2**30)``, above every evaluation seed. On CPU a run is
reproducible for a given seed, whatever the number of workers.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium
import mujoco
import numpy as np
import stable_baselines3
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, make_output_format
from stable_baselines3.common.vec_env import VecNormalize
from tqdm import tqdm

import airhockey
from airhockey.agents import runlog
from airhockey.agents.config import TRAIN_SEED_BASE, VALIDATION_SEED, TrainConfig
from airhockey.agents.evaluation import evaluate
from airhockey.agents.files import PolicyFiles
from airhockey.agents.policy import MODEL_FILE, AgentPolicy, one_torch_thread, stats_path
from airhockey.agents.vec_env import ParallelVecEnv, training_venv
from airhockey.errors import UserError
from airhockey.tblog import TB_DIR, available, note_missing
from airhockey.writing import atomic_file, open_append, write_atomic

CONFIG_FILE = "config.json"
COMMAND_FILE = "command.txt"
CSV_FILE = "eval.csv"
CURVE_FILE = "curve.png"
CHECKPOINT_DIR = "checkpoint"
BEST_DIR = "best"
STATE_FILE = "state.json"
# Settings a resumed run must share with the run it continues; the others may change.
RUN_DEFINING = ("seed", "target_buttons", "eval_every", "eval_episodes", "hyperparams")


@dataclass(frozen=True)
class TrainSummary:
    """What a call to ``train`` did."""

    run_dir: Path
    """The run folder."""
    timesteps: int
    """Environment steps the model has now been trained on, over all sessions."""
    wall_seconds: float
    """Wall-clock seconds of the run so far, over all sessions."""
    steps_per_second: float
    """Environment steps per second of this session's training, evaluations excluded."""
    rows: list[runlog.EvalRow]
    """The run's evaluations so far."""
    best: dict[str, float]
    """``timesteps``, ``wall_seconds`` and ``success_rate`` of the model in ``best/``: the first
    evaluation with the run's highest validation success rate."""


class _RunCallback(BaseCallback):
    """Evaluates, logs to CSV, checkpoints and drives the progress bar during ``PPO.learn``."""

    def __init__(
        self, config: TrainConfig, venv: VecNormalize, wall_offset: float, last_eval: int, best_rate: float
    ) -> None:
        super().__init__()
        self.config = config
        self.venv = venv
        self.wall_offset = wall_offset
        self.last_eval = last_eval
        self.best_rate = best_rate
        self.eval_seconds = 0.0
        self.start = time.perf_counter()
        self.bar: Any = None

    def wall_seconds(self) -> float:
        return self.wall_offset + time.perf_counter() - self.start

    def _on_training_start(self) -> None:
        if self.config.progress_bar:
            self.bar = tqdm(
                total=self.config.timesteps, initial=self.model.num_timesteps, unit="step", dynamic_ncols=True
            )
        if self.last_eval < 0:
            self.evaluate()

    def _on_step(self) -> bool:
        if self.bar is not None:
            self.bar.update(self.training_env.num_envs)
        return True

    def _on_rollout_start(self) -> None:
        every = self.config.eval_every
        if every and self.model.num_timesteps - self.last_eval >= every:
            self.evaluate()

    def _on_training_end(self) -> None:
        if self.model.num_timesteps != self.last_eval:
            self.evaluate()
        if self.bar is not None:
            self.bar.close()

    def evaluate(self) -> None:
        """Evaluates on the validation seeds, appends a CSV row and writes a checkpoint, and the
        best model when the success rate beats every earlier evaluation's."""
        begin, timesteps = time.perf_counter(), self.model.num_timesteps
        policy = AgentPolicy(self.model, self.venv, "training")
        result = evaluate(policy, self.config.eval_episodes, VALIDATION_SEED, self.config.target_buttons)
        low, high = result.interval
        row = runlog.EvalRow(
            timesteps,
            self.wall_seconds(),
            result.success_rate,
            low,
            high,
            result.mean_return,
            result.mean_length,
        )
        runlog.append_row(self.config.out / CSV_FILE, row)
        state = {"timesteps": timesteps, "wall_seconds": row.wall_seconds}
        checkpoint = self.config.out / CHECKPOINT_DIR / MODEL_FILE
        sha = _save(self.model, self.venv, checkpoint)
        _write_atomic(checkpoint.with_name(STATE_FILE), json.dumps({**state, "sha256": sha}))
        if row.success_rate > self.best_rate:
            best = self.config.out / BEST_DIR / MODEL_FILE
            sha = _save(self.model, self.venv, best)
            record = {**state, "success_rate": row.success_rate, "sha256": sha}
            _write_atomic(best.with_name(STATE_FILE), json.dumps(record))
            self.best_rate = row.success_rate
        self.last_eval = timesteps
        self.logger.record("eval/success_rate", row.success_rate)
        self.logger.record("eval/mean_return", row.mean_return)
        self.logger.record("eval/mean_length", row.mean_length)
        self.logger.dump(timesteps)
        self.eval_seconds += time.perf_counter() - begin
        if self.bar is not None:
            self.bar.set_postfix(success=f"{row.success_rate:.0%}", refresh=False)


def train(config: TrainConfig, command: str | None = None) -> TrainSummary:
    """Trains PPO on AirHockey-v0 into the run folder ``config.out``, or resumes it there.

    Args:
        config: the run's settings.
        command: the command line to record; default: this process's ``sys.argv``.

    Returns:
        What was trained, with the run's evaluations.

    Raises:
        UserError: when the run folder is in the way, or a resumed run is at odds with ``config``.
    """
    out = config.out
    resume_state = _resume_state(config)
    start, wall_offset = resume_state or (0, 0.0)
    (out / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
    (out / BEST_DIR).mkdir(exist_ok=True)
    with open_append(out / COMMAND_FILE, "command log") as f:
        f.write((command if command is not None else shlex.join(sys.argv)) + "\n")
    if resume_state is None:
        _write_atomic(out / CONFIG_FILE, json.dumps({**_versions(), "config": config.to_dict()}, indent=2))
    else:
        runlog.keep_rows_until(out / CSV_FILE, start)

    with (
        one_torch_thread(),
        contextlib.closing(
            training_venv(config.hyperparams.n_envs, config.target_buttons, config.workers)
        ) as base_venv,
    ):
        model, venv = _build_model(config, base_venv, resume=resume_state is not None)
        if available():
            tb = str(out / TB_DIR)
            model.set_logger(Logger(tb, [make_output_format("tensorboard", tb)]))
        else:
            note_missing()
        env_seed = _train_env_seed(config.seed, start)
        # PPO seeds the global generators and the envs from the run seed; a resumed session must
        # not replay the first session's randomness, and the envs take seeds above the eval range.
        model.set_random_seed(env_seed)
        venv.seed(TRAIN_SEED_BASE + env_seed)

        best_rate = _best(out, start)["success_rate"] if resume_state else -1.0
        callback = _RunCallback(config, venv, wall_offset, start if resume_state else -1, best_rate)
        learn_start = time.perf_counter()
        try:
            model.learn(
                config.timesteps - start,
                callback=callback,
                reset_num_timesteps=resume_state is None,
                progress_bar=False,
            )
        finally:
            model.logger.close()  # flushes the event files
        learn_seconds = time.perf_counter() - learn_start - callback.eval_seconds
        _save(model, venv, out / MODEL_FILE)

    rows = runlog.read_rows(out / CSV_FILE)
    title = f"PPO on {airhockey.ENV_ID} ({config.target_buttons}), seed {config.seed}"
    runlog.plot_curve(rows, out / CURVE_FILE, title)
    return TrainSummary(
        out,
        model.num_timesteps,
        callback.wall_seconds(),
        (model.num_timesteps - start) / learn_seconds,
        rows,
        _best(out, model.num_timesteps),
    )


def _best(out: Path, until: int) -> dict[str, float]:
    """The state of the run's best model, if saved at or before ``until`` steps; else (a resumed
    run whose best model came from an evaluation after its checkpoint, or whose saving was cut off
    before its state was written) it is removed and -1 given."""
    state_file = out / BEST_DIR / STATE_FILE
    if state_file.is_file():
        best = runlog.read_state(state_file)
        if best.success_rate is None:
            raise UserError(f"{state_file}: field 'success_rate': missing: restore it or train anew")
        if best.timesteps <= until and _matches(best, out / BEST_DIR / MODEL_FILE):
            return {k: v for k, v in asdict(best).items() if k != "sha256"}
    for path in (out / BEST_DIR).iterdir():
        path.unlink()
    return {"timesteps": -1, "wall_seconds": 0.0, "success_rate": -1.0}


def _resume_state(config: TrainConfig) -> tuple[int, float] | None:
    """Timesteps and wall seconds of the checkpoint to resume from, or None to start afresh.

    Raises:
        UserError: when ``out`` holds files but is not to be resumed (or cannot be), when the
            saved run differs from ``config`` in a run-defining setting, or has trained enough.
    """
    out = config.out
    state_file = out / CHECKPOINT_DIR / STATE_FILE
    if not (config.resume and state_file.exists()):
        if out.exists() and any(out.iterdir()):
            hint = "it has no checkpoint to resume from" if config.resume else "pass --resume to continue it"
            raise UserError(f"run folder {out} exists and is not empty; {hint}, or choose another --out")
        return None
    saved = runlog.read_run_config(out / CONFIG_FILE).config
    state = runlog.read_state(state_file)
    if not _matches(state, out / CHECKPOINT_DIR / MODEL_FILE):
        raise UserError(
            f"cannot resume {out}: {CHECKPOINT_DIR}/{MODEL_FILE} is not the model its {STATE_FILE} was "
            "written for (the run stopped while saving a checkpoint): train anew into another --out"
        )
    start, wall_seconds = state.timesteps, state.wall_seconds
    given = config.to_dict()
    for name in RUN_DEFINING:
        if saved.get(name) != given[name]:
            raise UserError(
                f"cannot resume {out}: {name} was {saved.get(name)!r}, now {given[name]!r}; "
                "resume with the run's own settings (see its config.json)"
            )
    if config.timesteps <= start:
        raise UserError(f"run {out} has trained {start} steps already; pass a larger --timesteps")
    return start, wall_seconds


def _build_model(config: TrainConfig, base_venv: ParallelVecEnv, resume: bool) -> tuple[PPO, VecNormalize]:
    """A new PPO model and VecNormalize around ``base_venv``, or both restored from the checkpoint."""
    hp = config.hyperparams
    if resume:
        checkpoint = config.out / CHECKPOINT_DIR / MODEL_FILE
        venv = VecNormalize.load(str(stats_path(checkpoint)), base_venv)
        return PPO.load(checkpoint, env=venv, device=config.device), venv
    venv = VecNormalize(
        base_venv, norm_obs=hp.norm_obs, norm_reward=hp.norm_reward, clip_obs=hp.clip_obs, gamma=hp.gamma
    )
    return PPO(env=venv, seed=config.seed, device=config.device, verbose=0, **hp.ppo_kwargs()), venv


def _train_env_seed(seed: int, start_timesteps: int) -> int:
    """A seed in [0, 2**30) for a training session, different for each seed and starting point."""
    return int(np.random.SeedSequence([seed, start_timesteps]).generate_state(1)[0] >> 2)


def _save(model: PPO, venv: VecNormalize, path: Path) -> str:
    """Saves the model zip, its VecNormalize statistics and its numpy actor beside it, each
    replaced atomically; returns their identity (``PolicyFiles.sha256``) for the state file."""
    tmp = path.with_name("tmp_" + path.name)
    with atomic_file(path, tmp=tmp) as f:
        model.save(f)
    with atomic_file(stats_path(path), tmp=stats_path(tmp)) as f:
        pickle.dump(venv, f)  # what VecNormalize.save writes
    files = PolicyFiles(path, stats_path(path))
    sha = files.sha256()
    AgentPolicy(model, venv, str(path)).actor().save(files.actor, sha)
    return sha


def _matches(state: runlog.CheckpointState, model: Path) -> bool:
    """Whether the model files beside ``state`` are the ones it was written for (states written
    before the identity was recorded are taken as they are)."""
    if state.sha256 is None:
        return True
    files = PolicyFiles(model, stats_path(model))
    return files.model.is_file() and files.stats.is_file() and files.sha256() == state.sha256


def _write_atomic(path: Path, text: str) -> None:
    write_atomic(path, text, tmp=path.with_name("tmp_" + path.name))


def _versions() -> dict[str, Any]:
    return {
        "env_id": airhockey.ENV_ID,
        "versions": {
            "airhockey": airhockey.__version__,
            "stable_baselines3": stable_baselines3.__version__,
            "torch": torch.__version__,
            "gymnasium": gymnasium.__version__,
            "mujoco": mujoco.__version__,
            "python": sys.version.split()[0],
        },
    }
