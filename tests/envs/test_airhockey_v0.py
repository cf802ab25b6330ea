"""AirHockey-v0 through its public API: spaces, checkers, determinism, physics, rendering."""

from __future__ import annotations

import copy
import gc
import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import airhockey
from airhockey.envs import EVENTS, N_BUTTONS, AirHockeyEnv
from airhockey.envs.airhockey_v0 import MAX_PUCK_SPEED
from airhockey.errors import UserError

TABLE_HALF_X, TABLE_HALF_Y = 0.45, 0.6


def make(**kwargs) -> gym.Env:
    return gym.make(airhockey.ENV_ID, **kwargs)


def top_pixel(env: AirHockeyEnv, xy: tuple[float, float]) -> tuple[int, int]:
    """Row and column of table point ``xy`` in a frame from the orthographic ``top`` camera."""
    cam = env.model.camera("top")
    extent = float(env.model.cam_fovy[cam.id])  # visible height in metres
    ppm = env.height / extent
    col = int(env.width / 2 + (xy[0] - env.model.cam_pos[cam.id][0]) * ppm)
    row = int(env.height / 2 - (xy[1] - env.model.cam_pos[cam.id][1]) * ppm)
    return row, col


def launch_puck(env: gym.Env, pos: tuple[float, float], vel: tuple[float, float]) -> None:
    u = env.unwrapped
    qpos, qvel = u.data.qpos.copy(), u.data.qvel.copy()
    qpos[0:2], qvel[0:2] = pos, vel
    u.set_state(qpos, qvel)


@pytest.mark.parametrize("obs_type", ["state", "pixels", "state_pixels"])
def test_gymnasium_and_sb3_checkers_pass_without_warnings(obs_type):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(make(render_mode="rgb_array", obs_type=obs_type).unwrapped)
        sb3_check_env(make(render_mode="rgb_array", obs_type=obs_type).unwrapped, warn=True)


def test_spaces_and_observation_layout():
    env = make(obs_type="state_pixels", width=48, height=40)
    obs, info = env.reset(seed=3)
    assert env.action_space.shape == (2,) and env.action_space.dtype == np.float32
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    assert obs["pixels"].shape == (40, 48, 3) and obs["pixels"].dtype == np.uint8
    state = obs["state"]
    assert state.shape == (13,) and np.all(np.isfinite(env.observation_space["state"].high))
    np.testing.assert_allclose(state[0:2], [0.0, -0.5])  # bar starts centred
    assert -0.3 <= state[4] <= 0.3 and -0.35 <= state[5] <= -0.15  # puck in the bar's half
    np.testing.assert_array_equal(state[2:4], 0.0)
    np.testing.assert_array_equal(state[6:8], 0.0)  # at rest
    assert state[8 + info["target"]] == 1.0 and state[8:].sum() == 1.0
    assert info["target"] in (0, N_BUTTONS - 1)


def test_reset_info_and_step_info_hold_every_field_and_reward_is_the_sum_of_terms():
    env = make(target_buttons="all")
    _, info = env.reset(seed=0)
    keys = {"hit_button", "target", "is_success", "buttons_lit", "struck", *EVENTS}
    terms = {"reward_approach", "reward_aim", "reward_outcome", "reward_ctrl"}
    assert keys | terms <= set(info)
    rng = np.random.default_rng(0)
    for _ in range(200):
        _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 2))
        assert keys | terms <= set(info)
        assert reward == pytest.approx(sum(info[t] for t in terms))
        if terminated or truncated:
            env.reset()


def rollout(seed: int, steps: int = 300) -> list:
    env = make(target_buttons="all")
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    trace = [(obs, info)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trace.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            trace.append(env.reset())
    return trace


def flatten(trace: list) -> list:
    out = []
    for item in trace:
        for x in item:
            out.extend(np.asarray(v).tolist() for v in x.values()) if isinstance(x, dict) else out.append(
                np.asarray(x).tolist()
            )
    return out


def test_same_seed_same_rollout_across_resets_and_different_seeds_differ():
    a, b, c = rollout(7), rollout(7), rollout(8)
    assert sum(len(t) == 2 for t in a) >= 2, "the rollout should cross at least one reset"
    assert flatten(a) == flatten(b)
    assert flatten(a) != flatten(c)


@pytest.mark.parametrize("button", range(N_BUTTONS))
def test_puck_driven_into_each_button_hits_it_terminates_and_turns_it_green(button):
    env = make(render_mode="rgb_array", target_buttons="all")
    env.reset(seed=button, options={"target": button})
    u = env.unwrapped
    x = float(u.model.geom(f"button{button}").pos[0])
    row, col = top_pixel(u, (x, 0.57))
    before = env.render()[row, col].astype(int)
    assert before[0] > 150 and before[1] < 80, f"button {button} should start red, got {before}"

    launch_puck(env, (x, 0.0), (0.0, 2.5))
    for _ in range(40):
        _, _reward, terminated, truncated, info = env.step(np.zeros(2))
        if terminated:
            break
    assert terminated and not truncated
    assert info["hit_button"] == button and info["is_success"]
    assert info["buttons_lit"].tolist() == [k == button for k in range(N_BUTTONS)]
    assert info["reward_outcome"] == u.reward_weights["success"]
    after = env.render()[row, col].astype(int)
    assert after[1] > 100 and after[0] < 80, f"button {button} should turn green, got {after}"
    for other in set(range(N_BUTTONS)) - {button}:
        r, c = top_pixel(u, (float(u.model.geom(f"button{other}").pos[0]), 0.57))
        assert env.render()[r, c][0] > 150, "the other buttons stay red"


def test_hitting_another_button_is_a_failure_and_reset_turns_it_red_again():
    env = make(render_mode="rgb_array")
    env.reset(seed=0, options={"target": 0})
    launch_puck(env, (0.0, 0.0), (0.0, 3.0))
    for _ in range(40):
        _, _, terminated, _, info = env.step(np.zeros(2))
        if terminated:
            break
    assert info["hit_button"] == 2 and not info["is_success"]
    assert info["reward_outcome"] == env.unwrapped.reward_weights["wrong_button"]
    env.reset(seed=1)
    row, col = top_pixel(env.unwrapped, (0.0, 0.57))
    assert env.render()[row, col][0] > 150


def events(info_or_state: dict) -> dict[str, bool]:
    return {name: bool(info_or_state[name]) for name in EVENTS}


def test_a_rim_contact_shorter_than_a_control_step_is_reported_for_that_step_only():
    env = make()
    _, info = env.reset(seed=0)
    u = env.unwrapped
    assert not any(events(info).values()) and not any(events(u.physical_state()).values())
    # 1 mm from the left rim at 2.5 m/s: it touches the rim in the second of the control step's five
    # physics steps and has bounced off before the last.
    launch_puck(env, (-0.399, -0.2), (-2.5, 0.0))
    _, _, _, _, info = env.step(np.zeros(2))
    assert events(info) == {"bar_contact": False, "rim_contact": True, "button_contact": False}
    assert events(u.physical_state()) == events(info)
    assert u.data.ncon == 0, "the contact is over before the last physics step: it was caught in between"
    assert u.data.qvel[0] > 0  # bounced
    _, _, _, _, info = env.step(np.zeros(2))
    assert not any(events(info).values())


def test_the_bar_contact_comes_with_the_first_motion_of_the_puck_and_the_button_contact_with_the_hit():
    env = make()
    env.reset(seed=0, options={"target": 4})
    u = env.unwrapped
    launch_puck(env, (0.0, -0.42), (0.0, 0.0))  # 5 mm in front of the bar's face
    for _ in range(5):
        _, _, _, _, info = env.step(np.array([0.0, 1.0]))  # the bar drives up into the puck
        assert info["bar_contact"] == bool(u.data.qvel[1] != 0)
        if info["bar_contact"]:
            break
    assert info["bar_contact"] and not info["rim_contact"] and not info["button_contact"]

    launch_puck(env, (0.36, 0.3), (0.0, 2.0))
    for _ in range(20):
        _, _, terminated, _, info = env.step(np.zeros(2))
        assert info["button_contact"] == terminated == (info["hit_button"] >= 0)
        if terminated:
            break
    assert info["hit_button"] == 4


def test_puck_sent_back_from_the_far_half_is_a_miss():
    env = make()
    env.reset(seed=0)
    launch_puck(env, (0.0, 0.3), (0.5, -1.0))
    _, _, terminated, _, info = env.step(np.zeros(2))
    assert terminated and info["hit_button"] == -1 and not info["is_success"]
    assert info["reward_outcome"] == env.unwrapped.reward_weights["miss"]


@pytest.mark.parametrize("start", [(0.0, -0.3), (0.3, 0.2), (-0.35, 0.45)])
def test_puck_fired_at_top_speed_in_any_direction_never_leaves_the_table(start):
    env = make()
    rng = np.random.default_rng(0)
    for angle in np.linspace(0, 2 * np.pi, 24, endpoint=False):
        env.reset(seed=0)
        launch_puck(env, start, (MAX_PUCK_SPEED * np.cos(angle), MAX_PUCK_SPEED * np.sin(angle)))
        for _ in range(60):
            _, _, terminated, _, _ = env.step(rng.uniform(-1, 1, 2))
            x, y = env.unwrapped.puck_pos
            # The rims' inner faces bound the table: the puck may press into a rim (soft contact),
            # but its centre stays at least 1 cm short of the face, at twice the bar's top strike.
            assert abs(x) <= TABLE_HALF_X - 0.01 and abs(y) <= TABLE_HALF_Y - 0.01
            if terminated:
                break


def test_the_bar_at_full_speed_gives_the_puck_less_than_half_the_tested_speed():
    env = make()
    fastest = 0.0
    for dx in (-0.12, -0.06, 0.0, 0.06, 0.12):
        for action in ([0.0, 1.0], [1.0, 1.0], [-1.0, 1.0]):
            env.reset(seed=0)
            launch_puck(env, (dx, -0.3), (0.0, 0.0))
            for _ in range(30):
                env.step(np.array(action, dtype=np.float32))
                fastest = max(fastest, float(np.hypot(*env.unwrapped.data.qvel[0:2])))
    assert 1.0 < fastest < MAX_PUCK_SPEED / 2


def test_bar_stays_in_its_half():
    env = make()
    env.reset(seed=0)
    for action in ([1, 1], [-1, 1], [-1, -1], [1, -1]):
        for _ in range(60):
            env.step(np.array(action, dtype=np.float32))
        x, y = env.unwrapped.bar_pos
        assert abs(x) <= 0.36 and -0.58 <= y <= -0.04


def test_async_vector_env_and_standard_wrappers_compose():
    vec = gym.make_vec(airhockey.ENV_ID, num_envs=2, vectorization_mode="async")
    obs, info = vec.reset(seed=[1, 2])
    assert obs.shape == (2, 13) and info["target"].shape == (2,)
    obs, reward, _terminated, _truncated, info = vec.step(np.zeros((2, 2), dtype=np.float32))
    assert obs.shape == (2, 13) and reward.shape == (2,)
    vec.close()

    env = make(render_mode="rgb_array")
    env = gym.wrappers.AddRenderObservation(env, render_only=True)
    env = gym.wrappers.ResizeObservation(env, (32, 32))
    env = gym.wrappers.FrameStackObservation(env, 4)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 32, 32, 3)
    obs, *_ = env.step(env.action_space.sample())
    assert obs.shape == (4, 32, 32, 3)


def test_advance_is_step_without_reward_and_info_and_the_two_mix():
    envs = {mode: make(target_buttons="all").unwrapped for mode in ("step", "advance", "mixed")}
    rng = np.random.default_rng(0)
    outcomes = set()
    for episode in range(12):
        vx = float(rng.uniform(-1.0, 1.0))
        for env in envs.values():
            env.reset(seed=episode, options={"target": episode % N_BUTTONS})
            if episode % 3 == 1:  # the puck sent at the buttons: one is hit
                launch_puck(env, (0.0, 0.0), (vx, 2.5))
            elif episode % 3 == 2:  # the puck coming back from the far half: a miss
                launch_puck(env, (0.0, 0.3), (vx, -1.0))
        for t in range(150):
            action = rng.uniform(-1, 1, 2).astype(np.float32)
            if episode % 3 == 0:  # the bar drives up the table: it strikes the puck
                action[1] = 1.0
            obs, reward, terminated, _, info = envs["step"].step(action)
            obs_a, terminated_a = envs["advance"].advance(action)
            if t % 3 == 0:  # a step between advances must give the reward of an all-step episode
                obs_m, reward_m, terminated_m, _, _ = envs["mixed"].step(action)
                assert reward_m == reward
            else:
                obs_m, terminated_m = envs["mixed"].advance(action)
            for other_obs, other_terminated, env in (
                (obs_a, terminated_a, envs["advance"]),
                (obs_m, terminated_m, envs["mixed"]),
            ):
                np.testing.assert_array_equal(other_obs, obs)
                assert other_terminated == terminated
                assert env.hit_button == info["hit_button"]
                np.testing.assert_array_equal(env.buttons_lit, info["buttons_lit"])
            if terminated:
                outcomes.add(info["hit_button"])
                break
    assert -1 in outcomes and len(outcomes) >= 3  # misses and hits of several buttons were compared


def test_truncated_by_time_limit():
    env = make()
    env.reset(seed=0)
    steps, truncated, terminated = 0, False, False
    while not (truncated or terminated):
        _, _, terminated, truncated, _ = env.step(np.zeros(2))  # the bar never moves
        steps += 1
    assert truncated and not terminated and steps == env.spec.max_episode_steps


def test_make_by_module_path_without_import():
    code = "import gymnasium as gym; e = gym.make('airhockey:AirHockey-v0'); print(e.reset(seed=0)[0].shape)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(13,)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"obs_type": "rgb"}, "obs_type must be one of"),
        ({"target_buttons": "middle"}, "target_buttons must be one of"),
        ({"target_buttons": [0, 7]}, "button indices 0-4"),
        ({"camera_name": "side"}, "camera_name must be one of"),
        ({"width": 0}, "width must be a positive integer"),
    ],
)
def test_bad_arguments_give_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_an_unknown_render_mode_is_refused_after_gymnasiums_own_warning():
    gymnasium_warns = pytest.warns(UserWarning, match="render_mode='video' that is not in the possible")
    with gymnasium_warns, pytest.raises(ValueError, match="render_mode must be one of"):
        make(render_mode="video")


def test_reset_target_option_is_checked():
    env = make()
    assert env.reset(seed=0, options={"target": 3})[1]["target"] == 3
    with pytest.raises(ValueError, match="button index 0-4"):
        env.reset(seed=0, options={"target": 5})


def test_envs_in_one_process_render_their_own_state_through_the_shared_renderer():
    envs = [make(render_mode="rgb_array", target_buttons="all") for _ in range(3)]
    alone = make(render_mode="rgb_array", width=32, height=32)  # another size: another renderer
    for k, env in enumerate(envs):
        env.reset(seed=k, options={"target": k})
    launch_puck(envs[1], (-0.36, 0.3), (0.0, 2.5))
    for _ in range(30):
        envs[1].step(np.zeros(2))
    frames = [env.render() for env in envs]
    assert not np.array_equal(frames[0], frames[1])  # different puck positions, one lit button
    row, col = top_pixel(envs[1].unwrapped, (-0.36, 0.57))
    assert frames[1][row, col][1] > 100 and frames[0][row, col][0] > 150
    alone.reset(seed=0)
    assert alone.render().shape == (32, 32, 3)
    envs[0].close()  # the others keep rendering after one closes
    np.testing.assert_array_equal(envs[2].render(), frames[2])


def test_frames_are_mujoco_renderers_pixels_even_after_another_gl_context_renders():
    import mujoco  # here, after airhockey chose the headless GL backend

    env = make(render_mode="rgb_array")
    env.reset(seed=3)
    before = env.render()
    for _ in range(10):
        env.step(np.array([0.5, 1.0], dtype=np.float32))
    u = env.unwrapped
    reference = mujoco.Renderer(u.model, 64, 64)
    reference.update_scene(u.data, camera="top")
    expected = reference.render()
    assert not np.array_equal(before, expected)
    # Another model's renderer with a smaller offscreen buffer: its GL context is current after it
    # renders, and a frame drawn there instead of in the env's own context would come out clipped.
    small = mujoco.MjModel.from_xml_string(
        '<mujoco><visual><global offwidth="32" offheight="32"/></visual>'
        '<worldbody><geom type="box" size=".1 .1 .1"/></worldbody></mujoco>'
    )
    other = mujoco.Renderer(small, 32, 32)
    other.update_scene(mujoco.MjData(small))
    other.render()
    out = np.zeros((64, 64, 3), dtype=np.uint8)
    assert u.render_into(out) is out
    np.testing.assert_array_equal(out, expected)
    env.reset(seed=3)
    other.render()
    np.testing.assert_array_equal(env.render(), before)
    with pytest.raises(ValueError, match="out must be a"):
        u.render_into(np.zeros((32, 32, 3), dtype=np.uint8))
    for renderer in (other, reference):
        renderer.close()
    env.close()


def test_a_deep_copy_steps_like_the_original():
    env = make().unwrapped
    env.reset(seed=0)
    twin = copy.deepcopy(env)
    action = np.array([0.5, 1.0], dtype=np.float32)
    for _ in range(10):
        np.testing.assert_array_equal(env.step(action)[0], twin.step(action)[0])
    assert not np.shares_memory(env.data.qpos, twin.data.qpos)


def test_the_coarser_meshes_draw_the_top_cameras_frames_of_mujocos_default_meshes():
    import mujoco  # here, after airhockey chose the headless GL backend

    env = make(render_mode="rgb_array", target_buttons="all")
    u = env.unwrapped
    assert (u.model.vis.quality.numquads, u.model.vis.quality.numstacks) == (1, 2)
    default = mujoco.MjModel.from_xml_path(str(airhockey.envs.airhockey_v0.MODEL_PATH))
    default.vis.quality.numquads, default.vis.quality.numstacks = 4, 16  # MuJoCo's defaults
    reference = mujoco.Renderer(default, 64, 64)
    env.reset(seed=5, options={"target": 1})
    launch_puck(env, (-0.18, 0.2), (0.0, 2.0))  # lights button 1 on the way
    for t in range(40):
        default.geom_rgba[:] = u.model.geom_rgba  # lit buttons are drawn from the model's colours
        reference.update_scene(u.data, camera="top")
        np.testing.assert_array_equal(env.render(), reference.render(), err_msg=f"frame {t}")
        env.step(np.array([0.7, 0.4], dtype=np.float32))
    assert u.buttons_lit[1]
    reference.close()
    env.close()


@pytest.mark.parametrize("bar_speed", [0.5, 3.0])  # the MJCF's ctrlrange is +-1.5
def test_bar_speed_above_and_below_the_models_control_range_is_the_speed_reached(bar_speed):
    env = make(bar_speed=bar_speed)
    env.reset(seed=0)
    for action, axis in (([1.0, 0.0], 2), ([0.0, 1.0], 3)):  # obs 2-3: bar velocity (x, y)
        env.reset(seed=0)
        for _ in range(4):  # 80 ms: about 5 time constants of the velocity servo, short of the limits
            obs, *_ = env.step(np.array(action, dtype=np.float32))
        assert obs[axis] == pytest.approx(bar_speed, rel=0.03)
    env.close()


@pytest.mark.parametrize(("width", "height"), [(32, 48), (128, 96)])  # the MJCF's framebuffer: 64x64
def test_frame_sizes_above_and_below_the_models_framebuffer_render_at_that_size(width, height):
    env = make(render_mode="rgb_array", width=width, height=height, obs_type="state_pixels")
    obs, _ = env.reset(seed=0)
    assert env.render().shape == obs["pixels"].shape == (height, width, 3)
    env.close()


def test_a_frame_size_no_framebuffer_can_hold_is_a_one_line_error():
    env = make(render_mode="rgb_array", width=16385, height=16)
    with pytest.raises(UserError, match=r"^cannot render 16385x16 frames .*smaller frame size$"):
        env.reset(seed=0)
        env.render()
    env.close()


def test_rendering_from_other_threads_gives_the_main_threads_frame():
    keeper = make(render_mode="rgb_array")  # shares the main thread's renderer throughout
    keeper.reset(seed=1)
    kept = keeper.render()
    env = make(render_mode="rgb_array")
    env.reset(seed=4)
    env.step(np.array([0.3, 0.8], dtype=np.float32))
    main = env.render()
    with ThreadPoolExecutor(2) as pool:
        for frame in pool.map(lambda _: env.render(), range(4)):
            np.testing.assert_array_equal(frame, main)
    frames = []
    recorder = threading.Thread(target=lambda: frames.append(env.render()))
    recorder.start()
    recorder.join()
    np.testing.assert_array_equal(frames[0], main)
    np.testing.assert_array_equal(env.render(), main)  # and the main thread's renderer still works
    env.close()  # gives up the other threads' renderers, whose contexts this thread cannot free
    gc.collect()
    np.testing.assert_array_equal(keeper.render(), kept)
    keeper.close()
    again = make(render_mode="rgb_array")
    again.reset(seed=4)
    again.step(np.array([0.3, 0.8], dtype=np.float32))
    np.testing.assert_array_equal(again.render(), main)
    again.close()
