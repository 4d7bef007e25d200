"""What each cloud platform says beyond the protocols it serves (docs/clients.md, "Cloud platforms"): its hosts
and regions, the envelope its clients wrap the vendors' calls in (protocols/envelope.py: a Vertex path naming the
model, project and location; a Claude body without `model`; an Azure deployment path), its error dialects, and how
its credentials are made (a Google service account's token: google_auth.py). The built-in providers of
rewrite/providers/ carry these.

One module a platform; pure, as the rest of protocols/.
"""
