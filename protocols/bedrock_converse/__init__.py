"""Amazon Bedrock Converse: its stream repairer (stream.py) and aggregator (folding.py), its translator to and from
the unified form (translate/), its usage reader (usage.py); its family, Bedrock's, is protocols/families/bedrock/
(its errors, its credential, its models); and its registration, all the engine knows of it.

Its streams are AWS event streams: the protocol's `parser()` reads them (protocols/eventstream/)."""

from protocols.bedrock_converse.stream import Converse
from protocols.bedrock_converse.translate import TRANSLATOR
from protocols.bedrock_converse.usage import ConverseSniffer
from protocols.families import bedrock
from protocols.registration import Registration

# Stateful: reasoning blocks and their signatures (an Anthropic model's), which must come back signed.
REGISTRATION = Registration(Converse(), TRANSLATOR, ConverseSniffer, "Bedrock Converse", bedrock.FAMILY,
                            stateful=True, signed_thinking=True)
