"""The insight report: contents (`content.py`), charts (`charts.py`), HTML and PDF output."""
