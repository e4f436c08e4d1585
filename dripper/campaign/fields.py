"""Declared lead fields (`fields:`) and campaign variables (`vars:`) of campaigns.yaml.

A lead CSV may carry any extra column (`lead.attrs.NAME`). Declaring one under
`fields:` says what it holds: `required` rows are refused at import without it, a
`type` (text, number, date, choice) is checked per row, and a `default` fills it in
for leads that lack it. Defaults are applied when a message is rendered, never stored,
so a changed default applies to every later send. Templates may use a declared field
freely; `dripper check` warns about an undeclared one used without a fallback.

`vars:` (at the top of the file, and per campaign, which wins) are values defined once
for the templates: `{{ vars.booth }}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from dripper.errors import Problem

if TYPE_CHECKING:
    from dripper.campaign import yamlpos
    from dripper.campaign.model import CampaignFile

FieldType = Literal["text", "number", "date", "choice"]
# Lower case: a CSV header is read in lower case, so `Product` could never match a column.
FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Plain decimal notation only: `1e3`, `NaN` and `1,200` are not what a marketer types for a number.
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")


def _as_text(value: object) -> object:
    """YAML reads `default: 12` as a number and `2026-03-31` as a date; a lead's values are text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


class FieldSpec(BaseModel):
    """One declared lead field: `fields: {product: {required: true, type: choice, ...}}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    required: bool = False  # a row without it is refused at import
    type: FieldType = "text"
    choices: tuple[str, ...] = ()  # type choice: the allowed values (matched ignoring case)
    default: str | None = None  # fills the field, at render time, for leads without it
    description: str | None = None  # for the people who fill the CSV; dripper does not use it

    @field_validator("default", mode="before")
    @classmethod
    def _default_text(cls, value: object) -> object:
        return _as_text(value)

    @field_validator("choices", mode="before")
    @classmethod
    def _choices_text(cls, value: object) -> object:
        return [_as_text(v) for v in value] if isinstance(value, list) else value

    def parse(self, text: str) -> str:
        """The value as stored (a date in ISO form, a choice spelled as declared), or a
        ValueError saying what is wrong with it."""
        if self.type == "number":
            if not _NUMBER.match(text):
                raise ValueError(f"{text!r} is not a number (write it like 1200 or 3.5)")
            return text
        if self.type == "date":
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError:
                raise ValueError(f"{text!r} is not a date (write it as YYYY-MM-DD, e.g. 2026-03-31)") from None
        if self.type == "choice":
            found = next((c for c in self.choices if c.casefold() == text.casefold()), None)
            if found is None:
                raise ValueError(f"{text!r} is not one of {', '.join(self.choices)}")
            return found
        return text

    def sample(self, name: str) -> str:
        """A value of this type for sample leads (`check`, previews)."""
        if self.default is not None:
            return self.default
        return {"number": "12", "date": "2026-02-27", "choice": self.choices[0] if self.choices else ""}.get(
            self.type, f"sample {name}"
        )


class TemplateVars:
    """`vars` as templates see it: `vars.NAME` or `vars['NAME']`. Not a dict, so that a
    variable named `items` or `keys` is that variable, not a dict method."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]):
        self._values = dict(values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # `_values` itself, before __init__ (a copy): no recursion; vars._x reads vars['_x']
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Any:
        return iter(self._values)

    def __repr__(self) -> str:
        return f"TemplateVars({self._values!r})"


# --- import: one lead's attributes against the declared fields ----------------------------
def checked_attrs(attrs: dict[str, str], fields: Mapping[str, FieldSpec]) -> dict[str, str]:
    """The attributes of one lead with its declared fields checked and normalized; a
    ValueError lists every field that is missing or malformed. Empty values are absent."""
    if not fields:
        return attrs
    wrong: list[str] = []
    out = dict(attrs)
    for name, spec in fields.items():
        value = attrs.get(name)
        if not value:
            if spec.required:
                wrong.append(f"missing required field {name!r}")
            continue
        try:
            out[name] = spec.parse(value)
        except ValueError as exc:
            wrong.append(f"field {name!r}: {exc}")
    if wrong:
        raise ValueError("; ".join(wrong))
    return out


def defaults_of(fields: Mapping[str, FieldSpec]) -> dict[str, str]:
    return {name: spec.default for name, spec in fields.items() if spec.default is not None}


def with_defaults(attrs: Mapping[str, str], defaults: Mapping[str, str]) -> dict[str, str] | None:
    """The attributes with each missing default filled in; None when nothing is missing
    (the common case: the lead is used as it is)."""
    missing = [name for name in defaults if name not in attrs]
    if not missing:
        return None
    return {**{name: defaults[name] for name in missing}, **attrs}


def campaign_vars(config: CampaignFile, campaign: str) -> dict[str, Any]:
    """The variables templates of `campaign` see: the file's, the campaign's own winning."""
    return {**config.vars, **config.campaigns[campaign].vars}


# --- check: problems with `fields:` and `vars:` ---------------------------------------------
def problems(config: CampaignFile, pos: yamlpos.Positioned) -> list[Problem]:
    """Every problem with the `fields:` and `vars:` entries, located."""
    out = _field_problems(config, pos)
    out += _var_problems(config.vars, ("vars",), pos)
    for name, campaign in config.campaigns.items():
        out += _var_problems(campaign.vars, ("campaigns", name, "vars"), pos)
    return out


def _field_problems(config: CampaignFile, pos: yamlpos.Positioned) -> list[Problem]:
    from dripper.leads.records import CORE_COLUMNS, POSTAL_COLUMNS  # records imports the model

    out: list[Problem] = []
    for name, spec in config.fields.items():
        here = ("fields", name)
        if name in CORE_COLUMNS or name in POSTAL_COLUMNS:
            out.append(
                Problem(pos.at(here, key=True), f"{name!r} is a lead column, not an extra field: it needs no declaring")
            )
        elif not FIELD_NAME.match(name):
            out.append(
                Problem(
                    pos.at(here, key=True),
                    f"bad field name {name!r}: use lower-case letters, digits and _ "
                    "(CSV headers are read in lower case)",
                )
            )
        if spec.type == "choice" and not spec.choices:
            out.append(Problem(pos.at((*here, "type")), f"field {name!r}: type choice needs a list of choices"))
        if spec.choices and spec.type != "choice":
            out.append(
                Problem(pos.at((*here, "choices")), f"field {name!r}: choices are for type choice, not {spec.type}")
            )
        if spec.default is not None:
            try:
                spec.parse(spec.default)
            except ValueError as exc:
                out.append(Problem(pos.at((*here, "default")), f"field {name!r}: default {exc}"))
    return out


def _var_problems(values: Mapping[str, Any], path: tuple[str, ...], pos: yamlpos.Positioned) -> list[Problem]:
    out: list[Problem] = []
    for name, value in values.items():
        if not VAR_NAME.match(name):
            out.append(
                Problem(
                    pos.at((*path, name), key=True),
                    f"bad variable name {name!r}: use letters, digits and _ (templates write vars.NAME)",
                )
            )
        elif value is None:
            out.append(Problem(pos.at((*path, name)), f"variable {name!r} has no value"))
    return out


__all__ = [
    "FieldSpec",
    "FieldType",
    "TemplateVars",
    "campaign_vars",
    "checked_attrs",
    "defaults_of",
    "problems",
    "with_defaults",
]
