"""The web side: the WSGI application behind ``policyfeed serve`` (or any WSGI server) that
serves the built site and the endpoints a reader's links reach. It may import every stage and no
stage imports it. Entry points: ``make_app(settings, db_path, out_dir)``, and ``create_app()``
for WSGI servers (configured from the environment); adding an endpoint: see ``web/app.py``."""

from policyfeed.web.app import create_app, make_app

__all__ = ["create_app", "make_app"]
