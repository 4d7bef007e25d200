import sys

from with_rotator_lib.main import main

sys.exit(main(sys.argv[1:]))
