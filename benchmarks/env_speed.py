"""Speed of AirHockey-v0 against the raw limits of its own MuJoCo model.

Prints one table: the raw physics rate (``mj_step(model, data, nstep=frame_skip)``), the rate of
``env.step`` with state observations, the raw render rate (``Renderer.update_scene`` + ``render``
at the frame size) and the rate of ``env.step`` + ``env.render``, with the two ratios the
environment is held to (``env.step`` >= 0.5 x physics, step+render >= 0.8 x raw render).

    python benchmarks/env_speed.py [--steps 20000] [--size 64]
"""

from __future__ import annotations

# isort: off
import airhockey  # first: selects the headless GL backend before MuJoCo loads

# isort: on
import argparse

import gymnasium as gym
import mujoco
import numpy as np
from common import interleaved_rates, print_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20_000, help="control steps per timing")
    parser.add_argument("--size", type=int, default=64, help="frame width and height in pixels")
    args = parser.parse_args()
    n, size = args.steps, args.size

    env = gym.make(airhockey.ENV_ID)
    env.reset(seed=0)
    model, data = env.unwrapped.model, env.unwrapped.data
    frame_skip = env.unwrapped.frame_skip
    data.ctrl[:] = 0.5

    def physics() -> None:
        mujoco.mj_step(model, data, nstep=frame_skip)

    actions = np.random.default_rng(0).uniform(-1, 1, (n, 2)).astype(np.float32)

    def stepper(e: gym.Env, render: bool):
        i = 0

        def step() -> None:
            nonlocal i
            _, _, terminated, truncated, _ = e.step(actions[i % n])
            i += 1
            if render:
                e.render()
            if terminated or truncated:
                e.reset()

        return step

    physics_rate, env_rate = interleaved_rates(
        {"physics": physics, "env": stepper(env, render=False)}, n
    ).values()

    renv = gym.make(airhockey.ENV_ID, render_mode="rgb_array", width=size, height=size)
    renv.reset(seed=0)
    renderer = mujoco.Renderer(renv.unwrapped.model, size, size)

    def raw_render() -> None:
        renderer.update_scene(renv.unwrapped.data, camera="top")
        renderer.render()

    nr = max(n // 4, 500)
    raw_render_rate, step_render_rate = interleaved_rates(
        {"raw render": raw_render, "step+render": stepper(renv, render=True)}, nr
    ).values()

    print_table(
        f"AirHockey-v0 speed, one process, {size}x{size} frames, frame_skip={frame_skip}",
        ["measure", "steps/s", "ratio", "target"],
        [
            ["raw mj_step(nstep=frame_skip) (physics limit)", physics_rate, "1.00", ""],
            ["env.step, state observations", env_rate, f"{env_rate / physics_rate:.2f}", ">= 0.5"],
            ["raw Renderer.update_scene + render (render limit)", raw_render_rate, "1.00", ""],
            [
                "env.step + env.render",
                step_render_rate,
                f"{step_render_rate / raw_render_rate:.2f}",
                ">= 0.8",
            ],
        ],
    )


if __name__ == "__main__":
    main()
