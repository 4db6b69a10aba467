"""``policyfeed posts …``: write, import, find and publish posts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from policyfeed.cli import App, cli, echo_json, pass_app
from policyfeed.wording import counted


@cli.group()
def posts() -> None:
    """Write, import, list, search and publish posts.

    Example:

    \b
        policyfeed posts import old-blog.xml
        policyfeed posts add --title "IETF 84 in Vancouver" --body-file ietf84.md --publish
        policyfeed posts list --status published
    """


def _post_options(fn: Any) -> Any:
    options = [
        click.option("--slug", help="URL slug (default: from the title)."),
        click.option("--summary", help="One-paragraph plain-text summary."),
        click.option("--body", help="Body text (HTML, or Markdown with --format markdown)."),
        click.option(
            "--body-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Read the body from a file (.md files are read as Markdown).",
        ),
        click.option(
            "--format", "body_format", type=click.Choice(["html", "markdown"]), help="Body format."
        ),
        click.option("--author", help="Author name."),
        click.option("--url", help="Canonical URL, if the post lives elsewhere."),
        click.option(
            "--topic",
            "topics",
            multiple=True,
            metavar="NAME",
            help="A topic that exists, by name or slug (repeat for several; `policyfeed topics "
            "list` shows them).",
        ),
        click.option(
            "--new-topic",
            "new_topics",
            multiple=True,
            metavar="NAME",
            help="A topic to create with the post, if it does not exist yet (repeat for several).",
        ),
        click.option("--date", help="Publication date (ISO 8601; site time zone if none)."),
        click.option(
            "--language",
            help="The post's language, a tag like fr or pt-BR (a chapter may take only posts "
            'in its language; "" for none).',
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _record(values: dict[str, Any]) -> dict[str, Any]:
    record = {k: v for k, v in values.items() if v not in (None, ())}
    body_file = record.pop("body_file", None)
    if body_file is not None and "body" in record:
        raise click.UsageError("use --body or --body-file, not both")
    if body_file is not None:
        from policyfeed.content.importers import read_text

        record["body"] = read_text(body_file)
        if body_file.suffix.lower() in (".md", ".markdown") and "body_format" not in record:
            record["body_format"] = "markdown"
    if "body_format" in record:
        record["format"] = record.pop("body_format")
    new_topics = list(record.pop("new_topics", ()))
    if "topics" in record or new_topics:
        record["topics"] = [*record.get("topics", ()), *new_topics]
    if "date" in record:
        record["published_at"] = record.pop("date")
    return record


def _post_dict(app: App, post: Any, *, full: bool = False) -> dict[str, Any]:
    data = {
        "slug": post.slug,
        "title": post.title,
        "status": post.status,
        "published_at": post.published_at.isoformat() if post.published_at else None,
        "updated_at": post.updated_at.isoformat() if post.updated_at else None,
        "guid": post.guid,
        "url": post.permalink(app.settings.base_url),
        "author": post.author,
        "topics": [t.name for t in post.topics],
        "summary": post.summary,
    }
    if full:
        from policyfeed.content.posts import absolute_links

        data["language"] = post.language
        # Stored with the site's own links relative to it; shown as feeds and pages show it.
        data["body_html"] = absolute_links(post.body_html, app.settings.base_url)
    return data


def _refuse_unknown_topics(app: App, values: dict[str, Any]) -> list[str]:
    """Refuse a --topic that names no topic (a typo would make a new one, with its own page
    and feed); return the names of the --new-topic topics that do not exist yet."""
    import difflib

    from policyfeed.content.posts import parse_topics
    from policyfeed.errors import NotFoundError
    from policyfeed.store import posts as store
    from policyfeed.store import subscribers as subscriber_store

    try:
        given, new = parse_topics(list(values["topics"])), parse_topics(list(values["new_topics"]))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--topic") from None
    for topic in store.missing_topics(app.db, given):
        if topic.name in {t.name for t in new}:
            continue
        names = sorted(subscriber_store.topic_names(app.db).values())
        by_fold = {n.casefold(): n for n in names}
        close = difflib.get_close_matches(topic.name.casefold(), list(by_fold), n=1, cutoff=0.6)
        hint = f" did you mean {by_fold[close[0]]!r}?" if close else ""
        raise NotFoundError(
            f"unknown topic {topic.name!r};{hint} create it with `policyfeed topics add "
            f"{topic.name!r}`, or pass --new-topic {topic.name!r} to create it with the post"
        )
    return [t.name for t in store.missing_topics(app.db, new)]


def _new_topics_note(names: list[str]) -> str:
    if not names:
        return ""
    return f"; new topic{'s' if len(names) > 1 else ''}: {', '.join(names)}"


@posts.command("add")
@click.option("--title", required=True, help="Post title.")
@_post_options
@click.option("--publish", is_flag=True, help="Publish now (or at --date) instead of a draft.")
@pass_app
def posts_add(app: App, publish: bool, **values: Any) -> None:
    """Add a post (a draft unless --publish).

    Each --topic must exist (a typo is refused with the closest topic's name); --new-topic
    NAME creates a topic with the post.

    Example:

    \b
        policyfeed posts add --title "IETF 84 in Vancouver" --topic IETF \\
            --body-file ietf84.md --date 2012-07-25 --publish
    """
    from policyfeed.content.posts import draft_from_record
    from policyfeed.store import posts as store
    from policyfeed.store import transaction

    settings = app.settings
    created = _refuse_unknown_topics(app, values)
    record = _record(values)
    if publish:
        record["status"] = "published"
    elif "status" not in record:
        record["status"] = "draft"
    draft = draft_from_record(
        record, base_url=settings.base_url, tz=settings.tz, source="", where=""
    )
    if draft.status == "published":
        from policyfeed.config import require_public_base_url

        require_public_base_url(settings.base_url, "publish a post")
    with transaction(app.db):
        store.save_post(app.db, draft, now=app.now(), domain=settings.domain)
    post = store.get_post(app.db, draft.slug)
    click.echo(f"Added {post.slug} ({post.status}){_new_topics_note(created)}")


ALLOW_BLANKING = click.option(
    "--allow-blanking",
    is_flag=True,
    help="Let an update empty a published post's title, body, topics or author "
    "(refused otherwise).",
)


@posts.command("edit")
@click.argument("current_slug", metavar="SLUG")
@click.option("--title", help="New title.")
@_post_options
@ALLOW_BLANKING
@pass_app
def posts_edit(app: App, current_slug: str, allow_blanking: bool, **values: Any) -> None:
    """Change a post; --slug renames it. The guid never changes, even when the slug or title does.

    --topic and --new-topic together replace the post's topics. Each --topic must exist (a
    typo is refused with the closest topic's name); --new-topic NAME creates a topic.

    Example:

    \b
        policyfeed posts edit wcit-preparation --title "Preparing for WCIT-12"
        policyfeed posts edit wcit-preparation --slug wcit-12 --topic "ITU / WCIT"
    """
    from policyfeed.content.posts import absolute_links, draft_from_record, refuse_blanking
    from policyfeed.store import posts as store
    from policyfeed.store import transaction

    settings = app.settings
    current = store.get_post(app.db, current_slug)
    created = _refuse_unknown_topics(app, values)
    record: dict[str, Any] = {
        "title": current.title,
        "slug": current.slug,
        "summary": current.summary,
        "body": absolute_links(current.body_html, settings.base_url),
        "author": current.author,
        "url": current.url,
        "topics": [t.name for t in current.topics],
        "status": current.status,
        "published_at": current.published_at,
        "language": current.language,
    }
    changes = _record(values)
    if "format" in changes and "body" not in changes:
        raise click.UsageError("--format needs --body or --body-file")
    record.update(changes)
    draft = draft_from_record(
        record, base_url=settings.base_url, tz=settings.tz, source="", where=""
    )
    if not allow_blanking:
        refuse_blanking(current, draft)
    if current.status != "published" and draft.status == "published":
        from policyfeed.config import require_public_base_url

        require_public_base_url(settings.base_url, "publish a post")
    with transaction(app.db):
        store.save_post(app.db, draft, now=app.now(), domain=settings.domain, post_id=current.id)
    renamed = f" (was {current.slug})" if draft.slug != current.slug else ""
    click.echo(f"Updated {draft.slug}{renamed}{_new_topics_note(created)}")


@posts.command("list")
@click.option("--status", type=click.Choice(["draft", "published"]), help="Only this status.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@pass_app
def posts_list(app: App, status: str | None, limit: int | None, as_json: bool) -> None:
    """List posts, newest first.

    Example:

    \b
        policyfeed posts list --status published --limit 10
    """
    from policyfeed.store import posts as store

    found = store.list_posts(app.db, status=status, limit=limit)
    if as_json:
        echo_json([_post_dict(app, p) for p in found])
        return
    if not found:
        click.echo("No posts.")
        return
    width = max(len(p.slug) for p in found)
    click.echo(f"{'DATE':<10}  {'STATUS':<9}  {'SLUG':<{width}}  TITLE")
    for post in found:
        date = app.local(post.published_at, "%Y-%m-%d")
        click.echo(f"{date:<10}  {post.status:<9}  {post.slug:<{width}}  {post.title}")


@posts.command("show")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="JSON, including the HTML body.")
@pass_app
def posts_show(app: App, slug: str, as_json: bool) -> None:
    """Show one post.

    Example:

    \b
        policyfeed posts show beijing-treaty-on-audiovisual-performances
    """
    from policyfeed.store import posts as store

    post = store.get_post(app.db, slug)
    data = _post_dict(app, post, full=True)
    if as_json:
        echo_json(data)
        return
    for key in ("title", "slug", "status", "guid", "url", "author"):
        click.echo(f"{key + ':':<11}{data[key] or '-'}")
    click.echo(f"{'published:':<11}{app.local(post.published_at)}")
    click.echo(f"{'updated:':<11}{app.local(post.updated_at)}")
    click.echo(f"{'topics:':<11}{', '.join(data['topics']) or '-'}")
    if post.language:
        click.echo(f"{'language:':<11}{post.language}")
    for key, value in _origin(app, post).items():
        click.echo(f"{key + ':':<11}{value}")
    for block in (post.summary, post.body_text):
        if block:
            click.echo(f"\n{block}")


def _origin(app: App, post: Any) -> dict[str, str]:
    """Where a post came from and what the digest made of it, when there is something to say:
    the sources it was synced from, its issue, or why no issue will take it."""
    from policyfeed.store.announced import announcement
    from policyfeed.store.issues import post_states
    from policyfeed.store.site import old_slugs
    from policyfeed.store.sources import item_sources

    shown: dict[str, str] = {}
    former = old_slugs(app.db, post.id)
    if former:
        shown["was"] = ", ".join(former) + " (redirect pages lead here)"
    synced = item_sources(app.db, post.id)
    if synced:
        shown["source"] = ", ".join(synced)
    number = post_states(app.db, [post.slug]).get(post.slug, (0, "", None, 0))[3]
    announced = announcement(app.db, post.id)
    if number:
        shown["digest"] = f"in issue {number}"
    elif announced:
        shown["digest"] = f"already announced ({announced[1]}): no issue takes it"
    return shown


@posts.command("publish")
@click.argument("slug")
@click.option("--date", help="Publication date (default: keep the post's, or now).")
@pass_app
def posts_publish(app: App, slug: str, date: str | None) -> None:
    """Publish a draft (its guid is assigned now, once).

    Example:

    \b
        policyfeed posts publish wcit-preparation --date "2012-07-11 09:00"
    """
    from policyfeed.content.posts import parse_datetime
    from policyfeed.errors import InputError
    from policyfeed.store import posts as store

    when = None
    if date:
        try:
            when = parse_datetime(date, app.settings.tz)
        except ValueError as exc:
            raise InputError(str(exc), source="--date") from None
    from policyfeed.config import require_public_base_url

    require_public_base_url(app.settings.base_url, "publish a post")
    post = store.set_status(
        app.db, slug, "published", now=app.now(), domain=app.settings.domain, published_at=when
    )
    click.echo(f"Published {post.slug} ({app.local(post.published_at)}, {post.guid})")


@posts.command("unpublish")
@click.argument("slug")
@pass_app
def posts_unpublish(app: App, slug: str) -> None:
    """Turn a post back into a draft (it leaves the feeds; its guid is kept).

    Example:

    \b
        policyfeed posts unpublish wcit-preparation
    """
    from policyfeed.store import posts as store

    store.set_status(app.db, slug, "draft", now=app.now(), domain=app.settings.domain)
    click.echo(f"Unpublished {slug}")


@posts.command("remove")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def posts_remove(app: App, slug: str, yes: bool) -> None:
    """Delete a post for good (posts that went out in an issue cannot be removed).

    Example:

    \b
        policyfeed posts remove old-draft --yes
    """
    from policyfeed.store import posts as store

    store.get_post(app.db, slug)
    if not yes:
        click.confirm(f"Delete {slug} for good?", abort=True)
    store.delete_post(app.db, slug)
    click.echo(f"Removed {slug}")


@posts.command("search")
@click.argument("query")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of lines.")
@pass_app
def posts_search(app: App, query: str, limit: int, as_json: bool) -> None:
    """Full-text search over titles, summaries and bodies.

    Example:

    \b
        policyfeed posts search "ITU council"
    """
    from policyfeed.store import posts as store

    found = store.search_posts(app.db, query, limit=limit)
    if as_json:
        echo_json([_post_dict(app, p) for p in found])
        return
    if not found:
        click.echo("No matches.")
    for post in found:
        click.echo(f"{app.local(post.published_at, '%Y-%m-%d'):<10}  {post.slug}  {post.title}")


@posts.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "jsonl", "csv", "markdown", "feed"]),
    help="Input format (default: from the file name or contents).",
)
@ALLOW_BLANKING
@click.option(
    "--announced",
    is_flag=True,
    help="Mark the imported posts as already announced: no digest takes them (a move from "
    "another system, whose members had them).",
)
@click.option(
    "--language",
    default="",
    help="The language of every post whose record names none (a feed's xml:lang or "
    "<language> is read), a tag like fr.",
)
@pass_app
def posts_import(
    app: App, source: Path, fmt: str | None, allow_blanking: bool, announced: bool, language: str
) -> None:
    """Import posts from JSON, JSON Lines, CSV, a folder of Markdown files, or an RSS/Atom file.

    All or nothing: a bad record stops the import with its line, and nothing is written.
    Topics the records name that do not exist yet are created, and the summary names them.
    An RSS/Atom file must be well-formed XML (a truncated download is refused with the line
    and column where it breaks). Re-importing updates the posts instead of duplicating them;
    an update that would empty a published post's title, body, topics or author is refused
    unless --allow-blanking. Moving from another newsletter: --announced keeps the imported
    posts out of every digest (the members had them already).

    Example:

    \b
        policyfeed posts import old-blog.xml
        policyfeed posts import posts/ --format markdown
        policyfeed posts import wordpress-export.xml --announced
        policyfeed posts import geneve.json --language fr
    """
    from policyfeed.content.importers import import_posts
    from policyfeed.model import check_language

    try:
        language = check_language(language)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--language") from None
    settings = app.settings
    result = import_posts(
        app.db,
        source,
        fmt=fmt,
        base_url=settings.base_url,
        tz=settings.tz,
        domain=settings.domain,
        now=app.now(),
        allow_blanking=allow_blanking,
        announced=announced,
        language=language,
    )
    marked = f"; {result.announced} marked as already announced" if announced else ""
    if result.new_topics:
        marked += f"; {counted(len(result.new_topics), 'new topic')}: "
        marked += ", ".join(result.new_topics)
    click.echo(
        f"Imported {counted(result.total, 'post')} from {source} "
        f"({result.created} new, {result.updated} updated, {result.unchanged} unchanged{marked})"
    )
