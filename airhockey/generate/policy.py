"""Resolving ``--policy`` to a policy object and to the identity stored with every shard."""

from __future__ import annotations

from types import ModuleType

from airhockey.errors import UserError
from airhockey.generate.rollout import Policy
from airhockey.generate.scripted import ScriptedPolicy

SCRIPTED = "scripted"


def _agents(spec: str) -> ModuleType:
    """The agent stage (stable-baselines3 and torch), imported only when a saved agent is asked for."""
    try:
        import airhockey.agents as agents
    except ImportError as err:
        raise UserError(
            f"cannot use policy {spec!r}: the agent stage is not installed ({err}); "
            f"install airhockey[agent] or use --policy {SCRIPTED}"
        ) from None
    return agents


def load_policy(spec: str) -> Policy:
    """The policy named by ``spec``: ``scripted``, ``bundled`` or the path of a saved agent.

    Raises:
        UserError: when the agent cannot be loaded.
    """
    if spec == SCRIPTED:
        return ScriptedPolicy()
    return _agents(spec).load_policy(spec)


def policy_identity(spec: str) -> dict[str, str]:
    """Name and SHA-256 of the policy named by ``spec``, to store with the data it generates.

    Uses ``airhockey.agents.policy_identity`` where the agent stage provides it; otherwise hashes
    the agent's files (model, then normalisation statistics) as the agent stage finds them.

    Raises:
        UserError: when the agent's files cannot be found.
    """
    if spec == SCRIPTED:
        return ScriptedPolicy.identity()
    agents = _agents(spec)
    if hasattr(agents, "policy_identity"):
        return dict(agents.policy_identity(spec))
    files = agents.find_policy_files(spec)
    return {"name": files.model.name, "sha256": files.sha256()}
