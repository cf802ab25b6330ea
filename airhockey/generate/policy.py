"""Resolving ``--policy`` to a policy object and to the identity stored with every shard; the
``noisy:`` policies and the per-episode choice of a policy mix.

A saved agent plays as its numpy actor (``airhockey.agents.actor``): read from the
``<name>_actor.npz`` that training writes beside the model when that file matches the model's
SHA-256, without torch or unpickling; otherwise exported from the model loaded with
stable-baselines3 (which needs the ``agent`` extra and unpickles the files).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from airhockey.agents.actor import MLPActor
from airhockey.agents.files import BUNDLED_MODELS, find_policy_files
from airhockey.errors import UserError
from airhockey.generate.config import NOISY
from airhockey.generate.rollout import Policy
from airhockey.generate.scripted import ScriptedPolicy

SCRIPTED = "scripted"
MIX_STREAM = 1
"""Key of the seed stream that picks an episode's policy from a mix."""
NOISE_STREAM = 2
"""Key of the seed streams of a noisy policy's noise and pauses."""


class NoisyPolicy:
    """Another policy's actions with Gaussian noise and pauses, drawn from the episode's seed.

    At step t of the episode with reset seed s the action is the base policy's plus Gaussian noise
    of standard deviation ``noise`` (drawn from ``SeedSequence([s, NOISE_STREAM, t])``), clipped to
    [-1, 1]; during a pause it is 0 (the bar coasts to a stop). Each episode has up to
    ``max_pauses`` pauses of ``pause_steps`` steps each, starting within its first
    ``pause_within`` steps (drawn from ``SeedSequence([s, NOISE_STREAM])``). Stateless, like the
    policies it wraps: the action follows from the observation, the seed and the step, so a replay
    of the stored actions needs nothing of it.

    Args:
        base: the policy whose actions are perturbed.
        noise: standard deviation of the noise, in action units.
        max_pauses: most pauses per episode.
        pause_steps: (low, high) length of a pause in steps, inclusive.
        pause_within: pauses start before this step.
    """

    reads_episode = True

    def __init__(
        self,
        base: Policy,
        noise: float = 0.25,
        max_pauses: int = 2,
        pause_steps: tuple[int, int] = (3, 10),
        pause_within: int = 40,
    ) -> None:
        self.base, self.noise = base, noise
        self.max_pauses, self.pause_steps, self.pause_within = max_pauses, pause_steps, pause_within
        self.reads_layout = getattr(base, "reads_layout", False)

    def paused(self, seed: int, step: int) -> bool:
        """Whether step ``step`` of the episode with reset seed ``seed`` is in a pause."""
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), NOISE_STREAM]))
        count = int(rng.integers(self.max_pauses + 1))
        starts = rng.integers(self.pause_within, size=count)
        lengths = rng.integers(self.pause_steps[0], self.pause_steps[1] + 1, size=count)
        return bool(((starts <= step) & (step < starts + lengths)).any())

    def predict(
        self,
        observation: NDArray[np.float64],
        deterministic: bool = True,
        seeds: NDArray[np.int64] | None = None,
        steps: NDArray[np.int64] | None = None,
        **kwargs: Any,
    ) -> tuple[NDArray[np.float32], None]:
        """(N, 13) observations, each env's episode seed and step (N,) -> ((N, 2) actions, None).

        Other keyword arguments (``button_x``) go to the base policy.
        """
        if seeds is None or steps is None:
            raise ValueError("NoisyPolicy.predict needs each episode's seeds and steps")
        actions, _ = self.base.predict(observation, deterministic=True, **kwargs)
        actions = np.array(actions, dtype=np.float64).reshape(len(seeds), -1)
        for i, (seed, step) in enumerate(zip(seeds.tolist(), steps.tolist(), strict=True)):
            if self.paused(seed, step):
                actions[i] = 0.0
            else:
                rng = np.random.default_rng(np.random.SeedSequence([seed, NOISE_STREAM, step]))
                actions[i] += rng.normal(0.0, self.noise, size=actions.shape[1])
        return np.clip(actions, -1.0, 1.0).astype(np.float32), None


def mix_choice(seed: int, n: int) -> int:
    """Which of ``n`` policies of a mix plays the episode with reset seed ``seed`` (uniform)."""
    return int(np.random.SeedSequence([int(seed), MIX_STREAM]).generate_state(1)[0] % n)


def load_policies(specs: Sequence[str], loaded: dict[str, Policy] | None = None) -> list[Policy]:
    """The policies named by ``specs``, each loaded once (``noisy:<spec>`` wraps ``<spec>``'s).

    Args:
        specs: policy specs, as ``load_policy`` takes, or ``noisy:`` ones.
        loaded: policies already loaded, by spec, reused instead of loaded again.
    """
    cache = dict(loaded or {})

    def get(spec: str) -> Policy:
        if spec not in cache:
            cache[spec] = (
                NoisyPolicy(get(spec.removeprefix(NOISY))) if spec.startswith(NOISY) else load_policy(spec)
            )
        return cache[spec]

    return [get(spec) for spec in specs]


def load_policy(spec: str) -> Policy:
    """The policy named by ``spec``: ``scripted``, ``bundled``, ``bundled-all`` or a saved agent's path.

    Raises:
        UserError: when the agent cannot be loaded.
    """
    if spec == SCRIPTED:
        return ScriptedPolicy()
    files = find_policy_files(spec)
    name = spec if spec in BUNDLED_MODELS else str(files.model)
    if files.actor.is_file():
        actor, source = MLPActor.load(files.actor, name)
        if source == files.sha256():
            return actor
    try:
        from airhockey.agents.policy import load_policy as load_agent
    except ImportError as err:
        raise UserError(
            f"cannot use policy {spec!r}: it has no up-to-date {files.actor.name} and the agent stage "
            f"is not installed ({err}); install airhockey[agent] or use --policy {SCRIPTED}"
        ) from None
    agent = load_agent(spec)
    try:
        return agent.actor()
    except UserError:  # not a plain MLP: play it with stable-baselines3
        return agent


def policy_identity(spec: str, mix: Sequence[str] = ()) -> dict[str, str]:
    """Name and SHA-256 of the policy named by ``spec``, to store with the data it generates; with a
    ``mix``, of the mix: its specs joined by ``+`` and the SHA-256 of its members' identities.

    Raises:
        UserError: when the agent's files cannot be found.
    """
    if mix:
        members = {s: policy_identity(s.removeprefix(NOISY)) for s in sorted(set(mix))}
        text = json.dumps(members, sort_keys=True)
        return {"name": "+".join(mix), "sha256": hashlib.sha256(text.encode()).hexdigest()}
    if spec == SCRIPTED:
        return ScriptedPolicy.identity()
    files = find_policy_files(spec)
    return {"name": files.model.name, "sha256": files.sha256()}
