"""Makes mitmproxy's CA in the directory given (if it is not there yet), for the workers that share it."""

import sys

from mitmproxy.certs import CertStore

CertStore.from_store(sys.argv[1], "mitmproxy", 2048)
