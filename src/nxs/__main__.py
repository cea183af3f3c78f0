"""`python -m nxs` runs the `nxs` command."""

from nxs.cli import main

raise SystemExit(main())
