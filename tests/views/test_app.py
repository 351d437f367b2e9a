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


def test_inspect_opens_without_the_runs_images_and_still_reads_uploads(tmp_path, trained_run, tiny_dir, monkeypatch,
                                                                      capsys):
    import json
    import shutil

    # A run whose data is not on this machine, as the committed reference run is on a fresh clone.
    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    split = json.loads((run / "split.json").read_text())
    (run / "split.json").write_text(json.dumps({**split, "data_dir": str(tmp_path / "elsewhere")}))
    served = {}
    monkeypatch.setattr(app, "run_voila", lambda notebook, env, port, what: served.update(env) or 0)
    assert app.serve(str(run)) == 0 and app.DATA_ENV not in served
    assert "--data" in capsys.readouterr().err

    monkeypatch.setenv(app.RUN_ENV, str(run))
    monkeypatch.delenv(app.DATA_ENV, raising=False)
    page = app.inspector_for_app()
    title, inspector_box = page.children
    assert "elsewhere" in title.value and "--data" in title.value and "0 validation captchas" in title.value
    upload = next(w for w in inspector_box.children if w.__class__.__name__ == "FileUpload")
    assert upload is not None
    with pytest.raises(FileNotFoundError, match="--data"):
        app.serve(str(run), data_dir=str(tmp_path / "nowhere"))

    # Given the folder, the app browses the run's validation images again.
    assert app.serve(str(run), data_dir=str(tiny_dir)) == 0 and served[app.DATA_ENV] == str(tiny_dir.resolve())
    monkeypatch.setenv(app.DATA_ENV, str(tiny_dir))
    title, _ = app.inspector_for_app().children
    assert f"{len(split['val'])} validation captchas" in title.value
