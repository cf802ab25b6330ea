"""Gymnasium environments: the air-hockey table."""

from airhockey.envs.airhockey_v0 import EVENTS, N_BUTTONS, STATE_LAYOUT, AirHockeyEnv, resolve_target_buttons

__all__ = ["EVENTS", "N_BUTTONS", "STATE_LAYOUT", "AirHockeyEnv", "resolve_target_buttons"]
