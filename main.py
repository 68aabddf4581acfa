"""Launch the LSFA Inspector window (``make run`` calls ``main.py --demo``)."""

import sys

from lsfa_gui.app import main

if __name__ == "__main__":
    sys.exit(main())
