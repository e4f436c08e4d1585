"""Which part does each channel's work.

Every folder under dripper/channels/ with a `part` module is a channel: the part classes
that module defines are found here, by the `Channel` member each names (`channel`). So a
new channel is its folder and its member of `dripper.states.Channel`, and nothing else in
the send path. `PARTS` must name a part for every member: a member without one fails at
import, not at the first touch of that channel. A caller (a test, an embedding program)
may pass its own mapping instead of `PARTS`.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Collection, Iterator, Mapping
from types import MappingProxyType, ModuleType

from dripper.channels.base import ChannelPart, OutputDir, PartContext
from dripper.settings import Settings
from dripper.states import Channel

PartClasses = Mapping[Channel, type[ChannelPart]]


def _part_modules(package: ModuleType) -> Iterator[ModuleType]:
    for found in pkgutil.iter_modules(package.__path__):
        if found.ispkg and importlib.util.find_spec(f"{package.__name__}.{found.name}.part") is not None:
            yield importlib.import_module(f"{package.__name__}.{found.name}.part")


def discover(package: ModuleType) -> PartClasses:
    """The part classes defined in the `part` module of each folder of `package`."""
    parts: dict[Channel, type[ChannelPart]] = {}
    for module in _part_modules(package):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, ChannelPart) and cls.__module__ == module.__name__ and not inspect.isabstract(cls):
                if cls.channel in parts:
                    raise TypeError(f"two parts for the {cls.channel} channel: {parts[cls.channel]} and {cls}")
                parts[cls.channel] = cls
    missing = [str(channel) for channel in Channel if channel not in parts]
    if missing:
        raise TypeError(f"no part for the channel(s) {', '.join(missing)} under {package.__name__}")
    return MappingProxyType({channel: parts[channel] for channel in Channel})  # in the enum's order


def _channels_package() -> ModuleType:
    return importlib.import_module("dripper.channels")


PARTS: PartClasses = discover(_channels_package())


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


__all__ = ["PARTS", "PartClasses", "build", "discover", "output_dirs", "preview_suffix"]
