"""What each subscription login says beyond the protocol it speaks (the built-in login providers of
rewrite/providers/ carry these; docs/clients.md, "Subscription logins", describes each): whether a request's credential
is the login, whether its body is signed, the plan windows its answers report (a `protocols.windows` dialect), its
exhaustion answer (a `protocols.vendor_errors` dialect), and what of its headers another target must not get.

One module a login; pure, as the rest of protocols/.
"""
