"""Resolving ``--policy`` to a policy object and to the identity stored with every shard.

A saved agent plays as its numpy actor (``airhockey.agents.actor``): read from the
``<name>_actor.npz`` that training writes beside the model when that file matches the model's
SHA-256, without torch or unpickling; otherwise exported from the model loaded with
stable-baselines3 (which needs the ``agent`` extra and unpickles the files).
"""

from __future__ import annotations

from airhockey.agents.actor import MLPActor
from airhockey.agents.files import BUNDLED_MODELS, find_policy_files
from airhockey.errors import UserError
from airhockey.generate.rollout import Policy
from airhockey.generate.scripted import ScriptedPolicy

SCRIPTED = "scripted"


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


def policy_identity(spec: str) -> dict[str, str]:
    """Name and SHA-256 of the policy named by ``spec``, to store with the data it generates.

    Raises:
        UserError: when the agent's files cannot be found.
    """
    if spec == SCRIPTED:
        return ScriptedPolicy.identity()
    files = find_policy_files(spec)
    return {"name": files.model.name, "sha256": files.sha256()}
