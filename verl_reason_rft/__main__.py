import sys

from verl_reason_rft.cli import main

sys.exit(main())
