"""The Jinja environment every page and message is rendered with: the site, the issue archive,
the digest and the web pages. Templates load through a ChoiceLoader: ``build.templates_dir`` first
(a site's overrides), then the defaults shipped as the ``policyfeed.templates`` package. HTML
templates autoescape; a missing variable is an error, never an empty string.

Their fixed words come from gettext catalogs (one environment per language): the shipped ones
are in ``templates/locales/<lang>/LC_MESSAGES/`` (``messages.po``, compiled to ``messages.mo``).
A site overrides one the way it overrides a template: a ``locales/<lang>/LC_MESSAGES/messages.po``
(or ``.mo``) in ``build.templates_dir``, whose messages replace the shipped ones (what it leaves
out falls back to them). A language with no catalog gets the English words. Babel is imported
only to read an override's ``.po`` and for the dates and numbers of a language other than
English, never when the CLI starts.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policyfeed.content.plaintext import text_heading, wrap_text
from policyfeed.content.text import clean_text
from policyfeed.errors import ConfigError
from policyfeed.model import primary_language

if TYPE_CHECKING:
    import gettext

    import babel
    import jinja2

    from policyfeed.config import Settings


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
    if type(value) is str:  # most values: no import, no isinstance (a build makes ~10^6)
        # clean_text's own first test, without the call: most values are printable.
        return value if value.isprintable() else clean_text(value)
    from markupsafe import Markup

    if isinstance(value, Markup):
        return Markup(clean_text(str(value)))
    if isinstance(value, str):
        return clean_text(value)
    return value


@functools.cache
def _environment_class() -> type[jinja2.Environment]:
    import jinja2

    dict_names = frozenset(dir(dict))

    class DictFirstEnvironment(jinja2.Environment):
        """``{{ post.title }}`` on a plain dict (every view the code passes) reads its key at
        once. Jinja asks ``getattr`` first and takes the AttributeError before the key: about
        seven times the cost of the lookup, a million times in a big build. The answer is the
        same: a plain dict has no attributes but dict's own, and those still win."""

        def getattr(self, obj: Any, attribute: str) -> Any:
            if type(obj) is dict and attribute not in dict_names:
                try:
                    return obj[attribute]
                except KeyError:
                    pass
            return super().getattr(obj, attribute)

    return DictFirstEnvironment


@functools.lru_cache(maxsize=16)
def _environment(templates_dir: Path | None, language: str = "en") -> jinja2.Environment:
    import jinja2

    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
    loaders.append(_default_template_loader())
    env = _environment_class()(
        loader=jinja2.ChoiceLoader(loaders),
        finalize=_clean_output,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml"), default_for_string=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    # The fixed words come from the language's catalog (see the module docstring); newstyle: the
    # translated text is formatted with the keywords given, escaped in HTML templates.
    catalog = translations(language, templates_dir)
    env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]
    # A sentence the code made (a form's answer, marked N_ for the catalogs), translated when
    # the catalog has it; plain text, so escaped like any value (never trusted as HTML).
    env.filters["translate"] = catalog.gettext
    env.filters["wrap"] = wrap_text
    env.filters["heading"] = text_heading
    env.filters["number"] = functools.partial(format_number, language=language)
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


def template_environment(settings: Settings, language: str | None = None) -> jinja2.Environment:
    """The Jinja environment for a site: its templates folder first, then the defaults; the
    fixed words in ``language`` (None: ``site.language``)."""
    return _environment(settings.templates_dir, language or settings.language)


def render_template(
    settings: Settings, name: str, *, language: str | None = None, **context: Any
) -> str:
    """Render one template in ``language`` (None: ``site.language``); a missing or broken
    template is a ConfigError naming it."""
    import jinja2

    try:
        return template_environment(settings, language).get_template(name).render(**context)
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


# --- languages: catalogs, direction, dates and numbers ----------------------------------------

MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip

#: The languages whose catalogs ship with policyfeed.
SHIPPED_LANGUAGES = ("en", "fr", "es", "ar")
DOMAIN = "messages"
CATALOG_FOLDER = "locales"
#: Languages written right to left (by primary subtag).
RIGHT_TO_LEFT = frozenset(
    {"ar", "arc", "ckb", "dv", "fa", "he", "iw", "ks", "ps", "sd", "ug", "ur", "yi"}
)


def text_direction(tag: str) -> str:
    """``rtl`` for a language written right to left, else ``ltr``."""
    return "rtl" if primary_language(tag) in RIGHT_TO_LEFT else "ltr"


def _gettext_codes(tag: str) -> list[str]:
    """``pt-BR`` → ``["pt_BR", "pt"]``: the catalog folders to try, most specific first."""
    parts = tag.split("-")
    codes = []
    for size in range(len(parts), 0, -1):
        head = parts[:size]
        codes.append(
            "_".join([head[0].lower(), *(p.upper() if len(p) == 2 else p for p in head[1:])])
        )
    return codes


def _shipped_catalog(code: str) -> bytes | None:
    import importlib.resources

    resource = importlib.resources.files("policyfeed.templates").joinpath(
        CATALOG_FOLDER, code, "LC_MESSAGES", f"{DOMAIN}.mo"
    )
    return resource.read_bytes() if resource.is_file() else None


def compile_po(path: Path) -> bytes:
    """A ``.po`` file compiled to ``.mo`` bytes (fuzzy and untranslated messages left out);
    ConfigError naming the file and line when it cannot be read."""
    import io

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import PoFileError, read_po

    try:
        with path.open("rb") as handle:
            catalog = read_po(handle, abort_invalid=True)
    except (OSError, PoFileError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"catalog {path}: {exc}") from None
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def _override_catalog(templates_dir: Path, code: str) -> tuple[Path, bytes] | None:
    folder = templates_dir / CATALOG_FOLDER / code / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if po.is_file():  # the .po an editor wrote wins over a .mo left beside it
        return po, compile_po(po)
    if mo.is_file():
        return mo, mo.read_bytes()
    return None


def _load(data: bytes, where: str) -> gettext.GNUTranslations:
    import gettext
    import io

    try:
        return gettext.GNUTranslations(io.BytesIO(data))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"catalog {where}: not a gettext catalog ({exc})") from None


@functools.lru_cache(maxsize=32)
def translations(language: str, templates_dir: Path | None = None) -> gettext.NullTranslations:
    """The catalog of ``language``: a site's override (if any) over the shipped one (if any);
    a message neither has is the English text."""
    import gettext

    chain: list[gettext.NullTranslations] = []
    for code in _gettext_codes(language or "en"):
        if templates_dir is not None:
            found = _override_catalog(templates_dir, code)
            if found is not None:
                chain.append(_load(found[1], str(found[0])))
        shipped = _shipped_catalog(code)
        if shipped is not None:
            chain.append(_load(shipped, f"{code} (shipped)"))
    if not chain:
        return gettext.NullTranslations()
    for first, then in itertools.pairwise(chain):
        first.add_fallback(then)
    return chain[0]


def _is_english(language: str) -> bool:
    return primary_language(language or "en") == "en"


@functools.lru_cache(maxsize=32)
def _babel_locale(language: str) -> babel.Locale | None:
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        try:
            return Locale.parse(primary_language(language))
        except (UnknownLocaleError, ValueError):
            return None


def format_date(moment: datetime | None, tz: tzinfo, language: str = "en") -> str:
    """The day of ``moment`` in the site's time zone as ``language`` writes it: ``30 July
    2012``, ``30 juillet 2012``, ``30 de julio de 2012``, ``30 يوليو 2012``."""
    if moment is None:
        return ""
    local = moment.astimezone(tz)
    if not _is_english(language):
        locale = _babel_locale(language)
        if locale is not None:
            from babel.dates import format_date as babel_format_date

            return str(babel_format_date(local.date(), format="long", locale=locale))
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}"


def format_number(number: int, language: str = "en") -> str:
    """A count as ``language`` writes it (``1,234``, ``1 234``, ``1.234``)."""
    if not _is_english(language):
        locale = _babel_locale(language)
        if locale is not None:
            from babel.numbers import format_decimal

            return str(format_decimal(number, locale=locale))
    return f"{number:,}"
