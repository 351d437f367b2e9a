import pytest

from captcha_nb.config import TrainConfig


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
