"""``policyfeed topics …``: list topics, add one with a slug of your choosing."""

from __future__ import annotations

import click

from policyfeed.cli import App, cli, echo_json, pass_app


@cli.group()
def topics() -> None:
    """Topics: list them, or add one with the slug you choose (posts name topics by name).

    Example:

    \b
        policyfeed topics list
        policyfeed topics add "Κοινωνία της πληροφορίας" --slug information-society
    """


@topics.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@pass_app
def topics_list(app: App, as_json: bool) -> None:
    """List every topic with its slug and number of published posts.

    Example:

    \b
        policyfeed topics list --json
    """
    from policyfeed.store import posts as store

    found = store.list_topics(app.db)
    if as_json:
        echo_json([{"slug": t.slug, "name": t.name, "posts": n} for t, n in found])
        return
    if not found:
        click.echo("No topics.")
        return
    width = max(len(t.slug) for t, _ in found)
    click.echo(f"{'SLUG':<{width}}  {'POSTS':>5}  NAME")
    for topic, count in found:
        click.echo(f"{topic.slug:<{width}}  {count:>5}  {topic.name}")


@topics.command("add")
@click.argument("name")
@click.option("--slug", help="The topic's URL slug (default: from the name, in any script).")
@pass_app
def topics_add(app: App, name: str, slug: str | None) -> None:
    """Add a topic. Posts that name it (--topic NAME, or "topics" in an import) get it, with
    this slug in their topic pages and feeds (topics/SLUG/).

    Example:

    \b
        policyfeed topics add "الحوكمة" --slug governance-ar
    """
    from policyfeed.content.posts import check_slug, slugify
    from policyfeed.content.text import clean_line
    from policyfeed.errors import InputError
    from policyfeed.model import Topic
    from policyfeed.store import posts as store

    clean = clean_line(name)
    chosen = (slug or slugify(clean)).strip()
    if not clean:
        raise InputError("a topic needs a name")
    if not chosen:
        raise InputError(
            f"topic {clean!r} has no letters or digits to make a slug from; give --slug"
        )
    try:
        check_slug(chosen)
    except ValueError as exc:
        raise InputError(str(exc), source="--slug") from None
    topic = store.add_topic(app.db, Topic(chosen, clean))
    click.echo(f"Added topic {topic.slug} ({topic.name})")
