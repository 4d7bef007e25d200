"""Amazon Bedrock's runtime, what its calls share whichever protocol they speak: its errors (errors.py) and the
framing of InvokeModelWithResponseStream, Anthropic's events in event stream frames (invoke.py). Its Converse
protocol is a folder of its own (protocols/bedrock_converse/)."""
