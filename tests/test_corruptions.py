"""Corruptions: six of ImageNet-C's families at five severities, deterministic, on uint8 images."""

import pytest
import torch

from tl_utils import corruptions


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(60, 200, (4, 3, 96, 96), generator=g, dtype=torch.uint8)  # clip art's size
    x[:, :, 24:72, 40:56] = 250  # an edge to blur
    return x


@pytest.mark.parametrize("kind", corruptions.KINDS)
def test_each_family_grows_with_severity_and_is_the_same_for_a_seed(images, kind):
    out = [corruptions.corrupt(images, kind, s, seed=3) for s in range(6)]
    assert all(o.dtype == torch.uint8 and o.shape == images.shape for o in out)
    assert torch.equal(out[0], images) and out[0] is not images  # severity 0: a copy, unchanged
    change = [(o.float() - images.float()).abs().mean().item() for o in out]
    assert change[5] > change[1] > 0 and change[5] >= change[3] >= change[1]
    assert torch.equal(corruptions.corrupt(images, kind, 4, seed=3), out[4])  # deterministic


def test_noise_differs_between_seeds_and_blur_scales_with_the_image():
    x = torch.zeros(1, 1, 224, 224, dtype=torch.uint8)
    x[..., 112:] = 255  # one vertical edge
    small = x[..., ::4, ::4]
    assert not torch.equal(corruptions.noise(x, 0.1, seed=0), corruptions.noise(x, 0.1, seed=1))

    def width(image):  # columns of the edge's ramp, as a share of the image's side
        return ((image[0, 0, 0] > 10) & (image[0, 0, 0] < 245)).sum().item() / image.shape[-1]

    # the same severity blurs an image four times smaller by a quarter of the pixels: the same share of it
    assert width(corruptions.corrupt(x, "blur", 5)) == pytest.approx(width(corruptions.corrupt(small, "blur", 5)), abs=0.02)


def test_grey_images_go_through_every_family():
    x = torch.full((2, 1, 28, 28), 128, dtype=torch.uint8)
    for kind in corruptions.KINDS:
        assert corruptions.corrupt(x, kind, 3).shape == x.shape


@pytest.mark.parametrize("kind, severity, message", [("fog", 1, "unknown corruption"), ("blur", 6, "0 \\(none\\) to 5"),
                                                     ("blur", 2.0, "whole number")])
def test_bad_arguments_say_what_to_pass(images, kind, severity, message):
    with pytest.raises(ValueError, match=message):
        corruptions.corrupt(images, kind, severity)


def test_float_images_are_refused():
    with pytest.raises(TypeError, match="uint8"):
        corruptions.corrupt(torch.rand(1, 3, 8, 8), "jpeg", 1)
