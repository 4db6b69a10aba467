"""``policyfeed chapters …`` and ``policyfeed subscribers …``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from policyfeed.cli import App, cli, echo_json, pass_app
from policyfeed.model import SUBSCRIBER_STATUSES
from policyfeed.wording import counted

LANGUAGE_HELP = (
    "The language of its digest and its members' pages, a tag like fr "
    "(default: the site's site.language)."
)
POST_LANGUAGE_HELP = (
    "Only posts in this language, and posts with no language (default: every post)."
)


@cli.group()
def chapters() -> None:
    """Chapters: groups of subscribers, each with its own variant of every issue.

    Example:

    \b
        policyfeed chapters add geneva --name "Geneva Chapter" --topic "ITU / WCIT"
        policyfeed chapters list
    """


@chapters.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="Shown in the digest, e.g. 'Geneva Chapter'.")
@click.option("--intro", default="", help="A line at the top of the chapter's variant.")
@click.option(
    "--topic",
    "topics",
    multiple=True,
    help="Only posts with this topic (repeat for several; none: every post).",
)
@click.option("--language", default="", help=LANGUAGE_HELP)
@click.option("--post-language", default="", help=POST_LANGUAGE_HELP)
@pass_app
def chapters_add(
    app: App,
    slug: str,
    name: str,
    intro: str,
    topics: tuple[str, ...],
    language: str,
    post_language: str,
) -> None:
    """Add a chapter. A chapter whose topics leave no post in an issue gets nothing that time.

    Example:

    \b
        policyfeed chapters add geneva --name "Geneva Chapter" \\
            --topic "ITU / WCIT" --topic "Internet governance" \\
            --intro "What the Geneva meetings mean for members in Switzerland."
        policyfeed chapters add quebec --name "Chapitre du Québec" --language fr
    """
    from policyfeed.audience.subscribers import add_chapter

    chapter = add_chapter(
        app.db,
        slug=slug,
        name=name,
        intro=intro,
        topics=topics,
        language=language,
        post_language=post_language,
    )
    filter_text = ", ".join(chapter.topics) or "every post"
    if chapter.post_language:
        filter_text += f"; posts in {chapter.post_language} or no language"
    in_language = f", in {chapter.language}" if chapter.language else ""
    click.echo(f"Added chapter {chapter.slug} ({filter_text}){in_language}")


@chapters.command("edit")
@click.argument("slug")
@click.option("--language", default=None, help=LANGUAGE_HELP)
@click.option("--post-language", default=None, help=POST_LANGUAGE_HELP)
@pass_app
def chapters_edit(app: App, slug: str, language: str | None, post_language: str | None) -> None:
    """Change a chapter's language or the language of the posts it takes ("" : back to the
    site's language, or posts in every language). Issues already being delivered keep the
    posts they were frozen with.

    Example:

    \b
        policyfeed chapters edit quebec --language fr --post-language fr
        policyfeed chapters edit quebec --post-language ""
    """
    from policyfeed.audience.subscribers import set_chapter_languages

    if language is None and post_language is None:
        raise click.UsageError("nothing to change: give --language and/or --post-language")
    chapter = set_chapter_languages(app.db, slug, language=language, post_language=post_language)
    click.echo(
        f"Chapter {chapter.slug}: in {chapter.language or 'the site language'}, "
        f"posts in {chapter.post_language or 'every language'}"
    )


@chapters.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@pass_app
def chapters_list(app: App, as_json: bool) -> None:
    """List chapters with their topic filter, their language if not the site's, and number
    of active subscribers.

    Example:

    \b
        policyfeed chapters list
    """
    from policyfeed.store import subscribers as store

    found = store.list_chapters(app.db)
    counts = store.subscriber_counts(app.db)
    rows: list[dict[str, Any]] = [
        {
            "slug": c.slug,
            "name": c.name,
            "intro": c.intro,
            "topics": c.topics,
            "language": c.language,
            "post_language": c.post_language,
            "active_subscribers": counts.get(c.id, 0),
        }
        for c in found
    ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No chapters.")
        return
    width = max(len(r["slug"]) for r in rows)
    click.echo(f"{'SLUG':<{width}}  {'ACTIVE':>6}  NAME (TOPICS)")
    for row in rows:
        topics = ", ".join(row["topics"]) or "every post"
        if row["post_language"]:
            topics += f"; posts in {row['post_language']}"
        language = f" [{row['language']}]" if row["language"] else ""
        click.echo(
            f"{row['slug']:<{width}}  {row['active_subscribers']:>6}  {row['name']} ({topics})"
            f"{language}"
        )


@cli.group()
def subscribers() -> None:
    """Subscribers: add, import, list, choose their topics, unsubscribe, remove, forget,
    export one member's data.

    Example:

    \b
        policyfeed subscribers import members.csv
        policyfeed subscribers add ana@example.org --name "Ana Silva" --chapter geneva
        policyfeed subscribers topics ana@example.org --topic IETF
        policyfeed subscribers list --status active
    """


def _subscriber_dict(subscriber: Any) -> dict[str, Any]:
    def stamp(moment: Any) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "chapter": subscriber.chapter,
        # The topics they chose; null: what their chapter gets.
        "topics": subscriber.topics or None,
        "status": subscriber.status,
        "subscribed_at": stamp(subscriber.created_at),
        "confirmed_at": stamp(subscriber.confirmed_at),
        "unsubscribed_at": stamp(subscriber.unsubscribed_at),
    }


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name (used in the To header).")
@click.option("--chapter", metavar="SLUG", help="Their chapter (none: the whole issue).")
@click.option(
    "--topic",
    "topics",
    multiple=True,
    metavar="TOPIC",
    help="Only posts on this topic, instead of their chapter's (repeat for several).",
)
@click.option(
    "--resubscribe", is_flag=True, help="Bring back someone who unsubscribed (at their request)."
)
@pass_app
def subscribers_add(
    app: App,
    email: str,
    name: str,
    chapter: str | None,
    topics: tuple[str, ...],
    resubscribe: bool,
) -> None:
    """Add a subscriber (active at once). With --topic they get the posts of each issue on
    those topics (names or slugs) instead of what their chapter gets.

    Example:

    \b
        policyfeed subscribers add ana@example.org --name "Ana Silva" --chapter geneva
        policyfeed subscribers add chen@example.org --topic IETF --topic "Trade agreements"
    """
    from policyfeed.audience.subscribers import add_subscriber

    added = add_subscriber(
        app.db,
        email,
        now=app.now(),
        name=name,
        chapter=chapter,
        topics=topics,
        resubscribe=resubscribe,
    )
    click.echo(f"Added {added.email}" + _gets(added))


def _gets(subscriber: Any) -> str:
    """What a member gets, for a line about them: ` (geneva; topics: ietf, dns)`."""
    parts = [subscriber.chapter] if subscriber.chapter else []
    if subscriber.topics:
        parts.append("topics: " + ", ".join(subscriber.topics))
    return f" ({'; '.join(parts)})" if parts else ""


@subscribers.command("topics")
@click.argument("email")
@click.option(
    "--topic",
    "topics",
    multiple=True,
    metavar="TOPIC",
    help="Set their topics to these (names or slugs; repeat for several).",
)
@click.option("--reset", is_flag=True, help="Back to what their chapter gets.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a line.")
@pass_app
def subscribers_topics(
    app: App, email: str, topics: tuple[str, ...], reset: bool, as_json: bool
) -> None:
    """Show or set the topics a member gets (members choose them on their preferences page).

    A member who chose topics gets the posts of each issue on any of them, in their chapter's
    variant, instead of the chapter's own topics; one whose topics leave no post in an issue
    gets nothing that time. Without a choice they get what their chapter gets. A change
    applies from the next issue: one already going out keeps what it began with.

    Example:

    \b
        policyfeed subscribers topics ana@example.org
        policyfeed subscribers topics ana@example.org --topic IETF --topic "Trade agreements"
        policyfeed subscribers topics ana@example.org --reset
    """
    from policyfeed.audience.subscribers import set_member_topics
    from policyfeed.store import subscribers as store

    if topics and reset:
        raise click.UsageError("give --topic or --reset, not both")
    if topics or reset:
        member = set_member_topics(app.db, email, None if reset else topics, now=app.now())
    else:
        member = store.get_subscriber(app.db, email.strip())
    chapter = store.get_chapter(app.db, member.chapter) if member.chapter else None
    if as_json:
        echo_json(
            {
                "email": member.email,
                "chapter": member.chapter,
                "topics": member.topics or None,
                "chapter_topics": chapter.topics if chapter else [],
            }
        )
        return
    if member.topics:
        click.echo(f"{member.email}: the posts on {', '.join(member.topics)} (their choice)")
        return
    if chapter is None:
        click.echo(f"{member.email}: every post (no chapter, no topics chosen)")
    elif chapter.topics:
        click.echo(
            f"{member.email}: what {chapter.slug} gets, the posts on {', '.join(chapter.topics)}"
        )
    else:
        click.echo(f"{member.email}: what {chapter.slug} gets, every post")


@subscribers.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def subscribers_import(app: App, source: Path) -> None:
    """Import subscribers from a CSV file with a header: email, and optionally name, chapter.

    All or nothing: a bad address or an unknown chapter stops the import with its line, and
    nothing is written. Rows for the same address are merged. Someone who unsubscribed stays
    unsubscribed.

    Example:

    \b
        policyfeed subscribers import members.csv
    """
    from policyfeed.audience.subscribers import import_subscribers

    result = import_subscribers(app.db, source, now=app.now())
    line = (
        f"Imported {counted(result.total, 'subscriber')} from {source} ({result.created} new, "
        f"{result.updated} updated, {result.unchanged} unchanged)"
    )
    if result.not_resubscribed:
        line += f"; {result.not_resubscribed} had unsubscribed and stay unsubscribed"
    if result.forgotten:
        left = "was" if result.forgotten == 1 else "were"
        line += f"; {result.forgotten} had asked to be forgotten and {left} left out"
    click.echo(line)


@subscribers.command("list")
@click.option(
    "--status",
    type=click.Choice(SUBSCRIBER_STATUSES),
    help="Only this status (pending: signed up, not confirmed yet; paused: by their choice).",
)
@click.option("--chapter", metavar="SLUG", help="Only this chapter ('' for none).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON: {counts: subscribers per status (of the chapter, if given), subscribers: [...]}.",
)
@pass_app
def subscribers_list(app: App, status: str | None, chapter: str | None, as_json: bool) -> None:
    """List subscribers by address. Only active ones are mailed the digest. TOPICS are those a
    member chose ("-": what their chapter gets).

    Example:

    \b
        policyfeed subscribers list --status active --chapter geneva
        policyfeed subscribers list --status pending
        policyfeed subscribers list --json | jq .counts
    """
    from policyfeed.store import subscribers as store

    found = store.list_subscribers(app.db, status=status, chapter=chapter)
    if as_json:
        counts = store.status_counts(app.db, chapter=chapter)
        echo_json(
            {
                "counts": {**counts, "total": sum(counts.values())},
                "subscribers": [_subscriber_dict(s) for s in found],
            }
        )
        return
    if not found:
        click.echo("No subscribers.")
        return
    width = max(len(s.email) for s in found)
    topics = {s.email: ",".join(s.topics) or "-" for s in found}
    topic_width = max(12, *(len(t) for t in topics.values()))
    click.echo(
        f"{'EMAIL':<{width}}  {'STATUS':<12}  {'CHAPTER':<12}  {'TOPICS':<{topic_width}}  NAME"
    )
    for s in found:
        click.echo(
            f"{s.email:<{width}}  {s.status:<12}  {s.chapter or '-':<12}  "
            f"{topics[s.email]:<{topic_width}}  {s.name}"
        )


@subscribers.command("unsubscribe")
@click.argument("email")
@pass_app
def subscribers_unsubscribe(app: App, email: str) -> None:
    """Unsubscribe an address (kept, so that no import brings it back). Messages not yet
    sent to them are skipped, even in an issue already going out.

    Example:

    \b
        policyfeed subscribers unsubscribe ana@example.org
    """
    from policyfeed.audience.subscribers import unsubscribe

    changed = unsubscribe(app.db, email, now=app.now())
    click.echo(f"Unsubscribed {email}" if changed else f"{email} was already unsubscribed")


@subscribers.command("reactivate")
@click.argument("email")
@pass_app
def subscribers_reactivate(app: App, email: str) -> None:
    """Mail a member suspended by bounces again (status bounced back to active), when you know
    their address works now. Their bounces so far no longer count toward suspending them.

    Someone who unsubscribed or reported the digest as spam is not brought back this way:
    only at their own request, with `subscribers add --resubscribe`.

    Example:

    \b
        policyfeed subscribers list --status bounced
        policyfeed subscribers reactivate ana@example.org
    """
    from policyfeed.audience.bounces import reactivate

    done = reactivate(app.db, email, now=app.now())
    if not done.changed:
        click.echo(f"{done.email} is active already; nothing changed")
        return
    cleared = f" ({done.cleared} bounce(s) cleared)" if done.cleared else ""
    click.echo(f"Reactivated {done.email}: they get the next issue{cleared}")


@subscribers.command("remove")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def subscribers_remove(app: App, email: str, yes: bool) -> None:
    """Delete a subscriber and their delivery history (a later import may add them again).

    To stop mail but remember the choice, use `subscribers unsubscribe`; for a request to be
    forgotten, `subscribers forget`.

    Example:

    \b
        policyfeed subscribers remove ana@example.org --yes
    """
    from policyfeed.audience.subscribers import remove_subscriber
    from policyfeed.store import subscribers as store

    store.get_subscriber(app.db, email.strip())
    if not yes:
        click.confirm(f"Delete {email} and their delivery history for good?", abort=True)
    removed = remove_subscriber(app.db, email)
    click.echo(f"Removed {removed.email}")


@subscribers.command("forget")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def subscribers_forget(app: App, email: str, yes: bool) -> None:
    """Erase a member's personal data at their request: their record, consent records,
    delivery history and unsent messages. Only a hash of the address is kept, so that no
    import or sign-up form mails them again (`subscribers add --resubscribe` at their own
    request lifts it). Messages already in the outbox folder are files: delete them there.

    Example:

    \b
        policyfeed subscribers export ana@example.org > ana.json   # if they asked for a copy
        policyfeed subscribers forget ana@example.org --yes
    """
    from policyfeed.audience.subscribers import forget_subscriber
    from policyfeed.store import subscribers as store

    store.get_subscriber(app.db, email.strip())
    if not yes:
        click.confirm(f"Erase everything stored about {email}?", abort=True)
    forgotten = forget_subscriber(app.db, email, now=app.now())
    click.echo(f"Forgot {forgotten.email}: only a hash of the address is kept, to never mail it")


@subscribers.command("export")
@click.argument("email")
@pass_app
def subscribers_export(app: App, email: str) -> None:
    """Everything stored about one subscriber, as JSON (for a member's data request): their
    record (with the topics they chose), each consent (when, from which form or import, IP
    address and user agent, the text they agreed to) and their deliveries.

    Example:

    \b
        policyfeed subscribers export ana@example.org > ana.json
    """
    from policyfeed.audience.subscribers import export_subscriber

    echo_json(export_subscriber(app.db, email))
