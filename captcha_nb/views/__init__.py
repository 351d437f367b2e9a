"""Notebook views: the tables, figures, widgets, parameter checks and reports the notebooks show."""
