import torch

from captcha_nb.core.augment import augment, random_erase


def batch() -> torch.Tensor:
    images = torch.ones(4, 1, 32, 128)
    images[:, :, 8:24, 20:108] = -1.0  # a dark band of "glyphs" on white paper
    return images


def test_strength_zero_leaves_the_batch_alone_and_any_strength_keeps_shape_and_range():
    images = batch()
    assert torch.equal(augment(images, torch.Generator().manual_seed(0), strength=0), images)
    for strength in (1.0, 2.0, 3.0):
        out = augment(images, torch.Generator().manual_seed(0), strength=strength, label_length=5)
        assert out.shape == images.shape and out.min() >= -1.0 and out.max() <= 1.0
        assert not torch.equal(out, images)


def test_the_same_generator_seed_gives_the_same_batch():
    a = augment(batch(), torch.Generator().manual_seed(3), strength=2.0)
    b = augment(batch(), torch.Generator().manual_seed(3), strength=2.0)
    assert torch.equal(a, b)


def test_erasing_paints_background_over_at_most_the_allowed_patch():
    images = -torch.ones(16, 1, 32, 128)
    out = random_erase(images, torch.Generator().manual_seed(1), max_height=0.25, max_width=0.1)
    erased = (out == 1.0).flatten(1).sum(1)
    assert (erased > 0).all() and (erased <= 8 * 12).all()
