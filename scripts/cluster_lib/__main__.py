import sys

from cluster_lib.main import main

sys.exit(main(sys.argv[1:]))
