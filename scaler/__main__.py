"""``python -m scaler`` runs the CLI."""

import sys

from scaler.cli import main

sys.exit(main())
