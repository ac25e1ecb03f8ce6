"""Reading video files (PyAV): see ``resources.video.probe``."""
