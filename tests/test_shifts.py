import pytest
import torch

from tl_utils import shifts


@pytest.fixture
def images():
    torch.manual_seed(0)
    x = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    x[:, :, 8:20, 12:16] = 200  # a bright vertical bar on black
    return x


def test_brightness_and_contrast(images):
    darker = shifts.brightness_contrast(images, brightness=-0.1)
    assert darker.dtype == torch.uint8 and darker.shape == images.shape
    assert darker.float().mean() < images.float().mean()
    flat = shifts.brightness_contrast(images, contrast=0.5)
    assert flat.float().std() < images.float().std()
    assert torch.equal(shifts.brightness_contrast(images), images)  # no change by default


def test_blur_spreads_edges_but_keeps_mass(images):
    blurred = shifts.blur(images, sigma=1.5)
    assert blurred[0, 0, 14, 11] > 0 and blurred[0, 0, 14, 14] < 200
    assert abs(blurred.float().sum() - images.float().sum()) / images.float().sum() < 0.02


def test_rotation_turns_a_vertical_bar_horizontal(images):
    turned = shifts.rotate(images, 90)
    rows, cols = (turned[0, 0] > 100).nonzero(as_tuple=True)
    assert cols.max() - cols.min() > rows.max() - rows.min()  # now wider than tall
    assert torch.equal(shifts.rotate(images, 0), images)


def test_shifts_refuse_floats():
    with pytest.raises(TypeError, match="uint8"):
        shifts.blur(torch.rand(1, 1, 8, 8))
