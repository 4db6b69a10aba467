"""policyfeed: a policy blog from one SQLite file, as feeds, a static site and email digests."""

__version__ = "0.1.0"
