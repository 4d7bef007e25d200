"""A unified request written as the Gemini generateContent request body sent upstream (`request_from_ir`)."""

from __future__ import annotations

from protocols.capabilities import (
    EFFORT_NONE,
    THINKING_BUDGET,
    THINKING_LEVEL,
    THINKING_NONE,
    Capabilities,
    effort_for,
)
from protocols.gemini.stream import ROLE_MODEL
from protocols.gemini.translate.vocabulary import ERROR_KEY, FAMILY, JSON_MIME, NAME, OUTPUT_KEY
from protocols.registry import model_capabilities
from protocols.translate.common import budget_for, guess_image_type, output_cap, parse_arguments
from protocols.translate.tools import as_function
from protocols.unified import (
    CHOICE_AUTO,
    CHOICE_NONE,
    CHOICE_REQUIRED,
    CHOICE_TOOL,
    GENERATED_TOOL_ID_PREFIX,
    ROLE_ASSISTANT,
    ROLE_TOOL,
    ROLE_USER,
    Image,
    Part,
    Reasoning,
    ReasoningConfig,
    Request,
    Text,
    ToolCall,
    ToolResult,
    instructions,
)
from protocols.urls import segment

# Effort -> thinkingLevel: the effort in capitals; no level is called MAX, the highest is XHIGH.
LEVELS = {"max": "XHIGH"}
# Efforts above every 2.5 budget: the model decides how much to think (thinkingBudget -1).
DYNAMIC_EFFORTS = frozenset({"xhigh", "max"})
DYNAMIC_BUDGET = -1
STREAM_PATH = "/v1beta/models/{model}:streamGenerateContent"
GENERATE_PATH = "/v1beta/models/{model}:generateContent"
STREAM_QUERY = "alt=sse"
MODELS_PREFIX = "models/"
MODE_TO = {CHOICE_AUTO: "AUTO", CHOICE_REQUIRED: "ANY", CHOICE_NONE: "NONE", CHOICE_TOOL: "ANY"}
# What signs a replayed function call whose own signature Rotator does not have (another vendor's call, or the field
# cache lost it): Gemini 3 refuses a model turn whose first call is unsigned. Google's documented bypass, which
# gemini-cli sends too, on every model's turns.
SKIP_SIGNATURE = "skip_thought_signature_validator"


def _media(image: Image) -> dict:
    """Lossy: an OpenAI image `detail` has no Gemini form; a URL's media type is guessed from its extension, and
    Gemini may only fetch some URLs (its Files API, and public ones on newer models)."""
    if image.url:
        return {"fileData": {"mimeType": image.media_type or guess_image_type(image.url), "fileUri": image.url}}
    return {"inlineData": {"mimeType": image.media_type or "image/jpeg", "data": image.data or ""}}


def call_part(call: ToolCall) -> dict:
    function: dict = {"name": call.name, "args": parse_arguments(call.arguments)}
    if call.id and not call.id.startswith(GENERATED_TOOL_ID_PREFIX):
        function["id"] = call.id
    part: dict = {"functionCall": function}
    if call.origin == NAME and call.signature:
        part["thoughtSignature"] = call.signature  # signatures go back only to the vendor that issued them
    return part


def _response_part(result: ToolResult) -> dict:
    text = result.text()
    response = {"functionResponse": {"name": result.name or "", "response": {ERROR_KEY if result.is_error
                                                                              else OUTPUT_KEY: text}}}
    if result.call_id and not result.call_id.startswith(GENERATED_TOOL_ID_PREFIX):
        response["functionResponse"]["id"] = result.call_id
    return response


def _part(part: Part) -> list[dict]:
    if isinstance(part, Text):
        return [{"text": part.text}] if part.text else []
    if isinstance(part, Image):
        return [_media(part)]
    if isinstance(part, ToolCall):
        return [call_part(part)]
    if isinstance(part, ToolResult):
        # Lossy: a function response carries text; a result's images follow it in the same turn.
        return [_response_part(part), *(_media(p) for p in part.content if isinstance(p, Image))]
    if isinstance(part, Reasoning) and part.origin == NAME and (part.text or part.signature):
        thought: dict = {"text": part.text, "thought": True}
        if part.signature:
            thought["thoughtSignature"] = part.signature
        return [thought]
    return []  # Lossy: other vendors' reasoning is not replayed to Gemini.


def _contents(request: Request) -> list[dict]:
    out: list[dict] = []
    for message in request.messages:
        if message.role not in (ROLE_USER, ROLE_ASSISTANT, ROLE_TOOL):
            continue  # instructions go to systemInstruction
        role = ROLE_MODEL if message.role == ROLE_ASSISTANT else ROLE_USER
        parts = [p for part in message.parts for p in _part(part)]
        if not parts:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["parts"] += parts
        else:
            out.append({"role": role, "parts": parts})
    for content in out:
        first_call = next((p for p in content["parts"] if "functionCall" in p), None)
        if content["role"] == ROLE_MODEL and first_call is not None and "thoughtSignature" not in first_call:
            first_call["thoughtSignature"] = SKIP_SIGNATURE
    return out


def _generation_config(request: Request, caps: Capabilities) -> dict:
    config: dict = {}
    for key, value in (("maxOutputTokens", output_cap(request.max_tokens)), ("temperature", request.temperature),
                       ("topP", request.top_p), ("topK", request.top_k), ("seed", request.seed)):
        if value is not None:
            config[key] = value
    if request.stop:
        config["stopSequences"] = request.stop
    if request.response_format is not None:
        config["responseMimeType"] = JSON_MIME
        if request.response_format.schema is not None:
            config["responseJsonSchema"] = request.response_format.schema
    thinking = _thinking_config(request.reasoning, caps)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def _thinking_config(reasoning: ReasoningConfig | None, caps: Capabilities) -> dict:
    """A level (Gemini 3) or a budget (2.5), never both: Gemini refuses the pair."""
    if reasoning is None or caps.thinking == THINKING_NONE:
        return {}
    off = not reasoning.enabled or reasoning.effort == EFFORT_NONE
    if off:  # a level model cannot turn thinking off: `fit` has already raised it to its lowest level
        return {"thinkingBudget": 0} if caps.thinking == THINKING_BUDGET else {}
    out: dict = {"includeThoughts": reasoning.include_thoughts is not False}
    if caps.thinking == THINKING_LEVEL:
        if effort := effort_for(reasoning):
            out["thinkingLevel"] = LEVELS.get(effort, effort.upper())
    elif reasoning.effort in DYNAMIC_EFFORTS:
        out["thinkingBudget"] = DYNAMIC_BUDGET
    elif (budget := budget_for(reasoning)) is not None:
        out["thinkingBudget"] = budget
    return out


def request_from_ir(request: Request, caps: Capabilities | None = None) -> dict:
    """`caps`: what the target model accepts (the built-in table's entry for the request's model if not given)."""
    caps = caps or model_capabilities(FAMILY, request.model)
    body: dict = {"contents": _contents(request)}
    system = instructions(request)
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if request.tools:
        body["tools"] = [{"functionDeclarations": [
            {"name": t.name, **({"description": t.description} if t.description else {}),
             **({"parametersJsonSchema": t.parameters} if t.parameters else {})}
            for t in map(as_function, request.tools)]}]
        choice = request.tool_choice
        if choice is not None:
            calling: dict = {"mode": MODE_TO.get(choice.mode, "AUTO")}
            if choice.mode == CHOICE_TOOL and choice.name:
                calling["allowedFunctionNames"] = [choice.name]
            body["toolConfig"] = {"functionCallingConfig": calling}
    # Lossy: parallel_tool_calls and user have no Gemini field and are dropped.
    config = _generation_config(request, caps)
    if config:
        body["generationConfig"] = config
    return body


def endpoint(model: str, stream: bool) -> tuple[str, str]:
    model = segment(model.removeprefix(MODELS_PREFIX))
    if stream:
        return STREAM_PATH.format(model=model), STREAM_QUERY
    return GENERATE_PATH.format(model=model), ""
