"""``python -m grpo_edu.trl_bridge``: see ``grpo_edu.trl_bridge.launch``."""

from .launch import main

raise SystemExit(main())
