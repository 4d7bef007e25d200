"""Which provider, model and protocol serve a request, in which order, and how it is put to each."""
