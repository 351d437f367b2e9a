"""`pytest --nbval-lax notebooks/` runs the notebooks as committed; this asks notebook 03 for a short training.

The kernels nbval starts inherit this environment. The notebooks' parameters keep the real recipe's defaults; the
runs they write go to a temporary folder (removed at the end), so testing leaves no runs/ folder in the project.
"""

import os
import shutil
import tempfile

from captcha_nb.views.workspace import QUICK_ENV, RUNS_ENV

os.environ.setdefault(QUICK_ENV, "0.5")
if RUNS_ENV not in os.environ:
    os.environ[RUNS_ENV] = tempfile.mkdtemp(prefix="captcha_nb-nbval-runs-")


def pytest_sessionfinish(session, exitstatus):
    if os.environ[RUNS_ENV].startswith(tempfile.gettempdir()):
        shutil.rmtree(os.environ[RUNS_ENV], ignore_errors=True)
