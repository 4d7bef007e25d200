"""A fifth protocol, for the tests, in one folder and nothing else: OpenAI Chat under another path and name
("toy_chat", `POST .../toy/completions`), in a provider family of its own ("toy") whose providers take their key in
`x-toy-key`, which the registration brings. `protocols.register(REGISTRATION)` is all it takes to make Rotator know
both (rotator.py here does that before loading Rotator's addons)."""

from __future__ import annotations

import dataclasses

from protocols.families import CredentialStyle, Family
from protocols.openai_chat import REGISTRATION as CHAT
from protocols.openai_chat.stream import OpenAIChat
from protocols.registration import Registration

NAME = "toy_chat"
FAMILY = "toy"
LABEL = "Toy Chat"
PATH_SUFFIX = "/toy/completions"
KEY_HEADER = "x-toy-key"


class ToyChat(OpenAIChat):
    name = NAME
    family = FAMILY
    path_suffix = PATH_SUFFIX


TOY = Family(FAMILY, CredentialStyle(KEY_HEADER, "{}", (KEY_HEADER,)))
REGISTRATION = Registration(ToyChat(), dataclasses.replace(CHAT.translator, name=NAME), CHAT.usage, LABEL, TOY)
