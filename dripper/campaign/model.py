"""campaigns.yaml -> a typed, validated model; every error located as FILE:LINE:COL.

The pydantic models below are the shape of the file. Validation collects every
problem it can find (not just the first), so one `dripper check` shows them all.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from email.utils import parseaddr
from functools import cached_property
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from dripper.campaign import conditions, salvage, timing, variants, yamlpos
from dripper.campaign import fields as declared
from dripper.campaign import senders as identities
from dripper.campaign.cadence import CadenceSpec, Quiet
from dripper.campaign.senders import Book, Identity, Signature
from dripper.campaign.sourcefile import read_utf8
from dripper.campaign.timing import Duration, Window
from dripper.campaign.tracking import Tracking, Utm
from dripper.campaign.variants import AutoWinner, Variant
from dripper.errors import ConfigError, Location, Problem
from dripper.states import Channel
from dripper.webhooks.subscriptions import WebhookSpec

FUNNEL_STAGES: tuple[str, ...] = (
    "awareness_of_need",
    "awareness_of_solutions",
    "awareness_of_suppliers",
    "supplier_research",
    "supplier_preference",
    "negotiation",
    "customer",
    "repeat_business",
    "lost_to_competitor",
)
StopKind = Literal["converted", "replied", "unsubscribed", "bounced", "complained"]
STOP_KINDS: tuple[StopKind, ...] = get_args(StopKind)
# An unsubscribe or a complaint always stops every e-mail, whatever stop_on says: the law
# (CAN-SPAM, GDPR) and the mailbox providers leave no choice.
ALWAYS_STOP: frozenset[StopKind] = frozenset({"unsubscribed", "complained", "bounced"})
STEP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
# What sort of touch a step is: reports show it, and every touch row keeps it. A file
# declares more under `kinds:`; `check` rejects any other (a typo would stay in those rows).
KINDS: tuple[str, ...] = ("new_info", "reminder", "special_offer", "follow_up")


def _duration(value: object) -> Duration:
    return value if isinstance(value, Duration) else Duration.parse(value)


DurationField = Annotated[Duration, BeforeValidator(_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, populate_by_name=True)


class SendWindowSpec(_Model):
    days: str | list[str] = "mon-sun"
    hours: str = "00:00-24:00"
    holidays: bool = Field(False, description="also skip public holidays of the lead's country")

    def window(self) -> Window:
        start, end = timing.parse_hours(self.hours)
        return Window(timing.parse_days(self.days), start, end, self.holidays)


class Sender(_Model):
    from_: str = Field(alias="from")
    reply_to: str | None = None
    postal_address: str
    # Envelope sender for bounces; each message gets its own (VERP): local+TOKEN@domain.
    bounce_address: str | None = None
    signature: Signature = Signature()  # templates: sender.signature.name, ...
    notify: str | None = None  # where replies of leads sent from it are told (senders.py)
    _key: str = PrivateAttr("")  # its name under senders:; "" for the file's `sender:`

    @property
    def key(self) -> str:
        return self._key

    # Cached: asked for several times for every message sent.
    @cached_property
    def address(self) -> str:
        return parseaddr(self.from_)[1]

    @cached_property
    def name(self) -> str:
        return parseaddr(self.from_)[0]

    @cached_property
    def domain(self) -> str:
        return self.address.rpartition("@")[2] or "localhost"

    @cached_property
    def bounces(self) -> str:
        """The bounce mailbox (default bounces@ the sender's domain)."""
        return parseaddr(self.bounce_address)[1] if self.bounce_address else f"bounces@{self.domain}"


def _language(value: object) -> object:
    from dripper.campaign import languages

    return languages.normalize(value) if isinstance(value, str) else value


# A BCP 47 tag, kept in one form (`de_at` -> de-AT); one Babel does not know is refused.
LanguageField = Annotated[str, AfterValidator(_language)]


def _subjects(value: object) -> object:
    from dripper.campaign import languages

    if not isinstance(value, dict):
        return value
    return {languages.normalize(str(k)): v for k, v in value.items()}


class Defaults(_Model):
    timezone: str = "UTC"
    language: LanguageField | None = None  # for leads that name none and campaigns without language:
    send_window: SendWindowSpec | None = None
    campaign: str | None = None  # for leads that name none; else the first campaign
    stage: str | None = None  # for leads that name none; else the campaign's first stage
    cadence: CadenceSpec = CadenceSpec()  # what `check` warns about: campaign/cadence.py


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|min|minute|h|hour|d|day)\s*$", re.IGNORECASE)
_RATE_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}


def parse_rate(text: object) -> tuple[int, int]:
    """`600/min` -> (600, 60): at most 600 messages per 60-second window."""
    match = _RATE.match(str(text))
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"bad rate {text!r}: write it like 600/min, 20000/h or 5000/day")
    return int(match.group(1)), _RATE_UNITS[match.group(2).lower()]


def _rates(value: object) -> tuple[tuple[int, int], ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(parse_rate(item) for item in items)


Rates = Annotated[tuple[tuple[int, int], ...], BeforeValidator(_rates)]


class Limits(_Model):
    """Sending limits for all workers together (counted in the database). None by default."""

    rate: Rates = ()  # e.g. ["600/min", "20000/h"]
    daily_cap: int | None = Field(None, ge=1)  # warm-up: the most e-mails in a UTC day
    per_domain: dict[str, Rates] = Field(default_factory=dict)  # recipient domain (or `default`) -> rates
    # Sender identity (its name under senders:, `sender` for the file's sender:, or
    # `default` for each one not named) -> rates: mailbox providers judge each sender.
    per_sender: dict[str, Rates] = Field(default_factory=dict)

    def scopes_for(self, domain: str, sender: str = "") -> list[tuple[str, int, int]]:
        """(counter name, limit, window seconds) that one e-mail to `domain` from the
        identity `sender` (its key; "" for the file's sender:) counts against."""
        scopes = [("all", n, window) for n, window in self.rate]
        if self.daily_cap:
            scopes.append(("all", self.daily_cap, 86400))
        domain = domain.lower()
        own = self.per_domain.get(domain)
        rates = own if own is not None else self.per_domain.get("default", ())
        scopes += [(f"domain:{domain}", n, window) for n, window in rates]
        name = sender or "sender"
        own = self.per_sender.get(name)
        rates = own if own is not None else self.per_sender.get("default", ())
        scopes += [(f"sender:{name}", n, window) for n, window in rates]
        return scopes

    @property
    def active(self) -> bool:
        return bool(self.rate or self.daily_cap or self.per_domain or self.per_sender)


class Notify(_Model):
    """Who hears about a person's reply: an address it is forwarded to, a webhook it is posted to."""

    forward_to: str | None = None
    webhook: str | None = None


class Inbound(_Model):
    """How replies and bounces act on leads."""

    notify: Notify = Notify()
    soft_bounce_limit: int = Field(3, ge=1)  # this many soft bounces within the window make a hard one
    soft_bounce_window: DurationField = Duration(days=30)
    soft_bounce_retry: DurationField = Duration(days=1)  # a soft-bounced touch goes out again after this
    auto_reply_pause: DurationField = Duration(days=7)  # an out-of-office that names no return date
    # The receiving mail servers whose Authentication-Results headers are believed (their
    # authserv-id, e.g. mx.google.com): a message matched to a lead by its From address
    # alone is applied only when one of them authenticated that address.
    trusted_authserv_ids: tuple[str, ...] = ()


class Reporting(_Model):
    """How `dripper report` counts outcomes."""

    # A reply, conversion, ... that names no touch counts for the last touch sent to the
    # lead before it, if it came within this long of it; else it is "unattributed".
    attribution_window: DurationField = Duration(days=30)
    # A/B tests: the figure variants are compared on, and the confidence a lead must
    # reach. See dripper/reports/abtest.py.
    variant_metric: variants.Metric = "replies"
    variant_confidence: float = Field(0.95, gt=0.5, lt=1)


LetterFormat = Literal["auto", "us10", "din5008"]


class PrintApi(_Model):
    """A print-and-post service that takes each letter over HTTP (see letters adapters)."""

    url: str
    token_env: str = "DRIPPER_PRINT_TOKEN"  # the environment variable holding the API token
    timeout: float = Field(30.0, gt=0)


class Letters(_Model):
    """How letters are laid out and handed to the printer."""

    # auto: US #10 window on US Letter for leads in the US, Canada and other Letter-paper
    # countries; DIN 5008 (DL window) on A4 everywhere else.
    format: LetterFormat = "auto"
    duplex: bool = False  # the printer prints both sides: each letter starts on a new sheet
    home_country: str | None = None  # no country line on domestic letters; default: the sender's
    return_address: str | None = None  # default: sender.postal_address
    adapter: str = "files"  # files (print the batch yourself) | http | an installed adapter
    http: PrintApi | None = None
    call_owner: str | None = None  # who gets call tasks when neither lead nor step names one


class Step(_Model):
    id: str
    # `subject:` as a mapping by language (`{en: …, de: …}`): the translations, and `subject`
    # the first of them (what a lead whose language has none gets, unless the campaign's
    # language has one). A plain `subject:` leaves this empty.
    subjects: Annotated[dict[str, str], BeforeValidator(_subjects)] = Field(default_factory=dict)
    owner: str | None = None  # call steps: who makes the call (else the lead's `owner` attribute)
    after: DurationField
    channel: Channel = Channel.EMAIL
    kind: str = "follow_up"
    subject: str | None = None
    template: str
    send_window: SendWindowSpec | None = None
    # Earlier ids of this step: a renamed step keeps its history (what was sent stays sent).
    renamed_from: list[str] = Field(default_factory=list)
    utm: Utm | None = None  # merged over the campaign's utm: (campaign/tracking.py)
    # A condition (campaign/conditions.py), evaluated at send time: false = skipped, reason `condition`.
    when: str | None = None
    # A/B test (dripper/campaign/variants.py): versions of subject/template, the one that won.
    variants: list[Variant] = Field(default_factory=list)
    winner: str | None = None
    auto_winner: AutoWinner | None = None
    _variant: str | None = PrivateAttr(None)  # on a step resolved to one variant (variants.resolved)

    @model_validator(mode="before")
    @classmethod
    def _subject_by_language(cls, data: Any) -> Any:
        """`subject: {en: …, de: …}`: the mapping into `subjects`, its first entry the subject."""
        mapping = data.get("subject") if isinstance(data, dict) else None
        # Only text by text: anything else (`subject: {{ x }}` unquoted, read by YAML as a
        # mapping of mappings) is left to the schema and its hint.
        if isinstance(mapping, dict) and mapping and all(isinstance(v, str) for v in mapping.values()):
            first = next(iter(mapping.values()), None)
            data = {**data, "subjects": mapping, "subject": first if isinstance(first, str) else None}
        return data

    @property
    def variant(self) -> str | None:
        """The variant this step was resolved to; None for the step as written."""
        return self._variant


class Campaign(_Model):
    description: str | None = None  # the marketer's own note: never shown to a lead
    language: LanguageField | None = None  # its leads' language when they name none (else defaults.language)
    # An import or `leads add` refuses a lead of this campaign without `consent_source`
    # (dripper/leads/consent.py).
    require_consent: bool = False
    sender: str | None = None  # a name under senders:: this campaign's default identity
    label: str | None = None  # what leads see it called (the preference page); default: from the name
    letter_format: LetterFormat | None = None  # overrides letters.format
    stop_on: list[StopKind] = Field(default_factory=lambda: list(STOP_KINDS))
    send_window: SendWindowSpec | None = None
    quiet: Quiet = Quiet()  # warnings of `check` the marketer accepts, per track
    tracking: Tracking = Tracking()  # click (and open) tracking: off unless asked (campaign/tracking.py)
    utm: Utm | None = None  # UTM parameters for every link of the campaign's e-mails
    vars: dict[str, Any] = Field(default_factory=dict)  # for its templates; wins over the file's vars
    stages: dict[str, list[Step]]

    _name: str = PrivateAttr("")
    _by_id: dict[str, tuple[str, Step]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, _context: Any) -> None:
        for stage, steps in self.stages.items():
            for step in steps:
                self._by_id.setdefault(step.id, (stage, step))

    @property
    def name(self) -> str:
        return self._name

    @property
    def public_label(self) -> str:
        """The name a lead sees: `label`, else the key made readable (`literature-follow-up`
        -> "Literature follow-up"); never `description`, which is the marketer's note."""
        return self.label or humanise(self._name)

    def track(self, stage: str) -> list[Step]:
        return self.stages.get(stage, [])

    def step(self, step_id: str) -> tuple[str, Step] | None:
        return self._by_id.get(step_id)

    def stops_on(self, kind: str) -> bool:
        return kind in ALWAYS_STOP or kind in self.stop_on


def humanise(key: str) -> str:
    """A campaign key as words: separators become spaces, the first letter a capital."""
    words = " ".join(re.split(r"[-_.\s]+", key)).strip()
    return words[:1].upper() + words[1:]


class Retention(_Model):
    """How long dripper keeps what it learns about leads (dripper/leads/retention.py):
    `events` older than this are deleted; `bodies`, the text kept from messages (an inbound
    message's sender and subject, an SMTP server's answer), is blanked after this."""

    events: DurationField = Duration(months=24)
    bodies: DurationField = Duration(months=6)


class CampaignFile(_Model):
    sender: Sender
    senders: dict[str, Identity] = Field(default_factory=dict)  # identities chosen by owner (senders.py)
    defaults: Defaults = Defaults()
    limits: Limits = Limits()
    inbound: Inbound = Inbound()
    letters: Letters = Letters()
    reporting: Reporting = Reporting()
    retention: Retention = Retention()
    extra_stages: list[str] = Field(default_factory=list)
    kinds: list[str] = Field(default_factory=list)  # step kinds beyond KINDS
    fields: dict[str, declared.FieldSpec] = Field(default_factory=dict)  # declared lead fields (fields.py)
    vars: dict[str, Any] = Field(default_factory=dict)  # campaign variables for the templates: vars.NAME
    campaigns: dict[str, Campaign]
    webhooks: list[WebhookSpec] = Field(default_factory=list)  # subscriptions (dripper/webhooks/subscriptions.py)

    _path: FsPath = PrivateAttr(FsPath("campaigns.yaml"))
    _positions: yamlpos.Positioned | None = PrivateAttr(None)
    _stages: tuple[str, ...] | None = PrivateAttr(None)
    _book: Book | None = PrivateAttr(None)

    @property
    def path(self) -> FsPath:
        return self._path

    @property
    def book(self) -> Book:
        """The sender identities, resolved (built once: asked for every message)."""
        if self._book is None:
            chosen = {name: c.sender for name, c in self.campaigns.items()}
            self._book = Book(self.sender, self.senders, chosen)
        return self._book

    def sender_for(self, campaign: str, owner: str) -> Sender:
        """The identity a touch of `campaign` to a lead with this owner goes out from."""
        return self.book.choose(campaign, owner)

    @property
    def stages(self) -> tuple[str, ...]:
        if self._stages is None:  # asked for every lead imported; the model does not change
            self._stages = FUNNEL_STAGES + tuple(s for s in self.extra_stages if s not in FUNNEL_STAGES)
        return self._stages

    def campaign(self, name: str) -> Campaign:
        return self.campaigns[name]

    @property
    def default_campaign(self) -> str:
        return self.defaults.campaign or next(iter(self.campaigns))

    def default_stage(self, campaign: str) -> str:
        if self.defaults.stage:
            return self.defaults.stage
        return next(iter(self.campaigns[campaign].stages), FUNNEL_STAGES[0])

    def window_for(self, campaign: Campaign, step: Step) -> Window:
        spec = step.send_window or campaign.send_window or self.defaults.send_window
        return spec.window() if spec else Window()

    def location(self, path: yamlpos.Path, *, key: bool = False) -> Location:
        if self._positions is None:
            return Location(str(self._path), 1, 1)
        return self._positions.at(path, key=key)

    def schedule_definition(self, name: str) -> dict[str, Any]:
        """Everything in a campaign that decides *when* touches are due, as JSON-ready data:
        stored with each applied version (campaign_versions.definition), so `dripper diff`
        can tell what an edit changes. Stages and steps in file order; windows and
        durations normalized, so rewriting `mon-fri` as a list changes nothing."""
        campaign = self.campaigns[name]
        return {
            "defaults": {"timezone": self.defaults.timezone, "send_window": _window_data(self.defaults.send_window)},
            "stop_on": sorted(campaign.stop_on),
            "send_window": _window_data(campaign.send_window),
            "stages": {
                stage: [
                    {
                        "id": step.id,
                        "after": str(step.after),
                        "channel": str(step.channel),
                        "kind": step.kind,
                        "send_window": _window_data(step.send_window),
                        "renamed_from": list(step.renamed_from),
                        # kept for `dripper diff`, left out of the fingerprint: no re-planning
                        **({"when": step.when} if step.when is not None else {}),
                    }
                    for step in steps
                ]
                for stage, steps in campaign.stages.items()
            },
        }

    def schedule_fingerprint(self, name: str) -> str:
        """Hash of `schedule_definition`: a change makes the planner re-plan pending
        touches; wording changes do not. One hashes the other, so they never disagree.
        Conditions (`when:`) are left out: they are evaluated at send time, so an edit of
        one changes no due time and needs no re-planning."""
        return definition_fingerprint(timing_only(self.schedule_definition(name)))

    def legacy_fingerprint(self, name: str) -> str:
        """The fingerprint versions before migration 0008 stored (without a definition):
        a database upgraded with an unchanged campaigns.yaml adopts the new one without
        re-planning every lead (see `planner.reconcile`)."""
        campaign = self.campaigns[name]
        shape = {
            "tz": self.defaults.timezone,
            "stop_on": sorted(campaign.stop_on),
            "tracks": {
                stage: [
                    [
                        step.id,
                        str(step.after),
                        str(step.channel),
                        repr(self.window_for(campaign, step)),
                        step.renamed_from,
                    ]
                    for step in steps
                ]
                for stage, steps in campaign.stages.items()
            },
        }
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]

    def with_applied(self, name: str, definition: Mapping[str, Any]) -> CampaignFile:
        """This file with campaign `name` (and the defaults) as a stored definition has
        them: what the planner used when that version was applied. Steps have no
        templates or subjects: only their timing is known."""
        stored = definition["defaults"]
        window = _window_spec(stored["send_window"])
        defaults = self.defaults.model_copy(update={"timezone": stored["timezone"], "send_window": window})
        campaign = campaign_from_definition(definition)
        campaign._name = name
        rebuilt = self.model_copy(update={"defaults": defaults, "campaigns": {**self.campaigns, name: campaign}})
        rebuilt._book = None
        return rebuilt


def step_conditions(definition: Mapping[str, Any] | None) -> dict[str, str]:
    """step id -> its `when:`, of a stored or current schedule definition."""
    if definition is None:
        return {}
    return {s["id"]: s["when"] for steps in definition["stages"].values() for s in steps if s.get("when") is not None}


def timing_only(definition: Mapping[str, Any]) -> dict[str, Any]:
    """The definition without the steps' conditions: what decides when touches are due."""
    return {
        **definition,
        "stages": {
            stage: [{k: v for k, v in step.items() if k != "when"} for step in steps]
            for stage, steps in definition["stages"].items()
        },
    }


def definition_fingerprint(definition: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]


def _window_data(spec: SendWindowSpec | None) -> dict[str, Any] | None:
    """A send window as plain data, normalized (the days it opens, its hours)."""
    if spec is None:
        return None
    window = spec.window()
    end = window.end.strftime("%H:%M") if window.end is not None else "24:00"
    return {
        "days": [timing.DAY_NAMES[d] for d in sorted(window.days)],
        "hours": f"{window.start.strftime('%H:%M')}-{end}",
        "holidays": window.skip_holidays,
    }


def _window_spec(data: Mapping[str, Any] | None) -> SendWindowSpec | None:
    return (
        None
        if data is None
        else SendWindowSpec(days=list(data["days"]), hours=data["hours"], holidays=data["holidays"])
    )


def campaign_from_definition(definition: Mapping[str, Any]) -> Campaign:
    """A Campaign model from `schedule_definition` data (steps without templates)."""
    return Campaign(
        stop_on=list(definition["stop_on"]),
        send_window=_window_spec(definition["send_window"]),
        stages={
            stage: [
                Step(
                    id=s["id"],
                    after=s["after"],
                    channel=s["channel"],
                    kind=s["kind"],
                    template="",
                    send_window=_window_spec(s["send_window"]),
                    renamed_from=list(s["renamed_from"]),
                    when=s.get("when"),
                )
                for s in steps
            ]
            for stage, steps in definition["stages"].items()
        },
    )


# --- validation -------------------------------------------------------------------------

_WINDOW_KEYS = set(SendWindowSpec.model_fields)


def _allowed_keys(path: tuple[Any, ...]) -> set[str] | None:
    """The keys allowed in the mapping at `path`, for "did you mean" hints."""

    def keys(model: type[BaseModel]) -> set[str]:
        return {f.alias or name for name, f in model.model_fields.items()}

    n = len(path)
    if n == 0:
        return keys(CampaignFile)
    if path == ("sender",):
        return keys(Sender)
    if n == 2 and path[0] == "senders":
        return keys(Identity)
    if (n == 3 and path[0] == "senders" and path[2] == "signature") or path == ("sender", "signature"):
        return keys(Signature)
    if path == ("defaults",):
        return keys(Defaults)
    if path == ("limits",):
        return keys(Limits)
    if path == ("inbound",):
        return keys(Inbound)
    if path == ("inbound", "notify"):
        return keys(Notify)
    if path == ("letters",):
        return keys(Letters)
    if path == ("letters", "http"):
        return keys(PrintApi)
    if path == ("reporting",):
        return keys(Reporting)
    if n == 2 and path[0] == "webhooks":
        return keys(WebhookSpec)
    if path[-1] == "send_window":
        return _WINDOW_KEYS
    if path == ("defaults", "cadence"):
        return keys(CadenceSpec)
    if n == 3 and path[0] == "campaigns" and path[2] == "quiet":
        return keys(Quiet)
    if n == 3 and path[0] == "campaigns" and path[2] == "tracking":
        return keys(Tracking)
    if path and path[-1] == "utm":
        return keys(Utm)
    if n == 2 and path[0] == "fields":
        return keys(declared.FieldSpec)
    if n == 2 and path[0] == "campaigns":
        return keys(Campaign)
    if n == 5 and path[0] == "campaigns" and path[2] == "stages":
        return keys(Step)
    if n == 7 and path[0] == "campaigns" and path[5] == "variants":
        return keys(Variant)
    if n == 6 and path[0] == "campaigns" and path[5] == "auto_winner":
        return keys(AutoWinner)
    return None


def did_you_mean(word: str, choices: set[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _problems_from(exc: ValidationError, pos: yamlpos.Positioned) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            allowed = _allowed_keys(loc[:-1]) or set()
            problems.append(Problem(pos.at(loc, key=True), f"unknown key {key!r}{did_you_mean(key, allowed)}"))
        elif kind == "missing":
            problems.append(Problem(pos.at(loc[:-1]), f"missing required key {loc[-1]!r}"))
        else:
            message = re.sub(r"^(Value error|Assertion failed), ", "", error["msg"])
            where = next((str(p) for p in reversed(loc) if isinstance(p, str)), "value")
            problems.append(Problem(pos.at(loc), f"{where}: {message}"))
    return problems


def _structure_problems(data: dict[str, Any], pos: yamlpos.Positioned) -> list[Problem]:
    """Stage names and step ids, read from the raw data so they are reported even when
    other parts of the file do not validate yet."""
    problems: list[Problem] = []
    known = _known_stages(data)
    campaigns = data.get("campaigns")
    if not isinstance(campaigns, dict):
        return problems
    if not campaigns:
        problems.append(Problem(pos.at(("campaigns",)), "no campaigns defined"))
    for name, campaign in campaigns.items():
        stages = campaign.get("stages") if isinstance(campaign, dict) else None
        if not isinstance(stages, dict):
            continue
        base = ("campaigns", name)
        seen: dict[str, Location] = {}
        for stage, steps in stages.items():
            if stage not in known:
                problems.append(
                    Problem(
                        pos.at((*base, "stages", stage), key=True),
                        f"unknown funnel stage {stage!r}{did_you_mean(stage, known)}"
                        " (declare extra stages under extra_stages:)",
                    )
                )
            for i, step in enumerate(steps if isinstance(steps, list) else []):
                step_id = step.get("id") if isinstance(step, dict) else None
                if not isinstance(step_id, str):
                    continue
                where = pos.at((*base, "stages", stage, i, "id"))
                if not STEP_ID.match(step_id):
                    problems.append(Problem(where, f"bad step id {step_id!r}: use letters, digits, '-', '_' or '.'"))
                if step_id in seen:
                    problems.append(
                        Problem(
                            where,
                            f"duplicate step id {step_id!r} in campaign {name!r} "
                            f"(first used at line {seen[step_id].line})",
                        )
                    )
                else:
                    seen[step_id] = where
    return problems


def _known_stages(data: dict[str, Any]) -> set[str]:
    extra = data.get("extra_stages")
    return set(FUNNEL_STAGES) | ({str(s) for s in extra} if isinstance(extra, list) else set())


def _raw_steps(data: dict[str, Any]) -> Iterator[tuple[str, yamlpos.Path, dict[str, Any]]]:
    """(campaign, path, step) for every step written as a mapping, valid or not."""
    campaigns = data.get("campaigns")
    for name, campaign in campaigns.items() if isinstance(campaigns, dict) else ():
        stages = campaign.get("stages") if isinstance(campaign, dict) else None
        for stage, steps in stages.items() if isinstance(stages, dict) else ():
            for i, step in enumerate(steps if isinstance(steps, list) else []):
                if isinstance(step, dict):
                    yield name, ("campaigns", name, "stages", stage, i), step


def _step_problems(data: dict[str, Any], pos: yamlpos.Positioned) -> list[Problem]:
    """What a step says that nothing would read: an unknown kind, a subject on a letter or
    a call. Read from the raw data, so a step broken elsewhere is still checked."""
    problems: list[Problem] = []
    declared = data.get("kinds")
    kinds = set(KINDS) | ({str(k) for k in declared} if isinstance(declared, list) else set())
    for _, path, step in _raw_steps(data):
        label = f"step {step['id']!r}" if isinstance(step.get("id"), str) else "this step"
        kind = step.get("kind")
        if isinstance(kind, str) and kind not in kinds:
            problems.append(
                Problem(
                    pos.at((*path, "kind")),
                    f"unknown kind {kind!r}{did_you_mean(kind, kinds)}: use one of {', '.join(sorted(kinds))}"
                    " (declare more under kinds:)",
                )
            )
        channel = step.get("channel")
        if "subject" in step and isinstance(channel, str) and channel in _NO_SUBJECT:
            problems.append(Problem(pos.at((*path, "subject"), key=True), f"{label}: {_NO_SUBJECT[channel]}"))
    return problems


# Channels whose touches have no subject line: `subject:` on such a step is read by nothing.
_NO_SUBJECT = {
    Channel.LETTER.value: "a letter has no subject, so subject: would be ignored; remove it "
    "(a reference line above the greeting goes in the template's {% block subject_line %})",
    Channel.CALL.value: "a call has no subject, so subject: would be ignored; remove it "
    "(what to say goes in the call's template)",
}


def _value_problems(data: dict[str, Any], pos: yamlpos.Positioned) -> list[Problem]:
    """The time zone and every send window's days and hours, from the raw data: reported
    with the rest even when other parts of the file do not validate. A value of the
    wrong type is left to the schema, which says so."""
    problems: list[Problem] = []
    defaults = data.get("defaults")
    windows: list[tuple[yamlpos.Path, object]] = []
    if isinstance(defaults, dict):
        zone = defaults.get("timezone")
        if isinstance(zone, str):
            try:
                timing.zone(zone)
            except ValueError as exc:
                problems.append(Problem(pos.at(("defaults", "timezone")), str(exc)))
        windows.append((("defaults", "send_window"), defaults.get("send_window")))
    campaigns = data.get("campaigns")
    for name, campaign in campaigns.items() if isinstance(campaigns, dict) else ():
        if isinstance(campaign, dict):
            windows.append((("campaigns", name, "send_window"), campaign.get("send_window")))
    windows += [((*path, "send_window"), step.get("send_window")) for _, path, step in _raw_steps(data)]
    for path, spec in windows:
        if not isinstance(spec, dict):
            continue
        days, hours = spec.get("days"), spec.get("hours")
        checks: list[tuple[str, object, Callable[[object], object]]] = []
        if isinstance(days, str) or (isinstance(days, list) and all(isinstance(d, str) for d in days)):
            checks.append(("days", days, timing.parse_days))
        if isinstance(hours, str):
            checks.append(("hours", hours, timing.parse_hours))
        for field, value, parse_value in checks:
            try:
                parse_value(value)
            except ValueError as exc:
                problems.append(Problem(pos.at((*path, field)), str(exc)))
    return problems


def _semantic_problems(model: CampaignFile, pos: yamlpos.Positioned) -> list[Problem]:
    """Names that refer to others, and what each channel needs. The names come from the
    raw data: the model may be only the sound part of the file (see `salvage`)."""
    from dripper.channels.registry import PARTS  # the parts import this module

    problems: list[Problem] = []
    data = pos.data if isinstance(pos.data, dict) else {}
    known = _known_stages(data)
    written = data.get("campaigns")
    names = set(written) if isinstance(written, dict) else set(model.campaigns)
    ids = {
        name: {str(s["id"]) for n, _, s in _raw_steps(data) if n == name and isinstance(s.get("id"), str)}
        for name in names
    }
    if model.defaults.campaign and model.defaults.campaign not in names:
        problems.append(
            Problem(
                pos.at(("defaults", "campaign")),
                f"unknown campaign {model.defaults.campaign!r}{did_you_mean(model.defaults.campaign, names)}",
            )
        )
    if model.defaults.stage and model.defaults.stage not in known:
        problems.append(
            Problem(
                pos.at(("defaults", "stage")),
                f"unknown funnel stage {model.defaults.stage!r}{did_you_mean(model.defaults.stage, known)}",
            )
        )
    for name, campaign in model.campaigns.items():
        base = ("campaigns", name)
        for stage, steps in campaign.stages.items():
            for i, step in enumerate(steps):
                spath = (*base, "stages", stage, i)
                for j, old in enumerate(step.renamed_from):
                    if old in ids.get(name, campaign._by_id):
                        problems.append(
                            Problem(
                                pos.at((*spath, "renamed_from", j)),
                                f"renamed_from {old!r} is still the id of a step in campaign {name!r}",
                            )
                        )
                every = bool(step.variants) and all(v.subject for v in step.variants)  # each A/B variant its own
                if PARTS[step.channel].needs_subject and not step.subject and not every:
                    problems.append(Problem(pos.at(spath), f"step {step.id!r}: an {step.channel} step needs a subject"))
    problems += _letter_problems(model.letters, pos)
    problems += declared.problems(model, pos)
    problems += variants.problems(model, pos)
    problems += identities.problems(model, pos)
    return problems


def _letter_problems(letters: Letters, pos: yamlpos.Positioned) -> list[Problem]:
    from dripper.channels.letters.printing import adapter_names
    from dripper.leads import postal

    problems = []
    if letters.home_country and postal.country_code(letters.home_country) is None:
        problems.append(Problem(pos.at(("letters", "home_country")), f"unknown country {letters.home_country!r}"))
    names = adapter_names()
    if letters.adapter not in names:
        problems.append(
            Problem(
                pos.at(("letters", "adapter")),
                f"unknown print adapter {letters.adapter!r}"
                f"{did_you_mean(letters.adapter, names)} (known: {', '.join(sorted(names))})",
            )
        )
    elif letters.adapter == "http" and letters.http is None:
        problems.append(Problem(pos.at(("letters", "adapter")), "adapter http needs letters.http.url"))
    return problems


# --- one pass: every problem, and the sound part of the file -------------------------------


def parse_all(text: str, file: str) -> tuple[CampaignFile | None, list[Problem]]:
    """Every problem in campaigns.yaml text, in one pass, and the model of its sound part
    (None when nothing can be read). A YAML syntax error comes alone: nothing after it can
    be read. Otherwise the schema, names, time zones, windows and steps are all checked,
    steps the schema rejects left out of the model (and so of the template check)."""
    try:
        pos = yamlpos.load_all(text, file)
    except ConfigError as exc:
        return None, exc.problems
    if not isinstance(pos.data, dict):
        return None, [Problem(pos.at(()), "campaigns.yaml must be a mapping with sender: and campaigns:")]
    problems = pos.problems + _structure_problems(pos.data, pos) + _value_problems(pos.data, pos)
    problems += _step_problems(pos.data, pos)
    model: CampaignFile | None = None
    try:
        model, used = CampaignFile.model_validate(pos.data), pos
    except ValidationError as exc:
        problems += _problems_from(exc, pos)
        salvaged = salvage.salvage(pos, exc, CampaignFile.model_validate)
        if salvaged is not None:
            model, used = salvaged
    if model is not None:
        problems += _semantic_problems(model, used)
        model._path = FsPath(file)
        model._positions = used
        for name, campaign in model.campaigns.items():
            campaign._name = name
        problems += conditions.problems(model, used, text)
    # A value the YAML reader could not read is None to the schema: said once, by the reader.
    unreadable = {p.location for p in pos.problems}
    problems = pos.problems + [p for p in problems[len(pos.problems) :] if p.location not in unreadable]
    return model, list(dict.fromkeys(problems))


def parse(text: str, file: str) -> CampaignFile:
    """Validate campaigns.yaml text; raise ConfigError with every problem found."""
    model, problems = parse_all(text, file)
    if problems or model is None:
        raise ConfigError(problems)
    return model


def read(path: FsPath) -> tuple[CampaignFile | None, list[Problem]]:
    """`parse_all` of the file at `path`."""
    try:
        text = read_utf8(path)
    except FileNotFoundError:
        return None, [Problem(Location(str(path), 1, 1), "file not found (set DRIPPER_CAMPAIGNS or --campaigns)")]
    except ConfigError as exc:
        return None, exc.problems
    return parse_all(text, str(path))


def load(path: FsPath) -> CampaignFile:
    model, problems = read(path)
    if problems or model is None:
        raise ConfigError(problems)
    return model


__all__ = ["FUNNEL_STAGES", "STOP_KINDS", "Campaign", "CampaignFile", "Limits", "Sender", "Step", "load", "parse"]
