"""`pytest --nbval-lax notebooks/` runs the notebooks as committed; this asks notebook 03 for a short training.

The kernels nbval starts inherit this environment. The notebooks' parameters keep the real recipe's defaults.
"""

import os

from captcha_nb.views.workspace import QUICK_ENV

os.environ.setdefault(QUICK_ENV, "0.5")
