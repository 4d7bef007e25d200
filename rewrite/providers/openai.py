from rewrite.providers import ProviderSpec, register

register(ProviderSpec("openai", "openai", ("api.openai.com",), "https://api.openai.com/v1", "/v1"))
