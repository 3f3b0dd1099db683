import sys

from seenn.cli import main

sys.exit(main())
