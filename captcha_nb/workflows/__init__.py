"""Orchestration: running the notebooks into reports with papermill, and sweeps of such runs on Dask."""
