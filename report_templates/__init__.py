"""Jinja2 templates of the reports (a package only so that installs ship them)."""
