"""What Amazon Bedrock's models accept (protocols/capabilities.py). Bedrock serves other vendors' models under ids of
its own: `[geography.]vendor.model`, a foundation model (`anthropic.claude-opus-4-6-v1`) or a cross-region inference
profile (`us.anthropic.claude-sonnet-4-5-20250929-v1:0`), or an ARN ending in one. An Anthropic model is known by
Anthropic's table (`hosted`); every other vendor's model gets Converse's guess."""

from __future__ import annotations

import re

from protocols.capabilities import Capabilities

# The geography prefixes of inference profiles, then the vendor and its model.
MODEL_ID = re.compile(r"^(?:(?:us|eu|apac|global|jp|au|ca|us-gov)\.)?(?P<vendor>[a-z0-9-]+)\.(?P<model>.+)$")
VENDOR_FAMILIES = {"anthropic": "anthropic"}  # a Bedrock vendor prefix -> the family whose table knows its models

# Another vendor's model: the sampling Converse's inferenceConfig carries, no reasoning field.
UNKNOWN = Capabilities.of(sampling=("temperature", "top_p"), known=False)


def hosted(model: str) -> tuple[str, str] | None:
    """(family, model) of a Bedrock id of a vendor another family's table knows (also at the end of an ARN)."""
    match = MODEL_ID.match(model.lower().rsplit("/", 1)[-1])
    if match is None or match["vendor"] not in VENDOR_FAMILIES:
        return None
    return VENDOR_FAMILIES[match["vendor"]], match["model"]
