import pytest

from captcha_nb.core.config import TrainConfig


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("model", "nope", "model='nope'"),
        ("epochs", -1, "epochs=-1"),
        ("epochs", 2.5, "epochs=2.5"),
        ("batch_size", 0, "batch_size=0"),
        ("lr", 0, "lr=0"),
        ("lr", "fast", "lr='fast'"),
        ("seed", "1", "seed='1'"),
        ("max_minutes", 0, "max_minutes=0"),
        ("val_fraction", 1.0, "val_fraction=1.0"),
        ("test_fraction", 0.95, "test_fraction=0.95"),
        ("ema_decay", 1.5, "ema_decay=1.5"),
        ("target_accuracy", 2, "target_accuracy=2"),
        ("img_height", 4, "img_height=4"),
        ("device", "tpu", "device='tpu'"),
        ("data_dir", "/no/such/dir", "data_dir='/no/such/dir'"),
    ],
)
def test_bad_parameters_name_themselves(field, value, message):
    config = TrainConfig(**{field: value})
    with pytest.raises(ValueError) as error:
        config.validate()
    assert message in str(error.value)


def test_defaults_are_valid_and_round_trip():
    config = TrainConfig(data_dir=None)
    assert config.validate() is config
    assert TrainConfig.from_dict({**config.to_dict(), "added_later": 1}) == config


def test_every_field_has_help_and_the_cli_offers_it_with_the_same_default():
    from dataclasses import fields

    from captcha_nb.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    options = {action.dest: action for action in train._actions}
    for f in fields(TrainConfig):
        assert f.metadata.get("help"), f.name
        assert f.name in options, f"train has no option for {f.name}"
        assert options[f.name].default == getattr(TrainConfig(), f.name), f.name
    # The historical option names are a contract.
    flags = {flag for action in train._actions for flag in action.option_strings}
    assert {"--data", "--run-dir", "--epochs", "--max-minutes", "--seed", "--model", "--device", "--batch-size",
            "--lr", "--resume", "--val-fraction", "--test-fraction"} <= flags
