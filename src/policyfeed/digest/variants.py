"""What each member receives of an issue: its variants.

A member gets their chapter's variant of each issue: the chapter's name and intro line, and the
posts on the chapter's topics (a chapter without a topic filter, or no chapter at all: every
post of the issue). A member who chose topics (on their preferences page, or an operator with
``--topic``) gets the posts on *those* topics instead: their choice replaces the chapter's
filter, it does not narrow it, so someone who ticks "IETF" gets the IETF posts whatever their
chapter follows; the chapter's name and intro line stay. A post is in when it has any of the
topics. A chapter with a post language (``chapters add --post-language fr``) gets only the
posts in that language and the posts with no language, whatever topics its members chose. A
variant with no post is not sent: the member gets nothing that time.

A variant is named by (chapter, chosen topics); its message depends only on the chapter and
its posts (:attr:`Variant.rendering`), so members whose choices leave the same posts in the same
chapter share one rendering and one premailer pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from policyfeed.model import Chapter, Post, in_language

#: A variant's name: (chapter id or None, the chosen topic slugs sorted, or None: the chapter's).
VariantKey = tuple[int | None, tuple[str, ...] | None]
#: What a variant's message depends on: (chapter id or None, its post ids in the issue's order).
Rendering = tuple[int | None, tuple[int, ...]]


def posts_on_topics(
    posts: Sequence[Post], topic_slugs: Iterable[str], language: str = ""
) -> list[Post]:
    """The posts with any of ``topic_slugs``, in the issue's order; no slug: every post. With
    ``language``: only the posts in it, and those with no language."""
    wanted = set(topic_slugs)
    return [
        post
        for post in posts
        if (not wanted or any(topic.slug in wanted for topic in post.topics))
        and in_language(post.language, language)
    ]


@dataclass(frozen=True, eq=False)
class Variant:
    """One variant of an issue: a chapter's (or the whole issue's, ``chapter`` None) with the
    member's chosen ``topics`` (None: the chapter's filter), and the ``posts`` that gives."""

    chapter: Chapter | None
    topics: tuple[str, ...] | None
    posts: tuple[Post, ...]
    #: Whether ``posts`` are every post of the issue.
    whole: bool

    @property
    def key(self) -> VariantKey:
        return (self.chapter.id if self.chapter else None, self.topics)

    @property
    def rendering(self) -> Rendering:
        return (self.chapter.id if self.chapter else None, tuple(p.id or 0 for p in self.posts))

    @property
    def label(self) -> str | None:
        """How reports name it: None for the whole issue, ``vancouver``,
        ``vancouver/topics=ietf+trade-agreements``, ``topics=ietf``."""
        parts = [self.chapter.slug] if self.chapter else []
        if self.topics is not None:
            parts.append("topics=" + "+".join(self.topics))
        return "/".join(parts) or None

    @property
    def post_ids(self) -> tuple[int, ...]:
        return tuple(p.id or 0 for p in self.posts)

    def nothing_reason(self) -> str:
        """Why a member of this variant gets nothing, when it has no post."""
        if self.topics is not None:
            return f"no posts on the topics they chose ({', '.join(self.topics)})"
        return f"no posts for {self.chapter.name if self.chapter else 'the issue'}"


def variant_order(variant: Variant) -> tuple[bool, int, bool, tuple[str, ...]]:
    """The whole issue first, then by chapter; in each, the chapter's own filter first."""
    chapter_id = variant.chapter.id if variant.chapter else None
    return (
        chapter_id is not None,
        chapter_id or 0,
        variant.topics is not None,
        variant.topics or (),
    )


class IssueVariants:
    """The variants of one issue's posts, each made once and kept."""

    def __init__(self, posts: Sequence[Post], chapters: Iterable[Chapter]) -> None:
        self.posts = list(posts)
        self.chapters = {c.id: c for c in chapters if c.id is not None}
        self._made: dict[tuple[VariantKey, tuple[int, ...] | None], Variant] = {}

    def _make(
        self, chapter: Chapter | None, topics: tuple[str, ...] | None, posts: Sequence[Post]
    ) -> Variant:
        return Variant(chapter, topics, tuple(posts), len(posts) == len(self.posts))

    def of(self, chapter_id: int | None, topics: Sequence[str] | None) -> Variant:
        """What a member of ``chapter_id`` (None, or a chapter gone: none) who chose ``topics``
        (None: no choice) gets."""
        chapter = self.chapters.get(chapter_id) if chapter_id is not None else None
        chosen = None if topics is None else tuple(sorted(set(topics)))
        key = ((chapter.id if chapter else None, chosen), None)
        if key not in self._made:
            language = chapter.post_language if chapter is not None else ""
            if chosen is not None:
                posts = posts_on_topics(self.posts, chosen, language)
            elif chapter is not None:
                posts = posts_on_topics(self.posts, chapter.topics, language)
            else:
                posts = list(self.posts)
            self._made[key] = self._make(chapter, chosen, posts)
        return self._made[key]

    def frozen(
        self, chapter_id: int | None, topics: Sequence[str] | None, post_ids: Sequence[int]
    ) -> Variant:
        """A variant as it was frozen when delivery began: the issue's posts among ``post_ids``
        (one deleted since is left out), whatever the chapter's filter or the topics' posts are
        now."""
        chapter = self.chapters.get(chapter_id) if chapter_id is not None else None
        chosen = None if topics is None else tuple(topics)
        key = ((chapter.id if chapter else None, chosen), tuple(post_ids))
        if key not in self._made:
            wanted = set(post_ids)
            posts = [post for post in self.posts if post.id in wanted]
            self._made[key] = self._make(chapter, chosen, posts)
        return self._made[key]

    def every_chapter(self) -> list[Variant]:
        """The whole issue, then each chapter's own variant (members' choices aside)."""
        return [self.of(None, None), *(self.of(i, None) for i in sorted(self.chapters))]


def distinct_renderings(variants: Iterable[Variant]) -> list[Variant]:
    """One variant per distinct message (the first in :func:`variant_order`), in that order,
    leaving out those with no post."""
    seen: dict[Rendering, Variant] = {}
    for variant in sorted(variants, key=variant_order):
        if variant.posts and variant.rendering not in seen:
            seen[variant.rendering] = variant
    return list(seen.values())
