from rewrite.providers import ProviderSpec, register

register(ProviderSpec("anthropic", "anthropic", ("api.anthropic.com",), "https://api.anthropic.com", ""))
