import pytest
import torch

from captcha_nb.core.model import (
    CRNN,
    MODELS,
    SeedCRNN,
    build_model,
    count_parameters,
    input_size,
)


def test_crnn_emits_one_step_per_four_pixels_of_width():
    model = CRNN(num_classes=20, height=32, width=128).eval()
    assert model(torch.zeros(2, 1, 32, 128)).shape == (2, 32, 20)
    assert model.sequence(torch.zeros(1, 1, 32, 128)).shape[1] == 32


def test_crnn_takes_other_geometries():
    for height, width in [(32, 96), (32, 280), (48, 200)]:
        model = build_model("crnn", 11, height, width).eval()
        assert model(torch.zeros(1, 1, height, width)).shape == (1, width // 4, 11)


def test_seed_architecture_is_faithful():
    model = SeedCRNN(num_classes=20).eval()
    assert model(torch.zeros(2, 3, 75, 300)).shape == (2, 75, 20)
    assert model.project[0].in_features == 1152 and model.project[0].out_features == 64
    assert model.gru.num_layers == 2 and model.gru.hidden_size == 32 and model.gru.bidirectional
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 128), (128, 64)]
    assert input_size("seed", (32, 128)) == (75, 300)
    with pytest.raises(ValueError, match="75x300"):
        SeedCRNN(20, 32, 128)


def test_too_few_time_steps_for_the_longest_label_is_refused():
    # width 16 gives 4 time steps; "a88b" needs 5 (a blank between the two 8s).
    with pytest.raises(ValueError, match="a88b"):
        build_model("crnn", 5, 32, 16, labels=["abc", "a88b"])
    build_model("crnn", 5, 32, 20, labels=["abc", "a88b"])


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(ValueError, match="crnn"):
        build_model("resnet9000", 5, 32, 128)


def test_every_registered_model_builds_and_counts_parameters():
    for name in MODELS:
        size = input_size(name, (32, 128))
        assert count_parameters(build_model(name, 20, *size)) > 1000
