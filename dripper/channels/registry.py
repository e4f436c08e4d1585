"""Which part does each channel's work: `PARTS` names the part class of every member of
`dripper.states.Channel`; a tick builds its parts from them (`build`). A new channel is
its folder with its part, its member of `Channel`, and its line here; a caller (a test,
an embedding program) may pass its own mapping instead."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType

from dripper.channels.base import ChannelPart, OutputDir, PartContext
from dripper.channels.calls.part import CallPart
from dripper.channels.email.part import EmailPart
from dripper.channels.letters.part import LetterPart
from dripper.settings import Settings
from dripper.states import Channel

PartClasses = Mapping[Channel, type[ChannelPart]]

PARTS: PartClasses = MappingProxyType({Channel.EMAIL: EmailPart, Channel.LETTER: LetterPart, Channel.CALL: CallPart})


def build(context: PartContext, classes: PartClasses = PARTS) -> dict[Channel, ChannelPart]:
    """One part per channel, for one tick."""
    return {channel: part(context) for channel, part in classes.items()}


def output_dirs(settings: Settings, used: Collection[str], classes: PartClasses = PARTS) -> list[OutputDir]:
    """The folders the channels write into with these settings; `used`: the channels some
    campaign has steps on."""
    found = (part.output_dir(settings, channel in used) for channel, part in classes.items())
    return [folder for folder in found if folder is not None]


def preview_suffix(channel: str, classes: PartClasses = PARTS) -> str:
    """The file `dripper preview --open` writes a step of this channel as."""
    return classes[Channel(channel)].preview_suffix


__all__ = ["PARTS", "PartClasses", "build", "output_dirs", "preview_suffix"]
