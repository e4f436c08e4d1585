"""Templates: loading, checking, and rendering touches for a lead.

Templates are read into memory once per version and compiled once, so a worker keeps
rendering the last good version while a marketer is mid-edit. CSS is inlined per
message with css-inline (a Rust inliner; docs/performance.md): inlining the Jinja source
once is not correct, because loops and conditionals in tables are not HTML until
they are rendered (an HTML parser moves `{% for %}` out of a `<table>`).
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import re
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import css_inline
import jinja2
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from markupsafe import Markup

from dripper import translations
from dripper.campaign import dates, languages, numbers, variants
from dripper.campaign import fields as declared
from dripper.campaign.model import Campaign, CampaignFile, Sender, Step, did_you_mean
from dripper.campaign.senders import Signature
from dripper.campaign.sourcefile import read_utf8
from dripper.channels.email.text import html_to_text
from dripper.errors import ConfigError, Location, Problem
from dripper.leads import postal
from dripper.leads.records import TEMPLATE_FIELDS, Lead, one_line

TEMPLATE_SUFFIXES = {".html", ".htm", ".txt", ".j2", ".jinja", ".css", ".md"}


@dataclass(frozen=True)
class TemplateSet:
    """Every template file under templates/, as text, with a version fingerprint."""

    root: Path
    sources: dict[str, str]
    fingerprint: str

    @classmethod
    def load(cls, root: Path) -> TemplateSet:
        """Every template file, all-or-nothing: one that is not UTF-8 (or cannot be read)
        is a ConfigError located at its first bad byte, whichever step uses it."""
        sources: dict[str, str] = {}
        problems: list[Problem] = []
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() and path.suffix.lower() in TEMPLATE_SUFFIXES:
                    try:
                        sources[path.relative_to(root).as_posix()] = read_utf8(path)
                    except ConfigError as exc:
                        problems += exc.problems
                    except FileNotFoundError:  # deleted while we listed: the next load sees the folder as it is
                        continue
        if problems:
            raise ConfigError(problems)
        digest = hashlib.sha256()
        for name, source in sources.items():  # a file name need not be UTF-8: its bytes, as the disk has them
            digest.update(name.encode("utf-8", "surrogateescape") + b"\0" + source.encode() + b"\0")
        return cls(root, sources, digest.hexdigest()[:16])


class _SnapshotLoader(jinja2.BaseLoader):
    """Serves the in-memory snapshot, reporting real file paths in errors."""

    def __init__(self, templates: TemplateSet):
        self.templates = templates

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        source = self.templates.sources.get(template)
        if source is None:
            raise jinja2.TemplateNotFound(template)
        return source, str(self.templates.root / template), lambda: True


# What templates see as `lead`: the one lead record, normalised for them (`Lead.for_templates`).
LeadView = Lead


class _AnyAttrs(dict[str, str]):
    """For `check`: a lead may carry any CSV column as an attribute (a declared field has
    a value of its type: dict.get holds those)."""

    def __getitem__(self, key: str) -> str:
        return super().get(key) or f"sample {key}"

    def __contains__(self, key: object) -> bool:
        return True

    def get(self, key: str, default: Any = None) -> str:
        return self[key]


def sample_lead(config: CampaignFile, *, any_attrs: bool = True) -> LeadView:
    """A made-up lead. `any_attrs`: every attribute exists (for `check`); else only the
    declared fields do (for previews: what a lead without other CSV columns receives),
    those with a default left out so that the default shows."""
    samples = {name: spec.sample(name) for name, spec in config.fields.items() if any_attrs or spec.default is None}
    return LeadView(
        id=0,
        email="sample.lead@example.com",
        first_name="Sam",
        last_name="Sample",
        company="Sample Corp",
        stage="supplier_research",
        campaign=config.default_campaign,
        timezone=config.defaults.timezone,
        address_line1="1 Sample Road",
        address_line2="Suite 2",
        city="Springfield",
        region="IL",
        postal_code="62701",
        country="US",
        attrs=_AnyAttrs(samples) if any_attrs else samples,
    )


def plain_personal_url(url: object) -> str:
    """`{{ personal_url('https://…') }}` where no touch is known: the URL itself, once it is
    known to be an absolute http(s) URL (a letter's reader types or scans it)."""
    text = str(url).strip()
    if not re.match(r"https?://[^\s/?#]+", text, re.IGNORECASE) or re.search(r"[\x00-\x20]", text):
        raise jinja2.TemplateRuntimeError(f"personal_url wants an absolute http(s) URL, not {text[:80]!r}")
    return text


_QR_SIZE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,2})?(mm|cm|in|pt|px)")


def qr_code(url: object, size: str = "25mm") -> Markup:
    """`{{ qr_code(personal_url('https://…')) }}`: the URL as a QR code, an inline SVG
    (segno) `size` wide and high, for a letter's reader to scan. Error correction M: a
    printed code survives a smudge."""
    import segno

    text = plain_personal_url(url)
    if not _QR_SIZE.fullmatch(str(size)):
        raise jinja2.TemplateRuntimeError(f"qr_code size {str(size)[:20]!r}: write it like 25mm, 2.5cm or 1in")
    svg = segno.make(text, error="m").svg_inline(scale=1, border=4, omitsize=True, svgclass="dripper-qr")
    # segno writes the SVG itself (no input reaches it but the encoded modules): safe markup.
    return Markup(f'<span class="dripper-qr" style="display:inline-block;width:{size};height:{size}">{svg}</span>')


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


class _Undefined(StrictUndefined):
    """StrictUndefined that names a campaign variable the way campaigns.yaml writes it."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if isinstance(self._undefined_obj, declared.TemplateVars):
            return f"vars.{self._undefined_name} is not defined in campaigns.yaml (vars:)"
        return str(super()._undefined_message)


class Renderer:
    def __init__(self, config: CampaignFile, templates: TemplateSet):
        self.config = config
        self.templates = templates
        loader = _SnapshotLoader(templates)
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": _Undefined,
            "keep_trailing_newline": True,
            "auto_reload": False,
        }
        self.html_env = jinja2.Environment(autoescape=True, **common)
        self.text_env = jinja2.Environment(autoescape=False, **common)
        for env in (self.html_env, self.text_env):
            env.filters["date"] = dates.date_filter
            env.filters.update(numbers.FILTERS)  # currency, number, percent in the lead's locale
            # A letter's composer gives each letter its own tracked URL (channels/compose.py);
            # elsewhere (check, previews, e-mails, whose links are rewritten anyway) it is the URL.
            env.globals["salutation"] = translations.salutation  # the greeting, in the lead's language
            env.globals["personal_url"] = plain_personal_url
            env.globals["qr_code"] = qr_code
        # Declared fields' defaults: filled in at render time, so a changed default applies to later sends.
        self._defaults = declared.defaults_of(config.fields)
        self._vars = {name: declared.TemplateVars(declared.campaign_vars(config, name)) for name in config.campaigns}
        self._subjects: dict[tuple[str, str, str], jinja2.Template] = {}
        self._localized: dict[tuple[str, str], str] = {}  # (template, language) -> its translation's name
        self._inliner = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)
        self._senders = {sender.key: sender_context(sender) for sender in config.book.all}

    # --- context ------------------------------------------------------------------------
    def context(
        self,
        lead: LeadView,
        campaign: Campaign,
        step: Step,
        unsubscribe_url: str,
        now: datetime,
        preferences_url: str = "",
    ) -> dict[str, Any]:
        filled = declared.with_defaults(lead.attrs, self._defaults)
        if filled is not None:
            lead = replace(lead, attrs=filled)
        language = self.language_of(lead, campaign)
        locale = self.locale_of(lead, campaign)
        sent = dates.send_date(now, dates.lead_zone(lead.timezone), locale)
        local_today = sent.date()
        return {
            "lead": lead,
            "sender": self._senders[self.config.sender_for(campaign.name, lead.owner).key],
            "campaign": {"name": campaign.name, "description": campaign.description or ""},
            "step": {
                "id": step.id,
                "kind": step.kind,
                "channel": step.channel,
                "subject": step.subject or "",
                "variant": step.variant or "",
            },
            "unsubscribe_url": unsubscribe_url,
            "preferences_url": preferences_url or unsubscribe_url,
            # In the lead's language once one is named anywhere; before languages, English.
            "today": dates.written(local_today, "d MMMM y", locale)
            if self.names_language(lead, campaign)
            else f"{local_today.day} {local_today:%B %Y}",
            "send_date": sent,
            "offer_until": dates.OfferUntil(sent),
            "locale": locale,
            "language": language,
            "default_language": self.default_language(campaign),
            "vars": self._vars.get(campaign.name) or declared.TemplateVars({**self.config.vars, **campaign.vars}),
        }

    # --- languages (campaign/languages.py) ---------------------------------------------
    def default_language(self, campaign: Campaign) -> str:
        """What a campaign's leads are written in when they name no language."""
        return languages.resolve("", campaign.language, self.config.defaults.language)

    def language_of(self, lead: LeadView, campaign: Campaign) -> str:
        """The language the lead is written to: its own, its campaign's, the file's, en."""
        return languages.resolve(lead.language, campaign.language, self.config.defaults.language)

    def names_language(self, lead: LeadView, campaign: Campaign) -> bool:
        """Whether the lead, its campaign or the file names a language."""
        return bool(lead.language or campaign.language or self.config.defaults.language)

    def locale_of(self, lead: LeadView, campaign: Campaign) -> str:
        """The Babel locale of the lead's dates and numbers: its language's, with its
        country's conventions. When neither the lead, nor its campaign, nor the file
        names a language, the way letters always wrote dates (`postal.locale_for`)."""
        if not self.names_language(lead, campaign):
            return postal.locale_for(lead)
        return languages.locale_of(self.language_of(lead, campaign), lead.country)

    def template_for(self, step: Step, ctx: Mapping[str, Any]) -> str:
        """The step's template in the lead's language (`thanks.de.html`), else as named."""
        language = ctx.get("language")
        if not language:
            return step.template
        key = (step.template, str(language))
        name = self._localized.get(key)
        if name is None:  # once per template and language: every message asks
            name = self._localized[key] = languages.localized_name(step.template, key[1], self.templates.sources)
        return name

    # --- rendering ----------------------------------------------------------------------
    def subject(self, campaign: Campaign, step: Step, ctx: Mapping[str, Any]) -> str:
        text = step.subject or ""
        if step.subjects:
            language = str(ctx.get("language") or languages.FALLBACK)
            text = languages.pick(step.subjects, language, self.default_language(campaign)) or text
        key = (campaign.name, step.id, text)  # each A/B variant and language its own subject
        template = self._subjects.get(key)
        if template is None:
            template = self._subjects[key] = self.text_env.from_string(text)
        return one_line(template.render(ctx))

    def body_html(self, step: Step, ctx: Mapping[str, Any]) -> str:
        return self.html_env.get_template(self.template_for(step, ctx)).render(ctx)

    def body_text(self, step: Step, ctx: Mapping[str, Any], html: str) -> str:
        """A `.txt` twin of the template wins; otherwise the HTML, as text, links kept whole."""
        template = self.template_for(step, ctx)
        twin = str(Path(template).with_suffix(".txt"))
        if twin != template and twin in self.templates.sources:
            return self.text_env.get_template(twin).render(ctx).strip() + "\n"
        return html_to_text(html) + "\n"

    def email(self, campaign: Campaign, step: Step, ctx: Mapping[str, Any]) -> RenderedEmail:
        subject = self.subject(campaign, step, ctx)
        html = without_script_urls(self.body_html(step, ctx))  # before the text part is made of it
        text = self.body_text(step, ctx, html)
        postal = ctx["sender"]["postal_address"]  # the chosen identity's (campaign/senders.py)
        url, prefs = ctx["unsubscribe_url"], ctx.get("preferences_url") or ctx["unsubscribe_url"]
        language = str(ctx.get("language") or languages.FALLBACK)
        html = _append_footer(html, _html_footer(postal, url, prefs, language))
        text = text + _text_footer(postal, url, prefs, language)
        return RenderedEmail(subject, self._inliner.inline(html), text)

    def letter_html(self, step: Step, ctx: Mapping[str, Any]) -> str:
        # Not CSS-inlined: the PDF engine reads <style>, including the @page rules letters need.
        return without_script_urls(self.body_html(step, ctx))

    def call_notes(self, step: Step, ctx: Mapping[str, Any]) -> str:
        return html_to_text(self.body_html(step, ctx))


# --- URLs that would run script ---------------------------------------------------------
# A template may put lead data into a link (`<a href="{{ lead.attrs.website }}">`).
# Autoescaping keeps the value inside its attribute, but not a `javascript:` URL out of
# it. So every attribute value of the rendered HTML whose URL scheme could run script is
# replaced by "#", reading it as a browser does: entities decoded, ASCII tabs and line
# breaks inside it dropped, leading blanks and controls ignored, any case. This runs for
# every message: one regex, anchored on `=` (a fast literal scan), picks the values that
# either name such a scheme outright or hold a blank, control or `&` before their first
# letter run ends (every disguise needs one); only those are decoded and looked at.
_SCRIPT_SCHEMES = frozenset({"javascript", "vbscript", "livescript", "jscript", "mocha", "data"})
_CANDIDATE = re.compile(
    r"""=[ \t\n\r\f]*(["']?)(?=(?i:javascript|vbscript|livescript|jscript|mocha|data):|[A-Za-z0-9+.\-]*[\x00-\x20&])"""
)
_UNQUOTED = re.compile(r"""[^\s"'=<>`]*""")
_NAME_BEFORE = re.compile(r"""[\s"'/]([A-Za-z][A-Za-z0-9:_\-]{0,30})\Z""")  # an attribute's name
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_IN_URL_IGNORED = str.maketrans("", "", "\t\n\r")
_BLANKS_AND_CONTROLS = "".join(map(chr, range(0x21)))  # what a browser strips before the scheme
_IMAGE_ATTRS = frozenset({"src", "background", "poster", "lowsrc", "dynsrc"})
# Attributes whose value is a URL (HTML 4 and 5, SVG); text ones (alt, title) are left alone.
_URL_ATTRS = _IMAGE_ATTRS | frozenset(
    {
        "href",
        "xlink:href",
        "action",
        "formaction",
        "data",
        "cite",
        "longdesc",
        "usemap",
        "ping",
        "manifest",
        "codebase",
        "archive",
        "classid",
        "profile",
        "icon",
        "itemtype",
    }
)


def runs_script(attribute: str, value: str) -> bool:
    """Whether the attribute holds a URL which, read by a browser, has a scheme that can
    run script. An image attribute may hold a `data:image/…` URL, which cannot."""
    attribute = attribute.lower()
    if attribute not in _URL_ATTRS:
        return False
    url = html.unescape(value).translate(_IN_URL_IGNORED).lstrip(_BLANKS_AND_CONTROLS)
    found = _SCHEME.match(url)
    if found is None or found.group(1).lower() not in _SCRIPT_SCHEMES:
        return False
    if found.group(1).lower() == "data" and attribute in _IMAGE_ATTRS:
        return not url[found.end() :].lstrip().lower().startswith("image/")
    return True


def _name_end(document: str, equals: int) -> int:
    """Where the attribute name before the `=` at `equals` ends (blanks may come between)."""
    while equals > 0 and document[equals - 1] in " \t\n\r\f":
        equals -= 1
    return equals


def _unquoted_end(document: str, start: int) -> int:
    """Where an unquoted attribute value starting at `start` ends."""
    found = _UNQUOTED.match(document, start)  # matches the empty string too: never None
    return start if found is None else found.end()


def without_script_urls(document: str) -> str:
    """The HTML with every attribute value that is a script-capable URL replaced by "#"."""
    kept: list[str] = []
    done = 0
    for match in _CANDIDATE.finditer(document):
        start, quote = match.end(), match.group(1)
        if quote:
            end = document.find(quote, start)
            end = len(document) if end == -1 else end
        else:
            end = _unquoted_end(document, start)
        if start < done:
            continue  # inside a value already replaced
        # After an attribute's name, not an `=` inside a value (`?q=javascript:1` is a query).
        name = _NAME_BEFORE.search(
            document, max(0, _name_end(document, match.start()) - 32), _name_end(document, match.start())
        )
        if name is not None and runs_script(name.group(1), document[start:end]):
            kept += [document[done:start], "#"]
            done = end
    return "".join(kept) + document[done:] if kept else document


# The footer dripper appends to every e-mail's HTML part; autoescaped like every page.
# It is a column of the same width as templates/email/base.html's card (600 px plus 28 px
# padding a side, centred), so it sits under the card rather than at the window's edge.
# Its words are dripper's, in the lead's language (dripper/translations).
_FOOTER = translations.install(jinja2.Environment(autoescape=True)).from_string(
    (translations.HERE / "footer.html").read_text(encoding="utf-8").strip()
)


def _html_footer(postal: str, url: str, preferences: str, language: str) -> str:
    return str(_FOOTER.render(postal=postal, url=url, preferences=preferences, language=language))


def _text_footer(postal: str, url: str, preferences: str, language: str) -> str:
    _ = translations.translations(language).gettext
    lines = [postal, _("Unsubscribe: {url}").format(url=url)]
    if preferences != url:
        lines.append(_("Preferences: {url}").format(url=preferences))
    return "\n-- \n" + "\n".join(lines) + "\n"


def _append_footer(html: str, footer: str) -> str:
    lower = html.lower()
    cut = lower.rfind("</body>")
    if cut == -1:
        return html + footer
    return html[:cut] + footer + html[cut:]


# --- checking ---------------------------------------------------------------------------
# The instant sample leads are rendered at by `check` (send_date, offer_until).
_SAMPLE_NOW = datetime(2026, 1, 5, 15, 0).astimezone()


def _template_frame_line(exc: BaseException, filename: str) -> int | None:
    """Jinja rewrites tracebacks so template frames carry the template's own lines."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename:
            line = frame.lineno
    return line


def check_templates(config: CampaignFile, templates: TemplateSet) -> list[Problem]:
    """Every problem with the templates campaigns.yaml names: missing files, syntax
    errors (located in the template), variables a lead cannot have and campaign
    variables (`vars.X`) the campaign does not define. An undeclared `lead.attrs.X`
    without a fallback is not one of them: see `template_warnings`."""
    from dripper.channels.registry import PARTS  # the parts import this module

    renderer = Renderer(config, templates)
    problems: list[Problem] = []
    reported: set[tuple[str, int]] = set()
    lead = sample_lead(config)
    now = _SAMPLE_NOW

    def add(problem: Problem) -> None:
        key = (str(problem.location), hash(problem.message))
        if key not in reported:
            reported.add(key)
            problems.append(problem)

    for name, campaign in config.campaigns.items():
        for stage, steps in campaign.stages.items():
            for step, subject_path, template_path in _every_variant(("campaigns", name, "stages", stage), steps):
                # the step as written, and in each language it has a translation for
                for language in ("", *step_languages(step, templates)):
                    seen = replace(lead, language=language) if language else lead
                    ctx = renderer.context(seen, campaign, step, "https://example.com/u/sample", now)
                    if step.subject:
                        subject_at = config.location(subject_path)
                        try:
                            renderer.subject(campaign, step, ctx)
                        except TemplateSyntaxError as exc:
                            line = subject_at.line + (exc.lineno or 1) - 1
                            add(
                                Problem(
                                    Location(subject_at.file, line, subject_at.column),
                                    f"template syntax error in subject: {exc.message}",
                                )
                            )
                        except UndefinedError as exc:
                            add(Problem(subject_at, f"subject of step {step.id!r} uses {_undefined(exc)}"))
                        except Exception as exc:
                            add(Problem(subject_at, f"subject of step {step.id!r} failed to render: {exc}"))
                    if step.template not in templates.sources:
                        hint = f" under {templates.root}" if templates.root else ""
                        add(Problem(config.location(template_path), f"template {step.template!r} not found{hint}"))
                        continue
                    try:  # the body alone: the subject was checked (and located) above
                        html = renderer.body_html(step, ctx)
                        if PARTS[step.channel].text_part:
                            renderer.body_text(step, ctx, html)
                    except TemplateSyntaxError as exc:
                        file = exc.filename or str(templates.root / step.template)
                        add(Problem(Location(file, exc.lineno or 1, 1), f"template syntax error: {exc.message}"))
                    except jinja2.TemplateNotFound as exc:
                        add(
                            Problem(
                                config.location(template_path),
                                f"template {step.template!r} includes or extends {exc.name!r}, which is not found",
                            )
                        )
                    except UndefinedError as exc:
                        add(Problem(_undefined_at(exc, templates, step), f"{_undefined(exc)} (step {step.id!r})"))
                    except RecursionError:
                        add(
                            Problem(
                                config.location(template_path),
                                f"template {step.template!r} nests blocks or brackets too deeply to compile",
                            )
                        )
                    except Exception as exc:  # a filter blew up on sample data: still the template's fault
                        failed = f"template {step.template!r} failed to render: {exc}"
                        add(Problem(config.location(template_path), failed))
    # The static check sees every branch and names the variable precisely; a render
    # problem on a line it already flagged says the same thing less well.
    named = {
        name
        for c in config.campaigns.values()
        for steps in c.stages.values()
        for step in steps
        for _, one in variants.each(step)
        for name in (one.template, *translation_files(one.template, templates))
    }
    static = _static_problems(renderer.html_env, templates, named)
    static += _vars_problems(config, renderer.html_env, templates)
    flagged = {(p.location.file, p.location.line) for p in static}
    unique = list({str(p): p for p in static}.values())
    return unique + [p for p in problems if (p.location.file, p.location.line) not in flagged]


def step_languages(step: Step, templates: TemplateSet) -> list[str]:
    """The languages a step has a translation for: of its template, or of its subject."""
    return sorted({*languages.translations(step.template, templates.sources), *step.subjects})


def translation_files(template: str, templates: TemplateSet) -> list[str]:
    """The translation files of `template` (`thanks.de.html`, …)."""
    return [
        languages.localized_name(template, tag, templates.sources)
        for tag in languages.translations(template, templates.sources)
    ]


def _every_variant(
    track: tuple[Any, ...], steps: list[Step]
) -> Iterator[tuple[Step, tuple[Any, ...], tuple[Any, ...]]]:
    """Each step of a track as each of its A/B variants (`check` renders every one), with
    where its subject and template are written: the variant's own line when it gives one,
    else the step's."""
    for i, written in enumerate(steps):
        path = (*track, i)
        for j, step in variants.each(written):
            at = {}
            for key in ("subject", "template"):
                own = j is not None and getattr(written.variants[j], key) is not None
                at[key] = (*path, "variants", j, key) if own else (*path, key)
            yield step, at["subject"], at["template"]


def sender_context(sender: Sender) -> dict[str, Any]:
    """What templates see as `sender`: the identity a touch goes out from."""
    return {
        "from": sender.from_,
        "from_name": sender.name,
        "address": sender.address,
        "reply_to": sender.reply_to or sender.address,
        "postal_address": sender.postal_address,
        "name": sender.key,  # its name under senders: ("" for the file's sender:)
        "signature": sender.signature.model_dump(),
    }


# What each context variable offers, for the static check below (attrs are free columns).
_KNOWN_ATTRS: dict[str, set[str]] = {
    "lead": set(TEMPLATE_FIELDS),
    "sender": {"from", "from_name", "address", "reply_to", "postal_address", "name", "signature"},
    "campaign": {"name", "description"},
    "step": {"id", "kind", "channel", "subject", "variant"},
}
_CONTEXT_NAMES = set(_KNOWN_ATTRS) | {
    "unsubscribe_url",
    "preferences_url",
    "today",
    "personal_url",
    "qr_code",
    "salutation",
    "send_date",
    "offer_until",
    "locale",
    "language",
    "default_language",
    "vars",
}
# For messages: what templates see.
_SEEN = "lead, sender, campaign, step, vars, send_date, offer_until, locale, language, unsubscribe_url, today"
_JINJA_NAMES = {
    "loop",
    "self",
    "super",
    "caller",
    "varargs",
    "kwargs",
    "range",
    "dict",
    "lipsum",
    "cycler",
    "joiner",
    "namespace",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
}


def _static_problems(env: jinja2.Environment, templates: TemplateSet, names: set[str]) -> list[Problem]:
    """Variables a template uses on any branch (not only the ones a sample lead takes)
    that no lead can have: `lead.frist_name`, `leed.name`."""
    from jinja2 import meta, nodes

    problems: list[Problem] = []
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen or name not in templates.sources:
            continue
        seen.add(name)
        try:
            ast = env.parse(templates.sources[name], name=name, filename=str(templates.root / name))
        except (TemplateSyntaxError, RecursionError):  # RecursionError: nested deeper than the parser goes
            continue  # reported by the render check, with its line
        todo += [t for t in meta.find_referenced_templates(ast) if t]
        file = str(templates.root / name)
        assigned = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
        problems += _attr_problems(ast, file, assigned) + _name_problems(ast, file, assigned)
    return problems


def _attr_problems(ast: jinja2.nodes.Template, file: str, assigned: set[str]) -> list[Problem]:
    """`lead.frist_name`: an attribute the lead (or sender, campaign, step) does not have."""
    from jinja2 import nodes

    problems: list[Problem] = []
    for node in ast.find_all(nodes.Getattr):
        owner = node.node
        if _is_sender_signature(owner) and "sender" not in assigned and node.attr not in _SIGNATURE:
            hint = did_you_mean(node.attr, _SIGNATURE)
            problems.append(
                Problem(
                    Location(file, node.lineno, 1), f"variable sender.signature.{node.attr} that it does not have{hint}"
                )
            )
            continue
        if not isinstance(owner, nodes.Name) or owner.name not in _KNOWN_ATTRS or owner.name in assigned:
            continue  # a variable the template set itself may have any attribute
        if node.attr not in _KNOWN_ATTRS[owner.name]:
            hint = did_you_mean(node.attr, _KNOWN_ATTRS[owner.name])
            what = "that a lead does not have" if owner.name == "lead" else f"that {owner.name} does not have"
            problems.append(Problem(Location(file, node.lineno, 1), f"variable {owner.name}.{node.attr} {what}{hint}"))
    return problems


_SIGNATURE = set(Signature.model_fields)


def _is_sender_signature(node: jinja2.nodes.Expr) -> bool:
    """`sender.signature` (whose own attributes are known too: campaign/senders.py)."""
    from jinja2 import nodes

    return (
        isinstance(node, nodes.Getattr)
        and node.attr == "signature"
        and isinstance(node.node, nodes.Name)
        and node.node.name == "sender"
    )


def _name_problems(ast: jinja2.nodes.Template, file: str, assigned: set[str]) -> list[Problem]:
    """`leed.name`: a variable the template context does not have."""
    from jinja2 import nodes

    return [
        Problem(
            Location(file, node.lineno, 1),
            f"undefined variable {node.name!r} (templates see {_SEEN})",
        )
        for node in ast.find_all(nodes.Name)
        if node.ctx == "load" and node.name not in _CONTEXT_NAMES | _JINJA_NAMES | assigned
    ]


def _frames(exc: BaseException) -> list[str]:
    return [frame.filename for frame in reversed(traceback.extract_tb(exc.__traceback__))]


def _undefined_at(exc: UndefinedError, templates: TemplateSet, step: Step) -> Location:
    """Where an undefined variable was used: the innermost template file of ours in the
    traceback (a base or an include), at its line."""
    owner = next((f for f in _frames(exc) if f.startswith(str(templates.root))), str(templates.root / step.template))
    return Location(owner, _template_frame_line(exc, owner) or 1, 1)


def _missing_attr(exc: UndefinedError) -> str | None:
    """The attribute a lead without extra columns lacks (`lead.attrs` is then a plain dict)."""
    found = re.match(r"'dict object' has no attribute '(.+?)'", str(exc.message or exc))
    return found.group(1) if found else None


def _no_fallback(attr: str) -> str:
    return (
        f"lead.attrs.{attr} is not a declared field and has no fallback: a lead without a {attr!r} column "
        f"fails with render_error (declare it under fields:, or write lead.attrs.{attr} | default('...'))"
    )


def template_warnings(config: CampaignFile, templates: TemplateSet) -> list[Problem]:
    """Undeclared attributes used without a fallback: `{{ lead.attrs.phone }}` renders for
    leads with a phone column and fails, at send time, for the others (that touch alone
    fails with render_error). Not an error: the marketer may know every lead has it.
    Found by rendering each step for a lead with the declared fields only, adding each
    attribute found missing and rendering again, so that all of them are listed (on the
    branches that lead takes). For a file `check_templates` passes."""
    renderer = Renderer(config, templates)
    warnings: dict[str, Problem] = {}
    for name, campaign in config.campaigns.items():
        for stage, steps in campaign.stages.items():
            for step, subject_path, _ in _every_variant(("campaigns", name, "stages", stage), steps):
                if step.template not in templates.sources:
                    continue
                subject_at = config.location(subject_path)
                found: list[Problem] = []
                if step.subject:
                    for attr, _exc in _attrs_missing(renderer, config, campaign, step, subject=True):
                        found.append(Problem(subject_at, _no_fallback(attr)))
                for attr, exc in _attrs_missing(renderer, config, campaign, step, subject=False):
                    found.append(Problem(_undefined_at(exc, templates, step), _no_fallback(attr)))
                warnings.update((str(p), p) for p in found)
    return list(warnings.values())


@dataclass(frozen=True)
class StepLanguages:
    """Which languages a step speaks (`dripper check` lists them)."""

    campaign: str
    step: str
    default: str  # what a lead whose language it lacks gets
    covered: tuple[str, ...]  # translated: the template, and the subject when it has one


def language_coverage(
    config: CampaignFile, templates: TemplateSet, lead_languages: Mapping[str, set[str]] | None = None
) -> tuple[list[StepLanguages], list[Problem]]:
    """Each step's languages, and (given `lead_languages`: campaign -> the languages its
    leads name, from the database) a warning for each language of a lead a step has no
    translation for: that lead gets the default language's text. A campaign with no
    translation at all is left out of the list: it speaks one language."""
    from dripper.channels.registry import PARTS  # the parts import this module

    listed: list[StepLanguages] = []
    warnings: list[Problem] = []
    for name, campaign in config.campaigns.items():
        default = languages.resolve("", campaign.language, config.defaults.language)
        rows: list[tuple[Step, tuple[Any, ...], tuple[str, ...], tuple[str, ...]]] = []
        for stage, steps in campaign.stages.items():
            for i, step in enumerate(steps):  # as written: its A/B variants share its languages
                template_path = ("campaigns", name, "stages", stage, i, "template")
                bodies = tuple(languages.translations(step.template, templates.sources))
                subjects = tuple(step.subjects) if PARTS[step.channel].needs_subject and step.subject else bodies
                rows.append((step, template_path, bodies, subjects))
        spoken = {tag for _, _, bodies, subjects in rows for tag in (*bodies, *subjects)}
        wanted = {tag for tag in (lead_languages or {}).get(name, set()) if tag}
        for step, template_path, bodies, subjects in rows:
            if spoken:
                listed.append(StepLanguages(name, step.id, default, tuple(sorted(set(bodies) & set(subjects)))))
            for tag in sorted(wanted):
                if languages.candidates(tag)[-1] == languages.candidates(default)[-1]:
                    continue  # the default language is the untranslated text
                missing = [
                    what
                    for what, has in (("template", bodies), ("subject", subjects))
                    if not any(t in has for t in languages.candidates(tag))
                ]
                if missing:
                    warnings.append(
                        Problem(
                            config.location(template_path),
                            f"step {step.id!r} has no {tag} translation of its {' and '.join(missing)}: "
                            f"leads in {tag} get the {default} text",
                        )
                    )
    return listed, warnings


def _attrs_missing(
    renderer: Renderer, config: CampaignFile, campaign: Campaign, step: Step, *, subject: bool
) -> list[tuple[str, UndefinedError]]:
    """The undeclared attributes the subject (or body) needs, in the order it needs them."""
    lead = sample_lead(config, any_attrs=False)
    missing: list[tuple[str, UndefinedError]] = []
    for _ in range(50):  # a template with more undeclared columns than this has other troubles
        ctx = renderer.context(lead, campaign, step, "https://example.com/u/sample", _SAMPLE_NOW)
        try:
            if subject:
                renderer.subject(campaign, step, ctx)
            else:
                renderer.body_html(step, ctx)
            break
        except UndefinedError as exc:
            attr = _missing_attr(exc)
            if attr is None or attr in lead.attrs:
                break
            missing.append((attr, exc))
            lead = replace(lead, attrs={**lead.attrs, attr: f"sample {attr}"})
        except Exception:  # anything else is check_templates' to report
            break
    return missing


def _vars_problems(config: CampaignFile, env: jinja2.Environment, templates: TemplateSet) -> list[Problem]:
    """`vars.X` in a subject or template (or what it extends or includes) that the
    campaign using it does not define, on any branch: it can never render."""
    uses: dict[str, list[tuple[str, Location]]] = {}  # template -> (variable, where), what it includes too
    problems: list[Problem] = []
    for name, campaign in config.campaigns.items():
        defined = set(declared.campaign_vars(config, name))
        for stage, steps in campaign.stages.items():
            for step, subject_path, _ in _every_variant(("campaigns", name, "stages", stage), steps):
                found = list(_template_var_uses(env, templates, step.template, uses, set()))
                if step.subject:
                    at = config.location(subject_path)
                    with contextlib.suppress(TemplateSyntaxError):  # reported by the render check
                        found += [(var, at) for var, _line in _var_uses(env.parse(step.subject))]
                for var, where in found:
                    if var not in defined:
                        hint = did_you_mean(var, defined) or (" (no vars are defined)" if not defined else "")
                        problems.append(
                            Problem(where, f"vars.{var} is not defined for campaign {name!r}{hint}: add it under vars:")
                        )
    return problems


def _template_var_uses(
    env: jinja2.Environment,
    templates: TemplateSet,
    name: str,
    memo: dict[str, list[tuple[str, Location]]],
    visiting: set[str],
) -> list[tuple[str, Location]]:
    from jinja2 import meta

    if name in memo:
        return memo[name]
    if name in visiting or name not in templates.sources:
        return []
    visiting.add(name)
    file = str(templates.root / name)
    try:
        ast = env.parse(templates.sources[name], name=name, filename=file)
    except (TemplateSyntaxError, RecursionError):
        memo[name] = []
        return []
    found = [(var, Location(file, line, 1)) for var, line in _var_uses(ast)]
    for other in meta.find_referenced_templates(ast):
        if other:
            found += _template_var_uses(env, templates, other, memo, visiting)
    memo[name] = found
    return found


def _var_uses(ast: jinja2.nodes.Template) -> list[tuple[str, int]]:
    """(variable, line) for each `vars.X` and `vars['X']` in a parsed template."""
    from jinja2 import nodes

    out: list[tuple[str, int]] = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        owner = node.node
        if not isinstance(owner, nodes.Name) or owner.name != "vars" or owner.ctx != "load":
            continue
        if isinstance(node, nodes.Getattr):
            out.append((node.attr, node.lineno))
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            out.append((node.arg.value, node.lineno))
    return out


def _undefined(exc: UndefinedError) -> str:
    message = str(exc.message or exc)
    match = re.match(r"'(.+?)' has no attribute '(.+?)'", message)
    if match:
        owner = match.group(1)
        owner = "lead" if "LeadView" in owner else owner
        return f"variable {owner}.{match.group(2)} that a lead does not have"
    match = re.match(r"'(.+?)' is undefined", message)
    if match:
        return f"undefined variable {match.group(1)!r} (templates see {_SEEN})"
    return message


def load_checked(config: CampaignFile, root: Path) -> TemplateSet:
    templates = TemplateSet.load(root)
    problems = check_templates(config, templates)
    if problems:
        raise ConfigError(problems)
    return templates
