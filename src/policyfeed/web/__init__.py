"""The web side: the WSGI application behind ``policyfeed serve`` (or any WSGI server) that
serves the built site and the endpoints a reader's links reach. It may import every stage and no
stage imports it; ``make_app`` is the documented entry point."""

from policyfeed.web.app import make_app

__all__ = ["make_app"]
