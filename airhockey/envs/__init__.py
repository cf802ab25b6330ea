"""Gymnasium environments: the air-hockey table."""

from airhockey.envs.airhockey_v0 import N_BUTTONS, STATE_LAYOUT, AirHockeyEnv, resolve_target_buttons

__all__ = ["N_BUTTONS", "STATE_LAYOUT", "AirHockeyEnv", "resolve_target_buttons"]
