"""The inspector and the labelling loop as standalone apps: `python -m captcha_nb inspect` and `label` serve them with
Voilà on localhost, with a random token.

Voilà renders `inspector_app.ipynb` or `labelling_app.ipynb` (beside this file) showing outputs only, never code. The
notebooks call `inspector_for_app()` or `labeller_for_app()`, which read what to show from environment variables that
the command sets: Voilà's kernels inherit the server's environment, and a notebook served by Voilà takes no other
parameters.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from captcha_nb.core.rundir import RunDir

RUN_ENV = "CAPTCHA_NB_INSPECT_RUN"
DATA_ENV = "CAPTCHA_NB_INSPECT_DATA"
APP_NOTEBOOK = Path(__file__).with_name("inspector_app.ipynb")
LABEL_IMAGES_ENV = "CAPTCHA_NB_LABEL_IMAGES"
LABEL_RUN_ENV = "CAPTCHA_NB_LABEL_RUN"
LABEL_TEACHER_ENV = "CAPTCHA_NB_LABEL_TEACHER"
LABEL_ALPHABET_ENV = "CAPTCHA_NB_LABEL_ALPHABET"
LABEL_NOTEBOOK = Path(__file__).with_name("labelling_app.ipynb")
DEFAULT_PORT = 8866


def inspector_for_app():
    """The inspector widget on the validation images of the run named by $CAPTCHA_NB_INSPECT_RUN (or the newest), read
    from $CAPTCHA_NB_INSPECT_DATA when set, otherwise from the folder the run's split.json records.

    When that folder is not on this machine (the committed reference run on a fresh clone), the app still opens: it
    says where the images were expected and how to point at them, and reads uploaded captchas."""
    import html

    import ipywidgets as widgets

    from captcha_nb import project_relative
    from captcha_nb.serving.inference import load_model
    from captcha_nb.sources.data import CaptchaSet
    from captcha_nb.views import workspace
    from captcha_nb.views.widgets import PredictionInspector

    run_path = workspace.trained_run(os.environ.get(RUN_ENV) or None)
    data_dir = os.environ.get(DATA_ENV) or None
    expected = workspace.run_data(run_path, data_dir)
    if expected.is_dir():
        recogniser, val_set, _ = workspace.held_out(run_path, data_dir)
        note = ""
    else:
        recogniser, val_set = load_model(RunDir(run_path).model), CaptchaSet([], [], [])
        note = (f"<p style='color:#c0392b'>The run's validation images were expected in "
                f"<code>{html.escape(str(expected))}</code>, which is not on this machine. Start the app with "
                f"<code>--data DIR</code> (the folder that holds them) to browse them; your own captchas can be read "
                f"below all the same.</p>")
    inspector = PredictionInspector(recogniser, val_set)
    title = widgets.HTML(f"<h2>captcha_nb inspector</h2><p>run <code>{project_relative(run_path)}</code> · "
                         f"{len(val_set)} validation captchas · model {recogniser.model_name}</p>{note}")
    return widgets.VBox([title, inspector.widget])


def labeller_for_app():
    """The labelling widget on $CAPTCHA_NB_LABEL_IMAGES, with the model of $CAPTCHA_NB_LABEL_RUN when it is set."""
    import ipywidgets as widgets

    from captcha_nb.serving.inference import load_model
    from captcha_nb.views.labelling import Labeller

    folder = Path(os.environ[LABEL_IMAGES_ENV])
    run, teacher = os.environ.get(LABEL_RUN_ENV), os.environ.get(LABEL_TEACHER_ENV)
    reader = labelling_teacher(teacher, os.environ.get(LABEL_ALPHABET_ENV, "")) if teacher and not run else None
    labeller = Labeller(folder, load_model(RunDir(run).model) if run else None, reader)
    source = run or (teacher if reader else None)
    model = f" · readings pre-filled by <code>{source}</code>" if source else ""
    title = widgets.HTML(f"<h2>captcha_nb labelling</h2><p><code>{folder}</code>{model}</p>")
    return widgets.VBox([title, labeller.widget])


def free_port(preferred: int | None) -> int:
    """The port asked for, or any free one on loopback: a port in use never stops the app from starting."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


def voila_command(port: int, token: str, notebook: Path = APP_NOTEBOOK) -> list[str]:
    voila = shutil.which("voila", path=str(Path(sys.executable).parent)) or shutil.which("voila")
    if voila is None:
        raise FileNotFoundError("Voilà is not installed; run `make inspect` or pip install -e '.[dev]'")
    return [voila, str(notebook), "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}", f"--token={token}",
            "--Voila.port_retries=0", "--show_tracebacks=True"]


def serve(run_dir: str | None, port: int | None = None, data_dir: str | None = None) -> int:
    """Start Voilà on the run (checked first, so a wrong folder fails here rather than in the browser)."""
    from captcha_nb.views import workspace

    run_path = workspace.trained_run(run_dir).resolve()
    if data_dir and not Path(data_dir).is_dir():
        raise FileNotFoundError(f"--data {data_dir}: not a folder")
    env = {RUN_ENV: str(run_path)}
    if data_dir:
        env[DATA_ENV] = str(Path(data_dir).resolve())
    expected = workspace.run_data(run_path, data_dir)
    if not expected.is_dir():
        print(f"The validation images of {run_path} were read from {expected}, which is not on this machine: the app "
              f"opens to read uploaded captchas; pass --data DIR to browse the run's images.", file=sys.stderr)
    return run_voila(APP_NOTEBOOK, env, port, f"inspector for {run_path}")


def labelling_teacher(name: str, alphabet: str):
    """The teacher that pre-fills the labelling app when there is no run yet, reading only `alphabet`'s characters."""
    from captcha_nb.core.ctc import Alphabet
    from captcha_nb.core.device import select_device
    from captcha_nb.core.teacher import open_teacher

    if not alphabet:
        raise ValueError(f"--teacher {name}: name the characters the captchas use with --alphabet")
    return open_teacher(name, Alphabet("".join(sorted(set(alphabet)))), select_device("auto"))


def serve_labelling(images: str, run_dir: str | None = None, port: int | None = None, teacher: str | None = None,
                    alphabet: str | None = None) -> int:
    """Start Voilà on the labelling app; the folder, the run and the teacher are checked here, before anything is
    served. A run's readings win over a teacher's."""
    from captcha_nb.views import workspace

    folder = Path(images).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"--images {images}: not a folder")
    env = {LABEL_IMAGES_ENV: str(folder)}
    if run_dir:
        env[LABEL_RUN_ENV] = str(workspace.trained_run(run_dir).resolve())
    elif teacher:
        labelling_teacher(teacher, alphabet or "")  # one clear error now rather than a broken app
        env.update({LABEL_TEACHER_ENV: teacher, LABEL_ALPHABET_ENV: alphabet or ""})
    return run_voila(LABEL_NOTEBOOK, env, port, f"labelling {folder}")


def run_voila(notebook: Path, env: dict, port: int | None, what: str) -> int:
    port = free_port(port or DEFAULT_PORT)
    token = secrets.token_urlsafe(16)
    print(f"{what}\nserving at http://127.0.0.1:{port}/?token={token}  (Ctrl-C to stop)", flush=True)
    process = subprocess.Popen(voila_command(port, token, notebook), env={**os.environ, **env})
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait(timeout=10)
        return 0
