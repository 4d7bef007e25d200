"""Realistic complete upstream streams for each protocol, as the vendors frame them (see docs/protocols.md).

Each constant is the whole response body of one streamed call. `STREAMS` maps a sample name to
(protocol name, body) for parametrised tests.
"""

# OpenAI Chat, `stream_options.include_usage`: role chunk, text, finish chunk, usage chunk, [DONE].
CHAT_TEXT = (
    b'data: {"id":"chatcmpl-C9xKq2","object":"chat.completion.chunk","created":1761000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_560af6e559","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"hR3"}\n\n'
    b'data: {"id":"chatcmpl-C9xKq2","object":"chat.completion.chunk","created":1761000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_560af6e559","choices":[{"index":0,"delta":{"content":"The capital"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"k"}\n\n'
    b'data: {"id":"chatcmpl-C9xKq2","object":"chat.completion.chunk","created":1761000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_560af6e559","choices":[{"index":0,"delta":{"content":" of France"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"Zq"}\n\n'
    b": keepalive\n\n"
    b'data: {"id":"chatcmpl-C9xKq2","object":"chat.completion.chunk","created":1761000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_560af6e559","choices":[{"index":0,"delta":{"content":" is Paris."},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"p"}\n\n'
    b'data: {"id":"chatcmpl-C9xKq2","object":"chat.completion.chunk","created":1761000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_560af6e559","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null,"obfuscation":"Ue1v"}\n\n'
    b'data: {"id":"chatcmpl-C9xKq2","object":"chat.completion.chunk","created":1761000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_560af6e559","choices":[],"usage":{"prompt_tokens":14,"completion_tokens":8,"total_tokens":22,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"obfuscation":"w2"}\n\n'
    b"data: [DONE]\n\n"
)
CHAT_TEXT_ANSWER = "The capital of France is Paris."

# OpenAI Chat: two parallel tool calls; id/type/name only in each call's first fragment.
CHAT_TOOL_CALLS = (
    b'data: {"id":"chatcmpl-C9xM71","object":"chat.completion.chunk","created":1761000100,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_b3f1157249","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_Wd3Yq7uB1","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-C9xM71","object":"chat.completion.chunk","created":1761000100,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_b3f1157249","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"city\\""}}]},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-C9xM71","object":"chat.completion.chunk","created":1761000100,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_b3f1157249","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":": \\"Paris\\"}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-C9xM71","object":"chat.completion.chunk","created":1761000100,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_b3f1157249","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_Xk9Lm2cQ4","type":"function","function":{"name":"get_time","arguments":""}}]},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-C9xM71","object":"chat.completion.chunk","created":1761000100,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_b3f1157249","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\\"tz\\": \\"Europe/Paris\\"}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-C9xM71","object":"chat.completion.chunk","created":1761000100,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_b3f1157249","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-C9xM71","object":"chat.completion.chunk","created":1761000100,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_b3f1157249","choices":[],"usage":{"prompt_tokens":82,"completion_tokens":41,"total_tokens":123,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}\n\n'
    b"data: [DONE]\n\n"
)
CHAT_TOOL_ARGUMENTS = ['{"city": "Paris"}', '{"tz": "Europe/Paris"}']

# OpenAI-compatible (DeepSeek / OpenRouter style): reasoning_content before the answer, a processing comment,
# and an Azure-style leading prompt_filter_results chunk with empty choices.
CHAT_REASONING = (
    b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}\n\n'
    b": OPENROUTER PROCESSING\n\n"
    b'data: {"id":"gen-1761000200-aB","object":"chat.completion.chunk","created":1761000200,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""},"logprobs":null,"finish_reason":null}]}\n\n'
    b'data: {"id":"gen-1761000200-aB","object":"chat.completion.chunk","created":1761000200,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"2 plus 2 "},"logprobs":null,"finish_reason":null}]}\n\n'
    b'data: {"id":"gen-1761000200-aB","object":"chat.completion.chunk","created":1761000200,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"is 4."},"logprobs":null,"finish_reason":null}]}\n\n'
    b'data: {"id":"gen-1761000200-aB","object":"chat.completion.chunk","created":1761000200,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":"4","reasoning_content":null},"logprobs":null,"finish_reason":null}]}\n\n'
    b'data: {"id":"gen-1761000200-aB","object":"chat.completion.chunk","created":1761000200,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":9,"total_tokens":19,"completion_tokens_details":{"reasoning_tokens":7}}}\n\n'
    b"data: [DONE]\n\n"
)

# OpenAI Responses: one message item.
RESPONSES_TEXT = (
    b'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_68f1a2b3c4d5","object":"response","created_at":1761000300,"status":"in_progress","background":false,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"gpt-4.1-2025-04-14","output":[],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":true,"temperature":1.0,"text":{"format":{"type":"text"},"verbosity":"medium"},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":null,"user":null,"metadata":{}}}\n\n'
    b'event: response.in_progress\ndata: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_68f1a2b3c4d5","object":"response","created_at":1761000300,"status":"in_progress","background":false,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"gpt-4.1-2025-04-14","output":[],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":true,"temperature":1.0,"text":{"format":{"type":"text"},"verbosity":"medium"},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":null,"user":null,"metadata":{}}}\n\n'
    b'event: response.output_item.added\ndata: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_68f1a2b4e5f6","type":"message","status":"in_progress","content":[],"role":"assistant"}}\n\n'
    b'event: response.content_part.added\ndata: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_68f1a2b4e5f6","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}}\n\n'
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_68f1a2b4e5f6","output_index":0,"content_index":0,"delta":"The capital","logprobs":[],"obfuscation":"x1"}\n\n'
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_68f1a2b4e5f6","output_index":0,"content_index":0,"delta":" of France","logprobs":[],"obfuscation":"Rt"}\n\n'
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":6,"item_id":"msg_68f1a2b4e5f6","output_index":0,"content_index":0,"delta":" is Paris.","logprobs":[],"obfuscation":"b"}\n\n'
    b'event: response.output_text.done\ndata: {"type":"response.output_text.done","sequence_number":7,"item_id":"msg_68f1a2b4e5f6","output_index":0,"content_index":0,"text":"The capital of France is Paris.","logprobs":[]}\n\n'
    b'event: response.content_part.done\ndata: {"type":"response.content_part.done","sequence_number":8,"item_id":"msg_68f1a2b4e5f6","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":"The capital of France is Paris."}}\n\n'
    b'event: response.output_item.done\ndata: {"type":"response.output_item.done","sequence_number":9,"output_index":0,"item":{"id":"msg_68f1a2b4e5f6","type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"The capital of France is Paris."}],"role":"assistant"}}\n\n'
    b'event: response.completed\ndata: {"type":"response.completed","sequence_number":10,"response":{"id":"resp_68f1a2b3c4d5","object":"response","created_at":1761000300,"status":"completed","background":false,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"gpt-4.1-2025-04-14","output":[{"id":"msg_68f1a2b4e5f6","type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"The capital of France is Paris."}],"role":"assistant"}],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":true,"temperature":1.0,"text":{"format":{"type":"text"},"verbosity":"medium"},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":{"input_tokens":14,"input_tokens_details":{"cached_tokens":0,"cache_write_tokens":0},"output_tokens":8,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":22},"user":null,"metadata":{}}}\n\n'
)

# OpenAI Responses: a reasoning item with a summary, then a function call.
RESPONSES_TOOL_CALL = (
    b'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_68f1b0c1d2e3","object":"response","created_at":1761000400,"status":"in_progress","background":false,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"o4-mini-2025-04-16","output":[],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":"medium","summary":"auto"},"store":true,"text":{"format":{"type":"text"},"verbosity":"medium"},"tool_choice":"auto","tools":[{"type":"function","description":"Current weather","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true}],"truncation":"disabled","usage":null,"user":null,"metadata":{}}}\n\n'
    b'event: response.in_progress\ndata: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_68f1b0c1d2e3","object":"response","created_at":1761000400,"status":"in_progress","background":false,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"o4-mini-2025-04-16","output":[],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":"medium","summary":"auto"},"store":true,"text":{"format":{"type":"text"},"verbosity":"medium"},"tool_choice":"auto","tools":[{"type":"function","description":"Current weather","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true}],"truncation":"disabled","usage":null,"user":null,"metadata":{}}}\n\n'
    b'event: response.output_item.added\ndata: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"rs_68f1b0c2a1","type":"reasoning","summary":[]}}\n\n'
    b'event: response.reasoning_summary_part.added\ndata: {"type":"response.reasoning_summary_part.added","sequence_number":3,"item_id":"rs_68f1b0c2a1","output_index":0,"summary_index":0,"part":{"type":"summary_text","text":""}}\n\n'
    b'event: response.reasoning_summary_text.delta\ndata: {"type":"response.reasoning_summary_text.delta","sequence_number":4,"item_id":"rs_68f1b0c2a1","output_index":0,"summary_index":0,"delta":"**Checking weather**","obfuscation":"q"}\n\n'
    b'event: response.reasoning_summary_text.done\ndata: {"type":"response.reasoning_summary_text.done","sequence_number":5,"item_id":"rs_68f1b0c2a1","output_index":0,"summary_index":0,"text":"**Checking weather**"}\n\n'
    b'event: response.reasoning_summary_part.done\ndata: {"type":"response.reasoning_summary_part.done","sequence_number":6,"item_id":"rs_68f1b0c2a1","output_index":0,"summary_index":0,"part":{"type":"summary_text","text":"**Checking weather**"}}\n\n'
    b'event: response.output_item.done\ndata: {"type":"response.output_item.done","sequence_number":7,"output_index":0,"item":{"id":"rs_68f1b0c2a1","type":"reasoning","summary":[{"type":"summary_text","text":"**Checking weather**"}]}}\n\n'
    b'event: response.output_item.added\ndata: {"type":"response.output_item.added","sequence_number":8,"output_index":1,"item":{"id":"fc_68f1b0c3b2","type":"function_call","status":"in_progress","arguments":"","call_id":"call_Qp4rT8vN","name":"get_weather"}}\n\n'
    b'event: response.function_call_arguments.delta\ndata: {"type":"response.function_call_arguments.delta","sequence_number":9,"item_id":"fc_68f1b0c3b2","output_index":1,"delta":"{\\"city\\":","obfuscation":"a"}\n\n'
    b'event: response.function_call_arguments.delta\ndata: {"type":"response.function_call_arguments.delta","sequence_number":10,"item_id":"fc_68f1b0c3b2","output_index":1,"delta":"\\"Paris\\"}","obfuscation":"bc"}\n\n'
    b'event: response.function_call_arguments.done\ndata: {"type":"response.function_call_arguments.done","sequence_number":11,"item_id":"fc_68f1b0c3b2","output_index":1,"arguments":"{\\"city\\":\\"Paris\\"}"}\n\n'
    b'event: response.output_item.done\ndata: {"type":"response.output_item.done","sequence_number":12,"output_index":1,"item":{"id":"fc_68f1b0c3b2","type":"function_call","status":"completed","arguments":"{\\"city\\":\\"Paris\\"}","call_id":"call_Qp4rT8vN","name":"get_weather"}}\n\n'
    b'event: response.completed\ndata: {"type":"response.completed","sequence_number":13,"response":{"id":"resp_68f1b0c1d2e3","object":"response","created_at":1761000400,"status":"completed","background":false,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"o4-mini-2025-04-16","output":[{"id":"rs_68f1b0c2a1","type":"reasoning","summary":[{"type":"summary_text","text":"**Checking weather**"}]},{"id":"fc_68f1b0c3b2","type":"function_call","status":"completed","arguments":"{\\"city\\":\\"Paris\\"}","call_id":"call_Qp4rT8vN","name":"get_weather"}],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":"medium","summary":"auto"},"store":true,"text":{"format":{"type":"text"},"verbosity":"medium"},"tool_choice":"auto","tools":[{"type":"function","description":"Current weather","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true}],"truncation":"disabled","usage":{"input_tokens":61,"input_tokens_details":{"cached_tokens":0,"cache_write_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":64},"total_tokens":148},"user":null,"metadata":{}}}\n\n'
)

# Anthropic Messages: one text block, with a ping.
ANTHROPIC_TEXT = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":21,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":2,"service_tier":"standard"}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"The capital"}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" of France"}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" is Paris."}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":21,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":11}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)

# Anthropic Messages: thinking (with signature), text, then a tool_use whose input streams as JSON fragments.
ANTHROPIC_TOOL_USE = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-opus-4-1-20250805","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":2,"service_tier":"standard"}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants the weather"}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" in Paris."}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me check."}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\": \\"Pa"}}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"ris\\"}"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":2}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)

# Gemini `:streamGenerateContent?alt=sse`, CRLF framed: cumulative usage on every chunk, finishReason last.
GEMINI_TEXT = (
    b'data: {"candidates": [{"content": {"parts": [{"text": "The capital"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 9,"candidatesTokenCount": 2,"totalTokenCount": 11,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 9}]},"modelVersion": "gemini-2.5-flash","responseId": "qH7xaPr3Dq2Pz7IP0ZCv4Ag"}\r\n\r\n'
    b'data: {"candidates": [{"content": {"parts": [{"text": " of France is"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 9,"candidatesTokenCount": 5,"totalTokenCount": 14,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 9}]},"modelVersion": "gemini-2.5-flash","responseId": "qH7xaPr3Dq2Pz7IP0ZCv4Ag"}\r\n\r\n'
    b'data: {"candidates": [{"content": {"parts": [{"text": " Paris."}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 9,"candidatesTokenCount": 7,"totalTokenCount": 16,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 9}]},"modelVersion": "gemini-2.5-flash","responseId": "qH7xaPr3Dq2Pz7IP0ZCv4Ag"}\r\n\r\n'
)
GEMINI_TEXT_ANSWER = "The capital of France is Paris."

# Gemini with thoughts: thought summary parts, then a whole functionCall part carrying a thoughtSignature,
# then a last chunk with finishReason and no parts.
GEMINI_FUNCTION_CALL = (
    b'data: {"candidates": [{"content": {"parts": [{"text": "**Weather lookup**\\n","thought": true}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 58,"totalTokenCount": 98,"thoughtsTokenCount": 40},"modelVersion": "gemini-2.5-pro","responseId": "Zr7xaM2dFYbWz7IPvLOq8AQ"}\r\n\r\n'
    b'data: {"candidates": [{"content": {"parts": [{"text": "I will call get_weather.","thought": true}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 58,"totalTokenCount": 121,"thoughtsTokenCount": 63},"modelVersion": "gemini-2.5-pro","responseId": "Zr7xaM2dFYbWz7IPvLOq8AQ"}\r\n\r\n'
    b'data: {"candidates": [{"content": {"parts": [{"functionCall": {"name": "get_weather","args": {"city": "Paris"}},"thoughtSignature": "BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 58,"candidatesTokenCount": 15,"totalTokenCount": 136,"thoughtsTokenCount": 63},"modelVersion": "gemini-2.5-pro","responseId": "Zr7xaM2dFYbWz7IPvLOq8AQ"}\r\n\r\n'
    b'data: {"candidates": [{"content": {"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 58,"candidatesTokenCount": 15,"totalTokenCount": 136,"thoughtsTokenCount": 63},"modelVersion": "gemini-2.5-pro","responseId": "Zr7xaM2dFYbWz7IPvLOq8AQ"}\r\n\r\n'
)

STREAMS = {
    "chat_text": ("openai_chat", CHAT_TEXT),
    "chat_tool_calls": ("openai_chat", CHAT_TOOL_CALLS),
    "chat_reasoning": ("openai_chat", CHAT_REASONING),
    "responses_text": ("openai_responses", RESPONSES_TEXT),
    "responses_tool_call": ("openai_responses", RESPONSES_TOOL_CALL),
    "anthropic_text": ("anthropic_messages", ANTHROPIC_TEXT),
    "anthropic_tool_use": ("anthropic_messages", ANTHROPIC_TOOL_USE),
    "gemini_text": ("gemini", GEMINI_TEXT),
    "gemini_function_call": ("gemini", GEMINI_FUNCTION_CALL),
}
