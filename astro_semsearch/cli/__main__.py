"""``python -m astro_semsearch.cli``: the same as the ``astro-semsearch`` command."""
import sys

from . import main

sys.exit(main())
