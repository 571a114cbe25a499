"""The MobileNetV2 refiner ("mnv2_cm"): torchvision layout, taps, ImageNet init, model folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import DATA, need

from alpharefine_sdk.nn.mobilenet import MobileNetV2Trunk, load_imagenet_features
from alpharefine_sdk.nn.registry import ARCHITECTURES, build_net

BACKBONE = DATA / "backbones" / "mobilenet_v2_imagenet.safetensors"


@pytest.fixture(scope="module")
def imagenet():
    from safetensors.torch import load_file

    return load_file(str(need(BACKBONE)))


def test_trunk_is_torchvision_features_0_to_13(imagenet):
    own = MobileNetV2Trunk().state_dict()
    ref = {k: v for k, v in imagenet.items() if k.startswith("features.") and int(k.split(".")[1]) <= 13}
    assert set(own) == set(ref)
    assert all(tuple(own[k].shape) == tuple(ref[k].shape) for k in own)


def test_taps_channels_and_strides():
    trunk = MobileNetV2Trunk().eval()
    with torch.no_grad():
        out = trunk(torch.zeros(1, 3, 256, 256), ("f1", "f3", "f6", "f13"))
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == {
        "f1": (16, 128, 128),
        "f3": (24, 64, 64),
        "f6": (32, 32, 32),
        "f13": (96, 16, 16),
    }


def test_imagenet_init_loads_and_changes_features(imagenet):
    trunk = MobileNetV2Trunk()
    n = load_imagenet_features(trunk, BACKBONE)
    assert n == len(trunk.state_dict())
    w = trunk.state_dict()["features.13.conv.2.weight"]
    assert torch.equal(w, imagenet["features.13.conv.2.weight"].float())


def test_imagenet_init_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="backbone_init"):
        load_imagenet_features(MobileNetV2Trunk(), tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"features.0.0.weight": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="lacks"):
        load_imagenet_features(MobileNetV2Trunk(), tmp_path / "other.safetensors")


def test_freeze_stops_gradients_of_early_blocks():
    trunk = MobileNetV2Trunk()
    trunk.freeze(7)
    assert not any(p.requires_grad for b in trunk.features[:7] for p in b.parameters())
    assert all(p.requires_grad for b in trunk.features[7:] for p in b.parameters())


def test_registered_and_small():
    net = build_net("mnv2_cm")
    assert "mnv2_cm" in ARCHITECTURES
    n_bytes = sum(t.numel() * 4 for t in net.state_dict().values())
    assert n_bytes < 20e6
    with pytest.raises(ValueError, match="mnv2_cm"):
        build_net("no_such_arch")


def test_model_folder_loads_in_refiner_and_refines_a_real_frame(tmp_path):
    import cv2

    from alpharefine_sdk import Refiner
    from alpharefine_sdk.config import ModelConfig
    from alpharefine_sdk.weights.io import save_model_folder

    torch.manual_seed(0)
    net = build_net("mnv2_cm").eval()
    save_model_folder(net, ModelConfig(architecture="mnv2_cm"), tmp_path / "m")
    seq = need(DATA / "sequences" / "otb" / "Crossing")
    frames = [cv2.imread(str(seq / "img" / f"{i:04d}.jpg")) for i in (1, 2)]
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")[:2]
    r = Refiner.from_pretrained(tmp_path / "m", backend="torch", device="cpu", image_format="BGR")
    assert r.config.architecture == "mnv2_cm"
    r.initialize(frames[0], gt[0])
    res = r.refine(frames[1], gt[1], mask=True)
    box, mask = res.network_box, res.mask  # random weights: the network's box may be degenerate (gated)
    assert np.isfinite(box).all() and mask.shape == frames[1].shape[:2]
    # same weights, same crops -> the network in the engine gives what the raw net gives
    from alpharefine_sdk.geometry.crop import crop_patch, crop_window
    from alpharefine_sdk.geometry.normalize import normalize_crops

    def inp(f, b):
        c = crop_patch(f, crop_window(b))[:, :, ::-1]
        return torch.from_numpy(
            normalize_crops(np.ascontiguousarray(c)[None], (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        )

    with torch.no_grad():
        corners, _ = net.search(inp(frames[1], gt[1]), net.template_kernel(inp(frames[0], gt[0])))
    from alpharefine_sdk.geometry.crop import box_from_corners

    assert np.allclose(box_from_corners(corners[0].numpy(), crop_window(gt[1])), box, atol=1e-4)
