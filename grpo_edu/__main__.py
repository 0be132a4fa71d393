"""``python -m grpo_edu <command>``: see ``grpo_edu.cli``."""

import sys

from .cli import main

sys.exit(main())
