"""``python -m rwgui`` opens the studio (same as the ``rwgui`` script)."""

import sys

from rwgui.gui.app import main

if __name__ == "__main__":
    sys.exit(main())
