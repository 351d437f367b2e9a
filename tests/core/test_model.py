import pytest
import torch

from captcha_nb.core.model import (
    CRNN,
    MODELS,
    SeedCRNN,
    build_model,
    count_parameters,
    model_spec,
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
    assert model_spec("seed").fixed_size == (75, 300) and model_spec("seed").in_channels == 3
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
        size = model_spec(name).fixed_size or (32, 128)
        assert count_parameters(build_model(name, 20, *size)) > 1000


def test_a_model_registered_with_its_class_alone_brings_its_facts_and_the_width_rule_follows(tiny_set):
    import pytest

    from captcha_nb.core.config import TrainConfig
    from captcha_nb.core.ctc import min_time_steps
    from captcha_nb.core.model import CRNN, register
    from captcha_nb.core.prepare import decide_input

    class Stride8(CRNN):
        time_stride = 8  # (its pooling is CRNN's; the input rules only read the stated fact)

    with pytest.raises(TypeError, match="in_channels"):
        register("no-facts", type("NoFacts", (), {"time_stride": 4}))
    register("stride8", Stride8)
    try:
        assert model_spec("stride8").time_stride == 8 and model_spec("stride8").in_channels == 1
        spec = decide_input(TrainConfig(model="stride8"), tiny_set).spec
        four = decide_input(TrainConfig(model="crnn"), tiny_set).spec
        needed = max(min_time_steps(label) for label in tiny_set.labels)
        assert spec.time_stride == 8 and spec.width // 8 >= needed and spec.width > four.width
    finally:
        MODELS.pop("stride8", None)
