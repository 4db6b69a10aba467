"""The Jinja environment every page and message is rendered with: the site, the issue archive,
the digest and the web pages. Templates load through a ChoiceLoader: ``build.templates_dir`` first
(a site's overrides), then the defaults shipped as the ``policyfeed.templates`` package. HTML
templates autoescape; a missing variable is an error, never an empty string.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policyfeed.content.plaintext import text_heading, wrap_text
from policyfeed.content.text import clean_text
from policyfeed.errors import ConfigError

if TYPE_CHECKING:
    import jinja2

    from policyfeed.config import Settings

MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


def _default_template_loader() -> jinja2.BaseLoader:
    import importlib.resources

    import jinja2

    root = importlib.resources.files("policyfeed.templates")

    class PackageResourceLoader(jinja2.BaseLoader):
        """The templates shipped inside the package (works from a wheel, a zip or a checkout)."""

        def get_source(
            self, environment: jinja2.Environment, template: str
        ) -> tuple[str, str | None, Any]:
            resource = root.joinpath(*template.split("/"))
            if ".." in template.split("/") or not resource.is_file():
                raise jinja2.TemplateNotFound(template)
            return resource.read_text(encoding="utf-8"), None, lambda: True

    return PackageResourceLoader()


def _clean_output(value: Any) -> Any:
    """Every ``{{ … }}`` of every template goes out through :func:`clean_text` (controls and
    noncharacters from a title or the site description never reach a page or a message)."""
    from markupsafe import Markup

    if isinstance(value, Markup):
        return Markup(clean_text(str(value)))
    if isinstance(value, str):
        return clean_text(value)
    return value


@functools.lru_cache(maxsize=8)
def _environment(templates_dir: Path | None) -> jinja2.Environment:
    import jinja2

    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
    loaders.append(_default_template_loader())
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        finalize=_clean_output,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml"), default_for_string=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap_text
    env.filters["heading"] = text_heading
    return env


def output_fingerprint(
    settings: Settings, *, layout: str, templates: Sequence[str], override_folder: str = ""
) -> str:
    """A hash of everything besides the database that shapes built pages: the settings they
    show, the source of ``templates`` as loaded, and every override file under
    ``templates_dir/override_folder``. Incremental builds compare it and build in full when it
    changes."""
    import jinja2

    from policyfeed import __version__

    env = template_environment(settings)
    digest = hashlib.sha256()
    for part in (
        layout,
        __version__,
        settings.title,
        settings.description,
        settings.base_url,
        settings.language,
        settings.timezone,
        settings.author,
        settings.author_email,
        settings.icon,
        settings.logo,
        settings.postal_address,
        str(settings.feed_limit),
        settings.websub_hub,
    ):
        digest.update(part.encode() + b"\0")
    assert env.loader is not None
    for name in templates:
        try:
            source = env.loader.get_source(env, name)[0]
        except jinja2.TemplateNotFound:  # a missing template fails later, with a clear message
            source = ""
        digest.update(name.encode() + b"\0" + source.encode() + b"\0")
    if settings.templates_dir is not None:
        folder = settings.templates_dir / override_folder
        if folder.is_dir():  # an override may include any template of its folder
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    digest.update(path.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def template_environment(settings: Settings) -> jinja2.Environment:
    """The Jinja environment for a site: its templates folder first, then the defaults."""
    return _environment(settings.templates_dir)


def render_template(settings: Settings, name: str, **context: Any) -> str:
    """Render one template; a missing or broken template is a ConfigError naming it."""
    import jinja2

    try:
        return template_environment(settings).get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(
            f"template {exc.name} not found (in build.templates_dir or the defaults)"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            f"template {exc.name or name}, line {exc.lineno}: {exc.message}"
        ) from None
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"template {name}: {exc.message}") from None


def format_date(moment: datetime | None, tz: tzinfo) -> str:
    """``30 July 2012`` in the site's time zone (no locale involved)."""
    if moment is None:
        return ""
    local = moment.astimezone(tz)
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}"
