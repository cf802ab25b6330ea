"""``next_frame`` through the method registry trains the same weights as the code before the registry.

The digests below were computed by the pre-registry code (commit be7a432: ``learn.pretext.train_pretext``
with ``AutoencoderConfig(stem_channels=(8,), hidden_channels=4, frames_in=3)`` and
``PretextConfig(epochs=1, batch_size=8, clip_stride=8)``, then ``classify_on_dataset`` with and
without ``scratch``) on the same tiny dataset, with one torch thread on this CPU. A different
torch build or CPU may round differently: the test is a regression check for this environment.
"""

from __future__ import annotations

import hashlib

import pytest
import torch

from airhockey.generate import generate
from airhockey.learn.downstream.classify import classify_on_dataset
from airhockey.learn.methods.next_frame import NextFrame
from airhockey.learn.pretext.trainer import train_pretext
from tests.learn.tiny import DATA, MODEL, PRETEXT, SCHEDULE

EXPECTED = {
    "pretext": ("62a2df1ba6f4b570", 0.0023489202476210066, 10),
    "pretrained": ("51a48620e6670f0c", 0.48314606741573035, 2),
    "scratch": ("2dbf0d04686bab90", 0.4943820224719101, 2),
}
"""(sha256 prefix of the weights, validation MSE or test accuracy, steps or best epoch)."""


def digest(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@pytest.mark.skipif(
    torch.__version__.split("+")[0] != "2.13.0", reason="digests of torch 2.13.0's CPU kernels"
)
def test_next_frame_and_its_classifiers_train_the_same_weights_as_before_the_registry(tmp_path):
    generate(DATA, tmp_path / "data", workers=1, progress=False)
    metrics = train_pretext(
        tmp_path / "data", tmp_path / "pretext", NextFrame(MODEL), PRETEXT, progress=False
    )
    weights = torch.load(tmp_path / "pretext" / "best.pt", weights_only=True)["model"]
    assert (digest(weights), metrics["val_mse"], metrics["steps"]) == EXPECTED["pretext"]
    for arm, scratch in (("pretrained", False), ("scratch", True)):
        out = tmp_path / arm
        m = classify_on_dataset(
            tmp_path / "data",
            out,
            SCHEDULE,
            pretext=tmp_path / "pretext",
            scratch=scratch,
            labelled_episodes=8,
            progress=False,
        )
        weights = torch.load(out / "model.pt", weights_only=True)["model"]
        assert (digest(weights), m["accuracy"], m["best_epoch"]) == EXPECTED[arm], arm
