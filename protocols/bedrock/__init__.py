"""Amazon Bedrock's runtime beyond its protocols: InvokeModel's calls, Anthropic Messages in an envelope of Bedrock's
(invoke.py: the call; invoke_stream.py: its answer's event stream frames), and what a SigV4 signature says
(sigv4.py). Its family is protocols/families/bedrock/ (its errors, credential, models); its Converse protocol is a
folder of its own (protocols/bedrock_converse/)."""
