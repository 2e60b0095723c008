"""``python -m feishu_vc_async`` runs the ``feishu-vc`` command line."""

from .cli import main

raise SystemExit(main())
