"""Named experiment configs: ``experiments/configs/<name>.py`` defines ``get_config(...)``."""
