"""Every surface a person or pipeline sees: CLI, Textual app, wallboard, headless runner."""
