"""Step conditions: `when:` on a step, a small expression over the lead and its past.

    - id: case-study-de
      after: 2w
      when: lead.language.startswith('de')

The expression is Jinja2's expression language, compiled by its *sandboxed* environment
(`SandboxedEnvironment.compile_expression`), never Python's `eval`: it can read what it
is given (`lead`, `vars` and the functions below) and call nothing else, reach no
underscore attribute and no module. It is compiled once per text (cached).

When it is evaluated: at send time, by the tick, for the touch that fell due (see
`dripper/sending/checks.py`), so a lead whose data changed since the touch was planned
is judged on what it is now. False: the touch is `skipped`, reason `condition`, and the
track goes on. An edit of `when:` therefore needs no re-planning: pending touches are
judged by the new text when they fall due; touches already decided stay as they were.

What an expression sees:
  lead        the lead: email, first_name, last_name, company, stage, campaign, timezone,
              the postal columns (country, city, …), language, owner, full_name, and
              attrs (its extra CSV columns, declared fields' defaults filled in)
  vars        the campaign's variables (the file's, the campaign's own winning)
  replied()   the lead has replied (an event `replied`)
  clicked(STEP)            the lead clicked a link in that step's message (no STEP: any)
  call_outcome(STEP)       the latest outcome recorded for that call step ('' if none;
                           no STEP: of any call), e.g. 'call_back', 'not_interested'
  was_in_stage(STAGE)      the lead is, or ever was, in that funnel stage

A missing attribute is undefined: it equals nothing and counts as false, so
`lead.attrs.competitor == 'Globex'` is simply false for a lead without the column; an
expression that needs its value (`lead.attrs.employees | int > 50`) is false as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from jinja2 import TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.parser import Parser
from jinja2.sandbox import SandboxedEnvironment

from dripper.errors import Location, Problem

if TYPE_CHECKING:
    from dripper.campaign import yamlpos
    from dripper.campaign.model import Campaign, CampaignFile
    from dripper.leads.records import Lead

_N = TypeVar("_N", bound=nodes.Node)


class _ConditionEnvironment(SandboxedEnvironment):
    """The sandbox, and no way to make a huge value: `'x' * 10**9` or `10**10**10` would
    hang the tick or exhaust its memory, so `**` and `*` on text or lists are refused."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" or any(isinstance(v, str | list | tuple) for v in (left, right)):
            raise SecurityError(f"{operator} is not allowed here in a condition")
        return super().call_binop(context, operator, left, right)


# One environment for every condition: sandboxed, lenient undefined (a missing attribute is
# false, not an error), no autoescape (nothing is rendered to HTML), and none of Jinja2's
# global functions (range, lipsum, …): a condition sees only what `Subject.namespace` gives.
_ENV = _ConditionEnvironment(autoescape=False)
_ENV.globals.clear()

FUNCTIONS = ("replied", "clicked", "call_outcome", "was_in_stage")
NAMES = ("lead", "vars", *FUNCTIONS)
_JINJA_CONSTANTS = {"true", "false", "none", "True", "False", "None"}
# What `lead.X` may name in a condition.
LEAD_NAMES = (
    "email",
    "first_name",
    "last_name",
    "full_name",
    "company",
    "stage",
    "campaign",
    "timezone",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "language",
    "owner",
    "attrs",
)
# The functions that take a step id, and the channel that step must have (None: any).
_STEP_FUNCTIONS = {"clicked": None, "call_outcome": "call"}


class ConditionError(ValueError):
    """A condition could not be evaluated for this lead (e.g. text compared with a number)."""


@dataclass(frozen=True)
class ConditionLead:
    """The lead as a condition sees it: its columns on one line (`language` BCP 47,
    `owner` the sales owner: columns since migration 0013), attrs with declared defaults."""

    email: str
    first_name: str
    last_name: str
    full_name: str
    company: str
    stage: str
    campaign: str
    timezone: str
    address_line1: str
    address_line2: str
    city: str
    region: str
    postal_code: str
    country: str
    language: str
    owner: str
    attrs: Mapping[str, str]

    @classmethod
    def of(cls, lead: Lead, default_tz: str, defaults: Mapping[str, str] | None = None) -> ConditionLead:
        seen = lead.for_templates(default_tz)
        attrs = {**(defaults or {}), **seen.attrs}
        return cls(
            email=seen.email,
            first_name=seen.first_name,
            last_name=seen.last_name,
            full_name=seen.full_name,
            company=seen.company,
            stage=seen.stage,
            campaign=seen.campaign,
            timezone=seen.timezone or default_tz,
            address_line1=seen.address_line1,
            address_line2=seen.address_line2,
            city=seen.city,
            region=seen.region,
            postal_code=seen.postal_code,
            country=seen.country,
            language=seen.language,
            owner=seen.owner,
            attrs=attrs,
        )


# The event kinds a condition reads (the tick loads only these, only for leads that need them).
HISTORY_KINDS = ("replied", "clicked", "called", "stage")


@dataclass(frozen=True)
class History:
    """What a condition may ask about a lead's past, read from its events."""

    replied: bool = False
    clicked: frozenset[str] = frozenset()  # step ids of the messages whose links it followed
    clicked_any: bool = False
    calls: tuple[tuple[str, str], ...] = ()  # (step id or '', outcome), oldest first
    stages: frozenset[str] = field(default_factory=frozenset)  # stages it entered (moves recorded)

    @classmethod
    def of(cls, events: Iterable[Mapping[str, Any]]) -> History:
        """From the lead's event rows (kind, detail), in the order they happened."""
        replied, clicked_any = False, False
        clicked: set[str] = set()
        calls: list[tuple[str, str]] = []
        stages: set[str] = set()
        for event in events:
            kind, detail = event["kind"], event.get("detail") or {}
            detail = detail if isinstance(detail, Mapping) else {}
            if kind == "replied":
                replied = True
            elif kind == "clicked":
                clicked_any = True
                if detail.get("step"):
                    clicked.add(str(detail["step"]))
            elif kind == "called" and detail.get("outcome"):
                calls.append((str(detail.get("step") or ""), str(detail["outcome"])))
            elif kind == "stage":
                stages.update(str(detail[k]) for k in ("from", "to", "stage") if detail.get(k))
        return cls(replied, frozenset(clicked), clicked_any, tuple(calls), frozenset(stages))


EMPTY = History()


@dataclass(frozen=True)
class Subject:
    """One lead as a condition is evaluated against."""

    lead: ConditionLead
    history: History
    vars: Any  # TemplateVars
    replied_at_set: bool = False

    def namespace(self) -> dict[str, Any]:
        history = self.history
        lead = self.lead

        def replied() -> bool:
            return history.replied or self.replied_at_set

        def clicked(step: str | None = None) -> bool:
            return history.clicked_any if step is None else str(step) in history.clicked

        def call_outcome(step: str | None = None) -> str:
            outcomes = [o for s, o in history.calls if step is None or s == str(step)]
            return outcomes[-1] if outcomes else ""

        def was_in_stage(stage: str) -> bool:
            return stage == lead.stage or stage in history.stages

        return {
            "lead": lead,
            "vars": self.vars,
            "replied": replied,
            "clicked": clicked,
            "call_outcome": call_outcome,
            "was_in_stage": was_in_stage,
        }


@lru_cache(maxsize=1024)
def compiled(text: str) -> Callable[..., Any]:
    """The condition compiled once per text (the tick evaluates it for every touch)."""
    return _ENV.compile_expression(text, undefined_to_none=False)


def holds(text: str, subject: Subject) -> bool:
    """Whether the condition holds for `subject`; ConditionError when it cannot be evaluated."""
    try:
        return bool(compiled(text)(**subject.namespace()))
    except UndefinedError:  # a value the lead does not have, used (`| int`, `.lower()`): false, as missing
        return False
    except (TemplateSyntaxError, SecurityError, TypeError, ValueError, ArithmeticError) as exc:
        raise ConditionError(f"when: {text!r}: {exc}") from None


def subject_for(config: CampaignFile, campaign: str, lead: Lead, history: History = EMPTY) -> Subject:
    """The lead as the conditions of `campaign` see it."""
    from dripper.campaign.fields import TemplateVars, campaign_vars, defaults_of

    view = ConditionLead.of(lead, config.defaults.timezone, defaults_of(config.fields))
    return Subject(view, history, TemplateVars(campaign_vars(config, campaign)), lead.replied_at is not None)


def uses_history(text: str) -> bool:
    """Whether the condition calls a function that reads the lead's events (else none are loaded)."""
    return any(name in text for name in FUNCTIONS)


# --- check: every name an expression uses, located -------------------------------------------


def problems(config: CampaignFile, pos: yamlpos.Positioned, text: str) -> list[Problem]:
    """Every problem with the `when:` of every step: syntax, unknown names (with a
    'did you mean'), step ids and call outcomes that do not exist. Located at the place
    in the expression when the expression is written on one line."""
    lines = text.splitlines()
    out: list[Problem] = []
    for name, campaign in config.campaigns.items():
        for stage, steps in campaign.stages.items():
            for i, step in enumerate(steps):
                if step.when is None:
                    continue
                where = pos.at(("campaigns", name, "stages", stage, i, "when"))
                out += [
                    Problem(_locate(where, lines, step.when, hint), message)
                    for hint, message in expression_problems(step.when, config, campaign)
                ]
    return out


def expression_problems(text: str, config: CampaignFile, campaign: Campaign) -> list[tuple[str | None, str]]:
    """(the word to point at, message) for each problem in one expression."""
    if not text.strip():
        return [(None, "when: is empty (remove it, or write a condition such as lead.country == 'US')")]
    try:
        parser = Parser(_ENV, text, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            token = parser.stream.current
            return [(None, f"when: unexpected {token.value!r} after a whole expression (a missing and/or?)")]
    except TemplateSyntaxError as exc:
        return [(None, f"when: syntax error: {exc.message}")]
    try:
        compiled(text)  # what only compiling finds: an unknown filter (`| integer`)
    except TemplateSyntaxError as exc:
        return [(None, f"when: {exc.message}")]
    return _name_problems(expr, config, campaign)


def _name_problems(expr: nodes.Expr, config: CampaignFile, campaign: Campaign) -> list[tuple[str | None, str]]:
    from dripper.campaign.fields import campaign_vars
    from dripper.campaign.model import did_you_mean

    found: list[tuple[str | None, str]] = []
    variables = set(campaign_vars(config, campaign.name))
    for name_node in _all(expr, nodes.Name):
        node_name = name_node.name
        if node_name not in NAMES and node_name not in _JINJA_CONSTANTS:
            found.append(
                (
                    node_name,
                    f"when: unknown name {node_name!r}{did_you_mean(node_name, NAMES)}"
                    f" (a condition sees {', '.join(NAMES)})",
                )
            )
    for node in _all(expr, nodes.Getattr):
        owner = node.node
        if isinstance(owner, nodes.Name) and owner.name == "lead" and node.attr not in LEAD_NAMES:
            found.append(
                (
                    node.attr,
                    f"when: a lead has no {node.attr!r}{did_you_mean(node.attr, LEAD_NAMES)}"
                    "; extra CSV columns are lead.attrs.NAME",
                )
            )
        elif isinstance(owner, nodes.Name) and owner.name == "vars" and node.attr not in variables:
            known = ", ".join(sorted(variables)) or "none"
            found.append(
                (node.attr, f"when: no variable {node.attr!r}{did_you_mean(node.attr, variables)} (vars: {known})")
            )
        elif _is_lead_attrs(owner) and node.attr not in config.fields:
            hint = did_you_mean(node.attr, set(config.fields))
            if hint:  # an undeclared column is fine; one a letter away from a declared field is a typo
                found.append((node.attr, f"when: lead.attrs.{node.attr} is not a declared field{hint}"))
    for call in _all(expr, nodes.Call):
        found += _call_problems(call, config, campaign)
    return found + _outcome_problems(expr)


def _all(expr: nodes.Expr, kind: type[_N]) -> list[_N]:
    """The nodes of `kind` in the expression, itself included (`find_all` skips the top)."""
    top = [expr] if isinstance(expr, kind) else []
    return [*top, *expr.find_all(kind)]


def _is_lead_attrs(node: nodes.Node) -> bool:
    return (
        isinstance(node, nodes.Getattr)
        and node.attr == "attrs"
        and isinstance(node.node, nodes.Name)
        and node.node.name == "lead"
    )


def _call_problems(call: nodes.Call, config: CampaignFile, campaign: Campaign) -> list[tuple[str | None, str]]:
    from dripper.campaign.model import did_you_mean

    if not isinstance(call.node, nodes.Name) or call.node.name not in FUNCTIONS:
        return []
    name = call.node.name
    args = [a.value for a in call.args if isinstance(a, nodes.Const)]
    if len(call.args) != len(args) or call.kwargs or len(args) > 1:
        return [(name, f"when: {name}() takes at most one quoted argument, e.g. {name}({_example(name)})")]
    if name == "was_in_stage":
        if not args:
            return [(name, "when: was_in_stage() needs a stage, e.g. was_in_stage('negotiation')")]
        stage = str(args[0])
        if stage not in config.stages:
            return [(stage, f"when: unknown funnel stage {stage!r}{did_you_mean(stage, config.stages)}")]
        return []
    if name in _STEP_FUNCTIONS and args:
        step_id = str(args[0])
        found = campaign.step(step_id)
        if found is None:
            ids = {s.id for steps in campaign.stages.values() for s in steps}
            return [(step_id, f"when: no step {step_id!r} in campaign {campaign.name!r}{did_you_mean(step_id, ids)}")]
        channel = _STEP_FUNCTIONS[name]
        if channel is not None and found[1].channel != channel:
            return [(step_id, f"when: step {step_id!r} is not a call step ({name}() reads a call's outcome)")]
    return []


def _example(name: str) -> str:
    return {"was_in_stage": "'negotiation'", "call_outcome": "'call-1'", "clicked": "'reminder-1'"}.get(name, "")


def _outcome_problems(expr: nodes.Expr) -> list[tuple[str | None, str]]:
    """`call_outcome(…) == 'call_bak'`: an outcome no call can have."""
    from dripper.campaign.model import did_you_mean
    from dripper.store.queries.callrows import OUTCOMES

    found: list[tuple[str | None, str]] = []
    for compare in _all(expr, nodes.Compare):
        operands = [compare.expr, *(op.expr for op in compare.ops)]
        if not any(_is_outcome_call(o) for o in operands):
            continue
        for operand in operands:
            for const in _literals(operand):
                if const not in OUTCOMES:
                    found.append(
                        (
                            const,
                            f"when: no call outcome {const!r}{did_you_mean(const, OUTCOMES)}"
                            f" (outcomes: {', '.join(OUTCOMES)})",
                        )
                    )
    return found


def _is_outcome_call(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "call_outcome"


def _literals(node: nodes.Node) -> list[str]:
    if isinstance(node, nodes.Const) and isinstance(node.value, str) and node.value:
        return [node.value]
    if isinstance(node, nodes.List | nodes.Tuple):
        return [v for item in node.items for v in _literals(item)]
    return []


def _locate(where: Location, lines: list[str], expression: str, word: str | None) -> Location:
    """The place of `word` within the expression, when the expression sits on the line
    where its value starts (quoted or not); else the start of the value."""
    if word is None or not (0 < where.line <= len(lines)):
        return where
    line = lines[where.line - 1]
    start = where.column - 1
    written = line[start:]
    offset = 1 if written[:1] in ("'", '"') else 0
    if not written[offset:].startswith(expression.split("\n", 1)[0][:20]):
        return where
    match = re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", expression) or re.search(re.escape(word), expression)
    if match is None or "\n" in expression[: match.start()]:
        return where
    return Location(where.file, where.line, where.column + offset + match.start())


__all__ = [
    "EMPTY",
    "FUNCTIONS",
    "HISTORY_KINDS",
    "LEAD_NAMES",
    "NAMES",
    "ConditionError",
    "ConditionLead",
    "History",
    "Subject",
    "compiled",
    "expression_problems",
    "holds",
    "problems",
    "subject_for",
    "uses_history",
]
