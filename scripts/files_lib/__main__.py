import sys

from files_lib.main import main

sys.exit(main())
