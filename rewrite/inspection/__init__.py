"""What a person sees: the flow's LLM view and comment, the recorded steps, the status page."""
