"""Queries for posts and topics."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from policyfeed.errors import ConflictError, NotFoundError
from policyfeed.model import Post, PostDraft, Topic, is_absolute_uri, make_guid
from policyfeed.store import from_db_time, to_db_time, transaction

POST_COLUMNS = (
    "id, guid, slug, title, summary, body_html, body_text, author, url, status, "
    "published_at, updated_at, created_at, language"
)
SEARCH_WEIGHTS = "10.0, 5.0, 1.0"  # title, summary, body_text


def _opt_time(value: str | None) -> datetime | None:
    return from_db_time(value) if value else None


def _post_from_row(row: Sequence[Any]) -> Post:
    return Post(
        id=row[0],
        guid=row[1],
        slug=row[2],
        title=row[3],
        summary=row[4],
        body_html=row[5],
        body_text=row[6],
        author=row[7],
        url=row[8],
        status=row[9],
        published_at=_opt_time(row[10]),
        updated_at=from_db_time(row[11]),
        created_at=from_db_time(row[12]),
        language=row[13],
    )


def _attach_topics(db: Database, posts: list[Post]) -> list[Post]:
    by_id = topics_for_posts(db, [p.id for p in posts if p.id is not None])
    for post in posts:
        post.topics = by_id.get(post.id or 0, [])
    return posts


def _select(db: Database, where: str, params: Sequence[Any], tail: str = "") -> list[Post]:
    sql = f"SELECT {POST_COLUMNS} FROM posts WHERE {where} {tail}"
    rows = db.execute(sql, list(params)).fetchall()
    return _attach_topics(db, [_post_from_row(r) for r in rows])


def topics_for_posts(db: Database, post_ids: Iterable[int]) -> dict[int, list[Topic]]:
    ids = list(post_ids)
    result: dict[int, list[Topic]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = db.execute(
            f"SELECT pt.post_id, t.slug, t.name FROM post_topics pt JOIN topics t "
            f"ON t.id = pt.topic_id WHERE pt.post_id IN ({marks}) "
            "ORDER BY t.name COLLATE NOCASE, t.slug",
            chunk,
        ).fetchall()
        for post_id, slug, name in rows:
            result.setdefault(post_id, []).append(Topic(slug, name))
    return result


def get_post(db: Database, slug: str) -> Post:
    posts = _select(db, "slug = ?", [slug])
    if not posts:
        raise NotFoundError(f"no post with slug {slug!r}")
    return posts[0]


def get_posts_by_ids(db: Database, ids: Sequence[int]) -> list[Post]:
    """Posts in the order of ``ids``."""
    found: dict[int, Post] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        for post in _select(db, f"id IN ({','.join('?' * len(chunk))})", chunk):
            found[post.id or 0] = post
    return [found[i] for i in ids if i in found]


def find_post_id(
    db: Database, *, slug: str, guid: str | None = None, bulk: BulkSave | None = None
) -> int | None:
    """The id of the post an import record means: same guid (or imported id) if given, else
    same slug. With ``bulk``, a slug and guid no post can hold are answered without a query."""
    if bulk is not None and bulk.surely_free(db, slug, guid):
        return None
    if guid:
        row = db.execute(
            "SELECT id FROM posts WHERE guid = ? OR source_id = ? ORDER BY guid IS NULL LIMIT 1",
            [guid, guid],
        ).fetchone()
        if row:
            return int(row[0])
    row = db.execute("SELECT id FROM posts WHERE slug = ?", [slug]).fetchone()
    return int(row[0]) if row else None


def list_posts(
    db: Database, *, status: str | None = None, limit: int | None = None, offset: int = 0
) -> list[Post]:
    """Posts newest first (drafts without a date first, by last change)."""
    where, params = ("status = ?", [status]) if status else ("1", [])
    tail = "ORDER BY published_at IS NOT NULL, published_at DESC, updated_at DESC, id DESC"
    if limit is not None:
        tail += f" LIMIT {int(limit)} OFFSET {int(offset)}"
    return _select(db, where, params, tail)


def latest_published(
    db: Database,
    *,
    now: datetime,
    limit: int,
    offset: int = 0,
    topic: str | None = None,
) -> list[Post]:
    """Published posts dated up to ``now``, newest first; served by the (status, date) index."""
    params: list[Any] = ["published", to_db_time(now)]
    where = "status = ? AND published_at <= ?"
    if topic is not None:
        where += (
            " AND id IN (SELECT pt.post_id FROM post_topics pt JOIN topics t "
            "ON t.id = pt.topic_id WHERE t.slug = ?)"
        )
        params.append(topic)
    tail = f"ORDER BY published_at DESC, id DESC LIMIT {int(limit)} OFFSET {int(offset)}"
    return _select(db, where, params, tail)


def count_published(db: Database, *, now: datetime, topic: str | None = None) -> int:
    params: list[Any] = ["published", to_db_time(now)]
    sql = "SELECT count(*) FROM posts WHERE status = ? AND published_at <= ?"
    if topic is not None:
        sql += (
            " AND id IN (SELECT pt.post_id FROM post_topics pt JOIN topics t "
            "ON t.id = pt.topic_id WHERE t.slug = ?)"
        )
        params.append(topic)
    return int(db.execute(sql, params).fetchone()[0])


def published_since(db: Database, *, since: datetime, now: datetime) -> list[Post]:
    """Published posts dated after ``since`` and up to ``now``, oldest first."""
    return _select(
        db,
        "status = ? AND published_at > ? AND published_at <= ?",
        ["published", to_db_time(since), to_db_time(now)],
        "ORDER BY published_at, id",
    )


def search_posts(db: Database, query: str, *, limit: int = 20) -> list[Post]:
    """Full-text search over title, summary and body; best matches first."""
    # Quote each word so user punctuation is never read as FTS syntax.
    terms = " ".join('"' + word.replace('"', '""') + '"' for word in query.split())
    if not terms:
        return []
    # bm25 ranks a word in the title above one in the summary, above one in the body.
    rows = db.execute(
        "SELECT rowid FROM posts_fts WHERE posts_fts MATCH ? "
        f"ORDER BY bm25(posts_fts, {SEARCH_WEIGHTS}), rowid DESC LIMIT {int(limit)}",
        [terms],
    ).fetchall()
    return get_posts_by_ids(db, [int(row[0]) for row in rows])


def _folded(name: str) -> str:
    """A topic's name as two names that are one topic share it: case and spaces aside."""
    return " ".join(name.split()).casefold()


def add_topic(db: Database, topic: Topic) -> Topic:
    """Create a topic with the slug given; refuses a slug or a name already in use, and a name
    that differs from a topic's only in case or spaces (one subject, split in two, would give
    posts one or the other by how the name was typed)."""
    taken = db.execute(
        "SELECT slug, name FROM topics WHERE slug = ? OR name = ?", [topic.slug, topic.name]
    ).fetchone()
    if taken:
        raise ConflictError(f"there is a topic {taken[1]!r} already (slug {taken[0]!r})")
    folded = _folded(topic.name)
    for slug, name in db.execute("SELECT slug, name FROM topics").fetchall():
        if _folded(name) == folded:
            raise ConflictError(
                f"there is a topic {name!r} already (slug {slug!r}); names that differ only "
                "in case or spaces are one topic"
            )
    with transaction(db):
        db.execute("INSERT INTO topics (slug, name) VALUES (?, ?)", [topic.slug, topic.name])
    return topic


def missing_topics(db: Database, topics: Sequence[Topic]) -> list[Topic]:
    """Those of ``topics`` that a save would create: no topic has their name, nor their slug
    (see :func:`_topic_ids`). A topic without a slug is left to the save's own refusal."""
    missing = []
    for topic in topics:
        if not topic.slug:
            continue
        row = db.execute(
            "SELECT 1 FROM topics WHERE name = ? OR slug = ? LIMIT 1", [topic.name, topic.slug]
        ).fetchone()
        if row is None:
            missing.append(topic)
    return missing


def list_topics(db: Database) -> list[tuple[Topic, int]]:
    """Every topic with the number of its published posts, by name."""
    rows = db.execute(
        "SELECT t.slug, t.name, count(p.id) FROM topics t "
        "LEFT JOIN post_topics pt ON pt.topic_id = t.id "
        "LEFT JOIN posts p ON p.id = pt.post_id AND p.status = 'published' "
        "GROUP BY t.id ORDER BY t.name COLLATE NOCASE, t.slug"
    ).fetchall()
    return [(Topic(slug, name), count) for slug, name, count in rows]


def _topic_ids(
    db: Database, topics: Sequence[Topic], known: dict[str, int] | None = None
) -> list[int]:
    """The ids of ``topics``, made when new. A topic of the same name is the same topic, whatever
    its slug (an editor may have chosen one); then one of the same slug. ``known`` remembers the
    answers by name between the saves of one transaction (an import asks for the same few
    topics thousands of times; only this function adds topics meanwhile)."""
    if known is None:
        known = {}
    ids = []
    for topic in topics:
        if topic.name in known:
            ids.append(known[topic.name])
            continue
        row = db.execute(
            "SELECT id FROM topics WHERE name = ? ORDER BY id LIMIT 1", [topic.name]
        ).fetchone()
        if row is None and topic.slug:
            row = db.execute("SELECT id FROM topics WHERE slug = ?", [topic.slug]).fetchone()
        if row is None and not topic.slug:
            raise ConflictError(
                f"topic {topic.name!r} has no letters or digits to make a slug from; create it "
                f"with a slug first: policyfeed topics add {topic.name!r} --slug SLUG"
            )
        if row is None:
            cursor = db.execute(
                "INSERT INTO topics (slug, name) VALUES (?, ?)", [topic.slug, topic.name]
            )
            ids.append(int(cursor.lastrowid or 0))
        else:
            ids.append(int(row[0]))
        known[topic.name] = ids[-1]
    return ids


def _set_topics(
    db: Database,
    post_id: int,
    topics: Sequence[Topic],
    *,
    new: bool,
    known: dict[str, int] | None = None,
) -> None:
    if not new:
        db.execute("DELETE FROM post_topics WHERE post_id = ?", [post_id])
    db.conn.executemany(
        "INSERT OR IGNORE INTO post_topics (post_id, topic_id) VALUES (?, ?)",
        [(post_id, topic_id) for topic_id in _topic_ids(db, topics, known)],
    )


def _assign_guid(db: Database, post_id: int, domain: str) -> str | None:
    """Give a published post its permanent id once; later edits never change it. Returns the
    id given, if any."""
    row = db.execute(
        "SELECT guid, slug, published_at, status FROM posts WHERE id = ?", [post_id]
    ).fetchone()
    guid, slug, published_at, status = row
    if guid or status != "published" or not published_at:
        return None
    candidate = make_guid(domain, from_db_time(published_at), slug)
    if db.execute("SELECT 1 FROM posts WHERE guid = ?", [candidate]).fetchone():
        candidate = f"{candidate}-{post_id}"
    db.execute("UPDATE posts SET guid = ? WHERE id = ?", [candidate, post_id])
    return candidate


class BulkSave:
    """What the saves of one transaction (an import) remember between them: the topics' ids.
    The caller rolls the whole transaction back when a save fails (a save with a BulkSave
    inside a transaction sets no savepoint of its own).

    ``looked_up`` tells a save that the caller has just asked :func:`find_post_id` for the
    draft's slug and guid, in this transaction, and found no post: the checks that no other post
    holds them are answered already.
    """

    def __init__(self) -> None:
        self.topic_ids: dict[str, int] = {}
        #: How many saves found the post as it was and wrote nothing.
        self.unchanged = 0
        # Every slug, guid and imported id a post may hold: those stored when the first save
        # asked, and those written since (an old value left behind stays in: only "surely not
        # in use" is answered from here, anything else by a query). An import of new posts
        # then needs no query per post to learn that its slug and guid are free.
        self._taken: set[str] | None = None

    def _values(self, db: Database) -> set[str]:
        if self._taken is None:
            rows = db.execute("SELECT slug, guid, source_id FROM posts").fetchall()
            self._taken = {value for row in rows for value in row if value}
        return self._taken

    def surely_free(self, db: Database, *values: str | None) -> bool:
        """Whether no post holds any of ``values`` as its slug, guid or imported id."""
        taken = self._values(db)
        return not any(value in taken for value in values if value)

    def written(self, db: Database, *values: Any) -> None:
        """Note the slug, guid or imported id just written to a post."""
        self._values(db).update(value for value in values if value)


def save_post(
    db: Database,
    draft: PostDraft,
    *,
    now: datetime,
    domain: str,
    post_id: int | None = None,
    bulk: BulkSave | None = None,
    looked_up: bool = False,
) -> int:
    """Insert ``draft`` as a new post, or update post ``post_id``. Returns the post id.

    On an update, a draft without a status or a publication date keeps the post's. The save is
    atomic; to save many all-or-nothing (imports), call it inside one ``transaction(db)``, with
    one :class:`BulkSave` for all of them.
    """
    unique = looked_up and post_id is None
    if bulk is not None and db.conn.in_transaction:
        # No savepoint of its own: a bulk save that fails rolls its whole transaction back.
        return _save_post(
            db, draft, now=now, domain=domain, post_id=post_id, bulk=bulk, unique=unique
        )
    with transaction(db):
        return _save_post(
            db, draft, now=now, domain=domain, post_id=post_id, bulk=bulk, unique=unique
        )


def _save_post(
    db: Database,
    draft: PostDraft,
    *,
    now: datetime,
    domain: str,
    post_id: int | None,
    bulk: BulkSave | None = None,
    unique: bool = False,
) -> int:
    source_id = None
    if draft.guid and not is_absolute_uri(draft.guid):
        # Kept to match re-imports; the post is published under its own tag: URI.
        source_id, draft = draft.guid, replace(draft, guid=None)
        owner = None
        if not unique:
            owner = db.execute(
                "SELECT slug FROM posts WHERE source_id = ? AND id IS NOT ?", [source_id, post_id]
            ).fetchone()
        if owner:
            raise ConflictError(f"id {source_id!r} is already used by post {owner[0]!r}")
    if not unique:
        taken = db.execute("SELECT id FROM posts WHERE slug = ?", [draft.slug]).fetchone()
        if taken and taken[0] != post_id:
            raise ConflictError(f"slug {draft.slug!r} is already used by another post")
    if draft.guid and not unique:
        owner = db.execute(
            "SELECT slug FROM posts WHERE guid = ? AND id IS NOT ?", [draft.guid, post_id]
        ).fetchone()
        if owner:
            raise ConflictError(f"guid {draft.guid!r} is already used by post {owner[0]!r}")
    current = None
    if post_id is not None:
        current = db.execute(
            "SELECT guid, updated_at, status, published_at FROM posts WHERE id = ?", [post_id]
        ).fetchone()
        if current is None:
            raise NotFoundError(f"no post with id {post_id}")
    status = draft.status or (current[2] if current else "draft")
    published = draft.published_at or (_opt_time(current[3]) if current else None)
    if status == "published" and published is None:
        published = now
    values: dict[str, Any] = {
        "slug": draft.slug,
        "title": draft.title,
        "summary": draft.summary,
        "body_html": draft.body_html,
        "body_text": draft.body_text,
        "author": draft.author,
        "url": draft.url,
        "language": draft.language,
        "status": status,
        "published_at": to_db_time(published) if published else None,
        # A change is never later than the save (an import saying 2099 would date every feed
        # holding the post there); a publication may be, it schedules the post.
        "updated_at": to_db_time(min(draft.updated_at or published or now, now)),
    }
    if source_id is not None:
        values["source_id"] = source_id
    # The permanent id is given in the same write as the row (an UPDATE afterwards would index
    # the whole post for full-text search a second time).
    guid_known = bool(draft.guid or (current and current[0]))
    if not guid_known and status == "published" and published is not None:
        candidate = make_guid(domain, published, draft.slug)
        if (bulk is not None and bulk.surely_free(db, candidate)) or not db.execute(
            "SELECT 1 FROM posts WHERE guid = ?", [candidate]
        ).fetchone():
            values["guid"] = candidate
            guid_known = True
    new = current is None
    if post_id is None or current is None:
        values["created_at"] = to_db_time(now)
        if draft.guid:
            values["guid"] = draft.guid
        cols = ", ".join(values)
        marks = ", ".join("?" * len(values))
        cursor = db.execute(f"INSERT INTO posts ({cols}) VALUES ({marks})", list(values.values()))
        post_id = int(cursor.lastrowid or 0)
    else:
        if draft.guid and not current[0]:
            values["guid"] = draft.guid
        # An unchanged re-import must not look like an edit to feed readers, nor leave a
        # journal row for the next build to redo: nothing is written at all.
        if draft.updated_at is None:
            values["updated_at"] = current[1]
        if _same_content(db, post_id, values, draft.topics):
            if bulk is not None:
                bulk.unchanged += 1
            return post_id
        if draft.updated_at is None:
            values["updated_at"] = to_db_time(now)
        sets = ", ".join(f"{col} = ?" for col in values)
        db.execute(f"UPDATE posts SET {sets} WHERE id = ?", [*values.values(), post_id])
    if bulk is not None:
        bulk.written(db, values["slug"], values.get("guid"), values.get("source_id"))
    _set_topics(db, post_id, draft.topics, new=new, known=bulk.topic_ids if bulk else None)
    if not guid_known:  # taken by another post: _assign_guid makes it unique with the id
        given = _assign_guid(db, post_id, domain)
        if bulk is not None:
            bulk.written(db, given)
    return post_id


def _same_content(
    db: Database, post_id: int, values: dict[str, Any], topics: Sequence[Topic]
) -> bool:
    cols = list(values)
    row = db.execute(f"SELECT {', '.join(cols)} FROM posts WHERE id = ?", [post_id]).fetchone()
    if tuple(row) != tuple(values[c] for c in cols):
        return False
    stored = topics_for_posts(db, [post_id]).get(post_id, [])
    return sorted(t.slug for t in stored) == sorted(t.slug for t in topics)


def set_status(
    db: Database,
    slug: str,
    status: str,
    *,
    now: datetime,
    domain: str,
    published_at: datetime | None = None,
) -> Post:
    """Publish or unpublish a post. Publishing keeps an earlier date unless one is given."""
    post = get_post(db, slug)
    date = published_at or post.published_at or now
    if post.status == status and post.published_at == date:
        return post  # nothing changes: feed readers must not see an update
    with transaction(db):
        db.execute(
            "UPDATE posts SET status = ?, published_at = ?, updated_at = ? WHERE id = ?",
            [status, to_db_time(date), to_db_time(now), post.id],
        )
        _assign_guid(db, post.id or 0, domain)
    return get_post(db, slug)


def delete_post(db: Database, slug: str) -> None:
    post = get_post(db, slug)
    if db.execute("SELECT 1 FROM issue_posts WHERE post_id = ?", [post.id]).fetchone():
        raise ConflictError(
            f"post {slug!r} is part of an issue that was created; unpublish it instead"
        )
    with transaction(db):
        db.execute("DELETE FROM posts WHERE id = ?", [post.id])


def newest_change(db: Database, post_ids: Sequence[int]) -> datetime | None:
    """The latest ``updated_at`` among the given posts (feed-level updated time)."""
    if not post_ids:
        return None
    marks = ",".join("?" * len(post_ids))
    row = db.execute(f"SELECT max(updated_at) FROM posts WHERE id IN ({marks})", list(post_ids))
    value = row.fetchone()[0]
    return from_db_time(value) if value else None


# --- links stored relative to the site (policyfeed.content.relink) ---------------------------


def relink_pending(db: Database) -> bool:
    """Whether the stored bodies may still hold absolute links to the site (migration 19)."""
    return db.execute("SELECT 1 FROM relink_pending").fetchone() is not None


def posts_mentioning(
    db: Database, needles: Sequence[str]
) -> list[tuple[int, str, str, str | None]]:
    """(id, slug, body_html, url) of the posts whose body or url holds one of ``needles``."""
    if not needles:
        return []
    where = " OR ".join(
        "instr(lower(body_html), ?) OR instr(lower(coalesce(url, '')), ?)" for _ in needles
    )
    params = [n.lower() for n in needles for _ in (0, 1)]
    rows = db.execute(
        f"SELECT id, slug, body_html, url FROM posts WHERE {where} ORDER BY id", params
    ).fetchall()
    return [(int(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]


def relink_posts(db: Database, changes: Sequence[tuple[int, str, str | None]]) -> None:
    """Save (id, body_html, url) for each post and mark the conversion done, in one
    transaction. The posts' last change stays: what readers see is the same."""
    with transaction(db):
        for post_id, body_html, url in changes:
            db.execute(
                "UPDATE posts SET body_html = ?, url = ? WHERE id = ?", [body_html, url, post_id]
            )
        db.execute("DELETE FROM relink_pending")
