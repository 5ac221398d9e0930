import pytest
import torch

from tl_utils import augment, data, freezing, keys, models, train


@pytest.fixture(scope="module")
def drawings():
    return data.load("clipart", "train", n_per_class=1, seed=0).x[:6]


def test_each_image_gets_its_own_draw(drawings):
    same = drawings[:1].repeat(8, 1, 1, 1)
    torch.manual_seed(0)
    out = augment.for_drawings(48)(same)
    assert out.shape == (8, 3, 48, 48) and out.dtype == torch.uint8
    assert len({o.float().sum().item() for o in out}) == 8  # eight copies, eight different results


def test_the_same_seed_gives_the_same_images(drawings):
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        runs.append(augment.for_drawings(48)(drawings))
    assert torch.equal(*runs)


def test_the_options_choose_the_steps():
    steps = [type(t).__name__ for t in augment.for_drawings(32, flip=False, jitter=0).transform.transforms]
    assert steps == ["RandomResizedCrop"]
    steps = [type(t).__name__ for t in augment.for_drawings(32).transform.transforms]
    assert steps == ["RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter"]


def test_a_white_background_stays_white():
    white = torch.full((4, 3, 40, 40), 255, dtype=torch.uint8)
    white[:, 0, 10:30, 10:30] = 40  # a dark red square on white
    torch.manual_seed(0)
    out = augment.for_drawings(40, crop_scale=(1.0, 1.0), flip=False, jitter=0.5)(white)
    assert (out[:, :, :5, :5] >= 250).all()  # the corners: still white (hue changes round by a unit)
    assert not torch.equal(out, white)  # the square's colour changed


def test_a_flip_mirrors_left_to_right(drawings):
    flip = augment.PerImage(lambda image: image.flip(-1))
    assert torch.equal(flip(drawings), drawings.flip(-1))


def test_other_settings_give_other_checkpoint_keys():
    digests = {keys.digest(a) for a in (augment.for_drawings(64), augment.for_drawings(64, flip=False),
                                        augment.for_drawings(64, crop_scale=(0.3, 1.0)),
                                        augment.for_drawings(64, jitter=0.1), augment.for_drawings(96))}
    assert len(digests) == 5
    assert keys.digest(augment.for_drawings(64)) == keys.digest(augment.for_drawings(64))


def test_preprocessed_floats_are_refused_with_a_hint(drawings):
    with pytest.raises(ValueError, match="augment before preprocessing"):
        augment.for_drawings(32)(drawings.float() / 255)


@pytest.fixture(scope="module")
def split_model():
    model = models.load_backbone(num_classes=12)
    freezing.freeze_stages(model, 7)
    return freezing.split(model, 7), models.preprocessing(size=64)


def test_through_frozen_gives_the_cached_stage_outputs_without_augmentation(drawings, split_model):
    (bottom, _), prep = split_model
    with torch.no_grad():
        expected = bottom(prep(drawings))
    bottom.train()
    got = augment.ThroughFrozen(lambda x: x, prep, bottom)(drawings)
    assert torch.allclose(got, expected, atol=1e-5) and not got.requires_grad
    assert bottom.training  # its modes are left as they were
    bottom.eval()


def test_training_on_augmented_inputs_matches_training_on_cached_ones(drawings, split_model):
    (bottom, top), prep = split_model
    labels = torch.arange(len(drawings)) % 12
    with torch.no_grad():
        cached = bottom(prep(drawings))
    runs = []
    for inputs, aug in [(cached, None), (drawings, augment.ThroughFrozen(lambda x: x, prep, bottom))]:
        torch.manual_seed(0)  # the same new head for both
        model = models.load_backbone(num_classes=12)
        freezing.freeze_stages(model, 7)
        runs.append(train.fit(freezing.split(model, 7).top, (inputs, labels), val=(cached, labels), augment=aug,
                              epochs=2, batch_size=3, seed=0))
    for a, b in zip(*runs):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4) and a["val_acc"] == b["val_acc"]


def test_through_frozen_refuses_stages_that_still_train(split_model):
    _, prep = split_model
    with pytest.raises(ValueError, match="must be frozen"):
        augment.ThroughFrozen(lambda x: x, prep, models.load_backbone().blocks[:2])
