"""The Gradio page: layout.py arranges components, handlers.py maps events."""
