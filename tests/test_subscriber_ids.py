"""A subscriber id is never given to anyone else: the unsubscribe tokens in old mail name it."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlite_utils

from policyfeed.audience.subscribers import add_subscriber, remove_subscriber
from policyfeed.audience.tokens import make_token, read_token
from policyfeed.store.unsubscribe import subscriber_status, unsubscribe_subscriber

NOW = datetime(2012, 7, 30, 12, 0, tzinfo=UTC)
LIST = "digest.policy.example.org"


def test_a_removed_subscribers_id_is_not_reused_by_the_next_one(
    db: sqlite_utils.Database,
) -> None:
    add_subscriber(db, "ana@example.org", now=NOW)
    leaving = add_subscriber(db, "ben@example.org", now=NOW)
    old_token = make_token("secret", leaving.id or 0, LIST)  # in a digest Ben kept
    remove_subscriber(db, "ben@example.org")

    newcomer = add_subscriber(db, "carla@example.org", now=NOW)

    assert newcomer.id != leaving.id
    # Ben's old link (or his provider's one-click POST) must not unsubscribe Carla.
    named = read_token("secret", old_token, LIST)
    assert named == leaving.id
    assert unsubscribe_subscriber(db, named, NOW) is False
    assert subscriber_status(db, newcomer.id or 0) == "active"


def test_ids_go_on_after_the_newest_removed_one_across_several_removals(
    db: sqlite_utils.Database,
) -> None:
    ids = [add_subscriber(db, f"m{i}@example.org", now=NOW).id for i in range(3)]
    remove_subscriber(db, "m2@example.org")
    remove_subscriber(db, "m1@example.org")
    assert add_subscriber(db, "new@example.org", now=NOW).id == (ids[2] or 0) + 1
