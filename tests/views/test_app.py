import socket

import pytest

from captcha_nb.views import app


def test_a_port_in_use_gives_way_to_a_free_one():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        port = app.free_port(busy)
    assert port != busy and port > 0


def test_voila_serves_the_app_notebook_on_loopback_with_a_token():
    command = app.voila_command(8866, "secret")
    assert str(app.APP_NOTEBOOK) in command and app.APP_NOTEBOOK.is_file()
    assert "--Voila.ip=127.0.0.1" in command and "--token=secret" in command


def test_inspect_refuses_a_folder_without_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.pt"):
        app.serve(str(tmp_path))


def test_inspect_names_missing_validation_images_before_serving(tmp_path, trained_run, tiny_dir, monkeypatch):
    import json
    import shutil

    # A run whose data is not on this machine, as the committed reference run is on a fresh clone.
    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    split = json.loads((run / "split.json").read_text())
    (run / "split.json").write_text(json.dumps({**split, "data_dir": str(tmp_path / "elsewhere")}))
    with pytest.raises(FileNotFoundError, match="--data"):
        app.serve(str(run))
    served = {}
    monkeypatch.setattr(app, "run_voila", lambda notebook, env, port, what: served.update(env) or 0)
    assert app.serve(str(run), data_dir=str(tiny_dir)) == 0
    assert served[app.DATA_ENV] == str(tiny_dir.resolve())
