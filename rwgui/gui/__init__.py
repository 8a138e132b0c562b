"""rwgui's desktop studio (PySide6 + pyqtgraph). Imports the Qt-free core; the core never imports this."""
