from rewrite.providers import ProviderSpec, register

register(
    ProviderSpec(
        "gemini",
        "gemini",
        ("generativelanguage.googleapis.com",),
        "https://generativelanguage.googleapis.com",
        "",
    )
)
