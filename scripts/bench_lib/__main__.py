import sys

from bench_lib.main import main

sys.exit(main())
