import sys

if "--status-page" in sys.argv[1:]:  # what the status page costs the proxy (bench_lib/status_page.py)
    from bench_lib import status_page

    sys.exit(status_page.main([a for a in sys.argv[1:] if a != "--status-page"]))

from bench_lib.main import main

sys.exit(main())
