"""Shared test setup. Qt must see QT_QPA_PLATFORM before any Qt import (QT_TORCH_NOTES pitfall 10)."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
